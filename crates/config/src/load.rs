//! Parsing and validating one manifest, with errors that point at the spot.

use std::fmt;

use crate::locate::locate;
use crate::manifest::Manifest;
use crate::tolerant::Step;

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

/// Parses and validates one manifest's text; the first error if there are any.
pub fn parse(file: &str, source: &str) -> Result<LoadedManifest, ManifestError> {
    parse_all(file, source).map_err(|errors| errors.0.into_iter().next().expect("at least one error"))
}

/// Parses and validates one manifest's text, finding every error it can: all type errors and
/// unknown fields (each bad field is set aside and the rest read again), then every rule.
/// Invalid JSON stops at its first error, since nothing after it can be read.
pub fn parse_all(file: &str, source: &str) -> Result<LoadedManifest, ManifestErrors> {
    let at = |line, column, field: String, message: String| ManifestError {
        file: file.to_owned(),
        line,
        column,
        field,
        message,
    };
    let mut value: serde_json::Value = serde_json::from_str(source).map_err(|e| {
        let message = e.to_string();
        let message = message.rfind(" at line ").map_or(message.clone(), |i| message[..i].to_owned());
        ManifestErrors(vec![at(e.line(), e.column(), String::new(), message)])
    })?;
    let mut errors = Vec::new();
    let mut reader = crate::tolerant::Reader::default();
    let manifest = loop {
        let failure = match serde_path_to_error::deserialize::<_, Manifest>(&value) {
            Ok(manifest) => break Some(manifest),
            Err(failure) => failure,
        };
        let (path, message) = (failure.path().clone(), failure.into_inner().to_string());
        let Step::Report { path, again } = reader.step(&mut value, &path, &message) else { break None };
        let field: Vec<&str> = path.iter().map(String::as_str).collect();
        let (line, column) = locate(source, &field);
        errors.push(at(line, column, field.join("."), message));
        if !again || errors.len() >= crate::tolerant::MAX_ERRORS {
            break None;
        }
    };
    // The rules still apply to what could be read (a field set aside takes its default).
    let loaded = manifest.map(|manifest| LoadedManifest { file: file.to_owned(), source: source.to_owned(), manifest });
    if let Some(loaded) = &loaded {
        validate(loaded, &mut errors);
    }
    match (loaded, errors.is_empty()) {
        (Some(loaded), true) => Ok(loaded),
        _ => {
            errors.sort_by_key(|e| (e.line, e.column));
            Err(ManifestErrors(errors))
        }
    }
}

/// Every error found in one or more manifests, one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestErrors(pub Vec<ManifestError>);

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            all => {
                write!(f, "{} errors:", all.len())?;
                all.iter().try_for_each(|error| write!(f, "\n  {error}"))
            }
        }
    }
}

impl std::error::Error for ManifestErrors {}

fn validate(loaded: &LoadedManifest, errors: &mut Vec<ManifestError>) {
    let m = &loaded.manifest;
    let slug_ok = !m.slug.is_empty()
        && m.slug.len() <= 64
        && m.slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !slug_ok {
        errors.push(loaded.error(&["slug"], "use 1-64 lowercase letters, digits, `_` or `-`"));
    }
    if m.websockets.is_empty() {
        errors.push(
            loaded.error(&["websockets"], "declare at least one endpoint, e.g. {\"realtime\": {\"path\": \"/ws\"}}"),
        );
    }
    let mut paths = std::collections::HashMap::new();
    for (name, endpoint) in &m.websockets {
        let at = |field: &'static str| [&"websockets", &name.as_str(), &field].map(|s| *s);
        let path = &endpoint.path;
        if !path.starts_with('/') || path.contains(char::is_whitespace) || path.contains(['{', '}', '*', '?']) {
            errors.push(
                loaded.error(&at("path"), format!("`{path}` must start with `/` and hold no spaces or `{{}}*?`")),
            );
        }
        if RESERVED_PATHS.iter().any(|r| path == r || path.starts_with(&format!("{r}/")) && *r != "/") {
            errors.push(
                loaded.error(&at("path"), format!("`{path}` is served by Switchboard itself; choose another path")),
            );
        }
        if let Some(other) = paths.insert(path.clone(), name.clone()) {
            errors.push(loaded.error(&at("path"), format!("`{path}` is also the path of endpoint `{other}`")));
        }
        if endpoint.ping_interval.is_some_and(|p| p.0 < std::time::Duration::from_millis(100)) {
            errors.push(loaded.error(&at("ping_interval"), "must be at least 100ms (the default is 30 s)"));
        }
        if let Some(protocol) = endpoint.protocol.as_deref().filter(|p| !PROTOCOLS.contains(p)) {
            errors.push(
                loaded.error(&at("protocol"), format!("unknown protocol `{protocol}`; use one of {PROTOCOLS:?}")),
            );
        }
        for (field, url) in [("handler_url", &endpoint.handler_url), ("connect_url", &endpoint.connect_url)] {
            if let Some(url) = url.as_deref().filter(|u| !is_http(u)) {
                errors.push(loaded.error(&at(field), format!("`{url}` is not an http:// or https:// URL")));
            }
        }
        if endpoint.handler_timeout.is_some_and(|t| t.0.is_zero()) {
            errors.push(loaded.error(&at("handler_timeout"), "must be longer than zero, e.g. \"5s\""));
        }
        crate::compression::validate(loaded, name, endpoint, errors);
    }
    for (namespace, spec) in &m.channels {
        let at = ["channels", namespace.as_str()];
        if RESERVED_NAMESPACES.contains(&namespace.as_str()) || namespace.is_empty() || namespace.contains(':') {
            errors.push(loaded.error(
                &at,
                format!("`{namespace}` is built in or not a namespace name; only `room` and new names may be declared"),
            ));
        }
        if !POLICIES.contains(&spec.subscribe.as_str()) {
            let path = ["channels", namespace.as_str(), "subscribe"];
            errors.push(loaded.error(&path, format!("unknown policy `{}`; use one of {POLICIES:?}", spec.subscribe)));
        }
        if spec.subscribe == "proxy" && spec.proxy_url.is_none() {
            let path = ["channels", namespace.as_str(), "proxy_url"];
            errors.push(loaded.error(&path, "the proxy policy needs `proxy_url`: the backend URL that decides"));
        }
        if let Some(url) = spec.proxy_url.as_deref().filter(|u| !is_http(u)) {
            let path = ["channels", namespace.as_str(), "proxy_url"];
            errors.push(loaded.error(&path, format!("`{url}` is not an http:// or https:// URL")));
        }
    }
    crate::history::validate(loaded, errors);
    crate::inbox::validate(loaded, errors);
    crate::inbox::validate_chat(loaded, errors);
    if m.auth_policy.as_ref().and_then(|a| a.jwt.as_ref()).is_some_and(|j| j.secret.is_some()) {
        errors.push(loaded.error(
            &["auth_policy", "jwt", "secret"],
            "secrets never sit in a manifest: name an env var with `secret_env` or a file with `secret_file`",
        ));
    }
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
