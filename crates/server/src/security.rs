//! Security headers. Every answer carries `X-Content-Type-Options: nosniff`; the two HTML
//! pages (the admin console and the demo) also carry a strict Content-Security-Policy that lets
//! them load only their own files, talk only to this server, and never be framed, so that
//! another site cannot overlay the console and trick a signed-in operator into a click.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

/// Longest `Host` header value put into a policy.
const MAX_HOST_LEN: usize = 255;

/// What a page may connect to besides its own origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connects {
    /// `fetch` to its own origin only (the console: its live tail is a fetched stream).
    SameOrigin,
    /// Also a WebSocket to the host it was served from (the demo's live connections).
    AndWebSocket,
}

/// The Content-Security-Policy of a page served for a request with `headers`: nothing by
/// default, scripts and styles from this origin (the pages have no inline ones), images from
/// this origin (the icon), no frames around it, no `<base>`, forms only to this origin.
pub(crate) fn policy(connects: Connects, headers: &HeaderMap) -> String {
    let mut connect = String::from("'self'");
    if connects == Connects::AndWebSocket {
        // CSP Level 3 counts ws: and wss: of the same host as 'self', but older browsers do
        // not, so the page's own host is named for both schemes.
        if let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()).filter(|h| plain_host(h)) {
            connect.push_str(&format!(" ws://{host} wss://{host}"));
        }
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src {connect}; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
}

/// Whether a `Host` value is only a host name or address and port, so that nothing in it can
/// add a source or a directive to the policy.
fn plain_host(host: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    !host.is_empty() && host.len() <= MAX_HOST_LEN && host.chars().all(allowed)
}

/// An HTML page with its policy, kept out of frames and sending no referrer.
pub(crate) fn page(html: &'static str, policy: String) -> Response {
    let mut response = ([(CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// A page's script or style file. Revalidated on each load, so that a page never runs with
/// the file of an older build.
pub(crate) fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers = [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache"), (X_CONTENT_TYPE_OPTIONS, "nosniff")];
    (headers, body).into_response()
}

/// A script file's content type.
pub(crate) const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
/// A style sheet's content type.
pub(crate) const CSS: &str = "text/css; charset=utf-8";

/// Middleware: `X-Content-Type-Options: nosniff` on every answer that does not set it, so that
/// no browser reads a JSON answer as a script or a page.
pub(crate) async fn nosniff(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().entry(X_CONTENT_TYPE_OPTIONS).or_insert(HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_host(host: &'static str) -> HeaderMap {
        HeaderMap::from_iter([(HOST, HeaderValue::from_static(host))])
    }

    #[test]
    fn the_websocket_sources_name_the_host_the_page_was_served_from() {
        let policy = policy(Connects::AndWebSocket, &with_host("127.0.0.1:8080"));
        assert!(policy.contains("connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080;"), "{policy}");
        let v6 = super::policy(Connects::AndWebSocket, &with_host("[::1]:8080"));
        assert!(v6.contains("ws://[::1]:8080 "), "{v6}");
        let console = super::policy(Connects::SameOrigin, &with_host("127.0.0.1:8080"));
        assert!(console.contains("connect-src 'self';"), "{console}");
    }

    #[test]
    fn a_host_header_cannot_add_sources_or_directives() {
        for host in ["evil.example; script-src *", "a b", "*", "x'unsafe-inline'", "a/b"] {
            let headers = HeaderMap::from_iter([(HOST, HeaderValue::from_str(host).unwrap())]);
            let policy = policy(Connects::AndWebSocket, &headers);
            assert!(policy.contains("connect-src 'self';"), "{host}: {policy}");
        }
    }
}
