//! HTTP: routes, the request id, body limits, and turning results into
//! responses. Handlers here only translate; the work is in domain modules.

use axum::Router;
use axum::body::Body;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};
use tracing::Instrument;

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, REQUEST_ID};
use crate::idempotency::Reply;
use crate::scopes::Scope;
use crate::{fx, history, payments, wallets, webhooks};

/// The largest request body accepted.
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/payments", post(create_payment))
        .route("/v1/payments/{id}", get(get_payment))
        .route("/v1/transactions/verify", post(verify_transaction))
        .route("/v1/transactions/{lookup}", get(get_transaction))
        .route("/v1/customers/{phone}/wallets", get(list_wallets))
        .route("/v1/customers/{phone}/transactions", get(list_customer_transactions))
        .route("/v1/wallets/top-ups", post(create_top_up))
        .route("/v1/fx/quote", get(get_fx_quote))
        .route("/v1/fx/swaps", post(create_fx_swap))
        .route("/v1/webhook_endpoints", post(create_webhook_endpoint).get(list_webhook_endpoints))
        .route("/v1/webhook_endpoints/{id}", delete(delete_webhook_endpoint))
        .route("/v1/webhook_endpoints/{id}/rotate_secret", post(rotate_webhook_secret))
        .route("/v1/webhook_endpoints/{id}/ping", post(ping_webhook_endpoint))
        .route("/v1/events/{id}", get(get_event))
        .route("/v1/events/{id}/redeliver", post(redeliver_event))
        .route("/v1/callbacks/{plugin}", post(receive_callback).put(receive_callback).get(receive_callback))
        .route("/v1/disputes/{id}", get(get_dispute))
        .route("/v1/refunds", post(create_refund))
        .route("/v1/refunds/{id}", get(get_refund))
        .route("/v1/account", get(get_account))
        .route("/v1/balance", get(get_balance))
        .route("/v1/settlements", get(list_settlements))
        .route("/v1/settlements/{id}", get(get_settlement))
        .route("/v1/scopes", get(list_scopes))
        .route("/v1/transfers", post(create_transfer).get(list_transfers))
        .route("/v1/transfers/{id}", get(get_transfer))
        .route("/v1/claims", post(create_claim))
        .route("/v1/test/messages", get(list_test_messages))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Gives every request an id (echoed in `X-Request-Id`, in error bodies and
/// in every log line written while serving it) and records its metrics.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let id = crate::ids::new_id("req");
    let header_value = HeaderValue::from_str(&id).expect("ids are alphanumeric");
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let method = request.method().to_string();
    let span = tracing::info_span!("request", request_id = %id, %method, %route);
    let mut response = REQUEST_ID.scope(id, next.run(request)).instrument(span).await;
    response.headers_mut().insert("x-request-id", header_value);
    state.metrics.http_request(&route, &method, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// Prometheus metrics, for scrapers on this machine only (a local agent or
/// an SSH tunnel): volumes and error rates are not for the internet.
async fn metrics(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<crate::transport::Peer>,
    uri: Uri,
) -> Response {
    if !peer.addr.ip().to_canonical().is_loopback() {
        return ApiError::RouteNotFound { method: "GET".into(), path: uri.path().to_string() }.into_response();
    }
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], state.metrics.encode()).into_response()
}

async fn health(State(state): State<AppState>) -> Response {
    let database = state.store.read(|conn| Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)).await;
    let rails: Vec<String> = state.registry.rails().iter().map(|r| r.name().to_string()).collect();
    match database {
        Ok(_) => (StatusCode::OK, axum::Json(json!({ "status": "ok", "rails": rails }))).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "health check: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({ "status": "unavailable" }))).into_response()
        }
    }
}

/// The one path parameter of a route; a malformed one (bad percent
/// encoding) is a 400 in the error envelope, like every other bad input.
struct ApiPath(String);

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
struct ApiQuery(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for ApiQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<ApiQuery, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("query", e.body_text()))?;
        Ok(ApiQuery(pairs))
    }
}

/// What every idempotent write needs: a key with `scope`, the idempotency
/// key, and the body within its limit.
async fn write_request(
    caller: &Caller,
    scope: Scope,
    headers: &HeaderMap,
    body: Body,
) -> Result<(String, axum::body::Bytes), ApiError> {
    caller.require(scope)?;
    let key = crate::idempotency::key_from_headers(headers)?;
    let body = read_body(headers, body).await?;
    Ok((key, body))
}

/// Sends a write's stored answer, marking replays.
fn reply_response(reply: Reply) -> Result<Response, ApiError> {
    let status = StatusCode::from_u16(reply.status).map_err(|e| ApiError::Internal(e.into()))?;
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], reply.body).into_response();
    if reply.replayed {
        response.headers_mut().insert("idempotency-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

async fn create_payment(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (key, body) = write_request(&caller, Scope::PaymentsWrite, &headers, body).await?;
    let request = payments::parse_new_payment(&body)?;
    reply_response(payments::create(&state, &caller, key, request).await?)
}

async fn create_top_up(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (key, body) = write_request(&caller, Scope::WalletWrite, &headers, body).await?;
    let request = wallets::parse_top_up(&body)?;
    reply_response(wallets::top_up(&state, &caller, key, request).await?)
}

async fn create_fx_swap(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (key, body) = write_request(&caller, Scope::FxWrite, &headers, body).await?;
    let request = fx::parse_swap(&body)?;
    reply_response(fx::swap(&state, &caller, key, request).await?)
}

async fn get_fx_quote(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::FxRead)?;
    Ok(axum::Json(fx::quote(&state, &caller, &query).await?))
}

async fn list_wallets(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(phone): ApiPath,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::WalletRead)?;
    Ok(axum::Json(wallets::list(&state, &caller, phone).await?))
}

async fn list_customer_transactions(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(phone): ApiPath,
    ApiQuery(query): ApiQuery,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::WalletRead)?;
    Ok(axum::Json(history::list(&state, &caller, phone, &query).await?))
}

async fn get_payment(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::PaymentsRead)?;
    Ok(axum::Json(payments::get(&state, &caller, id).await?))
}

/// Reads only, so no idempotency key is needed.
async fn verify_transaction(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::TransactionsRead)?;
    let body = read_body(&headers, body).await?;
    Ok(axum::Json(history::verify(&state, &caller, &body).await?))
}

async fn get_transaction(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(lookup): ApiPath,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::TransactionsRead)?;
    Ok(axum::Json(history::find(&state, &caller, lookup).await?))
}

async fn create_webhook_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    let body = read_body(&headers, body).await?;
    let endpoint = webhooks::create_endpoint(&state, &caller, &body).await?;
    Ok((StatusCode::CREATED, axum::Json(endpoint)).into_response())
}

async fn list_webhook_endpoints(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::WebhooksRead)?;
    Ok(axum::Json(webhooks::list_endpoints(&state, &caller).await?))
}

async fn delete_webhook_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    Ok(axum::Json(webhooks::delete_endpoint(&state, &caller, id).await?))
}

async fn rotate_webhook_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    let body = read_body(&headers, body).await?;
    Ok(axum::Json(webhooks::rotate_secret(&state, &caller, id, &body).await?))
}

async fn ping_webhook_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Response, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    let event = webhooks::ping(&state, &caller, id).await?;
    Ok((StatusCode::CREATED, axum::Json(event)).into_response())
}

async fn get_event(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::WebhooksRead)?;
    Ok(axum::Json(webhooks::get_event(&state, &caller, id).await?))
}

async fn redeliver_event(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    Ok(axum::Json(webhooks::redeliver(&state, &caller, id).await?))
}

async fn create_refund(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (key, body) = write_request(&caller, Scope::RefundsWrite, &headers, body).await?;
    let request = crate::refunds::parse_new_refund(&body)?;
    reply_response(crate::refunds::create(&state, &caller, key, request).await?)
}

async fn get_refund(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::RefundsRead)?;
    Ok(axum::Json(crate::refunds::get(&state, &caller, id).await?))
}

/// `GET /v1/account`: the account and the calling key's context.
async fn get_account(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::AccountRead)?;
    let merchant_id = caller.merchant_id.clone();
    let account = state.store.read(move |conn| crate::accounts::load(conn, &merchant_id)).await?;
    let mut body = account.ok_or(ApiError::NotFound { what: "account" })?.json();
    body["key"] = caller.key_json();
    Ok(axum::Json(body))
}

/// `GET /v1/balance`: the caller's balances in the key's mode.
async fn get_balance(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::BalanceRead)?;
    let (mode, merchant_id) = (caller.mode, caller.merchant_id.clone());
    let cutoff_ms = crate::clock::now_ms().saturating_sub(i64::try_from(state.settlement.hold_ms).unwrap_or(i64::MAX));
    Ok(axum::Json(state.store.read(move |conn| crate::balances::json(conn, mode, &merchant_id, cutoff_ms)).await?))
}

/// `GET /v1/settlements`: the caller's newest settlements.
async fn list_settlements(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::BalanceRead)?;
    let (mode, merchant_id) = (caller.mode, caller.merchant_id.clone());
    Ok(axum::Json(state.store.read(move |conn| crate::settlements::list_json(conn, &merchant_id, mode)).await?))
}

/// `GET /v1/settlements/{id}`: one settlement with its report lines.
async fn get_settlement(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::BalanceRead)?;
    let (mode, merchant_id) = (caller.mode, caller.merchant_id.clone());
    let found = state.store.read(move |conn| crate::settlements::report_json(conn, &merchant_id, mode, &id)).await?;
    Ok(axum::Json(found.ok_or(ApiError::NotFound { what: "settlement" })?))
}

async fn create_transfer(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (key, body) = write_request(&caller, Scope::TransfersWrite, &headers, body).await?;
    let request = crate::transfers::parse(&body)?;
    reply_response(crate::transfers::create(&state, &caller, key, request).await?)
}

async fn list_transfers(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::TransfersRead)?;
    Ok(axum::Json(crate::transfers::list(&state, &caller, &query).await?))
}

async fn get_transfer(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::TransfersRead)?;
    Ok(axum::Json(crate::transfers::get(&state, &caller, id).await?))
}

/// `POST /v1/claims`: public keys may call it (a claim page, a chat bot).
async fn create_claim(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (key, body) = write_request(&caller, Scope::ClaimsWrite, &headers, body).await?;
    let request = crate::transfers::parse_claim(&body)?;
    reply_response(crate::transfers::claim(&state, &caller, key, request).await?)
}

/// `GET /v1/test/messages[?phone=]`: the sandbox's outbox.
async fn list_test_messages(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::TransfersRead)?;
    let mut phone = None;
    for (name, value) in query {
        match name.as_str() {
            "phone" => phone = Some(value),
            other => return Err(ApiError::invalid(other, "is not a known parameter; expected phone")),
        }
    }
    Ok(axum::Json(crate::messaging::list_test(&state, &caller, phone).await?))
}

/// `GET /v1/scopes`: every scope, for any valid key.
async fn list_scopes(_caller: Caller) -> axum::Json<Value> {
    axum::Json(crate::scopes::list_json())
}

async fn get_dispute(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require(Scope::DisputesRead)?;
    Ok(axum::Json(crate::disputes::get(&state, &caller, id).await?))
}

/// A provider's callback: no API key (providers have none); the plugin it
/// names authenticates it. It goes to the messenger of that plugin name (any
/// method: channels check the URL with a GET), else to the rail (POST, PUT).
async fn receive_callback(
    State(state): State<AppState>,
    ApiPath(plugin): ApiPath,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let query = uri.query().unwrap_or("").to_string();
    let body = read_body(&headers, body).await?;
    let headers = headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
        .collect();
    if let Some(messenger) = state.messengers.by_plugin(&plugin).cloned() {
        let incoming =
            crate::messaging::IncomingCallback { method: method.to_string(), query, headers, body: body.to_vec() };
        let (status, text) = crate::messaging::receive_callback(&state, messenger, incoming).await?;
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        return Ok((status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
    }
    if method == Method::GET {
        return Err(ApiError::MethodNotAllowed { method: method.to_string(), path: uri.path().to_string() });
    }
    let answer = crate::rail_updates::receive_callback(&state, &plugin, headers, query, body.to_vec()).await?;
    Ok(axum::Json(answer).into_response())
}

async fn route_not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::RouteNotFound { method: method.to_string(), path: uri.path().to_string() }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed { method: method.to_string(), path: uri.path().to_string() }
}

/// Reads the whole body, refusing more than `REQUEST_BODY_BYTES_MAX`.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let too_large = ApiError::PayloadTooLarge { limit_bytes: REQUEST_BODY_BYTES_MAX };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > REQUEST_BODY_BYTES_MAX as u64) {
        return Err(too_large);
    }
    // Past the declared length, a chunked body can still run over: the limit
    // error is the only way to_bytes fails on a body we accepted.
    axum::body::to_bytes(body, REQUEST_BODY_BYTES_MAX).await.map_err(|_| too_large)
}
