//! Webhook endpoints and events.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiPath, created, read_body};
use super::fields::{Fields, fail};
use crate::domain::scopes::Scope;
use crate::domain::webhooks::{
    self, DeletedEndpoint, EVERY_EVENT, Event, EventType, ROTATION_OVERLAP_S_DEFAULT, ROTATION_OVERLAP_S_MAX,
    URL_CHARS_MAX, WebhookEndpoint, targets,
};
use crate::store::StoreError;
use crate::values::error::ApiError;
use crate::values::mode::Mode;
use crate::values::page::Page;

/// The operations described here, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub(super) struct Api;

/// `POST /v1/webhook_endpoints {url, events}`.
pub async fn create_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    let body = read_body(&headers, body).await?;
    let allow_private = state.settings.webhooks.allow_private_targets;
    let fields = Fields::parse(&body, &["url", "events"])?;
    let mut errors = fields.errors();
    let url = fields.string("url", URL_CHARS_MAX, true, &mut errors);
    if let Some(url) = &url {
        let valid = url.parse::<ureq::http::Uri>().ok().is_some_and(|u| {
            matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty())
        });
        if !valid {
            fail(&mut errors, "url", "must be an absolute http:// or https:// URL");
        } else if !allow_private && targets::names_internal_host(url) {
            fail(&mut errors, "url", "must be a public address, not loopback, private or another special-purpose one");
        } else if caller.mode() == Mode::Live
            && !targets::is_https(url)
            && !state.settings.webhooks.allow_plain_http_live
        {
            fail(&mut errors, "url", "must be an https:// URL for live webhooks");
        }
    }
    let events: Vec<String> = match fields.get("/events") {
        None => {
            fail(&mut errors, "events", "is required: a list of event types, or [\"*\"] for all");
            vec![]
        }
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut events = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(e) if e == EVERY_EVENT || EventType::parse(e).is_some() => events.push(e.to_string()),
                    _ => fail(
                        &mut errors,
                        "events",
                        format!("{item} is not an event type; known: {}", EventType::words()),
                    ),
                }
            }
            events
        }
        Some(_) => {
            fail(&mut errors, "events", "must be a non-empty list of event types");
            vec![]
        }
    };
    let Some(url) = url.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let (tenant, clock) = (caller.tenant.clone(), state.ops.clock.clone());
    let endpoint = state
        .ops
        .store
        .write(move |conn| webhooks::create_endpoint(conn, &tenant, &url, &events, clock.now_ms()))
        .await?;
    Ok(created(endpoint))
}

/// `GET /v1/webhook_endpoints`.
pub async fn list_endpoints(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Page<WebhookEndpoint>>, ApiError> {
    caller.require(Scope::WebhooksRead)?;
    let tenant = caller.tenant.clone();
    let endpoints = state.ops.store.read(move |conn| webhooks::endpoints(conn, &tenant)).await?;
    Ok(axum::Json(Page::new(endpoints.iter().map(|e| e.object(false)).collect(), false)))
}

/// `DELETE /v1/webhook_endpoints/{id}`: stops future deliveries to it.
pub async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<DeletedEndpoint>, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    let (tenant, clock, endpoint_id) = (caller.tenant.clone(), state.ops.clock.clone(), id.clone());
    let deleted = state
        .ops
        .store
        .write(move |conn| webhooks::delete_endpoint(conn, &tenant, &endpoint_id, clock.now_ms()))
        .await?;
    if !deleted {
        return Err(ApiError::NotFound { what: "webhook endpoint" });
    }
    Ok(axum::Json(DeletedEndpoint::new(id)))
}

/// `POST /v1/webhook_endpoints/{id}/rotate_secret`: a new secret signs from
/// now on; the previous one keeps signing for the overlap (default 24 h).
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<WebhookEndpoint>, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    let body = read_body(&headers, body).await?;
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { &body };
    let fields = Fields::parse(body, &["previous_secret_expires_in_s"])?;
    let mut errors = fields.errors();
    let overlap_s = match fields.get("/previous_secret_expires_in_s") {
        None => ROTATION_OVERLAP_S_DEFAULT,
        Some(v) => match v.as_i64() {
            Some(s) if (0..=ROTATION_OVERLAP_S_MAX).contains(&s) => s,
            _ => {
                let message = format!("must be an integer from 0 to {ROTATION_OVERLAP_S_MAX} seconds");
                fail(&mut errors, "previous_secret_expires_in_s", message);
                0
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let (tenant, clock) = (caller.tenant.clone(), state.ops.clock.clone());
    let endpoint = state
        .ops
        .store
        .write(move |conn| webhooks::rotate_secret(conn, &tenant, &id, overlap_s, clock.now_ms()))
        .await?;
    Ok(axum::Json(endpoint.ok_or(ApiError::NotFound { what: "webhook endpoint" })?))
}

/// `POST /v1/webhook_endpoints/{id}/ping`: a `ping` event to this endpoint only.
pub async fn ping_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Response, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    let (tenant, clock) = (caller.tenant.clone(), state.ops.clock.clone());
    let event = state
        .ops
        .store
        .write(move |conn| {
            webhooks::ping(conn, &tenant, &id, clock.now_ms())?
                .ok_or_else(|| StoreError::rejected(ApiError::NotFound { what: "webhook endpoint" }))
        })
        .await?;
    Ok(created(event))
}

/// `GET /v1/events/{id}`: the event as delivered, with its delivery log.
pub async fn get_event(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Event>, ApiError> {
    caller.require(Scope::WebhooksRead)?;
    let tenant = caller.tenant.clone();
    let event = state.ops.store.read(move |conn| webhooks::event(conn, &tenant, &id)).await?;
    Ok(axum::Json(event.ok_or(ApiError::NotFound { what: "event" })?))
}

/// `POST /v1/events/{id}/redeliver`: sends the event again, now, to every
/// endpoint it was queued for (same event id, a new attempt).
pub async fn redeliver_event(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Event>, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    let (tenant, clock) = (caller.tenant.clone(), state.ops.clock.clone());
    let event = state.ops.store.write(move |conn| webhooks::redeliver(conn, &tenant, &id, clock.now_ms())).await?;
    Ok(axum::Json(event.ok_or(ApiError::NotFound { what: "event" })?))
}
