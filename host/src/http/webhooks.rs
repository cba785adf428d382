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
#[openapi(paths(
    create_endpoint,
    list_endpoints,
    delete_endpoint,
    rotate_secret,
    ping_endpoint,
    get_event,
    redeliver_event
), modifiers(&OptionalBody))]
pub(super) struct Api;

/// `rotate_secret` reads an empty body as `{}`: its body is optional.
struct OptionalBody;

impl utoipa::Modify for OptionalBody {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let rotate = openapi.paths.paths.get_mut("/v1/webhook_endpoints/{id}/rotate_secret");
        if let Some(body) = rotate.and_then(|item| item.post.as_mut()).and_then(|op| op.request_body.as_mut()) {
            body.required = Some(utoipa::openapi::Required::False);
        }
    }
}

/// Create a webhook endpoint
///
/// Adds a URL the gateway posts events to (at most 3 per account and mode),
/// subscribed to the event types listed or to all (`["*"]`). The answer
/// holds the signing secret; it is shown here and on rotation only.
#[utoipa::path(
    post,
    path = "/v1/webhook_endpoints",
    tag = "Webhooks",
    request_body = doc::NewEndpointBody,
    responses((status = 201, description = "The endpoint, with its signing secret.", body = WebhookEndpoint)),
    security(("api_key" = ["webhooks:write"])),
)]
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

/// List webhook endpoints
///
/// Every endpoint of the account in the key's mode, oldest first, without
/// their secrets: one page that holds them all.
#[utoipa::path(
    get,
    path = "/v1/webhook_endpoints",
    tag = "Webhooks",
    responses((status = 200, description = "The endpoints.", body = Page<WebhookEndpoint>)),
    security(("api_key" = ["webhooks:read"])),
)]
pub async fn list_endpoints(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Page<WebhookEndpoint>>, ApiError> {
    caller.require(Scope::WebhooksRead)?;
    let tenant = caller.tenant.clone();
    let endpoints = state.ops.store.read(move |conn| webhooks::endpoints(conn, &tenant)).await?;
    Ok(axum::Json(Page::new(endpoints.iter().map(|e| e.object(false)).collect(), false)))
}

/// Delete a webhook endpoint
///
/// Stops future deliveries to it, including retries of events already
/// queued.
#[utoipa::path(
    delete,
    path = "/v1/webhook_endpoints/{id}",
    tag = "Webhooks",
    params(("id" = String, Path, description = "The endpoint's id (`we_…`).")),
    responses((status = 200, description = "The endpoint is deleted.", body = DeletedEndpoint)),
    security(("api_key" = ["webhooks:write"])),
)]
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

/// Rotate a webhook endpoint's secret
///
/// A new secret signs deliveries from now on; the previous one keeps
/// signing them too for the overlap asked (24 hours if the body is empty or
/// leaves it out), so the receiver can switch without losing events.
#[utoipa::path(
    post,
    path = "/v1/webhook_endpoints/{id}/rotate_secret",
    tag = "Webhooks",
    params(("id" = String, Path, description = "The endpoint's id (`we_…`).")),
    request_body(
        content = doc::RotateSecretBody,
        description = "Optional: an empty body keeps the previous secret for 24 hours.",
    ),
    responses((status = 200, description = "The endpoint, with its new signing secret.", body = WebhookEndpoint)),
    security(("api_key" = ["webhooks:write"])),
)]
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

/// Ping a webhook endpoint
///
/// Sends a `ping` event (about the endpoint itself) to this endpoint only,
/// to test that it receives and verifies deliveries. The request body, if
/// any, is ignored.
#[utoipa::path(
    post,
    path = "/v1/webhook_endpoints/{id}/ping",
    tag = "Webhooks",
    params(("id" = String, Path, description = "The endpoint's id (`we_…`).")),
    responses((status = 201, description = "The `ping` event, queued for delivery.", body = Event)),
    security(("api_key" = ["webhooks:write"])),
)]
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

/// Retrieve an event
///
/// The event as every delivery of it sends it, with the log of its
/// deliveries and their attempts.
#[utoipa::path(
    get,
    path = "/v1/events/{id}",
    tag = "Webhooks",
    params(("id" = String, Path, description = "The event's id (`evt_…`).")),
    responses((status = 200, description = "The event.", body = Event)),
    security(("api_key" = ["webhooks:read"])),
)]
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

/// Redeliver an event
///
/// Sends the event again, now, to every endpoint it was queued for that is
/// not deleted (same event id, a fresh retry schedule). The request body,
/// if any, is ignored.
#[utoipa::path(
    post,
    path = "/v1/events/{id}/redeliver",
    tag = "Webhooks",
    params(("id" = String, Path, description = "The event's id (`evt_…`).")),
    responses((status = 200, description = "The event, its deliveries due again.", body = Event)),
    security(("api_key" = ["webhooks:write"])),
)]
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

/// The request bodies as the OpenAPI document shows them (read by hand
/// above, so that every bad field is reported).
#[allow(dead_code)]
mod doc {
    use crate::domain::webhooks::{EventType, ROTATION_OVERLAP_S_MAX, URL_CHARS_MAX};

    const _: () = assert!(URL_CHARS_MAX == 2048, "NewEndpointBody documents the URL's length");
    const _: () = assert!(ROTATION_OVERLAP_S_MAX == 604_800, "RotateSecretBody documents the overlap");

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"url": "https://merchant.example/webhooks/soxara", "events": ["payment.succeeded", "payment.failed"]})))]
    pub struct NewEndpointBody {
        /// Where events are posted: an absolute `http://` or `https://` URL
        /// (`https://` for live keys) of a public host: loopback, private
        /// and other special-purpose addresses are refused unless the
        /// operator allows them.
        #[schema(format = "uri", max_length = 2048, pattern = "^[hH][tT][tT][pP][sS]?://[^/?#]")]
        url: String,
        /// The event types to send, or `["*"]` for every type.
        #[schema(min_items = 1)]
        events: Vec<EventSubscription>,
    }

    /// An event type, or `*` for all.
    pub struct EventSubscription;

    impl utoipa::PartialSchema for EventSubscription {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            let words = EventType::ALL.iter().map(|e| e.as_str()).chain([crate::domain::webhooks::EVERY_EVENT]);
            utoipa::openapi::schema::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .enum_values(Some(words))
                .description(Some("An event type, or `*` for all."))
                .into()
        }
    }

    impl utoipa::ToSchema for EventSubscription {}

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"previous_secret_expires_in_s": 3600})))]
    pub struct RotateSecretBody {
        /// How long the previous secret keeps signing too, in seconds (0
        /// to 7 days; 24 hours if absent).
        #[schema(minimum = 0, maximum = 604800)]
        previous_secret_expires_in_s: Option<i64>,
    }
}
