//! TLS to the broker's server (rustls, ring): which CAs to trust, and errors that say what
//! to do.
//!
//! The server's certificate must chain to the CA file named by the URL's `ca=` (and only to
//! it), or, without one, to a public CA (Mozilla's roots, built into the binary), and it must
//! name the URL's host. Redis gets the same CA through its client; the NATS client below
//! uses [`client_config`].

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::BrokerError;

/// `%XX` escapes decoded (a path with spaces, `&` or `?` in a URL); `None` when one is
/// malformed or the result is not UTF-8.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let (bytes, mut out) = (text.as_bytes(), Vec::with_capacity(text.len()));
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The CA file's bytes and the certificates in it; an error names the file and what is wrong.
pub(crate) fn read_ca(path: &Path) -> Result<(Vec<u8>, Vec<CertificateDer<'static>>), BrokerError> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| {
        BrokerError::Unavailable(format!("cannot read the CA file {shown} (the broker URL's ca=): {e}"))
    })?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BrokerError::Unavailable(format!("the CA file {shown} is not valid PEM: {e}")))?;
    if certificates.is_empty() {
        let error = format!("the CA file {shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
        return Err(BrokerError::Unavailable(error));
    }
    Ok((pem, certificates))
}

/// A client configuration trusting the CA file at `ca`, or the public roots without one.
pub(crate) fn client_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, BrokerError> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for certificate in read_ca(path)?.1 {
                roots.add(certificate).map_err(|e| {
                    BrokerError::Unavailable(format!(
                        "the CA file {} holds an unusable certificate: {e}",
                        path.display()
                    ))
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BrokerError::Unavailable(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What to do about a failed TLS handshake, from the error's text (rustls's, whichever
/// client saw it); empty when the error is not about the server's certificate.
pub(crate) fn advice(error: &str) -> &'static str {
    if error.contains("UnknownIssuer") || error.contains("BadSignature") || error.contains("UnknownRevocationStatus") {
        "; the server's certificate is not signed by a CA this node trusts: name the CA that \
         signed it (a PEM file) with ?ca=/path/ca.pem on the broker URL"
    } else if error.contains("not valid for name") || error.contains("NotValidForName") {
        "; connect by a host name (or IP address) that the server's certificate holds"
    } else if error.contains("expired") || error.contains("Expired") || error.contains("not valid yet") {
        "; the server's certificate is outside its validity period (or this machine's clock is wrong)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode("/a%20b/c%26d.pem").as_deref(), Some("/a b/c&d.pem"));
        assert_eq!(percent_decode("/plain.pem").as_deref(), Some("/plain.pem"));
        assert_eq!(percent_decode("/bad%2"), None);
        assert_eq!(percent_decode("/bad%zz"), None);
    }

    #[test]
    fn certificate_errors_say_what_to_do() {
        assert!(advice("invalid peer certificate: UnknownIssuer").contains("?ca=/path/ca.pem"));
        assert!(advice("invalid peer certificate: certificate not valid for name \"h\"").contains("host name"));
        assert_eq!(advice("Connection refused (os error 111)"), "");
    }
}
