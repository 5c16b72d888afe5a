//! The manifest loader: parsing, validation, and resolution against secrets that always
//! exist, so that every accepted manifest reaches the last step a server takes at start.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use switchboard_config::{parse, resolve, signing_key, Secrets};

/// Every variable and key file holds the same 32-byte secret.
struct AnySecret;

impl Secrets for AnySecret {
    fn env(&self, _: &str) -> Option<String> {
        Some("fuzz-secret-0123456789abcdef0123".into())
    }

    fn file(&self, _: &Path) -> std::io::Result<Vec<u8>> {
        Ok(b"fuzz-secret-0123456789abcdef0123".to_vec())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse("fuzz.json", text) {
        Ok(loaded) => {
            let _ = resolve(&loaded, &AnySecret);
            let _ = signing_key(&loaded, &AnySecret);
        }
        Err(error) => {
            // Every refusal points into the text and says something.
            assert!(!error.message.is_empty(), "{text:?}");
        }
    }
});
