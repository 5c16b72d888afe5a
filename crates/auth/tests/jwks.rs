//! JWKS: keys fetched over HTTP, cached, and refetched when the issuer rotates keys.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use switchboard_auth::{
    mint_with_kid, Algorithm, AuthError, ClaimNames, JwksCache, JwtSettings, KeyMaterial, Verifier,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A minimal HTTP server on 127.0.0.1 that serves whatever JWKS document it holds now.
struct Issuer {
    url: String,
    document: Arc<Mutex<&'static str>>,
    fetches: Arc<AtomicUsize>,
}

async fn issuer(document: &'static str) -> Issuer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
    let document = Arc::new(Mutex::new(document));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (doc, count) = (document.clone(), fetches.clone());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 2048];
            let _ = socket.read(&mut request).await;
            count.fetch_add(1, Ordering::SeqCst);
            let body = *doc.lock().unwrap();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    Issuer { url, document, fetches }
}

fn verifier(cache: Arc<JwksCache>) -> Verifier {
    Verifier::new(JwtSettings {
        algorithms: vec![Algorithm::RS256],
        keys: vec![KeyMaterial::JwksCache(cache)],
        issuer: None,
        audience: Vec::new(),
        leeway_secs: 5,
        claims: ClaimNames::default(),
    })
    .unwrap()
}

fn token(private: &[u8], kid: &str) -> String {
    let claims = json!({"sub": "jwks-user"}).as_object().unwrap().clone();
    mint_with_kid(Algorithm::RS256, private, Some(kid), &claims).unwrap()
}

#[tokio::test]
async fn keys_are_cached_and_rotation_is_picked_up() {
    let issuer = issuer(include_str!("keys/jwks1.json")).await;
    let cache = Arc::new(JwksCache::with_intervals(issuer.url.clone(), Duration::from_secs(300), Duration::ZERO));
    let verifier = verifier(cache);
    let k1 = token(include_bytes!("keys/rsa_private.pem"), "k1");
    assert_eq!(verifier.verify(&k1).await.unwrap().user_id, "jwks-user");
    assert_eq!(verifier.verify(&k1).await.unwrap().user_id, "jwks-user");
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 1, "the second token used the cache");

    // The issuer rotates in k2: a token signed with it triggers one refetch and verifies.
    let k2 = token(include_bytes!("keys/rsa2_private.pem"), "k2");
    *issuer.document.lock().unwrap() = include_str!("keys/jwks2.json");
    assert_eq!(verifier.verify(&k2).await.unwrap().user_id, "jwks-user");
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 2);

    // A kid the issuer never published is refused.
    let rogue = token(include_bytes!("keys/rsa2_private.pem"), "k9");
    assert_eq!(verifier.verify(&rogue).await, Err(AuthError::BadSignature));
}

#[tokio::test]
async fn unknown_kids_do_not_hammer_the_issuer() {
    let issuer = issuer(include_str!("keys/jwks1.json")).await;
    let cache =
        Arc::new(JwksCache::with_intervals(issuer.url.clone(), Duration::from_secs(300), Duration::from_secs(60)));
    let verifier = verifier(cache);
    let rogue = token(include_bytes!("keys/rsa2_private.pem"), "k9");
    for _ in 0..5 {
        assert!(verifier.verify(&rogue).await.is_err());
    }
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 1, "refetch on unknown kid is rate limited");
}

#[tokio::test]
async fn unreachable_jwks_is_a_readable_error() {
    let cache = Arc::new(JwksCache::new("http://127.0.0.1:9/jwks.json".into()));
    let err = verifier(cache).verify(&token(include_bytes!("keys/rsa_private.pem"), "k1")).await.unwrap_err();
    assert!(matches!(err, AuthError::Jwks(_)), "{err:?}");
    assert!(err.to_string().starts_with("could not load signing keys"));
}

#[tokio::test]
async fn beside_a_secret_the_jwks_checks_only_the_asymmetric_tokens() {
    let issuer = issuer(include_str!("keys/jwks1.json")).await;
    let cache = Arc::new(JwksCache::with_intervals(issuer.url.clone(), Duration::from_secs(300), Duration::ZERO));
    let verifier = Verifier::new(JwtSettings {
        algorithms: vec![Algorithm::RS256, Algorithm::HS256],
        keys: vec![KeyMaterial::JwksCache(cache), KeyMaterial::Secret(b"s3cret".to_vec())],
        issuer: None,
        audience: Vec::new(),
        leeway_secs: 5,
        claims: ClaimNames::default(),
    })
    .unwrap();
    // An HS token naming a JWKS kid is still an HS token: checked with the secret, no fetch.
    let claims = json!({"sub": "backend-user"}).as_object().unwrap().clone();
    let hs = mint_with_kid(Algorithm::HS256, b"s3cret", Some("k1"), &claims).unwrap();
    assert_eq!(verifier.verify(&hs).await.unwrap().user_id, "backend-user");
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 0, "the JWKS was not asked");
    let rs = token(include_bytes!("keys/rsa_private.pem"), "k1");
    assert_eq!(verifier.verify(&rs).await.unwrap().user_id, "jwks-user");
}
