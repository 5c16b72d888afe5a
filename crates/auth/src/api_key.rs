//! App API keys for the server API.

/// The keys that may act for one app. Several keys allow rotation without downtime.
#[derive(Clone, Default)]
pub struct ApiKeys {
    keys: Vec<Vec<u8>>,
    /// Where the keys come from (`the environment variable MY_APP_API_KEY`), for errors
    /// that tell an operator what to set.
    source: String,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material, even in debug output.
        write!(f, "ApiKeys({} configured)", self.keys.len())
    }
}

impl ApiKeys {
    /// Keys from their string form; empty strings are ignored.
    pub fn new<I: IntoIterator<Item = String>>(keys: I) -> Self {
        let keys = keys.into_iter().filter(|k| !k.is_empty()).map(String::into_bytes).collect();
        Self { keys, source: String::new() }
    }

    /// The same keys, saying where they come from (or would, when none are configured).
    pub fn from_source(self, source: impl Into<String>) -> Self {
        Self { source: source.into(), ..self }
    }

    /// Where the keys come from, e.g. `the environment variable MY_APP_API_KEY`; empty when
    /// unknown.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether any key is configured; with none, the app's server API refuses every call.
    pub fn is_configured(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The key that signs Switchboard's calls to the app backend (handler webhooks, hooks):
    /// the first one, so that a rotation adds new keys after it.
    pub fn signing_key(&self) -> Option<&[u8]> {
        self.keys.first().map(Vec::as_slice)
    }

    /// Whether `presented` is one of the keys, compared in constant time per key.
    pub fn accepts(&self, presented: &str) -> bool {
        let presented = presented.as_bytes();
        self.keys.iter().fold(false, |found, key| found | constant_time_eq(key, presented))
    }
}

/// The credential of an `Authorization: Bearer <credential>` header value; the scheme is
/// case-insensitive (RFC 7235).
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, credential) = header.trim().split_once(' ')?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then_some(credential)
}

/// Compares without an early exit, so timing does not tell how much of a key matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_configured_keys() {
        let keys = ApiKeys::new(["k1".to_owned(), String::new(), "k2".to_owned()]);
        assert!(keys.accepts("k1") && keys.accepts("k2"));
        assert!(!keys.accepts("k3") && !keys.accepts("") && !keys.accepts("k1x"));
        assert!(!ApiKeys::default().accepts(""));
        assert_eq!(format!("{keys:?}"), "ApiKeys(2 configured)");
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Basic abc"), None);
    }
}
