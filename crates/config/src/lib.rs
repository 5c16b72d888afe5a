//! Configuration: app manifests and the server's own settings.
//!
//! # Layout
//! - [`manifest`]: the manifest as written (the app-engine manifest shape, extended).
//! - [`load`]: parse and validate one manifest file, with errors that name the file, line,
//!   column and field ([`ManifestError`]); [`check_unique`] across apps.
//! - [`resolve`]: turn a manifest into the hub's [`switchboard_hub::AppSpec`], loading
//!   secrets through a [`Secrets`] source (the environment and key files, never the manifest).
//! - [`server`]: the optional TOML config file of `switchboard serve`.
//! - [`demo`]: the built-in demo app of the zero-config start.
//!
//! This and the binary are the only crates that read the environment or files.

mod compression;
pub mod demo;
pub mod duration;
mod history;
mod inbox;
mod load;
mod locate;
pub mod manifest;
mod resolve;
pub mod server;
mod tolerant;

pub use load::{check_unique, parse, parse_all, LoadedManifest, ManifestError, ManifestErrors};
pub use locate::locate;
pub use resolve::{resolve, signing_key, EnvSecrets, Resolved, Secrets, SigningKey};
