//! From a manifest to the hub's [`AppSpec`]: defaults applied, secrets loaded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use switchboard_auth::{Algorithm, AlgorithmFamily, ApiKeys, ClaimNames, JwtSettings, KeyMaterial, Verifier};
use switchboard_hub::{AppSpec, EndpointSpec, Features, HandlerSpec, Limits, NamespaceSpec, Policy, Protocol};

use crate::manifest::{Jwt, OneOrMany};
use crate::{history, inbox};
use crate::{LoadedManifest, ManifestError};

/// Where secrets come from: the environment and key files.
pub trait Secrets {
    /// The value of an environment variable.
    fn env(&self, name: &str) -> Option<String>;
    /// The bytes of a key file.
    fn file(&self, path: &Path) -> std::io::Result<Vec<u8>>;
}

/// The process environment and the file system, with optional overrides (the demo's
/// generated credentials).
#[derive(Default)]
pub struct EnvSecrets {
    /// Values used when the variable is not set in the environment.
    pub fallbacks: HashMap<String, String>,
}

impl Secrets for EnvSecrets {
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty()).or_else(|| self.fallbacks.get(name).cloned())
    }

    fn file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }
}

/// A resolved app and what the operator should know about it.
pub struct Resolved {
    /// The spec the hub runs.
    pub spec: AppSpec,
    /// Things that work but deserve a look (no API key, ignored settings).
    pub warnings: Vec<String>,
}

/// `my-app` -> `MY_APP`, for default env var names.
pub(crate) fn env_prefix(slug: &str) -> String {
    slug.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

/// Applies defaults and loads secrets.
pub fn resolve(loaded: &LoadedManifest, secrets: &dyn Secrets) -> Result<Resolved, ManifestError> {
    let m = &loaded.manifest;
    let mut warnings = Vec::new();
    let endpoints = endpoints(loaded);
    let needs_auth =
        endpoints.iter().any(|e| e.auth_required && matches!(e.protocol, Protocol::Native | Protocol::SocketIo));
    let verifier = verifier(loaded, secrets, needs_auth, &mut warnings)?;
    let api_keys = api_keys(loaded, secrets, &mut warnings)?;
    let calls_backend = endpoints.iter().any(|e| e.handler.is_some() || e.connect_url.is_some())
        || m.channels.values().any(|ns| ns.proxy_url.is_some());
    if calls_backend && !api_keys.is_configured() {
        warnings.push("calls to the app backend go unsigned: set an API key so the backend can verify them".into());
    }
    let mut namespaces: HashMap<String, NamespaceSpec> = m
        .channels
        .iter()
        .map(|(name, ns)| {
            let spec = NamespaceSpec {
                subscribe: policy(&ns.subscribe),
                history: history::namespace(ns.history.as_ref()),
                proxy_url: ns.proxy_url.clone(),
            };
            (name.clone(), spec)
        })
        .collect();
    namespaces.entry("room".into()).or_insert(NamespaceSpec {
        subscribe: Policy::Server,
        history: None,
        proxy_url: None,
    });
    let spec = AppSpec {
        slug: m.slug.clone(),
        verifier,
        api_keys,
        cookie: m.auth_policy.as_ref().and_then(|a| a.cookie.clone()),
        endpoints,
        namespaces,
        history: history::builtin(loaded),
        limits: limits(loaded),
        features: features(loaded),
        inbox: inbox::resolve(loaded),
        chat: inbox::chat(loaded),
    };
    Ok(Resolved { spec, warnings })
}

fn policy(name: &str) -> Policy {
    match name {
        "public" => Policy::Public,
        "authenticated" => Policy::Authenticated,
        "claim" => Policy::Claim,
        "proxy" => Policy::Proxy,
        _ => Policy::Server,
    }
}

fn endpoints(loaded: &LoadedManifest) -> Vec<Arc<EndpointSpec>> {
    let m = &loaded.manifest;
    let app_required = m.auth_policy.as_ref().and_then(|a| a.required).or(m.auth_required).unwrap_or(true);
    m.websockets
        .iter()
        .map(|(name, e)| {
            let auth = e.auth.as_ref();
            let required =
                auth.and_then(|a| a.required.or(a.allow_anonymous.map(|anon| !anon))).unwrap_or(app_required);
            let protocol = match e.protocol.as_deref() {
                Some("socket.io") => Protocol::SocketIo,
                Some("echo") => Protocol::Echo,
                Some("socket.io-conformance") => Protocol::SocketIoConformance,
                Some("engine.io-echo") => Protocol::EngineIoEcho,
                _ => Protocol::Native,
            };
            let default_ping = if protocol == Protocol::SocketIo { 25 } else { 30 };
            Arc::new(EndpointSpec {
                name: name.clone(),
                path: e.path.clone(),
                protocol,
                auth_required: required,
                ping_interval: e.ping_interval.map_or(Duration::from_secs(default_ping), |d| d.0),
                description: e.description.clone(),
                allowed_origins: e.allowed_origins.clone(),
                handler: e.handler_url.clone().map(|url| HandlerSpec {
                    url,
                    timeout: e.handler_timeout.map_or(Duration::from_secs(5), |t| t.0),
                    concurrency: e.handler_concurrency.unwrap_or(64).max(1),
                }),
                connect_url: e.connect_url.clone(),
                compression: crate::compression::resolve(e.compression.as_ref()),
            })
        })
        .collect()
}

fn features(loaded: &LoadedManifest) -> Features {
    let f = &loaded.manifest.features;
    let on = Features::default();
    Features {
        notifications: f.notifications.unwrap_or(on.notifications),
        alerts: f.alerts.unwrap_or(on.alerts),
        chat: f.chat.unwrap_or(on.chat),
        presence: f.presence.unwrap_or(on.presence),
    }
}

fn limits(loaded: &LoadedManifest) -> Limits {
    let l = &loaded.manifest.limits;
    let d = Limits::default();
    Limits {
        messages_per_second: l.messages_per_second.unwrap_or(d.messages_per_second),
        burst: l.burst.unwrap_or(d.burst),
        max_message_bytes: l.max_message_bytes.unwrap_or(d.max_message_bytes),
        max_connections_per_user: l.max_connections_per_user.unwrap_or(d.max_connections_per_user),
        outbox_max_bytes: l.outbox_max_bytes.unwrap_or(d.outbox_max_bytes),
        auth_timeout: l.auth_timeout.map_or(d.auth_timeout, |t| t.0),
        max_channels: l.max_channels.unwrap_or(d.max_channels),
    }
}

fn relative(loaded: &LoadedManifest, file: &str) -> PathBuf {
    let dir = Path::new(&loaded.file).parent().unwrap_or(Path::new("."));
    dir.join(file)
}

fn verifier(
    loaded: &LoadedManifest,
    secrets: &dyn Secrets,
    needs_auth: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<Arc<Verifier>>, ManifestError> {
    let policy = loaded.manifest.auth_policy.as_ref();
    let default_jwt = Jwt::default();
    let jwt = policy.and_then(|p| p.jwt.as_ref()).unwrap_or(&default_jwt);
    let keys = match key_material(loaded, secrets, jwt)? {
        Some(keys) => keys,
        None if needs_auth => {
            let var =
                jwt.secret_env.clone().unwrap_or_else(|| format!("{}_JWT_SECRET", env_prefix(&loaded.manifest.slug)));
            let message = format!("auth is required but no JWT key is available: set the environment variable {var}, or name a secret_file, public_key_file or jwks_url");
            return Err(loaded.error(&["auth_policy", "jwt", "secret_env"], message));
        }
        None => {
            warnings.push("no JWT key configured: only anonymous connections are possible".into());
            return Ok(None);
        }
    };
    let algorithms = algorithms(loaded, jwt, &keys)?;
    if jwt.algorithms.is_some() {
        unmatched_keys(&keys, &algorithms, warnings);
    }
    let claims = claim_names(loaded);
    let settings = JwtSettings {
        algorithms,
        keys,
        issuer: jwt.issuer.clone(),
        audience: match &jwt.audience {
            Some(OneOrMany::One(a)) => vec![a.clone()],
            Some(OneOrMany::Many(a)) => a.clone(),
            None => Vec::new(),
        },
        leeway_secs: jwt.leeway.map_or(10, |l| l.0.as_secs()),
        claims,
    };
    let verifier =
        Verifier::new(settings).map_err(|e| loaded.error(&["auth_policy", "jwt", "public_key_file"], e.to_string()))?;
    Ok(Some(Arc::new(verifier)))
}

/// The HS secret tokens of this app are signed with, for minting test tokens.
pub fn signing_key(loaded: &LoadedManifest, secrets: &dyn Secrets) -> Result<Option<SigningKey>, ManifestError> {
    let default_jwt = Jwt::default();
    let jwt = loaded.manifest.auth_policy.as_ref().and_then(|p| p.jwt.as_ref()).unwrap_or(&default_jwt);
    let keys = key_material(loaded, secrets, jwt)?.unwrap_or_default();
    let algorithms = algorithms(loaded, jwt, &keys)?;
    let Some(algorithm) =
        algorithms.into_iter().find(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
    else {
        return Ok(None);
    };
    let secret = keys.into_iter().find_map(|k| match k {
        KeyMaterial::Secret(s) => Some(s),
        _ => None,
    });
    Ok(secret.map(|secret| SigningKey { secret, algorithm, claims: claim_names(loaded) }))
}

/// What `switchboard token` signs with: the app's HS secret, algorithm and claim names.
pub struct SigningKey {
    /// The shared secret.
    pub secret: Vec<u8>,
    /// The first HS algorithm the app accepts.
    pub algorithm: Algorithm,
    /// Where the app reads user id, email, groups and channels.
    pub claims: ClaimNames,
}

fn claim_names(loaded: &LoadedManifest) -> ClaimNames {
    let claims = loaded.manifest.auth_policy.as_ref().and_then(|p| p.claims.as_ref());
    let defaults = ClaimNames::default();
    let pick = |v: Option<&String>, d: String| v.cloned().unwrap_or(d);
    ClaimNames {
        user_id: pick(claims.and_then(|c| c.user_id.as_ref()), defaults.user_id),
        email: pick(claims.and_then(|c| c.email.as_ref()), defaults.email),
        groups: pick(claims.and_then(|c| c.groups.as_ref()), defaults.groups),
        channels: pick(claims.and_then(|c| c.channels.as_ref()), defaults.channels),
        device: pick(claims.and_then(|c| c.device.as_ref()), defaults.device),
    }
}

fn key_material(
    loaded: &LoadedManifest,
    secrets: &dyn Secrets,
    jwt: &Jwt,
) -> Result<Option<Vec<KeyMaterial>>, ManifestError> {
    let at = |field: &str| ["auth_policy", "jwt", field].map(str::to_owned);
    let read = |field: &str, file: &str| {
        secrets.file(&relative(loaded, file)).map_err(|e| {
            let path = at(field);
            loaded.error(&path.iter().map(String::as_str).collect::<Vec<_>>(), format!("cannot read `{file}`: {e}"))
        })
    };
    let mut keys = Vec::new();
    // The default `{SLUG}_JWT_SECRET` applies only to an app that names no other key.
    let names_other_key = jwt.secret_file.is_some() || jwt.public_key_file.is_some() || jwt.jwks_url.is_some();
    let default_env = (!names_other_key).then(|| format!("{}_JWT_SECRET", env_prefix(&loaded.manifest.slug)));
    if let Some(secret) = jwt.secret_env.clone().or(default_env).and_then(|var| secrets.env(&var)) {
        keys.push(KeyMaterial::Secret(secret.into_bytes()));
    }
    if let Some(file) = &jwt.secret_file {
        let mut secret = read("secret_file", file)?;
        while secret.last().is_some_and(u8::is_ascii_whitespace) {
            secret.pop(); // editors add a trailing newline
        }
        keys.push(KeyMaterial::Secret(secret));
    }
    if let Some(file) = &jwt.public_key_file {
        keys.push(KeyMaterial::public_pem(read("public_key_file", file)?));
    }
    if let Some(url) = &jwt.jwks_url {
        keys.push(KeyMaterial::Jwks(url.clone()));
    }
    Ok((!keys.is_empty()).then_some(keys))
}

fn algorithms(loaded: &LoadedManifest, jwt: &Jwt, keys: &[KeyMaterial]) -> Result<Vec<Algorithm>, ManifestError> {
    let Some(names) = &jwt.algorithms else {
        // One algorithm per kind of key found, so that every configured key checks tokens.
        // (A JWKS counts as RSA here, its first family: list ES256 for its EC keys.)
        let mut algorithms = Vec::new();
        for family in keys.iter().map(|k| families(k)[0]) {
            let algorithm = match family {
                AlgorithmFamily::Hmac => Algorithm::HS256,
                AlgorithmFamily::Ec => Algorithm::ES256,
                _ => Algorithm::RS256,
            };
            if !algorithms.contains(&algorithm) {
                algorithms.push(algorithm);
            }
        }
        return Ok(if algorithms.is_empty() { vec![Algorithm::HS256] } else { algorithms });
    };
    names
        .iter()
        .map(|name| match name.as_str() {
            "HS256" => Ok(Algorithm::HS256),
            "HS384" => Ok(Algorithm::HS384),
            "HS512" => Ok(Algorithm::HS512),
            "RS256" => Ok(Algorithm::RS256),
            "ES256" => Ok(Algorithm::ES256),
            other => Err(loaded.error(
                &["auth_policy", "jwt", "algorithms"],
                format!("unsupported algorithm `{other}`; use HS256, HS384, HS512, RS256 or ES256"),
            )),
        })
        .collect()
}

/// The families of token a key checks; a JWKS may hold RSA and EC keys alike.
fn families(key: &KeyMaterial) -> &'static [AlgorithmFamily] {
    match key {
        KeyMaterial::Secret(_) => &[AlgorithmFamily::Hmac],
        KeyMaterial::RsaPem(_) => &[AlgorithmFamily::Rsa],
        KeyMaterial::EcPem(_) => &[AlgorithmFamily::Ec],
        KeyMaterial::Jwks(_) | KeyMaterial::JwksCache(_) => &[AlgorithmFamily::Rsa, AlgorithmFamily::Ec],
    }
}

/// A family's keys as the manifest names them: what they are, and where they come from.
fn family_keys(family: AlgorithmFamily) -> (&'static str, &'static str) {
    match family {
        AlgorithmFamily::Hmac => ("HS secret", "secret_env or secret_file"),
        AlgorithmFamily::Ec => ("EC public key", "public_key_file or jwks_url"),
        _ => ("RSA public key", "public_key_file or jwks_url"),
    }
}

/// Warns of listed algorithms that no key can check (their tokens are all refused) and of
/// keys that no listed algorithm uses: both pass the manifest's checks and surprise later.
fn unmatched_keys(keys: &[KeyMaterial], algorithms: &[Algorithm], warnings: &mut Vec<String>) {
    let available: Vec<AlgorithmFamily> = keys.iter().flat_map(|k| families(k).iter().copied()).collect();
    let mut found = Vec::new();
    for algorithm in algorithms.iter().filter(|a| !available.contains(&a.family())) {
        let (kind, from) = family_keys(algorithm.family());
        found.push(format!(
            "auth_policy.jwt.algorithms lists {algorithm:?}, but no {kind} ({from}) is configured: {algorithm:?} tokens will be refused"
        ));
    }
    for key in keys {
        // A JWKS is not named here: it serves whichever of its families is listed.
        if let [family] = families(key) {
            if !algorithms.iter().any(|a| a.family() == *family) {
                let (kind, _) = family_keys(*family);
                found.push(format!(
                    "an {kind} is configured, but auth_policy.jwt.algorithms lists no algorithm for it: it checks no token"
                ));
            }
        }
    }
    found.dedup(); // two secrets (secret_env and secret_file) are one warning
    warnings.extend(found);
}

fn api_keys(
    loaded: &LoadedManifest,
    secrets: &dyn Secrets,
    warnings: &mut Vec<String>,
) -> Result<ApiKeys, ManifestError> {
    let m = &loaded.manifest;
    if let Some(file) = &m.api_key_file {
        let bytes = secrets
            .file(&relative(loaded, file))
            .map_err(|e| loaded.error(&["api_key_file"], format!("cannot read `{file}`: {e}")))?;
        let text = String::from_utf8_lossy(&bytes);
        let keys = ApiKeys::new(text.lines().map(|l| l.trim().to_owned()));
        return Ok(keys.from_source(format!("the file {file} (api_key_file)")));
    }
    let var = m.api_key_env.clone().unwrap_or_else(|| format!("{}_API_KEY", env_prefix(&m.slug)));
    let source = format!("the environment variable {var}");
    match secrets.env(&var) {
        // A comma-separated list lets an operator rotate keys without downtime.
        Some(value) => Ok(ApiKeys::new(value.split(',').map(|k| k.trim().to_owned())).from_source(source)),
        None => {
            warnings.push(format!("no API key: set {var} to enable the server API for this app"));
            Ok(ApiKeys::default().from_source(source))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Key files read from a fixed list, so the test touches no environment.
    struct Files;

    impl Secrets for Files {
        fn env(&self, _: &str) -> Option<String> {
            None
        }
        fn file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
            match path.file_name().and_then(|n| n.to_str()) {
                Some("jwt.key") => Ok(b"s3cret".to_vec()),
                Some("rsa.pem") => Ok(include_bytes!("../../auth/tests/keys/rsa_public.pem").to_vec()),
                _ => Err(std::io::Error::other("no such file")),
            }
        }
    }

    fn manifest(jwt: &str) -> LoadedManifest {
        let text =
            format!(r#"{{"slug": "k", "auth_policy": {{"jwt": {jwt}}}, "websockets": {{"rt": {{"path": "/ws"}}}}}}"#);
        crate::parse("k.json", &text).unwrap()
    }

    /// The warnings about JWT keys and algorithms.
    fn key_warnings(jwt: &str) -> Vec<String> {
        let warnings = resolve(&manifest(jwt), &Files).unwrap().warnings;
        warnings.into_iter().filter(|w| w.contains("algorithm")).collect()
    }

    #[test]
    fn a_secret_and_a_public_key_are_both_used_by_default_and_when_listed() {
        for jwt in [
            r#"{"secret_file": "jwt.key", "public_key_file": "rsa.pem"}"#,
            r#"{"secret_file": "jwt.key", "public_key_file": "rsa.pem", "algorithms": ["RS256", "HS256"]}"#,
        ] {
            assert_eq!(key_warnings(jwt), Vec::<String>::new(), "{jwt}");
            let key = signing_key(&manifest(jwt), &Files).unwrap();
            assert!(key.is_some(), "{jwt}: `switchboard token` can sign with the secret");
        }
    }

    #[test]
    fn an_algorithm_without_a_key_and_a_key_without_an_algorithm_are_warned_of() {
        let warnings = key_warnings(r#"{"secret_file": "jwt.key", "algorithms": ["RS256", "HS256"]}"#);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("lists RS256, but no RSA public key"), "{warnings:?}");

        let warnings =
            key_warnings(r#"{"secret_file": "jwt.key", "public_key_file": "rsa.pem", "algorithms": ["RS256"]}"#);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("an HS secret is configured"), "{warnings:?}");
    }
}
