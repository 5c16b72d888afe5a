//! CORS on the client API (`/me/...`) for front ends on their own origin; none on the server API.

use reqwest::header::{ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_ORIGIN, ORIGIN};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{manifest, TestServer, API_KEY};

const APP_ORIGIN: &str = "https://app.example.com";

async fn preflight(server: &TestServer, path: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, server.url(path))
        .header(ORIGIN, origin)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .unwrap()
}

fn allow_origin(response: &reqwest::Response) -> Option<&str> {
    response.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn the_client_api_answers_preflights_for_listed_origins_only() {
    let mut app = manifest();
    app["websockets"]["realtime"]["allowed_origins"] = json!([APP_ORIGIN]);
    let server = TestServer::start_with(vec![app], |_| {}).await;
    let path = "/api/v1/apps/app1/me/notifications";

    let answer = preflight(&server, path, "HTTPS://APP.example.com").await;
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    assert_eq!(allow_origin(&answer), Some("HTTPS://APP.example.com"), "origins compare without case");
    let headers = answer.headers().get(ACCESS_CONTROL_ALLOW_HEADERS).unwrap().to_str().unwrap();
    assert!(headers.contains("authorization"), "{headers}");
    assert!(answer.headers().get("access-control-allow-credentials").is_none(), "no cookies");

    let refused = preflight(&server, path, "https://evil.example").await;
    assert_eq!((refused.status(), allow_origin(&refused)), (StatusCode::FORBIDDEN, None));

    // The real request carries the header for the listed origin, and not for another.
    let token = server.token("u1", json!({}));
    let get = |origin: &'static str| {
        reqwest::Client::new().get(server.url(path)).bearer_auth(&token).header(ORIGIN, origin).send()
    };
    let listed = get(APP_ORIGIN).await.unwrap();
    assert_eq!((listed.status(), allow_origin(&listed)), (StatusCode::OK, Some(APP_ORIGIN)));
    let other = get("https://evil.example").await.unwrap();
    assert_eq!(allow_origin(&other), None);
}

#[tokio::test]
async fn any_origin_when_no_endpoint_lists_origins_and_never_on_the_server_api() {
    let server = TestServer::start().await;
    let answer = preflight(&server, "/api/v1/apps/app1/me/conversations", "http://localhost:5173").await;
    assert_eq!((answer.status(), allow_origin(&answer)), (StatusCode::NO_CONTENT, Some("*")));

    let publish = reqwest::Client::new()
        .post(server.url("/api/v1/apps/app1/publish"))
        .bearer_auth(API_KEY)
        .header(ORIGIN, "http://localhost:5173")
        .json(&json!({"channels": ["user:u1"], "type": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!((publish.status(), allow_origin(&publish)), (StatusCode::OK, None));
    let server_preflight = preflight(&server, "/api/v1/apps/app1/publish", "http://localhost:5173").await;
    assert_eq!(allow_origin(&server_preflight), None, "the server API answers no preflight");
}
