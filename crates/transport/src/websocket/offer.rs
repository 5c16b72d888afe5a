//! Choosing among a client's permessage-deflate offers (RFC 7692 section 5). A client may
//! list several, most preferred first; the server accepts the first it can honour and
//! declines the others. The WebSocket layer reads a single offer, so the request's header
//! is narrowed to the chosen one (or removed, which declines them all) before it does.

use axum::http::header::SEC_WEBSOCKET_EXTENSIONS;
use axum::http::{HeaderMap, HeaderValue};

const NAME: &str = "permessage-deflate";

/// Leaves only the first acceptable permessage-deflate offer in `headers`.
pub(crate) fn narrow(headers: &mut HeaderMap) {
    if !headers.contains_key(SEC_WEBSOCKET_EXTENSIONS) {
        return;
    }
    let chosen = headers
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .find(|offer| acceptable(offer))
        .and_then(|offer| HeaderValue::from_str(offer).ok());
    headers.remove(SEC_WEBSOCKET_EXTENSIONS);
    if let Some(offer) = chosen {
        headers.insert(SEC_WEBSOCKET_EXTENSIONS, offer);
    }
}

/// A permessage-deflate offer whose every parameter is known, given once, and in range.
fn acceptable(offer: &str) -> bool {
    let mut parts = offer.split(';').map(str::trim);
    if parts.next() != Some(NAME) {
        return false;
    }
    let mut seen = Vec::new();
    parts.all(|param| {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (param, None),
        };
        let valid = match name {
            "server_no_context_takeover" | "client_no_context_takeover" => value.is_none(),
            // zlib cannot deflate with an 8-bit window, so an offer that insists on it is declined.
            "server_max_window_bits" => value.is_some_and(|v| window_bits(v, 9)),
            "client_max_window_bits" => value.is_none_or(|v| window_bits(v, 8)),
            _ => false,
        };
        let first = !seen.contains(&name);
        seen.push(name);
        valid && first
    })
}

fn window_bits(value: &str, least: u8) -> bool {
    value.parse::<u8>().is_ok_and(|bits| (least..=15).contains(&bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn narrowed(offers: &[&str]) -> Option<String> {
        let mut headers = HeaderMap::new();
        for offer in offers {
            headers.append(SEC_WEBSOCKET_EXTENSIONS, HeaderValue::from_str(offer).unwrap());
        }
        narrow(&mut headers);
        headers.get(SEC_WEBSOCKET_EXTENSIONS).map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn the_first_acceptable_offer_is_kept() {
        let browser = "permessage-deflate; client_max_window_bits";
        assert_eq!(narrowed(&[browser]).as_deref(), Some(browser));
        let list = "permessage-deflate; server_no_context_takeover; server_max_window_bits=9, permessage-deflate";
        assert_eq!(
            narrowed(&[list]).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=9")
        );
        assert_eq!(narrowed(&["x-webkit-deflate-frame", "permessage-deflate"]).as_deref(), Some("permessage-deflate"));
    }

    #[test]
    fn offers_the_server_cannot_honour_are_declined() {
        let cases = [
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; unknown_parameter",
            "x-webkit-deflate-frame",
        ];
        for offer in cases {
            assert_eq!(narrowed(&[offer]), None, "{offer}");
        }
        assert_eq!(
            narrowed(&["permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits=10"])
                .as_deref(),
            Some("permessage-deflate; client_max_window_bits=10")
        );
    }
}
