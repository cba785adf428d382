//! The account, its balances and settlements, the scopes, and
//! transactions looked up or verified.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;

use super::AppState;
use super::auth::{Caller, KeyContext};
use super::extract::{ApiPath, ApiQuery, read_body};
use super::fields::Fields;
use crate::domain::accounts::{self, Account};
use crate::domain::balances::{self, Balance};
use crate::domain::scopes::{self, Scope, ScopeInfo};
use crate::operations::objects::{Settlement, SettlementReport};
use crate::operations::settlements::SettlementRow;
use crate::operations::transactions::{self, Transaction, Verification, VerifyRequest};
use crate::values::error::ApiError;
use crate::values::page::Page;
use crate::values::status::TransactionKind;

/// The operations described here, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub(super) struct Api;

/// The longest reference `POST /v1/transactions/verify` looks up.
pub const REFERENCE_CHARS_MAX: usize = 255;

/// The account with the calling key's context.
#[derive(Serialize)]
pub struct AccountWithKey {
    #[serde(flatten)]
    account: Account,
    key: KeyContext,
}

/// `GET /v1/account`.
pub async fn get_account(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<AccountWithKey>, ApiError> {
    caller.require(Scope::AccountRead)?;
    let merchant_id = caller.tenant.merchant_id.clone();
    let account = state.ops.store.read(move |conn| accounts::load(conn, &merchant_id)).await?;
    let account = account.ok_or(ApiError::NotFound { what: "account" })?;
    Ok(axum::Json(AccountWithKey { account, key: caller.key_context() }))
}

/// `GET /v1/balance`: the caller's balances in the key's mode.
pub async fn get_balance(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Balance>, ApiError> {
    caller.require(Scope::BalanceRead)?;
    let hold_ms = i64::try_from(state.settings.settlement.hold_ms).unwrap_or(i64::MAX);
    let cutoff_ms = state.ops.clock.now_ms().saturating_sub(hold_ms);
    let tenant = caller.tenant.clone();
    Ok(axum::Json(state.ops.store.read(move |conn| balances::balance(conn, &tenant, cutoff_ms)).await?))
}

/// `GET /v1/settlements`: the caller's newest settlements.
pub async fn list_settlements(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Page<Settlement>>, ApiError> {
    caller.require(Scope::BalanceRead)?;
    let tenant = caller.tenant.clone();
    let data = state.ops.store.read(move |conn| SettlementRow::list(conn, &tenant)).await?;
    Ok(axum::Json(Page::new(data, false)))
}

/// `GET /v1/settlements/{id}`: one settlement with its report lines.
pub async fn get_settlement(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<SettlementReport>, ApiError> {
    caller.require(Scope::BalanceRead)?;
    let tenant = caller.tenant.clone();
    let report = state
        .ops
        .store
        .read(move |conn| match crate::store::load_owned::<SettlementRow>(conn, &tenant, &id)? {
            Some(settlement) => settlement.report(conn).map(Some),
            None => Ok(None),
        })
        .await?;
    Ok(axum::Json(report.ok_or(ApiError::NotFound { what: "settlement" })?))
}

/// `GET /v1/scopes`: every scope, for any valid key.
pub async fn list_scopes(_caller: Caller) -> axum::Json<Page<ScopeInfo>> {
    axum::Json(Page::new(scopes::list(), false))
}

/// `GET /v1/transactions/{idempotency key, reference or id}`.
pub async fn get_transaction(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(lookup): ApiPath,
    ApiQuery(query): ApiQuery,
) -> Result<axum::Json<Transaction>, ApiError> {
    caller.require(Scope::TransactionsRead)?;
    let mut kind = None;
    for (name, value) in &query {
        match name.as_str() {
            "type" => {
                kind =
                    Some(TransactionKind::parse(value).ok_or_else(|| {
                        ApiError::invalid("type", format!("must be one of {}", TransactionKind::words()))
                    })?)
            }
            other => return Err(ApiError::invalid(other, "is not a known parameter; expected type")),
        }
    }
    Ok(axum::Json(transactions::find(&state.ops.store, &caller.tenant, lookup, kind).await?))
}

/// `POST /v1/transactions/verify`: reads only, so no idempotency key is needed.
pub async fn verify_transaction(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<Verification>, ApiError> {
    caller.require(Scope::TransactionsRead)?;
    let body = read_body(&headers, body).await?;
    let fields = Fields::parse(&body, &["reference", "amount", "currency"])?;
    let mut errors = fields.errors();
    let reference = fields.string("reference", REFERENCE_CHARS_MAX, true, &mut errors);
    let amount = fields.amount(&mut errors);
    let currency = fields.currency("currency", &mut errors);
    let request = match (reference, amount, currency) {
        (Some(reference), Some(amount_minor), Some(currency)) => {
            Some(VerifyRequest { reference, amount_minor, currency })
        }
        _ => None,
    };
    let request = fields.done(request, errors)?.value;
    Ok(axum::Json(transactions::verify(&state.ops.store, &caller.tenant, request).await?))
}
