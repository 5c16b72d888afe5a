//! Who is connecting, and may this backend call the server API?
//!
//! # Layout
//! - [`Verifier`] checks a user's JWT (HS256/384/512, RS256, ES256; a shared secret, PEM
//!   public keys, or a JWKS URL) and turns its claims into an [`Identity`], using the
//!   manifest's [`ClaimNames`].
//! - [`JwksCache`] fetches and caches a JWKS document, refetching on an unknown `kid` so
//!   that key rotation works without a restart.
//! - [`ApiKeys`] compares an app backend's bearer key in constant time.
//! - [`redact`] hides tokens in URLs before anything is logged.
//!
//! This crate never reads the environment or files: the binary resolves secrets and key
//! files and hands their bytes in through [`JwtSettings`].

mod api_key;
mod jwks;
mod jwt;
pub mod redact;

pub use api_key::{bearer, ApiKeys};
pub use jsonwebtoken::{Algorithm, AlgorithmFamily};
pub use jwks::JwksCache;
pub use jwt::{mint, mint_with_kid, AuthError, ClaimNames, Identity, JwtSettings, KeyMaterial, Verifier};
