//! Switchboard calls the app backend (seed 004's message handlers), three ways, each a POST
//! of JSON signed with the app's API key and the time (see [`sign`]), sent to the manifest's
//! URL only (redirects are not followed):
//!
//! - **Message handler** (`handler_url` on an endpoint): a client message whose type the hub
//!   does not own goes to the backend as `{app_slug, endpoint, connection, message}`. Its
//!   answer may carry `reply` (sent to that connection, with the message's `ref` if it had
//!   one: the hub sends it either way), `publish` (events to publish) and `error` (sent to the
//!   client). A backend that is down, slow, failing or answering garbage gives the client
//!   `handler_failed`; the connection stays.
//! - **Connect hook** (`connect_url` on an endpoint): asked before `connected`; may refuse the
//!   connection (4403 with its reason) or add channels and data.
//! - **Subscribe proxy** (`subscribe: "proxy"` with `proxy_url` on a namespace): asked whether
//!   a user may subscribe; the answer is cached for 30 s.
//!
//! # Layout
//! - [`Handlers`]: the HTTP client, per-endpoint concurrency limits and the proxy cache; it is
//!   a hub [`switchboard_hub::Service`] (`service.rs`).
//! - [`sign`]: the signature header. `call.rs`: one signed call with a deadline.

mod call;
mod service;
pub mod sign;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// How long a subscribe proxy's answer is reused.
const PROXY_CACHE: Duration = Duration::from_secs(30);
/// How long the connect hook and the subscribe proxy may take.
const HOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// A subscribe proxy question: (app, user, channel).
type ProxyKey = (String, String, String);

/// The backend caller. One per server.
pub struct Handlers {
    client: reqwest::Client,
    /// Handler calls in flight, per app and endpoint.
    slots: Mutex<HashMap<(String, String), Arc<Semaphore>>>,
    /// Subscribe proxy answers: (app, user, channel) -> (allowed, when asked).
    proxy: Mutex<HashMap<ProxyKey, (bool, Instant)>>,
}

impl Default for Handlers {
    /// The HTTP client follows no redirect: a signed call goes to the URL the manifest names
    /// and nowhere else, whatever the answer says (a 3xx fails the call).
    fn default() -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            // As `reqwest::Client::new` does: only a TLS backend that cannot start fails.
            .unwrap_or_else(|e| panic!("cannot build the HTTP client for app backends: {e}"));
        Self { client, slots: Mutex::default(), proxy: Mutex::default() }
    }
}

impl Handlers {
    /// The concurrency limit of one endpoint's handler.
    fn slots(&self, app: &str, endpoint: &str, size: usize) -> Arc<Semaphore> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry((app.to_owned(), endpoint.to_owned())).or_insert_with(|| Arc::new(Semaphore::new(size))).clone()
    }

    fn cached(&self, key: &ProxyKey) -> Option<bool> {
        let cache = self.proxy.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(key).filter(|(_, at)| at.elapsed() < PROXY_CACHE).map(|(allowed, _)| *allowed)
    }

    fn remember(&self, key: ProxyKey, allowed: bool) {
        let mut cache = self.proxy.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, (_, at)| at.elapsed() < PROXY_CACHE);
        cache.insert(key, (allowed, Instant::now()));
    }
}
