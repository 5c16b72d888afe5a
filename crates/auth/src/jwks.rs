//! A JWKS document fetched over HTTP(S), cached, and refetched when keys rotate.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::DecodingKey;
use tokio::sync::Mutex;

use crate::AuthError;

/// Keys older than this are refetched on next use.
const MAX_AGE: Duration = Duration::from_secs(300);
/// An unknown `kid` triggers a refetch at most this often, so bad tokens cannot hammer the issuer.
const MIN_REFETCH: Duration = Duration::from_secs(10);

/// Caches a JWKS URL's keys by `kid`.
pub struct JwksCache {
    url: String,
    max_age: Duration,
    min_refetch: Duration,
    client: reqwest::Client,
    // A tokio Mutex: it is held across the fetch so that concurrent misses fetch once.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
}

impl JwksCache {
    /// A cache for `url`; nothing is fetched until a token needs a key.
    pub fn new(url: String) -> Self {
        Self::with_intervals(url, MAX_AGE, MIN_REFETCH)
    }

    /// A cache with its own refresh intervals (tests use zero to see rotation at once).
    pub fn with_intervals(url: String, max_age: Duration, min_refetch: Duration) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default();
        Self { url, max_age, min_refetch, client, state: Mutex::new(State::default()) }
    }

    /// The key for `kid`, fetching the document when it is stale or lacks that key.
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        let mut state = self.state.lock().await;
        let stale = state.fetched_at.is_none_or(|at| at.elapsed() > self.max_age);
        // Every attempt, failed ones too, counts against the refetch interval, so neither
        // unknown kids nor an issuer that is down make each token wait on a fetch.
        let may_fetch = state.attempted_at.is_none_or(|at| at.elapsed() >= self.min_refetch);
        if may_fetch && (stale || !state.keys.contains_key(kid)) {
            state.attempted_at = Some(Instant::now());
            match self.fetch().await {
                Ok(keys) => {
                    state.keys = keys;
                    state.fetched_at = Some(Instant::now());
                }
                // Keep serving cached keys while the issuer is briefly down.
                Err(e) if state.keys.is_empty() => return Err(e),
                Err(e) => tracing::warn!(url = %self.url, error = %e, "JWKS refetch failed"),
            }
        }
        state.keys.get(kid).cloned().ok_or(AuthError::BadSignature)
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, AuthError> {
        let fail = |e: reqwest::Error| AuthError::Jwks(e.without_url().to_string());
        let response = self.client.get(&self.url).send().await.map_err(fail)?;
        let body = response.error_for_status().map_err(fail)?.bytes().await.map_err(fail)?;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| AuthError::Jwks(format!("bad JWKS JSON: {e}")))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            if let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) {
                keys.insert(kid, key);
            }
        }
        Ok(keys)
    }
}
