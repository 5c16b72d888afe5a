//! `switchboard token` and `switchboard check`.

use anyhow::Context;
use serde_json::{json, Map, Value};
use switchboard_auth::{mint, ClaimNames};
use switchboard_config::{duration, EnvSecrets};

use crate::cli::{CheckArgs, TokenArgs};
use crate::{demo, wire, Settings};

/// Mints a token and returns it.
pub async fn token(args: TokenArgs) -> anyhow::Result<String> {
    let settings = Settings::from_args(args.serve.clone())?;
    let loaded = wire::manifests(&settings)?;
    let manifest = loaded
        .iter()
        .find(|m| m.manifest.slug == args.app)
        .with_context(|| format!("no app `{}` in the loaded manifests (pass --manifest FILE)", args.app))?;
    let mut fallbacks = Default::default();
    if settings.manifests.is_empty() {
        let store = wire::store(&settings.store).await?;
        fallbacks = demo::DemoCredentials::load(store.as_ref()).await?.env();
        store.close().await;
    }
    let key = switchboard_config::signing_key(manifest, &EnvSecrets { fallbacks })?.context(
        "this app has no HS secret available (set its secret_env or secret_file); RS/ES tokens come from your identity provider",
    )?;
    let ttl = duration::parse(&args.ttl).map_err(anyhow::Error::msg)?;
    Ok(mint(key.algorithm, &key.secret, &claims(&args, &key.claims, ttl.as_secs()))?)
}

fn claims(args: &TokenArgs, names: &ClaimNames, ttl_secs: u64) -> Map<String, Value> {
    let now = switchboard_hub::unix_ms() / 1000;
    let mut claims = Map::new();
    claims.insert(names.user_id.clone(), json!(args.user));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + ttl_secs));
    if !args.groups.is_empty() {
        claims.insert(names.groups.clone(), json!(args.groups));
    }
    if !args.channels.is_empty() {
        claims.insert(names.channels.clone(), json!(args.channels));
    }
    if let Some(email) = &args.email {
        claims.insert(names.email.clone(), json!(email));
    }
    claims
}

/// Mints the demo banner's token for alice.
pub fn demo_token(credentials: &demo::DemoCredentials) -> anyhow::Result<String> {
    credentials.token("alice")
}

/// Validates manifests as serve would; prints one line per manifest and each warning.
pub fn check(args: CheckArgs) -> anyhow::Result<()> {
    let settings = Settings::for_manifests(args.manifests);
    let loaded = wire::manifests(&settings)?;
    let secrets = EnvSecrets::default();
    for manifest in &loaded {
        let resolved = switchboard_config::resolve(manifest, &secrets)?;
        let endpoints: Vec<String> = resolved
            .spec
            .endpoints
            .iter()
            .map(|e| format!("{} {} ({})", e.name, e.path, e.protocol.as_str()))
            .collect();
        println!("ok: {} (app `{}`): {}", manifest.file, resolved.spec.slug, endpoints.join(", "));
        for warning in resolved.warnings {
            println!("  warning: {warning}");
        }
    }
    Ok(())
}
