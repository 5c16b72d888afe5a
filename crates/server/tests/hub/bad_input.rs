//! DESIGN.md's bad-input table, one test per row (handler rows arrive with handlers).

use serde_json::json;
use switchboard_protocol::Disconnect;

use crate::support::{manifest, second_app, TestServer, API_KEY, API_KEY_2};

#[tokio::test]
async fn malformed_json_answers_bad_request_and_keeps_the_connection() {
    let server = TestServer::start().await;
    let mut client = server.connect("u1").await;
    client.send_text("{not json").await;
    let error = client.next_json().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["data"]["code"], "bad_request");
    assert!(error["data"]["message"].as_str().unwrap().starts_with("malformed JSON"));
    client.assert_alive().await;
}

#[tokio::test]
async fn missing_fields_answer_bad_request_naming_the_field() {
    let server = TestServer::start().await;
    let mut client = server.connect("u1").await;
    let answer = client.request("subscribe", json!({})).await;
    assert_eq!(answer["data"]["code"], "bad_request");
    assert!(answer["data"]["message"].as_str().unwrap().contains("data.channel"), "{answer}");
    client.send(json!({"data": {}, "ref": 9})).await;
    let answer = client.next_json().await;
    assert_eq!((answer["ref"].as_i64(), answer["data"]["code"].as_str()), (Some(9), Some("bad_request")));
    assert!(answer["data"]["message"].as_str().unwrap().contains("`type`"));
    client.assert_alive().await;
}

#[tokio::test]
async fn unknown_type_without_handler_answers_unknown_type() {
    let server = TestServer::start().await;
    let mut client = server.connect("u1").await;
    let answer = client.request("update_preferences", json!({"theme": "dark"})).await;
    assert_eq!(answer["data"]["code"], "unknown_type");
    client.assert_alive().await;
}

#[tokio::test]
async fn frame_over_max_message_bytes_closes_1009() {
    let server = TestServer::start().await;
    // Just over the manifest's 4096 bytes: the session refuses it.
    let mut client = server.connect("u1").await;
    client.send_text(&format!("{{\"type\":\"x\",\"data\":\"{}\"}}", "a".repeat(5000))).await;
    assert_eq!(client.closed().await.1.code, Disconnect::TOO_BIG);
    // Far over it: the WebSocket layer refuses it before it is buffered whole.
    let mut client = server.connect("u1").await;
    client.send_text(&"b".repeat(200_000)).await;
    assert_eq!(client.closed().await.1.code, Disconnect::TOO_BIG);
}

#[tokio::test]
async fn over_the_rate_limit_answers_rate_limited_then_closes_4429() {
    let mut limited = manifest();
    limited["limits"] = json!({"messages_per_second": 1, "burst": 2});
    let server = TestServer::start_with(vec![limited], |_| {}).await;
    let mut client = server.connect("u1").await;
    for _ in 0..2 {
        assert_eq!(client.request("ping", json!({})).await["type"], "pong");
    }
    assert_eq!(client.request("ping", json!({})).await["data"]["code"], "rate_limited");
    // Sustained: keep sending without reading; the server gives up with 4429.
    for _ in 0..20 {
        client.send(json!({"type": "ping"})).await;
    }
    let (frames, closed) = client.closed().await;
    assert_eq!(closed.code, Disconnect::RATE_LIMITED, "after {} frames", frames.len());
}

#[tokio::test]
async fn bad_tokens_close_4401_with_a_reason() {
    let server = TestServer::start().await;
    let now = switchboard_hub::unix_ms() / 1000;
    let expired = server.token("u1", json!({"exp": now - 60}));
    let forged = {
        let claims = json!({"sub": "u1"}).as_object().unwrap().clone();
        switchboard_auth::mint(switchboard_auth::Algorithm::HS256, b"wrong", &claims).unwrap()
    };
    for (token, reason) in [(expired.as_str(), "expired"), (forged.as_str(), "signature"), ("garbage", "well-formed")] {
        let mut client = server.raw(&format!("/ws?token={token}"), &[]).await;
        let closed = client.closed().await.1;
        assert_eq!(closed.code, Disconnect::UNAUTHORIZED);
        assert!(closed.reason.contains(reason), "{reason}: {closed:?}");
    }
    // A first frame that is not auth is refused too.
    let mut client = server.raw("/ws", &[]).await;
    client.send(json!({"type": "subscribe", "data": {"channel": "room:x"}})).await;
    let closed = client.closed().await.1;
    assert_eq!(closed.code, Disconnect::UNAUTHORIZED);
    assert!(closed.reason.contains("auth"), "{closed:?}");
}

#[tokio::test]
async fn no_auth_frame_in_time_closes_4408() {
    let server = TestServer::start().await;
    let mut client = server.raw("/ws", &[]).await;
    let closed = client.closed().await.1;
    assert_eq!(closed.code, Disconnect::AUTH_TIMEOUT, "{closed:?}");
}

#[tokio::test]
async fn forbidden_subscribe_keeps_the_connection() {
    let server = TestServer::start().await;
    let mut client = server.connect("u1").await;
    assert_eq!(client.request("subscribe", json!({"channel": "user:u2"})).await["data"]["code"], "forbidden");
    let unknown = client.request("subscribe", json!({"channel": "nope:1"})).await;
    assert_eq!(unknown["data"]["code"], "bad_request");
    assert!(unknown["data"]["message"].as_str().unwrap().contains("not declared"), "{unknown}");
    client.assert_alive().await;
}

#[tokio::test]
async fn server_api_bad_body_no_key_and_other_apps_key() {
    let server = TestServer::start_with(vec![manifest(), second_app()], |_| {}).await;
    let publish = "/api/v1/apps/app1/publish";
    let good = json!({"channels": ["user:u1"], "type": "t"});

    let (status, body) = server.api("POST", publish, Some(API_KEY), Some(json!({"channels": ["user:u1"]}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")));
    assert!(body["error"]["message"].as_str().unwrap().contains("`type`"), "{body}");
    let (status, body) =
        server.api("POST", publish, Some(API_KEY), Some(json!({"channels": "user:u1", "type": "t"}))).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("channels"), "{body}");
    let (status, body) =
        server.api("POST", publish, Some(API_KEY), Some(json!({"channels": ["nope"], "type": "t"}))).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("channels"), "{body}");

    assert_eq!(server.api("POST", publish, None, Some(good.clone())).await.0, 401);
    assert_eq!(server.api("POST", publish, Some("sk_wrong"), Some(good.clone())).await.0, 401);
    let (status, body) = server.api("POST", publish, Some(API_KEY_2), Some(good.clone())).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")));
    assert_eq!(server.api("POST", publish, Some(API_KEY), Some(good)).await.0, 200);
}

#[tokio::test]
async fn binary_frames_answer_bad_request() {
    use futures_util::SinkExt;
    let server = TestServer::start().await;
    let mut client = server.connect("u1").await;
    client.ws.send(tokio_tungstenite::tungstenite::Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(client.next_json().await["data"]["code"], "bad_request");
    client.assert_alive().await;
}

#[tokio::test]
async fn a_plain_http_request_to_a_socket_path_is_told_to_use_a_websocket_client() {
    let server = TestServer::start().await;
    let (status, answer) = server.api("GET", "/ws", None, None).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "bad_request");
    assert!(answer["error"]["message"].as_str().unwrap().contains("WebSocket client"), "{answer}");
}
