//! `/v1/callbacks/{plugin}`: a provider's or channel's callback. No API
//! key (providers have none); the plugin it names authenticates it.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::extract::{ApiPath, read_body};
use crate::operations::callbacks::{self, CallbackAnswer};
use crate::plugins::billers::BillerCallback;
use crate::plugins::traders::TraderCallback;
use crate::plugins::{Callback, MessengerCallback};
use crate::values::error::ApiError;

/// The operations described here, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(receive_callback, doc::receive_callback_put, doc::receive_callback_get), modifiers(&AnyBody))]
pub(super) struct Api;

/// A callback's body is whatever its provider sends, possibly nothing.
struct AnyBody;

impl utoipa::Modify for AnyBody {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(item) = openapi.paths.paths.get_mut("/v1/callbacks/{plugin}") {
            for operation in [&mut item.post, &mut item.put].into_iter().flatten() {
                if let Some(body) = operation.request_body.as_mut() {
                    body.required = Some(utoipa::openapi::Required::False);
                }
            }
        }
    }
}

/// Receive a provider's callback
///
/// Where a rail, biller, trader or messaging channel reports an outcome;
/// not for merchants. No API key: the plugin named in the path
/// authenticates the callback (its signature, a token) and reads the
/// provider's own body, JSON or a form. A messenger's callback is answered
/// with the status and text the messenger chooses; the others with what the
/// callback did.
#[utoipa::path(
    post,
    path = "/v1/callbacks/{plugin}",
    tag = "Callbacks",
    params(("plugin" = String, Path, description = "The plugin the provider reports to (e.g. `mtn-momo`).")),
    request_body(
        description = "The provider's own body.",
        content(
            (serde_json::Value = "application/json"),
            (Object = "application/x-www-form-urlencoded"),
        ),
    ),
    responses(
        (status = 200, description = "Taken: what it did, or a messenger's own answer.", content(
            (CallbackAnswer = "application/json"),
            (String = "text/plain"),
        )),
        (status = 403, description = "A messenger refused it (its own text).", body = String, content_type = "text/plain"),
    ),
)]
pub async fn receive_callback(
    State(state): State<AppState>,
    ApiPath(plugin): ApiPath,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let query = uri.query().unwrap_or("").to_string();
    let body = read_body(&headers, body).await?.to_vec();
    let headers = headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
        .collect();
    if let Some(messenger) = state.ops.messengers.by_plugin(&plugin).cloned() {
        let callback = MessengerCallback { method: method.to_string(), query, headers, body };
        let (status, text) = callbacks::from_messenger(&state.ops, messenger, callback).await?;
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        return Ok((status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
    }
    if method == Method::GET {
        // Only messengers take GET; a name no plugin has is unknown, as for POST.
        let known = state.ops.billers.by_plugin(&plugin).is_some()
            || state.ops.traders.by_plugin(&plugin).is_some()
            || state.ops.rails.rail_for_plugin(&plugin).is_some();
        if !known {
            return Err(ApiError::NotFound { what: "callback endpoint" });
        }
        return Err(ApiError::MethodNotAllowed { method: method.to_string(), path: uri.path().to_string() });
    }
    if let Some(biller) = state.ops.billers.by_plugin(&plugin) {
        let callback = BillerCallback { method: method.to_string(), query, headers, body };
        return Ok(axum::Json(callbacks::from_biller(&state.ops, biller, callback).await?).into_response());
    }
    if let Some(trader) = state.ops.traders.by_plugin(&plugin) {
        let callback = TraderCallback { method: method.to_string(), query, headers, body };
        return Ok(axum::Json(callbacks::from_trader(&state.ops, trader, callback).await?).into_response());
    }
    let answer = callbacks::from_rail(&state.ops, &plugin, Callback { headers, query, body }).await?;
    Ok(axum::Json(answer).into_response())
}

/// The other methods the same handler takes, as the OpenAPI document shows
/// them (one operation per method).
#[allow(dead_code)]
mod doc {
    use crate::operations::callbacks::CallbackAnswer;

    /// Receive a provider's callback (PUT)
    ///
    /// The same as `POST`, for providers that report with `PUT`.
    #[utoipa::path(
        put,
        path = "/v1/callbacks/{plugin}",
        tag = "Callbacks",
        params(("plugin" = String, Path, description = "The plugin the provider reports to (e.g. `mtn-momo`).")),
        request_body(
            description = "The provider's own body.",
            content(
                (serde_json::Value = "application/json"),
                (Object = "application/x-www-form-urlencoded"),
            ),
        ),
        responses(
            (status = 200, description = "Taken: what it did, or a messenger's own answer.", content(
                (CallbackAnswer = "application/json"),
                (String = "text/plain"),
            )),
            (status = 403, description = "A messenger refused it (its own text).", body = String, content_type = "text/plain"),
        ),
    )]
    pub fn receive_callback_put() {}

    /// Verify a messenger's callback URL
    ///
    /// A messaging channel checking the callback URL (e.g. a webhook
    /// verification challenge in the query): only messengers take `GET`,
    /// and answer with the status and text they choose.
    #[utoipa::path(
        get,
        path = "/v1/callbacks/{plugin}",
        tag = "Callbacks",
        params(("plugin" = String, Path, description = "The messenger plugin (e.g. `whatsapp`).")),
        responses(
            (status = 200, description = "The messenger's answer (e.g. the challenge echoed).", body = String, content_type = "text/plain"),
            (status = 403, description = "The messenger refused it (its own text).", body = String, content_type = "text/plain"),
        ),
    )]
    pub fn receive_callback_get() {}
}
