//! Admin API for merchant accounts and their key pairs:
//!
//! - `POST /admin/merchants {name, kyc_tier?, kyb_status?}` → 201 account
//! - `GET /admin/merchants?starting_after=mer_…` → accounts, newest first,
//!   100 a page
//! - `GET /admin/merchants/{id}` → account with its key pairs
//! - `PATCH /admin/merchants/{id} {name?, kyc_tier?, kyb_status?, status?}`
//! - `POST /admin/merchants/{id}/keys {mode, scopes?, ip_allowlist?}` → 201
//!   pair with both keys in full (the only time they are shown)
//! - `POST /admin/keys/{pair_id}/rotate` → the pair with its new keys
//! - `DELETE /admin/keys/{pair_id}` → the pair, revoked
//! - `PUT /admin/merchants/{id}/payout_accounts {mode, currency, method,
//!   destination}` → where settlements pay the merchant
//! - `POST /admin/settlements/run` → a settlement batch now
//!
//! Every change that can refuse a key drops the merchant's cached keys, so
//! it takes effect on the next request.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde_json::Value;

use crate::accounts;
use crate::admin::AdminState;
use crate::error::ApiError;
use crate::keys;

pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/admin/merchants", post(create_merchant).get(list_merchants))
        .route("/admin/merchants/{id}", get(get_merchant).patch(update_merchant))
        .route("/admin/merchants/{id}/keys", post(create_key_pair))
        .route("/admin/keys/{pair_id}/rotate", post(rotate_key_pair))
        .route("/admin/keys/{pair_id}", delete(revoke_key_pair))
        .route("/admin/merchants/{id}/payout_accounts", put(set_payout_account))
        .route("/admin/settlements/run", post(run_settlements))
}

async fn create_merchant(State(state): State<AdminState>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let changes = accounts::parse_changes(&body, true)?;
    let account = state
        .app
        .store
        .write(move |conn| {
            let name = changes.name.as_deref().unwrap_or_default().trim();
            let kyb = changes.kyb_status.as_deref().unwrap_or("none");
            let id = accounts::create(conn, name, changes.kyc_tier.unwrap_or(0), kyb)?;
            accounts::load(conn, &id)
        })
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the new merchant vanished")))?;
    Ok((StatusCode::CREATED, axum::Json(account.json())).into_response())
}

#[derive(serde::Deserialize)]
struct Page {
    starting_after: Option<String>,
}

async fn list_merchants(
    State(state): State<AdminState>,
    axum::extract::Query(page): axum::extract::Query<Page>,
) -> Result<axum::Json<Value>, ApiError> {
    let accounts = state.app.store.read(move |conn| accounts::list(conn, page.starting_after.as_deref())).await?;
    let has_more = i64::try_from(accounts.len()).unwrap_or(i64::MAX) == accounts::LIST_LIMIT;
    let data: Vec<Value> = accounts.iter().map(accounts::Account::json).collect();
    Ok(axum::Json(serde_json::json!({ "object": "list", "data": data, "has_more": has_more })))
}

/// The account with its key pairs.
async fn get_merchant(State(state): State<AdminState>, Path(id): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    let found = state
        .app
        .store
        .read(move |conn| {
            let Some(account) = accounts::load(conn, &id)? else { return Ok(None) };
            Ok(Some((account, keys::pairs_json(conn, &id)?, crate::settlements::payout_accounts_json(conn, &id)?)))
        })
        .await?;
    let (account, pairs, payout_accounts) = found.ok_or(ApiError::NotFound { what: "merchant" })?;
    let mut body = account.json();
    body["key_pairs"] = pairs["data"].clone();
    body["payout_accounts"] = payout_accounts;
    Ok(axum::Json(body))
}

async fn update_merchant(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    let changes = accounts::parse_changes(&body, false)?;
    let merchant_id = id.clone();
    let account = state.app.store.write(move |conn| accounts::update(conn, &merchant_id, &changes)).await?;
    let account = account.ok_or(ApiError::NotFound { what: "merchant" })?;
    state.app.keys.forget(&id);
    tracing::info!(merchant = %id, status = %account.status, kyc_tier = account.kyc_tier, kyb = %account.kyb_status, "account updated");
    Ok(axum::Json(account.json()))
}

async fn create_key_pair(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let new = keys::parse_new_pair(&body)?;
    let pair = state.app.store.write(move |conn| keys::create_pair(conn, &id, &new)).await?;
    Ok((StatusCode::CREATED, axum::Json(pair)).into_response())
}

async fn rotate_key_pair(
    State(state): State<AdminState>,
    Path(pair_id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let (merchant_id, pair) = state.app.store.write(move |conn| keys::rotate_pair(conn, &pair_id)).await?;
    state.app.keys.forget(&merchant_id);
    Ok(axum::Json(pair))
}

async fn revoke_key_pair(
    State(state): State<AdminState>,
    Path(pair_id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let id = pair_id.clone();
    let merchant_id = state.app.store.write(move |conn| keys::revoke_pair(conn, &id)).await?;
    state.app.keys.forget(&merchant_id);
    Ok(axum::Json(serde_json::json!({ "object": "key_pair", "id": pair_id, "revoked": true })))
}

async fn set_payout_account(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    let account = crate::settlements::parse_payout_account(&body)?;
    let accounts = state
        .app
        .store
        .write(move |conn| {
            crate::settlements::set_payout_account(conn, &id, &account)?;
            crate::settlements::payout_accounts_json(conn, &id)
        })
        .await?;
    Ok(axum::Json(serde_json::json!({ "object": "list", "data": accounts })))
}

async fn run_settlements(State(state): State<AdminState>) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(crate::settlements::run(&state.app, crate::clock::now_ms()).await?))
}
