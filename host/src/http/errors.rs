//! Errors as responses: the envelope, `Cache-Control: no-store`, and
//! `Retry-After` on rate limits. Internal errors are logged with the
//! request id (the request's span); the merchant sees only the code.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::values::error::ApiError;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(err) = &self {
            tracing::error!(error = ?err, "internal error");
        }
        let mut response = (self.status(), axum::Json(self.envelope())).into_response();
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let ApiError::RateLimited { retry_after_s, .. } = &self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
        }
        response
    }
}
