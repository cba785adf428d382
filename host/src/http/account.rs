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
#[openapi(paths(
    get_account,
    get_balance,
    list_settlements,
    get_settlement,
    list_scopes,
    get_transaction,
    verify_transaction
))]
pub(super) struct Api;

/// The longest reference `POST /v1/transactions/verify` looks up.
pub const REFERENCE_CHARS_MAX: usize = 255;

/// The account with the calling key's context.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountWithKey {
    #[serde(flatten)]
    account: Account,
    key: KeyContext,
}

/// Retrieve the account
///
/// The merchant account the key belongs to (its verification and status),
/// with the calling key's own context: its mode, kind, scopes and IP
/// allowlist.
#[utoipa::path(
    get,
    path = "/v1/account",
    tag = "Account",
    responses((status = 200, description = "The account, with the calling key.", body = AccountWithKey)),
    security(("api_key" = ["account:read"])),
)]
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

/// Retrieve the balance
///
/// The merchant's balances in the key's mode, one line per currency and
/// entity: pending (not yet settleable), available (past the settlement
/// hold), in transit to the merchant and reserved.
#[utoipa::path(
    get,
    path = "/v1/balance",
    tag = "Account",
    responses((status = 200, description = "The balance.", body = Balance)),
    security(("api_key" = ["balance:read"])),
)]
pub async fn get_balance(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Balance>, ApiError> {
    caller.require(Scope::BalanceRead)?;
    let hold_ms = i64::try_from(state.settings.settlement.hold_ms).unwrap_or(i64::MAX);
    let cutoff_ms = state.ops.clock.now_ms().saturating_sub(hold_ms);
    let tenant = caller.tenant.clone();
    Ok(axum::Json(state.ops.store.read(move |conn| balances::balance(conn, &tenant, cutoff_ms)).await?))
}

/// List settlements
///
/// The merchant's newest settlements in the key's mode, at most 100, in
/// one page (`has_more` is always `false`).
#[utoipa::path(
    get,
    path = "/v1/settlements",
    tag = "Account",
    responses((status = 200, description = "The settlements, newest first.", body = Page<Settlement>)),
    security(("api_key" = ["balance:read"])),
)]
pub async fn list_settlements(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Page<Settlement>>, ApiError> {
    caller.require(Scope::BalanceRead)?;
    let tenant = caller.tenant.clone();
    let data = state.ops.store.read(move |conn| SettlementRow::list(conn, &tenant)).await?;
    Ok(axum::Json(Page::new(data, false)))
}

/// Retrieve a settlement
///
/// One settlement with its report: the ledger lines it paid out.
#[utoipa::path(
    get,
    path = "/v1/settlements/{id}",
    tag = "Account",
    params(("id" = String, Path, description = "The settlement's id (`stl_…`).")),
    responses((status = 200, description = "The settlement with its report lines.", body = SettlementReport)),
    security(("api_key" = ["balance:read"])),
)]
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

/// List scopes
///
/// Every scope a key can carry, what it grants, and whether public keys
/// may use it. Any valid key may ask, whatever its scopes.
#[utoipa::path(
    get,
    path = "/v1/scopes",
    tag = "Account",
    responses((status = 200, description = "Every scope.", body = Page<ScopeInfo>)),
    security(("api_key" = [])),
)]
pub async fn list_scopes(_caller: Caller) -> axum::Json<Page<ScopeInfo>> {
    axum::Json(Page::new(scopes::list(), false))
}

/// Retrieve a transaction
///
/// Any money movement of the merchant's (payment, refund, top-up, swap,
/// transfer, bill payment, RMB purchase, gift card or crypto sale,
/// settlement), looked up by the idempotency key that made it, its
/// reference, or its id. `type` restricts the answer to one kind: a
/// transaction of another kind is not found.
#[utoipa::path(
    get,
    path = "/v1/transactions/{lookup}",
    tag = "Transactions",
    params(
        ("lookup" = String, Path, description = "The transaction's idempotency key, reference or id."),
        ("type" = Option<TransactionKind>, Query, description = "Only a transaction of this kind."),
    ),
    responses((status = 200, description = "The transaction, as its own object.", body = Transaction)),
    security(("api_key" = ["transactions:read"])),
)]
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

/// Verify a payment
///
/// Whether the payment a reference (or id, or idempotency key) names
/// completed for exactly this amount and currency: gate fulfilment on
/// `verified: true`; otherwise `reason` says which check failed first.
/// Only payments verify. It reads only, so it takes no idempotency key.
#[utoipa::path(
    post,
    path = "/v1/transactions/verify",
    tag = "Transactions",
    request_body = doc::VerifyBody,
    responses((status = 200, description = "The verdict, with the payment when one was found.", body = Verification)),
    security(("api_key" = ["transactions:read"])),
)]
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

/// The request body as the OpenAPI document shows it (read by hand above,
/// so that every bad field is reported).
#[allow(dead_code)]
mod doc {
    use crate::http::openapi::AmountMinor;
    use crate::values::money::Currency;

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"reference": "PAY20260301120000K7Q2M9XA", "amount": 1250, "currency": "USD"})))]
    pub struct VerifyBody {
        /// The payment's reference, id or idempotency key.
        #[schema(max_length = 255)]
        reference: String,
        /// The amount the payment must have been for.
        amount: AmountMinor,
        currency: Currency,
    }
}
