//! Behind a load balancer: the client's address comes from `X-Forwarded-For` or `Forwarded`
//! only when the peer is a trusted proxy, for every transport, and the waiting room's
//! per-address cap counts clients, not the balancer. The tests' own sockets come from
//! 127.0.0.1, which plays the balancer.

use futures_util::SinkExt;
use serde_json::{json, Value};
use switchboard::Settings;
use switchboard_hub::{GateLimits, TrustedProxies};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use crate::socketio::next_text;
use crate::support::{manifest, TestServer, API_KEY};

const XFF: (&str, &str) = ("x-forwarded-for", "203.0.113.7, 10.0.0.2");

/// A server that trusts `proxies`, with the waiting room's caps tweaked by `gate`.
async fn behind(proxies: &[&str], gate: impl FnOnce(&mut GateLimits)) -> TestServer {
    let proxies = TrustedProxies::parse(proxies).unwrap();
    TestServer::start_with(vec![manifest()], move |s: &mut Settings| {
        s.trusted_proxies = proxies;
        gate(&mut s.unauthenticated);
    })
    .await
}

/// The balancer and the private hop it names in the test's X-Forwarded-For.
async fn trusting_the_balancer() -> TestServer {
    behind(&["127.0.0.1", "10.0.0.0/8"], |_| {}).await
}

/// The `remote_addr` of each of `user`'s connections, as the server API lists them.
async fn remote_addrs(server: &TestServer, user: &str) -> Vec<String> {
    let path = format!("/api/v1/apps/app1/users/{user}/connections");
    let (status, listed) = server.api("GET", &path, Some(API_KEY), None).await;
    assert_eq!(status, 200, "{listed}");
    let connections = listed["connections"].as_array().unwrap();
    connections.iter().map(|c| c["remote_addr"].as_str().unwrap().to_owned()).collect()
}

/// A native connection for `user` with these headers on its upgrade.
async fn native(server: &TestServer, user: &str, headers: &[(&str, &str)]) -> crate::support::Client {
    let token = server.token(user, json!({}));
    let mut client = server.raw(&format!("/ws?token={token}"), headers).await;
    client.expect("connected").await;
    client
}

/// A Socket.IO session for `user` over long-polling, opened with these headers; the
/// session's later requests carry none.
async fn socket_io_polling(server: &TestServer, user: &str, headers: &[(&str, &str)]) -> reqwest::Client {
    let http = reqwest::Client::new();
    let handshake = server.url("/socket.io/?EIO=4&transport=polling");
    let open = handshake_with(&http, &handshake, headers).await;
    let open: Value = serde_json::from_str(open.1.strip_prefix('0').expect("an open packet")).unwrap();
    let session = format!("{handshake}&sid={}", open["sid"].as_str().unwrap());
    let connect = format!("40{}", json!({"token": server.token(user, json!({}))}));
    assert_eq!(http.post(&session).body(connect).send().await.unwrap().status(), 200);
    let connected = http.get(&session).send().await.unwrap().text().await.unwrap();
    assert!(connected.starts_with("40"), "{connected}");
    http
}

/// An Engine.IO handshake over polling: its status and body.
async fn handshake_with(http: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request = http.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// A Socket.IO session for `user` over a WebSocket opened with these headers.
async fn socket_io_websocket(server: &TestServer, user: &str, headers: &[(&str, &str)]) -> crate::support::Client {
    let mut client = server.raw("/socket.io/?EIO=4&transport=websocket", headers).await;
    assert!(next_text(&mut client.ws).await.starts_with('0'), "the open packet");
    let connect = format!("40{}", json!({"token": server.token(user, json!({}))}));
    client.ws.send(Message::text(connect)).await.unwrap();
    assert!(next_text(&mut client.ws).await.starts_with("40"), "connected");
    client
}

#[tokio::test]
async fn a_trusted_proxys_x_forwarded_for_names_the_client_on_every_transport() {
    let server = trusting_the_balancer().await;
    let _native = native(&server, "ann", &[XFF]).await;
    assert_eq!(remote_addrs(&server, "ann").await, ["203.0.113.7"], "native");
    let _polling = socket_io_polling(&server, "bob", &[XFF]).await;
    assert_eq!(remote_addrs(&server, "bob").await, ["203.0.113.7"], "Socket.IO over long-polling");
    let _websocket = socket_io_websocket(&server, "cy", &[XFF]).await;
    assert_eq!(remote_addrs(&server, "cy").await, ["203.0.113.7"], "Socket.IO over WebSocket");
}

#[tokio::test]
async fn rfc_7239_forwarded_names_the_client_too() {
    let server = trusting_the_balancer().await;
    let forwarded = ("forwarded", "for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.0.0.2");
    let _native = native(&server, "ann", &[forwarded]).await;
    assert_eq!(remote_addrs(&server, "ann").await, ["[2001:db8:cafe::17]:4711"], "native");
    let _websocket = socket_io_websocket(&server, "bob", &[("forwarded", "for=203.0.113.7")]).await;
    assert_eq!(remote_addrs(&server, "bob").await, ["203.0.113.7"], "Socket.IO over WebSocket");
    let _polling = socket_io_polling(&server, "cy", &[("forwarded", "for=203.0.113.8")]).await;
    assert_eq!(remote_addrs(&server, "cy").await, ["203.0.113.8"], "Socket.IO over long-polling");
}

#[tokio::test]
async fn the_headers_of_a_peer_that_is_not_a_trusted_proxy_are_ignored() {
    let server = behind(&["10.0.0.0/8"], |_| {}).await;
    let _native = native(&server, "ann", &[XFF]).await;
    let _polling = socket_io_polling(&server, "ann", &[("forwarded", "for=203.0.113.7")]).await;
    let _websocket = socket_io_websocket(&server, "ann", &[XFF]).await;
    let seen = remote_addrs(&server, "ann").await;
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|addr| addr.starts_with("127.0.0.1:")), "the peer, with its port: {seen:?}");
}

#[tokio::test]
async fn the_waiting_rooms_per_address_cap_counts_forwarded_clients() {
    let server = behind(&["127.0.0.1"], |gate| gate.per_address = 2).await;
    let http = reqwest::Client::new();
    let handshake = server.url("/socket.io/?EIO=4&transport=polling");
    let from = |client: &'static str| [("x-forwarded-for", client)];
    // Two Engine.IO sessions wait for their CONNECT (45 s) as 203.0.113.7: its cap is full.
    for _ in 0..2 {
        assert_eq!(handshake_with(&http, &handshake, &from("203.0.113.7")).await.0, 200);
    }
    let (status, body) = handshake_with(&http, &handshake, &from("203.0.113.7")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("from this address"), "{body}");
    // Nor may it wait on the native endpoint (refused before the upgrade).
    let mut request = format!("ws://{}/ws", server.addr).into_client_request().unwrap();
    request.headers_mut().insert("x-forwarded-for", HeaderValue::from_static("203.0.113.7"));
    let error = tokio_tungstenite::connect_async(request).await.unwrap_err().to_string();
    assert!(error.contains("503"), "{error}");
    // Another client behind the same balancer still gets in, on both.
    assert_eq!(handshake_with(&http, &handshake, &from("198.51.100.1")).await.0, 200);
    let _other = native(&server, "ann", &from("198.51.100.1")).await;

    // From a peer that is not trusted, the header changes nothing: every session counts
    // against the peer's own address, whatever it claims.
    let server = behind(&["10.0.0.0/8"], |gate| gate.per_address = 2).await;
    let handshake = server.url("/socket.io/?EIO=4&transport=polling");
    for client in ["203.0.113.1", "203.0.113.2"] {
        assert_eq!(handshake_with(&http, &handshake, &from(client)).await.0, 200);
    }
    assert_eq!(handshake_with(&http, &handshake, &from("203.0.113.3")).await.0, 503);
}
