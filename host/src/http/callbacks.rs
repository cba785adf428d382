//! `/v1/callbacks/{plugin}`: a provider's or channel's callback. No API
//! key (providers have none); the plugin it names authenticates it.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::extract::{ApiPath, read_body};
use crate::operations::callbacks;
use crate::plugins::billers::BillerCallback;
use crate::plugins::traders::TraderCallback;
use crate::plugins::{Callback, MessengerCallback};
use crate::values::error::ApiError;

/// The operations described here, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub(super) struct Api;

/// It goes to the messenger of that plugin name (any method: channels
/// check the URL with a GET), else to the biller, the trader or the rail
/// (POST, PUT).
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
