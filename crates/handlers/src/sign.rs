//! The signature on every call to the app backend.
//!
//! `X-Switchboard-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact request body,
//! keyed with the app's API key (the first, when there are several). To verify, compute the
//! same over the raw body and compare in constant time; in Python:
//!
//! ```text
//! expected = "sha256=" + hmac.new(api_key.encode(), body, hashlib.sha256).hexdigest()
//! ok = hmac.compare_digest(expected, request.headers["X-Switchboard-Signature"])
//! ```

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const HEADER: &str = "x-switchboard-signature";

/// The header value for `body` signed with `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_the_rfc_4231_test_vector() {
        // RFC 4231, test case 2.
        let expected = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(super::signature(b"Jefe", b"what do ya want for nothing?"), expected);
    }
}
