//! `switchboard token`, `switchboard check` and `switchboard epoch`.

use anyhow::Context;
use serde_json::{json, Map, Value};
use switchboard_auth::{mint, ClaimNames};
use switchboard_config::demo::SECRET_ENV;
use switchboard_config::{duration, EnvSecrets, ManifestErrors};

use crate::cli::{CheckArgs, EpochArgs, ServeArgs, TokenArgs};
use crate::{demo, wire, Settings};

/// Mints a token and returns it.
pub async fn token(args: TokenArgs) -> anyhow::Result<String> {
    let settings = Settings::from_args(ServeArgs { apps: args.apps.clone(), ..ServeArgs::default() })?;
    let loaded = wire::manifests(&settings)?;
    let manifest = loaded
        .iter()
        .find(|m| m.manifest.slug == args.app)
        .with_context(|| format!("no app `{}` in the loaded manifests (pass --manifest FILE)", args.app))?;
    let mut fallbacks = Default::default();
    if settings.manifests.is_empty() {
        fallbacks = demo_secrets(&settings.store).await?;
    }
    let key = switchboard_config::signing_key(manifest, &EnvSecrets { fallbacks })?.context(
        "this app has no HS secret available (set its secret_env or secret_file); RS/ES tokens come from your identity provider",
    )?;
    let ttl = duration::parse(&args.ttl).map_err(anyhow::Error::msg)?;
    Ok(mint(key.algorithm, &key.secret, &claims(&args, &key.claims, ttl.as_secs()))?)
}

/// The demo app's secret, from the store a demo server created. A token signed with a secret
/// that a new store had just generated would be refused by the running server, so no store is
/// created here.
async fn demo_secrets(url: &str) -> anyhow::Result<std::collections::HashMap<String, String>> {
    if let Some(secret) = std::env::var(SECRET_ENV).ok().filter(|s| !s.is_empty()) {
        return Ok(std::collections::HashMap::from([(SECRET_ENV.to_owned(), secret)]));
    }
    let shown = wire::redact_password(url);
    let hint = "run this in the folder where `switchboard serve` runs, or pass --store with the server's store";
    if let Some(path) = wire::sqlite_file(url).filter(|path| !path.exists()) {
        anyhow::bail!("no store at {} ({shown}): {hint}", path.display());
    }
    let store = wire::store(url).await?;
    let stored = demo::DemoCredentials::stored(store.as_ref()).await;
    store.close().await;
    let credentials = stored?
        .with_context(|| format!("the store {shown} holds no demo app secret (no demo server ran on it): {hint}"))?;
    eprintln!("switchboard: signed with the demo app's secret from {shown}");
    Ok(credentials.env())
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

/// Validates manifests as serve would: prints one line per good manifest and each warning,
/// and fails with every error of every file.
pub fn check(args: CheckArgs) -> anyhow::Result<()> {
    let settings = Settings::for_manifests(args.manifests);
    let loaded = wire::manifests(&settings)?;
    let secrets = EnvSecrets::default();
    let mut errors = Vec::new();
    for manifest in &loaded {
        let resolved = match switchboard_config::resolve(manifest, &secrets) {
            Ok(resolved) => resolved,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
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
    match errors.is_empty() {
        true => Ok(()),
        false => Err(ManifestErrors(errors).into()),
    }
}

/// Starts a new epoch for the channels with history in a restored store; returns what to
/// print.
pub async fn epoch(args: EpochArgs) -> anyhow::Result<String> {
    let shown = wire::redact_password(&args.store);
    if let Some(path) = wire::sqlite_file(&args.store).filter(|path| !path.exists()) {
        anyhow::bail!("no store at {} ({shown}): name the restored store with --store", path.display());
    }
    let store = wire::store(&args.store).await?;
    let started = store.new_epoch(args.app.as_deref()).await;
    store.close().await;
    let (epoch, channels) = started.with_context(|| format!("could not start a new epoch in {shown}"))?;
    let scope = args.app.map_or_else(|| "every app".to_owned(), |app| format!("app `{app}`"));
    Ok(format!(
        "new epoch {epoch} for {channels} channels with history of {scope} in {shown}: clients resuming \
         from positions taken before the backup are told those channels could not be recovered"
    ))
}
