//! The zero-config demo: credentials kept in the store, a banner, and a page at `/`.

use std::collections::HashMap;

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use base64::Engine;
use rand::RngCore;
use serde_json::json;
use switchboard_config::demo::{API_KEY_ENV, SECRET_ENV};
use switchboard_store::Store;

/// The demo app's JWT secret and API key, generated once and kept in the store so that
/// tokens and keys stay valid across restarts.
#[derive(Clone)]
pub struct DemoCredentials {
    secret: String,
    api_key: String,
}

fn random_text() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl DemoCredentials {
    /// Loads the stored credentials, generating them on first start. The environment
    /// variables DEMO_JWT_SECRET and DEMO_API_KEY win when set.
    pub async fn load(store: &dyn Store) -> anyhow::Result<Self> {
        let secret = match std::env::var(SECRET_ENV) {
            Ok(s) if !s.is_empty() => s,
            _ => store.setting_or_insert("demo.jwt_secret", &random_text()).await?,
        };
        let api_key = match std::env::var(API_KEY_ENV) {
            Ok(k) if !k.is_empty() => k,
            _ => store.setting_or_insert("demo.api_key", &format!("sk_demo_{}", random_text())).await?,
        };
        Ok(Self { secret, api_key })
    }

    /// The env var values the demo manifest names.
    pub fn env(&self) -> HashMap<String, String> {
        HashMap::from([(SECRET_ENV.to_owned(), self.secret.clone()), (API_KEY_ENV.to_owned(), self.api_key.clone())])
    }

    /// The demo's JWT secret.
    pub fn secret(&self) -> &[u8] {
        self.secret.as_bytes()
    }

    /// Prints where to start, with a working token, key and copy-paste snippets.
    pub fn print_banner(&self, base: &str, token: &str) {
        let ws = base.replacen("http", "ws", 1);
        let key = &self.api_key;
        let body = json!({"channels": ["user:alice"], "type": "hello", "data": {"text": "hi from curl"}});
        println!(
            "\nSwitchboard is serving the demo app on {base}\n\
             \n  Demo page:  {base}/#token={token}\
             \n  Dev token:  {token}\
             \n              (user \"alice\" in group \"family-7\", valid 24 h; more: switchboard token --app demo --user bob)\
             \n  API key:    {key}\n\
             \nConnect from a browser console:\n\
             \n  const ws = new WebSocket(\"{ws}/ws?token={token}\");\
             \n  ws.onmessage = (e) => {{ const m = JSON.parse(e.data); console.log(m.type, m.data); }};\n\
             \nPublish to alice from a shell:\n\
             \n  curl -s {base}/api/v1/apps/demo/publish -H 'Authorization: Bearer {key}' \\\
             \n       -H 'Content-Type: application/json' -d '{body}'\n"
        );
    }
}

/// The page at `/`: connect with a token and watch events arrive.
pub fn router() -> Router {
    Router::new().route("/", get(|| async { Html(include_str!("assets/demo.html")) }))
}
