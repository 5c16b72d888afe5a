//! Switchboard embedded in another axum app: its routes beside the app's own, handlers in
//! code, broadcast to the app or one user, connection queries and writes.

use std::net::SocketAddr;

use serde_json::{json, Value};
use switchboard::embed::{Embedded, HandlerError, Message};
use switchboard::Settings;
use switchboard_auth::{mint, Algorithm};

use crate::support::{manifest, Client, API_KEY, SECRET};

struct Host {
    addr: SocketAddr,
    switchboard: std::sync::Arc<Embedded>,
    _dir: tempfile::TempDir,
}

/// Builds the app: `/hello` of its own, Switchboard's routes merged in.
async fn host() -> Host {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
    std::fs::write(dir.path().join("key.txt"), API_KEY).unwrap();
    let file = dir.path().join("app1.json");
    std::fs::write(&file, manifest().to_string()).unwrap();
    let switchboard =
        std::sync::Arc::new(Embedded::start(Settings::for_manifests(vec![file.display().to_string()])).await.unwrap());
    let app = axum::Router::new()
        .route("/hello", axum::routing::get(|| async { "hello from the app" }))
        .merge(switchboard.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await });
    Host { addr, switchboard, _dir: dir }
}

async fn connect(host: &Host, user: &str) -> Client {
    let exp = switchboard_hub::unix_ms() / 1000 + 600;
    let claims = json!({"sub": user, "exp": exp}).as_object().unwrap().clone();
    let token = mint(Algorithm::HS256, SECRET.as_bytes(), &claims).unwrap();
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws?token={token}", host.addr)).await.unwrap();
    let mut client = Client { ws, connected: Value::Null };
    client.connected = client.expect("connected").await;
    client
}

#[tokio::test]
async fn an_embedding_app_handles_messages_in_code_and_broadcasts() {
    let host = host().await;
    let body = reqwest::get(format!("http://{}/hello", host.addr)).await.unwrap().text().await.unwrap();
    assert_eq!(body, "hello from the app", "the app's own routes stay");
    host.switchboard.on_message("app1", "realtime", |message: Message| async move {
        match message.kind.as_str() {
            "ping_me" => Ok(json!({ "pong": message.data, "from": message.connection.user_id })),
            other => Err(HandlerError::new("unknown_action", format!("no action {other}"))),
        }
    });
    let mut ann = connect(&host, "ann").await;
    let mut ann_phone = connect(&host, "ann").await;
    let mut bob = connect(&host, "bob").await;

    let reply = ann.request("ping_me", json!(7)).await;
    assert_eq!(reply["data"], json!({"pong": 7, "from": "ann"}));
    let refused = ann.request("dance", json!({})).await;
    assert_eq!(
        (refused["data"]["code"].as_str(), refused["data"]["message"].as_str()),
        (Some("unknown_action"), Some("no action dance"))
    );

    let sb = &host.switchboard;
    assert_eq!(sb.connection_count("app1").unwrap(), 3);
    sb.broadcast_to_app("app1", "maintenance", &json!({"at": "22:00"}), None).await.unwrap();
    for client in [&mut ann, &mut ann_phone, &mut bob] {
        assert_eq!(client.expect("maintenance").await, json!({"at": "22:00"}));
    }
    sb.broadcast_to_app("app1", "balance", &json!(1234), Some("ann")).await.unwrap();
    assert_eq!(ann.expect("balance").await, 1234);
    assert_eq!(ann_phone.expect("balance").await, 1234);
    bob.assert_alive().await; // the user filter kept it from bob

    let devices = sb.connections_of("app1", "ann").unwrap();
    assert_eq!(devices.len(), 2);
    let phone_id = ann_phone.connected["connection_id"].as_str().unwrap();
    assert!(sb.send_to_connection("app1", phone_id, "just_you", json!({"n": 1})).unwrap());
    assert_eq!(ann_phone.expect("just_you").await, json!({"n": 1}));
    ann.assert_alive().await; // only that connection
    assert!(!sb.send_to_connection("app1", "gone", "x", json!(null)).unwrap());
    assert!(sb.connection_count("nope").is_err(), "an unknown app is an error");
}
