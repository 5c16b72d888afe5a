//! DESIGN's bad-input rows for the inbox: clear errors, and nothing lost or revealed.

use serde_json::{json, Value};

use crate::on_both_stores;
use crate::support::{manifest, Backend, TestServer, API_KEY};

on_both_stores!(
    bad_bodies_are_refused_naming_the_field,
    unknown_and_other_users_ids_are_404,
    socket_requests_fail_cleanly,
    a_nul_in_text_is_kept_or_refused_by_name
);

async fn post(server: &TestServer, what: &str, body: Value) -> (u16, Value) {
    server.api("POST", &format!("/api/v1/apps/app1/{what}"), Some(API_KEY), Some(body)).await
}

fn refused(answer: &(u16, Value), status: u16, code: &str, names: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    let message = answer.1["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(names), "`{message}` should name `{names}`");
}

async fn bad_bodies_are_refused_naming_the_field(backend: Backend) {
    let Some(server) = TestServer::start_on(backend, vec![manifest()]).await else { return };
    refused(
        &post(&server, "notifications", json!({"user": "alice", "message": "m"})).await,
        400,
        "bad_request",
        "title",
    );
    refused(&post(&server, "notifications", json!({"title": "t", "message": "m"})).await, 400, "bad_request", "user");
    let bad_user = json!({"user": "a b", "title": "t", "message": "m"});
    refused(&post(&server, "notifications", bad_user).await, 400, "bad_request", "user");
    let no_severity = json!({"group": "acc1", "title": "t", "message": "m"});
    refused(&post(&server, "alerts", no_severity).await, 400, "bad_request", "severity");
    let bad_severity = json!({"group": "acc1", "title": "t", "message": "m", "severity": "apocalyptic"});
    refused(&post(&server, "alerts", bad_severity).await, 400, "bad_request", "severity");
    // The test manifest allows 4096-byte messages.
    let huge = json!({"user": "alice", "title": "t", "message": "m", "data": {"blob": "x".repeat(5000)}});
    refused(&post(&server, "notifications", huge).await, 413, "payload_too_large", "max_message_bytes");
    let huge = json!({"group": "acc1", "title": "t", "message": "x".repeat(5000), "severity": "info"});
    refused(&post(&server, "alerts", huge).await, 413, "payload_too_large", "max_message_bytes");

    let alice = server.token("alice", json!({"groups": ["acc1"]}));
    let (_, list) = server.api("GET", "/api/v1/apps/app1/me/notifications", Some(&alice), None).await;
    assert_eq!(list["notifications"], json!([]), "nothing refused was stored");
    let (_, list) = server.api("GET", "/api/v1/apps/app1/me/alerts", Some(&alice), None).await;
    assert_eq!(list["alerts"], json!([]));

    let me = "/api/v1/apps/app1/me/notifications";
    refused(&server.api("GET", &format!("{me}?limit=0"), Some(&alice), None).await, 400, "bad_request", "limit");
    refused(&server.api("GET", &format!("{me}?limit=x"), Some(&alice), None).await, 400, "bad_request", "limit");
    refused(&server.api("GET", &format!("{me}?cursor=zz"), Some(&alice), None).await, 400, "bad_request", "cursor");
    refused(&server.api("GET", me, None, None).await, 401, "unauthorized", "Bearer");
    refused(&server.api("GET", me, Some("not-a-jwt"), None).await, 401, "unauthorized", "token");
    refused(&server.api("GET", me, Some(API_KEY), None).await, 401, "unauthorized", "token");
    refused(&server.api("POST", "/api/v1/apps/app1/notifications", None, None).await, 401, "unauthorized", "API key");
}

async fn unknown_and_other_users_ids_are_404(backend: Backend) {
    let Some(server) = TestServer::start_on(backend, vec![manifest()]).await else { return };
    let created = post(&server, "notifications", json!({"user": "alice", "title": "t", "message": "m"})).await;
    let id = created.1["id"].as_str().unwrap().to_owned();
    let alert =
        post(&server, "alerts", json!({"group": "acc1", "title": "t", "message": "m", "severity": "info"})).await;
    let alert_id = alert.1["id"].as_str().unwrap().to_owned();
    let (alice, bob) = (server.token("alice", json!({})), server.token("bob", json!({"groups": ["acc2"]})));
    let me = "/api/v1/apps/app1/me";
    for user in [&alice, &bob] {
        refused(
            &server.api("POST", &format!("{me}/notifications/nope/read"), Some(user), None).await,
            404,
            "not_found",
            "nope",
        );
        refused(
            &server.api("DELETE", &format!("{me}/notifications/nope"), Some(user), None).await,
            404,
            "not_found",
            "nope",
        );
    }
    // Bob gets the very answer an unknown id gets: alice's notification stays hidden and unread.
    let read = server.api("POST", &format!("{me}/notifications/{id}/read"), Some(&bob), None).await;
    refused(&read, 404, "not_found", "no notification");
    refused(
        &server.api("DELETE", &format!("{me}/notifications/{id}"), Some(&bob), None).await,
        404,
        "not_found",
        "no notification",
    );
    let (_, count) = server.api("GET", &format!("{me}/notifications/count"), Some(&alice), None).await;
    assert_eq!(count, json!({"unread": 1}));
    // An alert of a group bob is not in is as unknown to him as a made-up id.
    let ack = server.api("POST", &format!("{me}/alerts/{alert_id}/acknowledge"), Some(&bob), None).await;
    refused(&ack, 404, "not_found", "no alert");
    refused(
        &server.api("POST", &format!("{me}/alerts/nope/acknowledge"), Some(&bob), None).await,
        404,
        "not_found",
        "no alert",
    );
    refused(
        &server.api("DELETE", "/api/v1/apps/app1/alerts/nope", Some(API_KEY), None).await,
        404,
        "not_found",
        "nope",
    );
}

async fn socket_requests_fail_cleanly(backend: Backend) {
    let Some(server) = TestServer::start_on(backend, vec![manifest()]).await else { return };
    let created = post(&server, "notifications", json!({"user": "alice", "title": "t", "message": "m"})).await;
    let id = created.1["id"].as_str().unwrap().to_owned();
    let mut bob = server.connect("bob").await;
    let error = |frame: &Value| (frame["type"].clone(), frame["data"]["code"].clone());
    let answer = bob.request("notification:read", json!({"notification_id": id})).await;
    assert_eq!(error(&answer), (json!("error"), json!("not_found")), "{answer}");
    let answer = bob.request("notification:delete", json!({})).await;
    assert_eq!(error(&answer), (json!("error"), json!("bad_request")));
    assert!(answer["data"]["message"].as_str().unwrap().contains("data.notification_id"));
    let answer = bob.request("alert:acknowledge", json!({"alert_id": 5})).await;
    assert!(answer["data"]["message"].as_str().unwrap().contains("data.alert_id"), "{answer}");
    bob.assert_alive().await;

    let mut anonymous = server.raw("/open", &[]).await;
    anonymous.expect("connected").await;
    let answer = anonymous.request("notification:read_all", json!({})).await;
    assert_eq!(error(&answer), (json!("error"), json!("forbidden")));

    let alice = server.token("alice", json!({}));
    let (_, count) = server.api("GET", "/api/v1/apps/app1/me/notifications/count", Some(&alice), None).await;
    assert_eq!(count, json!({"unread": 1}), "nothing bob sent touched alice's inbox");
}

#[tokio::test]
async fn an_app_with_the_inbox_turned_off_answers_404_and_unknown_type() {
    let mut off = manifest();
    off["features"] = json!({"notifications": false, "alerts": false});
    let server = TestServer::start_with(vec![off], |_| {}).await;
    let body = json!({"user": "alice", "title": "t", "message": "m"});
    refused(&post(&server, "notifications", body).await, 404, "not_found", "features.notifications");
    let alice = server.token("alice", json!({}));
    let list = server.api("GET", "/api/v1/apps/app1/me/alerts", Some(&alice), None).await;
    refused(&list, 404, "not_found", "features.alerts");
    let mut socket = server.connect("alice").await;
    let answer = socket.request("notification:read_all", json!({})).await;
    assert_eq!(answer["data"]["code"], "unknown_type", "{answer}");
}

/// SQLite keeps a NUL in text; PostgreSQL cannot, so there the request is a 400 that names
/// it (it was a 500) and nothing is stored.
async fn a_nul_in_text_is_kept_or_refused_by_name(backend: Backend) {
    let Some(server) = TestServer::start_on(backend, vec![manifest()]).await else { return };
    let nul = json!({"user": "alice", "title": "a\u{0}b", "message": "m"});
    let alert = json!({"group": "acc1", "title": "t", "message": "a\u{0}b", "severity": "info"});
    let answers = [post(&server, "notifications", nul).await, post(&server, "alerts", alert).await];
    let alice = server.token("alice", json!({"groups": ["acc1"]}));
    let (_, list) = server.api("GET", "/api/v1/apps/app1/me/notifications", Some(&alice), None).await;
    let titles: Vec<&Value> = list["notifications"].as_array().unwrap().iter().map(|n| &n["title"]).collect();
    match backend {
        Backend::Sqlite => {
            assert_eq!(answers.map(|a| a.0), [201, 201]);
            assert_eq!(titles, [&json!("a\u{0}b")]);
        }
        Backend::Postgres => {
            answers.iter().for_each(|answer| refused(answer, 400, "bad_request", "NUL"));
            assert!(titles.is_empty(), "nothing refused was stored: {list}");
        }
    }
    assert_eq!(post(&server, "notifications", json!({"user": "alice", "title": "t", "message": "m"})).await.0, 201);
}
