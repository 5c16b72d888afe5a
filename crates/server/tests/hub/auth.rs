//! Where tokens come from, refresh and expiry, and the Origin allowlist.

use serde_json::{json, Map, Value};
use switchboard_auth::{mint, Algorithm};
use switchboard_protocol::Disconnect;

use crate::support::{manifest, TestServer};

#[tokio::test]
async fn token_from_header_cookie_query_or_auth_frame() {
    let mut with_cookie = manifest();
    with_cookie["auth_policy"]["cookie"] = json!("access_token");
    let server = TestServer::start_with(vec![with_cookie], |_| {}).await;
    let token = server.token("u1", json!({"email": "u1@example.com"}));

    let bearer = format!("Bearer {token}");
    let mut by_header = server.raw("/ws", &[("authorization", &bearer)]).await;
    assert_eq!(by_header.next_json().await["data"]["user_id"], "u1");

    let cookie = format!("theme=dark; access_token={token}");
    let mut by_cookie = server.raw("/ws", &[("cookie", &cookie)]).await;
    assert_eq!(by_cookie.next_json().await["data"]["user_id"], "u1");

    let mut by_query = server.raw(&format!("/ws?token={token}"), &[]).await;
    assert_eq!(by_query.next_json().await["data"]["user_id"], "u1");

    let mut by_frame = server.raw("/ws", &[]).await;
    by_frame.send(json!({"type": "auth", "data": {"token": token}})).await;
    let connected = by_frame.next_json().await;
    assert_eq!((connected["type"].as_str(), connected["data"]["user_id"].as_str()), (Some("connected"), Some("u1")));
}

#[tokio::test]
async fn refresh_extends_and_expiry_without_refresh_closes_4401() {
    let server = TestServer::start().await;
    let now = switchboard_hub::unix_ms() / 1000;
    let mut client = server.connect_token(&server.token("u1", json!({"exp": now + 1}))).await;
    let mut refreshed = server.connect_token(&server.token("u1", json!({"exp": now + 1}))).await;

    let fresh = server.token("u1", json!({"exp": now + 600}));
    let reply = refreshed.request("refresh", json!({"token": fresh})).await;
    assert_eq!((reply["type"].as_str(), reply["data"]["expires_at"].as_u64()), (Some("reply"), Some(now + 600)));
    let other_user = server.token("u2", json!({}));
    assert_eq!(refreshed.request("refresh", json!({"token": other_user})).await["data"]["code"], "forbidden");
    assert_eq!(refreshed.request("refresh", json!({"token": "junk"})).await["data"]["code"], "unauthorized");

    let closed = client.closed().await.1;
    assert_eq!(closed.code, Disconnect::UNAUTHORIZED);
    assert!(closed.reason.contains("expired"), "{closed:?}");
    // The refreshed connection outlived the first token: it still answers.
    refreshed.assert_alive().await;
}

#[tokio::test]
async fn origin_allowlist_and_cookie_protection() {
    let mut strict = manifest();
    strict["websockets"]["realtime"]["allowed_origins"] = json!(["https://good.example"]);
    strict["auth_policy"]["cookie"] = json!("access_token");
    let server = TestServer::start_with(vec![strict], |_| {}).await;
    let token = server.token("u1", json!({}));
    let url = format!("ws://{}/ws?token={token}", server.addr);

    let attempt = |origin: &'static str| {
        let url = url.clone();
        async move {
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            let mut request = url.into_client_request().unwrap();
            request.headers_mut().insert("origin", origin.parse().unwrap());
            tokio_tungstenite::connect_async(request).await.map(|_| ()).map_err(|e| e.to_string())
        }
    };
    assert!(attempt("https://good.example").await.is_ok());
    let refused = attempt("https://evil.example").await.unwrap_err();
    assert!(refused.contains("403"), "{refused}");
    // /open has no allowlist but the app uses cookie auth: only same-host pages may connect.
    let same_host = format!("http://{}", server.addr);
    let cookie = format!("access_token={token}");
    let mut ok = server.raw("/open", &[("origin", &same_host), ("cookie", &cookie)]).await;
    assert_eq!(ok.next_json().await["type"], "connected");
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let cross_site = |with_cookie: bool| {
        let mut request = format!("ws://{}/open", server.addr).into_client_request().unwrap();
        request.headers_mut().insert("origin", "https://evil.example".parse().unwrap());
        if with_cookie {
            request.headers_mut().insert("cookie", cookie.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request)
    };
    assert!(cross_site(true).await.is_err(), "a cross-site page may not ride the cookie");
    assert!(cross_site(false).await.is_ok(), "without the cookie it is just an anonymous client");
}

#[tokio::test]
async fn max_connections_per_user_is_enforced() {
    let mut limited = manifest();
    limited["limits"] = json!({"max_connections_per_user": 2});
    let server = TestServer::start_with(vec![limited], |_| {}).await;
    let _first = server.connect("u1").await;
    let mut second = server.connect("u1").await;
    let token = server.token("u1", json!({}));
    let mut third = server.raw(&format!("/ws?token={token}"), &[]).await;
    let closed = third.closed().await.1;
    assert_eq!(closed.code, Disconnect::FORBIDDEN);
    assert!(closed.reason.contains("limit 2"), "{closed:?}");
    second.assert_alive().await;
    let _other_user = server.connect("u2").await;
}

#[tokio::test]
async fn an_app_with_a_secret_and_a_public_key_accepts_tokens_of_both() {
    let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../auth/tests/keys");
    let mut mixed = manifest();
    mixed["auth_policy"]["jwt"]["public_key_file"] = json!(keys.join("rsa_public.pem"));
    mixed["auth_policy"]["jwt"]["algorithms"] = json!(["RS256", "HS256"]);
    let server = TestServer::start_with(vec![mixed], |_| {}).await;

    let hs = server.connect("by-secret").await;
    assert_eq!(hs.connected["user_id"], "by-secret");
    let claims: Map<String, Value> = json!({"sub": "by-key"}).as_object().unwrap().clone();
    let private = std::fs::read(keys.join("rsa_private.pem")).unwrap();
    let rs = server.connect_token(&mint(Algorithm::RS256, &private, &claims).unwrap()).await;
    assert_eq!(rs.connected["user_id"], "by-key");
    // A token signed with another RSA key is still refused, and says why.
    let other = std::fs::read(keys.join("rsa2_private.pem")).unwrap();
    let forged = mint(Algorithm::RS256, &other, &claims).unwrap();
    let closed = server.raw(&format!("/ws?token={forged}"), &[]).await.closed().await.1;
    assert_eq!((closed.code, closed.reason.as_str()), (Disconnect::UNAUTHORIZED, "token signature does not verify"));
}

#[tokio::test]
async fn an_auth_frame_on_an_anonymous_connection_is_told_the_connection_is_anonymous() {
    let server = TestServer::start().await;
    let mut anonymous = server.raw("/open", &[]).await;
    assert_eq!(anonymous.expect("connected").await["user_id"], json!(null));
    let token = server.token("u1", json!({}));
    for kind in ["auth", "refresh"] {
        let answer = anonymous.request(kind, json!({"token": token})).await;
        assert_eq!(answer["type"], "error", "{answer}");
        assert_eq!(answer["data"]["code"], "forbidden", "{answer}");
        assert_eq!(answer["data"]["message"], "this connection is anonymous; reconnect with the token", "{answer}");
    }
    anonymous.assert_alive().await;
}
