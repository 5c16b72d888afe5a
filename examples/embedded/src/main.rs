//! An app that serves its own routes and Switchboard's from one axum server, handles the
//! `task:claim` client message in Rust, and broadcasts a heartbeat.
//!
//! ```sh
//! export MY_APP_JWT_SECRET=change-me MY_APP_API_KEY=sk_change_me
//! cargo run -p switchboard-example-embedded
//! # another shell: a token for alice, then connect and send {"type":"task:claim","data":{"task_id":1},"ref":1}
//! cargo run -p switchboard -- token --manifest examples/embedded/my_app.json --app my_app --user alice
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use switchboard::embed::{Embedded, HandlerError, Message};
use switchboard::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/my_app.json").to_owned();
    let mut settings = Settings::for_manifests(vec![manifest]);
    settings.store = "sqlite://./embedded-example.db".into();
    let switchboard = std::sync::Arc::new(Embedded::start(settings).await?);

    // Seed 004's message handler, in code: `task:claim` answers the client directly.
    switchboard.on_message("my_app", "realtime", |message: Message| async move {
        match message.kind.as_str() {
            "task:claim" => Ok(json!({ "claimed": message.data["task_id"], "by": message.connection.user_id })),
            other => Err(HandlerError::new("unknown_action", format!("this app has no `{other}`"))),
        }
    });

    // Seed 004's broadcast_to_app: everyone connected to the app, every 30 s.
    let heartbeat = switchboard.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(30)).await;
            let count = heartbeat.connection_count("my_app").unwrap_or_default();
            let data = json!({ "connections": count });
            if let Err(e) = heartbeat.broadcast_to_app("my_app", "heartbeat", &data, None).await {
                eprintln!("heartbeat not sent: {e}");
            }
        }
    });

    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "my app, with Switchboard at /ws and /api/v1" }))
        .merge(switchboard.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("my app on http://127.0.0.1:3000 (WebSocket: ws://127.0.0.1:3000/ws?token=...)");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
