//! The HTTP layer: routes, the request id, keys and scopes, request bodies
//! read into typed inputs, and typed objects turned into responses. Only
//! this layer (and the admin API beside it) holds the application state;
//! handlers translate, the work is in `operations` and `domain`.
//!
//! May call: every layer below.

mod account;
pub mod admin;
mod admin_accounts;
mod admin_billers;
mod admin_trades;
mod approvals;
pub mod auth;
mod bills;
mod callbacks;
mod crypto;
mod errors;
mod extract;
pub mod fields;
mod fx;
mod gift_cards;
mod listing;
pub mod openapi;
mod payments;
pub mod rate_limit;
mod rmb;
pub mod serve;
mod transfers;
pub mod transport;
mod wallets;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Serialize;
use tracing::Instrument;

use crate::config::{FxSettings, SettlementSettings, WebhookSettings};
use crate::metrics::Metrics;
use crate::operations::Context;
use crate::values::error::{ApiError, REQUEST_ID};

/// The largest request body accepted.
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;

/// Everything a request handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// What money movements need: the store, the clock, the rails, wallets,
    /// messengers, and the settings of status checks and transfers.
    pub ops: Context,
    /// The FX-provider plugins quotes ask, behind a short cache
    /// (`domain::fx::RateSource`).
    pub fx_rates: Arc<crate::domain::fx::RateSource>,
    /// The operator's settings the API reads.
    pub settings: Arc<ApiSettings>,
    pub metrics: Arc<Metrics>,
    /// API keys recently verified (see `auth::KeyCache`).
    pub keys: Arc<auth::KeyCache>,
    /// Requests counted per API key (`[rate_limits]`).
    pub rate_limiter: Arc<rate_limit::RateLimiter>,
}

/// What an admin handler can reach: the API's state, behind the admin token.
#[derive(Clone)]
pub struct AdminState {
    pub token: Arc<str>,
    pub app: AppState,
}

/// The operator's settings the API reads.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub fx: FxSettings,
    pub webhooks: WebhookSettings,
    pub settlement: SettlementSettings,
    /// Whose word on a request's origin is believed (`transport`).
    pub trust: transport::Trust,
    /// Who may read `/metrics`.
    pub metrics_from: Vec<ipnet::IpNet>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/docs/errors", get(error_codes))
        .route("/openapi.json", get(openapi::serve))
        .route("/metrics", get(metrics))
        .route("/v1/payments", post(payments::create_payment))
        .route("/v1/payments/{id}", get(payments::get_payment))
        .route("/v1/transactions/verify", post(account::verify_transaction))
        .route("/v1/transactions/{lookup}", get(account::get_transaction))
        .route("/v1/customers/{phone}/wallets", get(wallets::list_wallets))
        .route("/v1/customers/{phone}/transactions", get(wallets::list_customer_transactions))
        .route(
            "/v1/customers/{phone}/wallet-access",
            post(approvals::request_wallet_access).delete(approvals::revoke_wallet_access),
        )
        .route("/v1/approvals/{id}", get(approvals::get_approval))
        .route("/v1/approvals/{id}/approve", post(approvals::approve))
        .route("/v1/approvals/{id}/refuse", post(approvals::refuse))
        .route("/v1/wallets/top-ups", post(wallets::create_top_up))
        .route("/v1/fx/quote", get(fx::get_quote))
        .route("/v1/fx/swaps", post(fx::create_swap))
        .route("/v1/webhook_endpoints", post(webhooks::create_endpoint).get(webhooks::list_endpoints))
        .route("/v1/webhook_endpoints/{id}", delete(webhooks::delete_endpoint))
        .route("/v1/webhook_endpoints/{id}/rotate_secret", post(webhooks::rotate_secret))
        .route("/v1/webhook_endpoints/{id}/ping", post(webhooks::ping_endpoint))
        .route("/v1/events/{id}", get(webhooks::get_event))
        .route("/v1/events/{id}/redeliver", post(webhooks::redeliver_event))
        .route(
            "/v1/callbacks/{plugin}",
            post(callbacks::receive_callback).put(callbacks::receive_callback).get(callbacks::receive_callback),
        )
        .route("/v1/disputes/{id}", get(payments::get_dispute))
        .route("/v1/refunds", post(payments::create_refund))
        .route("/v1/refunds/{id}", get(payments::get_refund))
        .route("/v1/account", get(account::get_account))
        .route("/v1/balance", get(account::get_balance))
        .route("/v1/settlements", get(account::list_settlements))
        .route("/v1/settlements/{id}", get(account::get_settlement))
        .route("/v1/scopes", get(account::list_scopes))
        .route("/v1/transfers", post(transfers::create_transfer).get(transfers::list_transfers))
        .route("/v1/transfers/{id}", get(transfers::get_transfer))
        .route("/v1/claims", post(transfers::create_claim))
        .route("/v1/test/messages", get(transfers::list_test_messages))
        .route("/v1/bills/catalog", get(bills::catalog))
        .route("/v1/bills/data-plans", get(bills::data_plans))
        .route("/v1/bills/cable-plans", get(bills::cable_plans))
        .route("/v1/bills/education-plans", get(bills::education_plans))
        .route("/v1/bills/epin-plans", get(bills::epin_plans))
        .route("/v1/bills/electricity/verify", post(bills::verify_electricity))
        .route("/v1/bills/cable/verify", post(bills::verify_cable))
        .route("/v1/bills/education/verify", post(bills::verify_education))
        .route("/v1/bills/bet/verify", post(bills::verify_bet))
        .route("/v1/bills/airtime", post(bills::buy_airtime))
        .route("/v1/bills/data", post(bills::buy_data))
        .route("/v1/bills/electricity", post(bills::buy_electricity))
        .route("/v1/bills/cable", post(bills::buy_cable))
        .route("/v1/bills/education", post(bills::buy_education))
        .route("/v1/bills/epin", post(bills::buy_epin))
        .route("/v1/bills/bet", post(bills::buy_bet))
        .route("/v1/crypto/assets", get(crypto::assets))
        .route("/v1/crypto/addresses", post(crypto::address))
        .route("/v1/crypto/test-deposit", post(crypto::test_deposit))
        .route("/v1/gift-cards/catalog", get(gift_cards::catalog))
        .route("/v1/gift-cards/sales", post(gift_cards::sell))
        .route("/v1/rmb/channels", get(rmb::channels))
        .route("/v1/rmb/rates", get(rmb::rates))
        .route("/v1/rmb/quote", get(rmb::quote))
        .route("/v1/rmb/orders", post(rmb::create_order))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Gives every request an id (echoed in `X-Request-Id`, in error bodies and
/// in every log line written while serving it) and records its metrics.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let id = crate::values::ids::new_id("req");
    let header_value = HeaderValue::from_str(&id).expect("ids are alphanumeric");
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let method = request.method().to_string();
    let span = tracing::info_span!("request", request_id = %id, %method, %route);
    let mut response = REQUEST_ID.scope(id, next.run(request)).instrument(span).await;
    response.headers_mut().insert("x-request-id", header_value);
    state.metrics.http_request(&route, &method, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// Prometheus metrics, for the scrapers the operator names
/// (`metrics_from`; nobody by default): volumes and error rates are not for
/// the internet. Others get the answer an unknown route gets.
async fn metrics(State(state): State<AppState>, ConnectInfo(peer): ConnectInfo<transport::Peer>, uri: Uri) -> Response {
    let peer_ip = peer.addr.ip().to_canonical();
    if !state.settings.metrics_from.iter().any(|net| net.contains(&peer_ip)) {
        return ApiError::RouteNotFound { method: "GET".into(), path: uri.path().to_string() }.into_response();
    }
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], state.metrics.encode()).into_response()
}

/// The gateway's own operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(health, error_codes, openapi::serve))]
struct Api;

/// What `/health` answers.
#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    /// `ok`, or `unavailable` when the database cannot be read.
    status: &'static str,
    /// The rails loaded, by name (while the database answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    rails: Option<Vec<String>>,
}

/// Every error code, what it means and what to do: the page each error's
/// `doc_url` points at (docs/errors.md).
#[utoipa::path(
    get,
    path = "/docs/errors",
    tag = "Gateway",
    responses((status = 200, description = "The errors page, Markdown.", body = String, content_type = "text/markdown")),
)]
async fn error_codes() -> Response {
    let page = crate::values::error::ERRORS_PAGE;
    ([(axum::http::header::CONTENT_TYPE, "text/markdown; charset=utf-8")], page).into_response()
}

/// Whether the gateway serves: its database answers.
#[utoipa::path(
    get,
    path = "/health",
    tag = "Gateway",
    responses(
        (status = 200, description = "Serving.", body = Health),
        (status = 503, description = "The database does not answer.", body = Health),
    ),
)]
async fn health(State(state): State<AppState>) -> Response {
    let database = state.ops.store.read(|conn| Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)).await;
    match database {
        Ok(_) => {
            let rails = state.ops.rails.rails().iter().map(|r| r.name().to_string()).collect();
            (StatusCode::OK, axum::Json(Health { status: "ok", rails: Some(rails) })).into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "health check: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(Health { status: "unavailable", rails: None })).into_response()
        }
    }
}

async fn route_not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::RouteNotFound { method: method.to_string(), path: uri.path().to_string() }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed { method: method.to_string(), path: uri.path().to_string() }
}
