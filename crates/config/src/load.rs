//! Parsing and validating one manifest, with errors that point at the spot.

use std::fmt;

use crate::locate::locate;
use crate::manifest::Manifest;

/// A manifest error: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The manifest's file name.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The field's path, like `websockets.realtime.path`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: `{}`: {}", self.file, self.line, self.column, self.field, self.message)
    }
}

impl std::error::Error for ManifestError {}

/// A parsed, validated manifest with its source, kept for locating later errors.
#[derive(Debug)]
pub struct LoadedManifest {
    /// The file it came from (or a label such as `<demo>`).
    pub file: String,
    /// The text, for error locations.
    pub source: String,
    /// The parsed manifest.
    pub manifest: Manifest,
}

impl LoadedManifest {
    /// An error at a field of this manifest.
    pub fn error(&self, path: &[&str], message: impl Into<String>) -> ManifestError {
        let (line, column) = locate(&self.source, path);
        ManifestError { file: self.file.clone(), line, column, field: path.join("."), message: message.into() }
    }
}

/// Endpoint paths the server itself serves.
const RESERVED_PATHS: [&str; 6] = ["/", "/api", "/healthz", "/readyz", "/metrics", "/admin"];
/// Namespaces with built-in meaning that a manifest cannot redeclare.
const RESERVED_NAMESPACES: [&str; 3] = ["user", "group", "broadcast"];
/// Subscribe policies.
pub(crate) const POLICIES: [&str; 5] = ["public", "authenticated", "claim", "server", "proxy"];
/// Endpoint protocols.
pub(crate) const PROTOCOLS: [&str; 5] = ["native", "socket.io", "echo", "socket.io-conformance", "engine.io-echo"];

/// Parses and validates one manifest's text.
pub fn parse(file: &str, source: &str) -> Result<LoadedManifest, ManifestError> {
    let mut de = serde_json::Deserializer::from_str(source);
    let manifest: Manifest = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let text = inner.to_string();
        // serde_json appends " at line L column C"; the location goes in front instead.
        let message = text.rfind(" at line ").map_or(text.clone(), |i| text[..i].to_owned());
        ManifestError { file: file.to_owned(), line: inner.line(), column: inner.column(), field, message }
    })?;
    let loaded = LoadedManifest { file: file.to_owned(), source: source.to_owned(), manifest };
    validate(&loaded)?;
    Ok(loaded)
}

fn validate(loaded: &LoadedManifest) -> Result<(), ManifestError> {
    let m = &loaded.manifest;
    let slug_ok = !m.slug.is_empty()
        && m.slug.len() <= 64
        && m.slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !slug_ok {
        return Err(loaded.error(&["slug"], "use 1-64 lowercase letters, digits, `_` or `-`"));
    }
    if m.websockets.is_empty() {
        return Err(
            loaded.error(&["websockets"], "declare at least one endpoint, e.g. {\"realtime\": {\"path\": \"/ws\"}}")
        );
    }
    let mut paths = std::collections::HashMap::new();
    for (name, endpoint) in &m.websockets {
        let at = |field: &'static str| [&"websockets", &name.as_str(), &field].map(|s| *s);
        let path = &endpoint.path;
        if !path.starts_with('/') || path.contains(char::is_whitespace) || path.contains(['{', '}', '*', '?']) {
            return Err(
                loaded.error(&at("path"), format!("`{path}` must start with `/` and hold no spaces or `{{}}*?`"))
            );
        }
        if RESERVED_PATHS.iter().any(|r| path == r || path.starts_with(&format!("{r}/")) && *r != "/") {
            return Err(
                loaded.error(&at("path"), format!("`{path}` is served by Switchboard itself; choose another path"))
            );
        }
        if let Some(other) = paths.insert(path.clone(), name.clone()) {
            return Err(loaded.error(&at("path"), format!("`{path}` is also the path of endpoint `{other}`")));
        }
        if endpoint.ping_interval.is_some_and(|p| p.0 < std::time::Duration::from_millis(100)) {
            return Err(loaded.error(&at("ping_interval"), "must be at least 100ms (the default is 30 s)"));
        }
        if let Some(protocol) = endpoint.protocol.as_deref().filter(|p| !PROTOCOLS.contains(p)) {
            return Err(
                loaded.error(&at("protocol"), format!("unknown protocol `{protocol}`; use one of {PROTOCOLS:?}"))
            );
        }
        for (field, url) in [("handler_url", &endpoint.handler_url), ("connect_url", &endpoint.connect_url)] {
            if let Some(url) = url.as_deref().filter(|u| !is_http(u)) {
                return Err(loaded.error(&at(field), format!("`{url}` is not an http:// or https:// URL")));
            }
        }
        if endpoint.handler_timeout.is_some_and(|t| t.0.is_zero()) {
            return Err(loaded.error(&at("handler_timeout"), "must be longer than zero, e.g. \"5s\""));
        }
        crate::compression::validate(loaded, name, endpoint)?;
    }
    for (namespace, spec) in &m.channels {
        let at = ["channels", namespace.as_str()];
        if RESERVED_NAMESPACES.contains(&namespace.as_str()) || namespace.is_empty() || namespace.contains(':') {
            return Err(loaded.error(
                &at,
                format!("`{namespace}` is built in or not a namespace name; only `room` and new names may be declared"),
            ));
        }
        if !POLICIES.contains(&spec.subscribe.as_str()) {
            let path = ["channels", namespace.as_str(), "subscribe"];
            return Err(loaded.error(&path, format!("unknown policy `{}`; use one of {POLICIES:?}", spec.subscribe)));
        }
        if spec.subscribe == "proxy" && spec.proxy_url.is_none() {
            let path = ["channels", namespace.as_str(), "proxy_url"];
            return Err(loaded.error(&path, "the proxy policy needs `proxy_url`: the backend URL that decides"));
        }
        if let Some(url) = spec.proxy_url.as_deref().filter(|u| !is_http(u)) {
            let path = ["channels", namespace.as_str(), "proxy_url"];
            return Err(loaded.error(&path, format!("`{url}` is not an http:// or https:// URL")));
        }
    }
    crate::history::validate(loaded)?;
    crate::inbox::validate(loaded)?;
    crate::inbox::validate_chat(loaded)?;
    if m.auth_policy.as_ref().and_then(|a| a.jwt.as_ref()).is_some_and(|j| j.secret.is_some()) {
        return Err(loaded.error(
            &["auth_policy", "jwt", "secret"],
            "secrets never sit in a manifest: name an env var with `secret_env` or a file with `secret_file`",
        ));
    }
    Ok(())
}

/// Checks that slugs and endpoint paths are unique across all loaded apps.
pub fn check_unique(manifests: &[LoadedManifest]) -> Result<(), ManifestError> {
    let mut slugs = std::collections::HashMap::new();
    let mut paths = std::collections::HashMap::new();
    for loaded in manifests {
        if let Some(first) = slugs.insert(loaded.manifest.slug.clone(), loaded.file.clone()) {
            let slug = &loaded.manifest.slug;
            return Err(loaded.error(&["slug"], format!("app `{slug}` is also declared in {first}")));
        }
        for (name, endpoint) in &loaded.manifest.websockets {
            let here = format!("{} (app `{}`)", loaded.file, loaded.manifest.slug);
            if let Some(first) = paths.insert(endpoint.path.clone(), here) {
                let message = format!("path `{}` is declared by two apps: {first} and this one", endpoint.path);
                return Err(loaded.error(&["websockets", name, "path"], message));
            }
        }
    }
    Ok(())
}

/// Whether a backend URL is one Switchboard can call.
fn is_http(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}
