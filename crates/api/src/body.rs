//! JSON request bodies whose errors name the field.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use switchboard_hub::{App, Limits};
use switchboard_protocol::ErrorCode;

use crate::ApiError;

/// A JSON body. Malformed JSON, a missing or ill-typed field answer 400 naming the field;
/// a body over the limit answers 413.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, "request body is too large")
            } else {
                ApiError::bad_request(rejection.body_text())
            }
        })?;
        parse(&bytes).map(JsonBody)
    }
}

/// Deserializes with the path of the failing field in the message.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = match (path.as_str(), too_deep(&inner)) {
            (".", _) => inner.to_string(),
            // The path runs to the 127th level (`data[0][0]...`): name the field it is in.
            (path, true) => Limits::too_deep(path.split(['[', '.']).next().unwrap_or(path)),
            (path, false) => format!("field `{path}`: {inner}"),
        };
        ApiError::bad_request(message)
    })
}

/// Whether serde_json stopped at its nesting limit (in a free-form `data` field: the only
/// values a body holds that nest without bound).
fn too_deep(error: &serde_json::Error) -> bool {
    error.is_syntax() && error.to_string().starts_with("recursion limit exceeded")
}

/// A JSON body of a server API call that stores what clients will receive: over the app's
/// `limits.max_message_bytes` it answers 413, since no client could take it.
pub(crate) fn limited<T: DeserializeOwned>(app: &App, body: &[u8]) -> Result<T, ApiError> {
    let limit = app.spec.limits.max_message_bytes;
    if body.len() > limit {
        let message = format!(
            "body is {} bytes; app `{}` takes at most {limit} (limits.max_message_bytes)",
            body.len(),
            app.spec.slug
        );
        return Err(ApiError::new(ErrorCode::PayloadTooLarge, message));
    }
    parse(body)
}

/// Query parameters; a malformed one answers 400 naming it.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use switchboard_protocol::api::PublishRequest;

    #[test]
    fn errors_name_the_field() {
        let e = super::parse::<PublishRequest>(br#"{"channels":["user:1"]}"#).unwrap_err();
        assert!(e.message.contains("missing field `type`"), "{}", e.message);
        let e = super::parse::<PublishRequest>(br#"{"channels":"user:1","type":"x"}"#).unwrap_err();
        assert!(e.message.starts_with("field `channels`"), "{}", e.message);
        let e = super::parse::<PublishRequest>(b"{oops").unwrap_err();
        assert!(e.message.contains("line 1"), "{}", e.message);
    }

    #[test]
    fn data_too_deep_for_serde_names_the_field() {
        #[derive(serde::Deserialize)]
        struct Body {
            #[allow(dead_code)]
            data: serde_json::Value,
        }
        let body = format!(r#"{{"data": {}{}}}"#, "[".repeat(500), "]".repeat(500));
        let e = super::parse::<Body>(body.as_bytes()).err().unwrap();
        assert!(e.message.starts_with("field `data`: nested more than 100"), "{}", e.message);
    }
}
