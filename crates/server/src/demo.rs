//! The zero-config demo: credentials kept in the store, a banner, and a page at `/` with two
//! users side by side (inbox, alerts, chat, presence), whose buttons call the server side.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use rand::RngCore;
use serde_json::{json, Value};
use switchboard_api::ApiError;
use switchboard_chat::CreateConversation;
use switchboard_config::demo::{API_KEY_ENV, SECRET_ENV};
use switchboard_hub::HubError;
use switchboard_inbox::{CreateAlert, CreateNotification};
use switchboard_protocol::ErrorCode;
use switchboard_store::Store;

use crate::security;

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

    /// The credentials a demo server keeps in `store`, without creating any: `None` when no
    /// demo server has run on it.
    pub async fn stored(store: &dyn Store) -> anyhow::Result<Option<Self>> {
        let secret = store.setting("demo.jwt_secret").await?;
        let api_key = store.setting("demo.api_key").await?;
        Ok(secret.zip(api_key).map(|(secret, api_key)| Self { secret, api_key }))
    }

    /// The env var values the demo manifest names.
    pub fn env(&self) -> HashMap<String, String> {
        HashMap::from([(SECRET_ENV.to_owned(), self.secret.clone()), (API_KEY_ENV.to_owned(), self.api_key.clone())])
    }

    /// The demo's JWT secret.
    pub fn secret(&self) -> &[u8] {
        self.secret.as_bytes()
    }

    /// A 24-hour token for one of the demo's users, in group `family-7`.
    pub fn token(&self, user: &str) -> anyhow::Result<String> {
        let now = switchboard_hub::unix_ms() / 1000;
        let email = format!("{user}@example.com");
        let claims = json!({ "sub": user, "email": email, "groups": [FAMILY], "iat": now, "exp": now + 86_400 });
        let serde_json::Value::Object(claims) = claims else { anyhow::bail!("claims are an object") };
        Ok(switchboard_auth::mint(switchboard_auth::Algorithm::HS256, self.secret(), &claims)?)
    }

    /// Prints where to start, with a working token, key and copy-paste snippets.
    pub fn print_banner(&self, base: &str, token: &str) {
        let ws = base.replacen("http", "ws", 1);
        let key = &self.api_key;
        let body = json!({"channels": ["user:alice"], "type": "hello", "data": {"text": "hi from curl"}});
        println!(
            "\nSwitchboard is serving the demo app on {base}\n\
             \n  Demo page:  {base}/  (alice and bob side by side: inbox, alerts, chat, presence)\
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

/// The demo's users and their shared group.
pub const USERS: [&str; 2] = ["alice", "bob"];
const FAMILY: &str = "family-7";

/// What the demo page's buttons reach: the server-side calls an app backend would make, so
/// that the page itself holds no API key.
#[derive(Clone)]
pub struct DemoState {
    pub credentials: DemoCredentials,
    pub api: switchboard_api::ApiState,
}

/// The page at `/` (two users side by side; `?user=alice` shows one), its icon, and its helpers
/// under `/demo/`: tokens and the users' conversation, the users' presence and read marks, and
/// the buttons.
pub fn router(state: DemoState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/demo/page.js", get(|| async { security::asset(security::JAVASCRIPT, include_str!("assets/demo.js")) }))
        .route("/demo/page.css", get(|| async { security::asset(security::CSS, include_str!("assets/demo.css")) }))
        .route("/favicon.ico", get(crate::admin::favicon))
        .route("/demo/session", get(session))
        .route("/demo/presence", get(presence))
        .route("/demo/receipts", get(receipts))
        .route("/demo/notify/{user}", post(notify))
        .route("/demo/alert", post(alert))
        .with_state(state)
}

/// The page, under a policy that lets it open WebSockets to the host it came from only.
async fn page(headers: HeaderMap) -> Response {
    security::page(include_str!("assets/demo.html"), security::policy(security::Connects::AndWebSocket, &headers))
}

fn demo_app(state: &DemoState) -> Result<std::sync::Arc<switchboard_hub::App>, ApiError> {
    state.api.hub.app("demo").ok_or_else(|| ApiError::new(ErrorCode::NotFound, "the demo app is not loaded"))
}

fn known(user: &str) -> Result<(), ApiError> {
    match USERS.contains(&user) {
        true => Ok(()),
        false => Err(ApiError::new(ErrorCode::NotFound, format!("the demo has users {USERS:?}, not `{user}`"))),
    }
}

/// Tokens for both users and their direct conversation (created on first use).
async fn session(State(state): State<DemoState>) -> Result<Json<Value>, ApiError> {
    let app = demo_app(&state)?;
    let mut tokens = serde_json::Map::new();
    for user in USERS {
        let token = state.credentials.token(user).map_err(|e| HubError::Internal(e.to_string()))?;
        tokens.insert(user.to_owned(), Value::String(token));
    }
    let conversation = conversation(&state, &app).await?;
    Ok(Json(json!({ "tokens": tokens, "conversationId": conversation, "group": FAMILY })))
}

/// The id of the users' direct conversation, created on first use.
async fn conversation(state: &DemoState, app: &switchboard_hub::App) -> Result<Value, ApiError> {
    let request = CreateConversation {
        kind: "direct".into(),
        participants: vec![USERS[1].to_owned()],
        name: None,
        created_by: None,
    };
    let conversation = state.api.chat.create_conversation(&state.api.hub, app, USERS[0], request).await?;
    Ok(conversation["conversationId"].clone())
}

/// Each user's unread count in the conversation: how many of the other's newest messages they
/// have not read. After a reload the page shows the peer's read mark ("Seen") from it; the
/// client API tells a user only their own counts, so an app backend answers this.
async fn receipts(State(state): State<DemoState>) -> Result<Json<Value>, ApiError> {
    let app = demo_app(&state)?;
    let conversation = conversation(&state, &app).await?;
    let id = conversation.as_str().unwrap_or_default();
    let mut unread = serde_json::Map::new();
    for user in USERS {
        let counts = state.api.chat.unread(&state.api.hub, &app, user).await?;
        unread.insert(user.to_owned(), counts["conversations"].get(id).cloned().unwrap_or(json!(0)));
    }
    Ok(Json(json!({ "conversationId": conversation, "unread": unread })))
}

async fn presence(State(state): State<DemoState>) -> Result<Json<Value>, ApiError> {
    let app = demo_app(&state)?;
    let users: Vec<String> = USERS.iter().map(|u| u.to_string()).collect();
    Ok(Json(state.api.chat.presence_of(&state.api.hub, &app, &users).await?))
}

async fn notify(State(state): State<DemoState>, Path(user): Path<String>) -> Result<Json<Value>, ApiError> {
    known(&user)?;
    let app = demo_app(&state)?;
    let request = CreateNotification {
        user: user.clone(),
        title: format!("Hello {user}"),
        message: "A notification from the demo page's button".into(),
        kind: None,
        data: None,
    };
    Ok(Json(state.api.inbox.create_notification(&state.api.hub, &app, request).await?))
}

async fn alert(State(state): State<DemoState>) -> Result<Json<Value>, ApiError> {
    let app = demo_app(&state)?;
    let request = CreateAlert {
        group: FAMILY.into(),
        title: "Pond 3: oxygen low".into(),
        message: "Below 4 mg/L for 10 minutes".into(),
        severity: "warning".into(),
        kind: None,
        data: None,
    };
    Ok(Json(state.api.inbox.create_alert(&state.api.hub, &app, request).await?))
}
