//! Token verification for every supported algorithm and failure.

use serde_json::{json, Map, Value};
use switchboard_auth::{mint, Algorithm, AuthError, ClaimNames, JwtSettings, KeyMaterial, Verifier};

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn claims(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn settings(algorithms: Vec<Algorithm>, keys: Vec<KeyMaterial>) -> JwtSettings {
    JwtSettings { algorithms, keys, issuer: None, audience: Vec::new(), leeway_secs: 5, claims: ClaimNames::default() }
}

fn hs(secret: &[u8]) -> Verifier {
    let algs = vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
    Verifier::new(settings(algs, vec![KeyMaterial::Secret(secret.to_vec())])).unwrap()
}

#[tokio::test]
async fn hs_family_verifies_and_reads_claims() {
    let verifier = hs(b"s3cret");
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let c = claims(json!({"sub": "u1", "email": "a@b", "groups": ["g1", 7], "exp": now() + 60}));
        let id = verifier.verify(&mint(alg, b"s3cret", &c).unwrap()).await.unwrap();
        assert_eq!(id.user_id, "u1");
        assert_eq!(id.email.as_deref(), Some("a@b"));
        assert_eq!(id.groups, vec!["g1", "7"]);
    }
}

#[tokio::test]
async fn refuses_expired_immature_forged_and_claimless_tokens() {
    let verifier = hs(b"s3cret");
    let expired = mint(Algorithm::HS256, b"s3cret", &claims(json!({"sub": "u", "exp": now() - 60}))).unwrap();
    assert_eq!(verifier.verify(&expired).await, Err(AuthError::Expired));
    let early = mint(Algorithm::HS256, b"s3cret", &claims(json!({"sub": "u", "nbf": now() + 600}))).unwrap();
    assert_eq!(verifier.verify(&early).await, Err(AuthError::NotYetValid));
    let forged = mint(Algorithm::HS256, b"other", &claims(json!({"sub": "u"}))).unwrap();
    assert_eq!(verifier.verify(&forged).await, Err(AuthError::BadSignature));
    let anonymous = mint(Algorithm::HS256, b"s3cret", &claims(json!({"exp": now() + 60}))).unwrap();
    assert_eq!(verifier.verify(&anonymous).await, Err(AuthError::MissingClaim("sub".into())));
    assert_eq!(verifier.verify("not-a-jwt").await, Err(AuthError::Malformed));
    assert_eq!(verifier.verify("").await, Err(AuthError::Missing));
}

#[tokio::test]
async fn leeway_tolerates_small_clock_skew() {
    let verifier = hs(b"s3cret");
    let just_expired = mint(Algorithm::HS256, b"s3cret", &claims(json!({"sub": "u", "exp": now() - 2}))).unwrap();
    assert!(verifier.verify(&just_expired).await.is_ok());
}

#[tokio::test]
async fn rs256_and_es256_verify_with_public_pem() {
    let rsa = Verifier::new(settings(
        vec![Algorithm::RS256],
        vec![KeyMaterial::RsaPem(include_bytes!("keys/rsa_public.pem").to_vec())],
    ))
    .unwrap();
    let token = mint(Algorithm::RS256, include_bytes!("keys/rsa_private.pem"), &claims(json!({"sub": "r"}))).unwrap();
    assert_eq!(rsa.verify(&token).await.unwrap().user_id, "r");

    let ec = Verifier::new(settings(
        vec![Algorithm::ES256],
        vec![KeyMaterial::EcPem(include_bytes!("keys/ec_public.pem").to_vec())],
    ))
    .unwrap();
    let token = mint(Algorithm::ES256, include_bytes!("keys/ec_private.pem"), &claims(json!({"sub": "e"}))).unwrap();
    assert_eq!(ec.verify(&token).await.unwrap().user_id, "e");
    // An HS token against an RS-only verifier is refused by algorithm, not tried.
    let hs_token = mint(Algorithm::HS256, b"x", &claims(json!({"sub": "u"}))).unwrap();
    assert_eq!(rsa.verify(&hs_token).await, Err(AuthError::WrongAlgorithm));
}

#[tokio::test]
async fn issuer_and_audience_are_enforced_when_set() {
    let mut s = settings(vec![Algorithm::HS256], vec![KeyMaterial::Secret(b"k".to_vec())]);
    s.issuer = Some("https://issuer".into());
    s.audience = vec!["switchboard".into()];
    let verifier = Verifier::new(s).unwrap();
    let good = claims(json!({"sub": "u", "iss": "https://issuer", "aud": "switchboard"}));
    assert!(verifier.verify(&mint(Algorithm::HS256, b"k", &good).unwrap()).await.is_ok());
    let bad_iss = claims(json!({"sub": "u", "iss": "https://evil", "aud": "switchboard"}));
    assert_eq!(verifier.verify(&mint(Algorithm::HS256, b"k", &bad_iss).unwrap()).await, Err(AuthError::WrongIssuer));
    let bad_aud = claims(json!({"sub": "u", "iss": "https://issuer", "aud": "other"}));
    assert_eq!(verifier.verify(&mint(Algorithm::HS256, b"k", &bad_aud).unwrap()).await, Err(AuthError::WrongAudience));
}

#[tokio::test]
async fn a_mixed_app_verifies_each_token_with_the_key_of_its_own_family() {
    // One app, three families: a token is checked with its family's key only, and the other
    // families in `algorithms` do not make it fail.
    let keys = vec![
        KeyMaterial::RsaPem(include_bytes!("keys/rsa_public.pem").to_vec()),
        KeyMaterial::Secret(b"s3cret".to_vec()),
        KeyMaterial::EcPem(include_bytes!("keys/ec_public.pem").to_vec()),
    ];
    let mixed = Verifier::new(settings(vec![Algorithm::RS256, Algorithm::HS256, Algorithm::ES256], keys)).unwrap();
    let hs = mint(Algorithm::HS256, b"s3cret", &claims(json!({"sub": "h"}))).unwrap();
    assert_eq!(mixed.verify(&hs).await.unwrap().user_id, "h");
    let rs = mint(Algorithm::RS256, include_bytes!("keys/rsa_private.pem"), &claims(json!({"sub": "r"}))).unwrap();
    assert_eq!(mixed.verify(&rs).await.unwrap().user_id, "r");
    let es = mint(Algorithm::ES256, include_bytes!("keys/ec_private.pem"), &claims(json!({"sub": "e"}))).unwrap();
    assert_eq!(mixed.verify(&es).await.unwrap().user_id, "e");

    // Forged with another key of the right family: a bad signature, not a wrong algorithm.
    let forged_hs = mint(Algorithm::HS256, b"other", &claims(json!({"sub": "h"}))).unwrap();
    assert_eq!(mixed.verify(&forged_hs).await, Err(AuthError::BadSignature));
    let forged_rs =
        mint(Algorithm::RS256, include_bytes!("keys/rsa2_private.pem"), &claims(json!({"sub": "r"}))).unwrap();
    assert_eq!(mixed.verify(&forged_rs).await, Err(AuthError::BadSignature));
    // An accepted family's algorithm that is not itself listed stays refused.
    let hs512 = mint(Algorithm::HS512, b"s3cret", &claims(json!({"sub": "h"}))).unwrap();
    assert_eq!(mixed.verify(&hs512).await, Err(AuthError::WrongAlgorithm));
}

#[tokio::test]
async fn a_listed_algorithm_without_a_key_of_its_family_is_refused_by_algorithm() {
    let hs_only = Verifier::new(settings(
        vec![Algorithm::RS256, Algorithm::HS256],
        vec![KeyMaterial::Secret(b"s3cret".to_vec())],
    ))
    .unwrap();
    let hs = mint(Algorithm::HS256, b"s3cret", &claims(json!({"sub": "h"}))).unwrap();
    assert_eq!(hs_only.verify(&hs).await.unwrap().user_id, "h");
    let rs = mint(Algorithm::RS256, include_bytes!("keys/rsa_private.pem"), &claims(json!({"sub": "r"}))).unwrap();
    assert_eq!(hs_only.verify(&rs).await, Err(AuthError::WrongAlgorithm));
}
