//! The signature on every call to the app backend.
//!
//! Each call carries `X-Switchboard-Timestamp: <unix seconds>`, the moment it was signed, and
//! `X-Switchboard-Signature: sha256=<hex>`, the HMAC-SHA256 of the timestamp's digits, a full
//! stop and the exact request body (`1767225600.{"app_slug":...}`), keyed with the app's API
//! key (the first, when there are several). The timestamp is inside the signature, so a
//! captured call cannot be sent again later with a fresher one: a backend refuses calls whose
//! timestamp is further than [`TOLERANCE`] from its own clock. In Python (the SDK's
//! `verify_signature` does this):
//!
//! ```text
//! signed = timestamp.encode() + b"." + body
//! expected = "sha256=" + hmac.new(api_key.encode(), signed, hashlib.sha256).hexdigest()
//! ok = hmac.compare_digest(expected, signature) and abs(time.time() - int(timestamp)) <= 300
//! ```

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const HEADER: &str = "x-switchboard-signature";
/// The header that carries the moment of signing, in unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-switchboard-timestamp";
/// How far a call's timestamp may be from the backend's clock, either way, before the
/// backend should refuse it as a replay (the SDK's default; docs/HANDLERS.md).
pub const TOLERANCE: Duration = Duration::from_secs(300);

/// The signature header's value for `body`, sent at `timestamp` (unix seconds), signed with
/// `key`.
pub fn signature(key: &[u8], timestamp: u64, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key"));
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn signs_the_timestamp_a_full_stop_and_the_body() {
        // Python: hmac.new(b"Jefe", b"1767225600.what do ya want for nothing?", hashlib.sha256)
        let expected = "sha256=8bf4bab82972f519c62eab705abd744e0bc4e8a7e292de99189f49e03834693a";
        assert_eq!(super::signature(b"Jefe", 1_767_225_600, b"what do ya want for nothing?"), expected);
        let body = br#"{"app_slug":"my_app"}"#;
        let expected = "sha256=49fef34f35c4c9a28c496c0a3501112be323f083291ca1e6f26749232c722009";
        assert_eq!(super::signature(b"sk_test", 1_767_225_600, body), expected);
        assert_ne!(super::signature(b"sk_test", 1_767_225_601, body), expected, "the timestamp is signed");
    }
}
