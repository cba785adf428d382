//! What handlers read from a request (path and query in the error
//! envelope when malformed, a body within its limit, the idempotency key)
//! and how a write's stored answer goes back.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::REQUEST_BODY_BYTES_MAX;
use super::auth::Caller;
use super::fields::Parsed;
use super::serve::BodyTimedOut;
use crate::domain::scopes::Scope;
use crate::operations::idempotency::{KEY_BYTES_MAX, KeyedRequest, Reply, WriteEndpoint};
use crate::values::error::ApiError;

/// The one path parameter of a route; a malformed one (bad percent
/// encoding) is a 400 in the error envelope, like every other bad input.
pub struct ApiPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<ApiPath, ApiError> {
        let Path(value) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("path", e.body_text()))?;
        Ok(ApiPath(value))
    }
}

/// The query string as pairs, in order; malformed is a 400 in the envelope.
pub struct ApiQuery(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for ApiQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<ApiQuery, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("query", e.body_text()))?;
        Ok(ApiQuery(pairs))
    }
}

/// Reads the whole body, refusing more than `REQUEST_BODY_BYTES_MAX` and a
/// body slower than the listener allows (`serve`).
pub async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    read_body_up_to(headers, body, REQUEST_BODY_BYTES_MAX).await
}

/// [`read_body`] with another limit (an endpoint that takes uploads).
pub async fn read_body_up_to(headers: &HeaderMap, body: Body, limit_bytes: usize) -> Result<Bytes, ApiError> {
    let too_large = ApiError::PayloadTooLarge { limit_bytes };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit_bytes as u64) {
        return Err(too_large);
    }
    // Past the declared length, a chunked body can still run over.
    axum::body::to_bytes(body, limit_bytes).await.map_err(|err| {
        if caused_by::<BodyTimedOut>(&err) {
            ApiError::RequestTimeout
        } else if caused_by::<http_body_util::LengthLimitError>(&err) {
            too_large
        } else {
            // The client went away or broke the framing mid-body.
            ApiError::InvalidJson("the request body could not be read to its end".into())
        }
    })
}

/// Whether `E` is anywhere in `err`'s chain of sources.
fn caused_by<E: std::error::Error + 'static>(err: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(err), |e| e.source()).any(|e| e.is::<E>())
}

/// The headers that may carry the idempotency key (Soxara's, then Sogo's).
const KEY_HEADERS: [&str; 2] = ["x-idempotency-key", "idempotency-key"];

/// Reads the idempotency key from either header; refuses a missing or
/// malformed key.
pub fn key_from_headers(headers: &HeaderMap) -> Result<String, ApiError> {
    let mut found: Option<(&str, &str)> = None;
    for name in KEY_HEADERS {
        let Some(value) = headers.get(name) else {
            continue;
        };
        let value = value.to_str().map_err(|_| ApiError::invalid(name, "must be printable ASCII"))?.trim();
        if let Some((first_name, first)) = found
            && first != value
        {
            return Err(ApiError::invalid(
                name,
                format!("differs from {first_name}; send one idempotency header, or the same key in both"),
            ));
        }
        found = Some((name, value));
    }
    let (name, key) = found.ok_or(ApiError::IdempotencyKeyRequired)?;
    if key.is_empty() {
        return Err(ApiError::IdempotencyKeyRequired);
    }
    if key.len() > KEY_BYTES_MAX || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            name,
            format!("must be 1 to {KEY_BYTES_MAX} printable ASCII characters without spaces (a UUID v4 is ideal)"),
        ));
    }
    Ok(key.to_string())
}

/// What every idempotent write reads, in this order: a key with `scope`,
/// the idempotency key, the body within its limit, then the body itself
/// (`parse`). Nothing is written yet, so a refused request binds nothing
/// to its idempotency key.
pub async fn keyed_write<T>(
    caller: &Caller,
    scope: Scope,
    endpoint: WriteEndpoint,
    headers: &HeaderMap,
    body: Body,
    parse: impl FnOnce(&[u8]) -> Result<Parsed<T>, ApiError>,
) -> Result<(KeyedRequest, T), ApiError> {
    keyed_write_up_to(caller, scope, endpoint, headers, body, REQUEST_BODY_BYTES_MAX, parse).await
}

/// [`keyed_write`] with another body limit (an endpoint that takes uploads).
pub async fn keyed_write_up_to<T>(
    caller: &Caller,
    scope: Scope,
    endpoint: WriteEndpoint,
    headers: &HeaderMap,
    body: Body,
    limit_bytes: usize,
    parse: impl FnOnce(&[u8]) -> Result<Parsed<T>, ApiError>,
) -> Result<(KeyedRequest, T), ApiError> {
    caller.require(scope)?;
    let key = key_from_headers(headers)?;
    let body = read_body_up_to(headers, body, limit_bytes).await?;
    let parsed = parse(&body)?;
    Ok((KeyedRequest::new(caller.tenant.clone(), key, endpoint, &parsed.canonical), parsed.value))
}

/// Sends a write's stored answer, marking replays.
pub fn reply(reply: Reply) -> Result<Response, ApiError> {
    let status = StatusCode::from_u16(reply.response.status).map_err(|e| ApiError::Internal(e.into()))?;
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], reply.response.body).into_response();
    if reply.replayed {
        response.headers_mut().insert("idempotency-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// An object just made: `201 Created`.
pub fn created(object: impl serde::Serialize) -> Response {
    (StatusCode::CREATED, axum::Json(object)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn either_header_carries_the_key() {
        assert_eq!(key_from_headers(&headers(&[("x-idempotency-key", "abc")])).unwrap(), "abc");
        assert_eq!(key_from_headers(&headers(&[("idempotency-key", "abc")])).unwrap(), "abc");
        assert_eq!(key_from_headers(&headers(&[("idempotency-key", "a"), ("x-idempotency-key", "a")])).unwrap(), "a");
        assert!(matches!(key_from_headers(&headers(&[])), Err(ApiError::IdempotencyKeyRequired)));
        assert!(matches!(
            key_from_headers(&headers(&[("idempotency-key", "a"), ("x-idempotency-key", "b")])),
            Err(ApiError::Validation(_))
        ));
        let long = "k".repeat(KEY_BYTES_MAX + 1);
        assert!(matches!(key_from_headers(&headers(&[("idempotency-key", &long)])), Err(ApiError::Validation(_))));
    }
}
