//! The demo app of `switchboard serve` with no arguments.

/// The demo manifest: a native endpoint at `/ws`, open rooms and a public news namespace.
pub const MANIFEST: &str = include_str!("../demo.json");
/// The label errors use for the demo manifest.
pub const FILE: &str = "<demo manifest>";
/// The env var the demo reads its JWT secret from; generated and stored when unset.
pub const SECRET_ENV: &str = "DEMO_JWT_SECRET";
/// The env var the demo reads its API key from; generated and stored when unset.
pub const API_KEY_ENV: &str = "DEMO_API_KEY";
