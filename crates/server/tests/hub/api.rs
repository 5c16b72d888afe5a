//! The server API: publish, batch, idempotency, connections, disconnect, OpenAPI.

use serde_json::json;
use switchboard_protocol::Disconnect;

use crate::support::{TestServer, API_KEY};

#[tokio::test]
async fn one_publish_reaches_many_channels_with_one_id() {
    let server = TestServer::start().await;
    let mut a = server.connect("a").await;
    let mut b = server.connect("b").await;
    let answer = server.publish(json!({"channels": ["user:a", "user:b"], "type": "t", "data": {"k": 1}})).await;
    let id = answer["id"].as_str().unwrap();
    assert_eq!(a.next_json().await["id"], id);
    assert_eq!(b.next_json().await["id"], id);
}

#[tokio::test]
async fn repeated_idempotency_key_returns_first_result_and_delivers_nothing_new() {
    let server = TestServer::start().await;
    let mut client = server.connect("u1").await;
    let body = json!({"channels": ["user:u1"], "type": "transfer", "data": 1, "idempotency_key": "tx-1"});
    let first = server.publish(body.clone()).await;
    let again = server.publish(body).await;
    assert_eq!(first, again);
    server.publish(json!({"channels": ["user:u1"], "type": "marker"})).await;
    assert_eq!(client.next_json().await["type"], "transfer");
    assert_eq!(client.next_json().await["type"], "marker", "the repeat delivered nothing");
}

#[tokio::test]
async fn batch_checks_every_event_before_publishing_any() {
    let server = TestServer::start().await;
    let mut client = server.connect("u1").await;
    let path = "/api/v1/apps/app1/publish/batch";
    let bad = json!({"events": [{"channels": ["user:u1"], "type": "one"}, {"channels": ["bogus"], "type": "two"}]});
    let (status, body) = server.api("POST", path, Some(API_KEY), Some(bad)).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().starts_with("events[1]"), "{body}");
    let good = json!({"events": [{"channels": ["user:u1"], "type": "one"}, {"channels": ["user:u1"], "type": "two"}]});
    let (status, body) = server.api("POST", path, Some(API_KEY), Some(good)).await;
    assert_eq!((status, body["results"].as_array().map(Vec::len)), (200, Some(2)));
    assert_eq!(client.next_json().await["type"], "one", "nothing from the refused batch");
    assert_eq!(client.next_json().await["type"], "two");
}

#[tokio::test]
async fn connections_list_seed_metadata_and_disconnect_closes_4403_everywhere() {
    let server = TestServer::start().await;
    let mut phone = server.connect_token(&server.token("u1", json!({"email": "u1@example.com"}))).await;
    let mut laptop = server.connect("u1").await;
    let mut bystander = server.connect("u2").await;

    let (_, counts) = server.api("GET", "/api/v1/apps/app1/connections", Some(API_KEY), None).await;
    assert_eq!((counts["total"].as_u64(), counts["users"].as_u64()), (Some(3), Some(2)));
    assert_eq!((counts["node_id"].as_str(), counts["by_endpoint"]["realtime"].as_u64()), (Some("test"), Some(3)));
    let (_, listed) = server.api("GET", "/api/v1/apps/app1/users/u1/connections", Some(API_KEY), None).await;
    let connections = listed["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 2);
    let with_email = connections.iter().find(|c| c["user_email"] == "u1@example.com").expect("email kept");
    for field in ["connection_id", "app_slug", "user_id", "connected_at", "endpoint", "protocol", "remote_addr"] {
        assert!(with_email[field].is_string(), "{field} in {with_email}");
    }
    assert_eq!(with_email["connection_id"], phone.connected["connection_id"]);
    assert!(with_email["connection_id"].as_str().unwrap().starts_with("test-"), "ids carry the node id");

    let (_, done) = server.api("DELETE", "/api/v1/apps/app1/users/u1/connections", Some(API_KEY), None).await;
    assert_eq!(done["disconnected"], 2);
    assert_eq!(phone.closed().await.1.code, Disconnect::FORBIDDEN);
    assert_eq!(laptop.closed().await.1.code, Disconnect::FORBIDDEN);
    bystander.assert_alive().await;
}

#[tokio::test]
async fn members_refuse_user_and_broadcast_channels_and_unknown_apps_are_404() {
    let server = TestServer::start().await;
    let (status, _) = server.api("PUT", "/api/v1/apps/app1/channels/user:u1/members/u2", Some(API_KEY), None).await;
    assert_eq!(status, 400);
    let (status, body) = server.api("GET", "/api/v1/apps/nope/connections", Some(API_KEY), None).await;
    assert_eq!(status, 403, "app1's key used on another app path: {body}");
    let (status, _) = server.api("GET", "/nowhere", None, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn members_refuse_user_ids_the_rest_of_the_api_refuses_naming_the_problem() {
    let server = TestServer::start().await;
    let members = "/api/v1/apps/app1/channels/group:g1/members";
    let long = "u".repeat(10_000);
    for method in ["PUT", "DELETE"] {
        for (user, problem) in
            [("a%00b", "control character"), ("a%20b", "whitespace"), (long.as_str(), "longer than 250 bytes")]
        {
            let (status, body) = server.api(method, &format!("{members}/{user}"), Some(API_KEY), None).await;
            assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")), "{method} {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("user id") && message.contains(problem), "{method}: {message}");
            assert!(message.len() < 200, "the message does not echo the id: {message}");
        }
    }
    // The longest id a `user:` channel can hold is fine, and nothing was stored before it.
    let longest = "u".repeat(250);
    let (status, body) = server.api("PUT", &format!("{members}/{longest}"), Some(API_KEY), None).await;
    assert_eq!((status, body["added"].as_bool()), (200, Some(true)), "{body}");
    let (_, listed) = server.api("GET", members, Some(API_KEY), None).await;
    assert_eq!(listed["members"], json!([longest]));
}

#[tokio::test]
async fn openapi_document_describes_every_route_and_each_is_served() {
    let server = TestServer::start().await;
    let (status, doc) = server.api("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for (method, _) in item.as_object().unwrap().iter().filter(|(m, _)| *m != "parameters") {
            operations += 1;
            let concrete = path.replace("{app}", "app1").replace("{channel}", "room:r1").replace("{user}", "u1");
            let body = (method == "post").then(|| json!({}));
            let (status, answer) = server.api(&method.to_uppercase(), &concrete, Some(API_KEY), body).await;
            // Every documented route exists: a 404 would have our not_found body, 405 means no such method.
            let missing = status == 405
                || (status == 404 && answer["error"]["message"].as_str().is_some_and(|m| m.starts_with("no route")));
            assert!(!missing, "{method} {path} is documented but not served ({status})");
        }
    }
    assert!(operations >= 11, "documented operations: {operations}");
    let documented: Vec<&String> = paths.keys().collect();
    let served = [
        "/api/v1/apps/{app}/publish",
        "/api/v1/apps/{app}/publish/batch",
        "/api/v1/apps/{app}/channels/{channel}/history",
        "/healthz",
        "/readyz",
    ];
    for served in served {
        assert!(documented.iter().any(|p| *p == served), "{served} missing from the document");
    }
}

#[tokio::test]
async fn an_app_without_a_key_names_the_variable_that_sets_one() {
    let mut keyless = crate::support::manifest();
    keyless["slug"] = json!("keyless_app");
    keyless.as_object_mut().unwrap().remove("api_key_file");
    let server = crate::support::TestServer::start_with(vec![keyless], |_| {}).await;
    let body = json!({"channels": ["user:u1"], "type": "t"});
    for key in [None, Some("sk_anything")] {
        let (status, answer) = server.api("POST", "/api/v1/apps/keyless_app/publish", key, Some(body.clone())).await;
        let message = answer["error"]["message"].as_str().unwrap();
        assert_eq!(status, 401, "{answer}");
        assert!(message.contains("no API key configured"), "{message}");
        assert!(message.contains("KEYLESS_APP_API_KEY"), "{message}");
    }
}

#[tokio::test]
async fn an_event_for_one_connection_reaches_only_it_and_only_with_its_apps_key() {
    let server =
        crate::support::TestServer::start_with(vec![crate::support::manifest(), crate::support::second_app()], |_| {})
            .await;
    let mut phone = server.connect("u1").await;
    let mut laptop = server.connect("u1").await;
    let (_, listed) = server.api("GET", "/api/v1/apps/app1/users/u1/connections", Some(API_KEY), None).await;
    let ids: Vec<&str> =
        listed["connections"].as_array().unwrap().iter().map(|c| c["connection_id"].as_str().unwrap()).collect();
    let phone_id = phone.connected["connection_id"].as_str().unwrap().to_owned();
    assert!(ids.contains(&phone_id.as_str()));

    let path = format!("/api/v1/apps/app1/connections/{phone_id}/events");
    let event = json!({"type": "just_you", "data": {"n": 1}});
    let (status, answer) = server.api("POST", &path, Some(API_KEY), Some(event.clone())).await;
    assert_eq!((status, answer["sent"].clone()), (200, json!(true)), "{answer}");
    let got = phone.next_json().await;
    assert_eq!((got["type"].as_str(), got["data"]["n"].as_i64()), (Some("just_you"), Some(1)));
    laptop.assert_alive().await;

    // Another app's key cannot reach it, even naming the right id under its own app.
    let other = format!("/api/v1/apps/app2/connections/{phone_id}/events");
    let (status, answer) = server.api("POST", &other, Some(crate::support::API_KEY_2), Some(event.clone())).await;
    assert_eq!(status, 404, "{answer}");
    let (status, _) = server.api("POST", &path, Some(crate::support::API_KEY_2), Some(event.clone())).await;
    assert_eq!(status, 403);
    let unknown = "/api/v1/apps/app1/connections/test-0000/events";
    assert_eq!(server.api("POST", unknown, Some(API_KEY), Some(event)).await.0, 404);
    let (status, answer) = server.api("POST", &path, Some(API_KEY), Some(json!({"data": 1}))).await;
    assert_eq!(status, 400);
    assert!(answer["error"]["message"].as_str().unwrap().contains("type"), "{answer}");
}

/// The `src` and `href` values of a page's HTML.
fn linked(html: &str) -> Vec<String> {
    let mut links = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for part in html.split(attribute).skip(1) {
            links.push(part.split('"').next().unwrap_or_default().to_owned());
        }
    }
    links
}

#[tokio::test]
async fn the_web_pages_carry_a_strict_policy_and_every_answer_says_nosniff() {
    // No manifest: the demo page at `/`; an admin token: the console at `/admin`.
    let server = TestServer::start_with(vec![], |s| s.admin_token = Some("admin-token-0123456789".into())).await;
    let host = server.addr.to_string();
    let websockets = format!("connect-src 'self' ws://{host} wss://{host};");
    for (path, connect) in [("/admin", "connect-src 'self';"), ("/", websockets.as_str())] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        let policy = header("content-security-policy").unwrap_or_default();
        for directive in [
            "default-src 'none';",
            "script-src 'self';",
            "style-src 'self';",
            connect,
            "frame-ancestors 'none';",
            "base-uri 'none';",
            "form-action 'self'",
        ] {
            assert!(policy.contains(directive), "{path}: {directive} in {policy}");
        }
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
        assert_eq!(header("x-frame-options").as_deref(), Some("DENY"), "{path}");
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"), "{path}");
        assert_eq!(header("referrer-policy").as_deref(), Some("no-referrer"), "{path}");
        let html = response.text().await.unwrap();
        assert!(
            !html.contains("<script>") && !html.contains("<style"),
            "{path}: nothing inline for the policy to block"
        );
        // Each file the page links is served, with its type, from this origin.
        let links = linked(&html);
        assert!(links.iter().any(|l| l.ends_with(".js")) && links.iter().any(|l| l.ends_with(".css")), "{links:?}");
        for link in links {
            assert!(link.starts_with('/'), "{path}: {link} is this origin's");
            let file = reqwest::get(server.url(&link)).await.unwrap();
            let kind = file.headers()["content-type"].to_str().unwrap().to_owned();
            assert_eq!(
                (file.status().as_u16(), file.headers()["x-content-type-options"].to_str().unwrap()),
                (200, "nosniff")
            );
            let expected = if link.ends_with(".js") {
                "text/javascript"
            } else if link.ends_with(".css") {
                "text/css"
            } else {
                "image/"
            };
            assert!(kind.starts_with(expected), "{link}: {kind}");
        }
    }
    // The API's JSON answers, refusals and unknown routes included.
    for path in ["/api/v1/openapi.json", "/api/v1/apps/demo/connections", "/nowhere"] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(
            response.headers().get("x-content-type-options").map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{path}"
        );
    }
}
