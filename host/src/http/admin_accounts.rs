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
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use serde::Serialize;

use super::AdminState;
use super::extract::created;
use super::fields::{Fields, fail};
use crate::domain::accounts::{self, Account, Changes, KYC_TIER_MAX, NAME_CHARS_MAX};
use crate::domain::keys::{self, ALLOWLIST_ENTRIES_MAX, KeyPair, NewPair};
use crate::domain::scopes::ScopeSet;
use crate::operations::settlement_batches::{self, Batch, PayoutAccount};
use crate::store::StoreError;
use crate::values::error::ApiError;
use crate::values::method::Method;
use crate::values::mode::Mode;
use crate::values::page::Page;
use crate::values::status::{AccountStatus, KybStatus, ObjectType};

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

/// Reads `{name?, kyc_tier?, kyb_status?, status?}`; `name` is required
/// when `creating`, and `status` cannot be set then (a new account is active).
fn parse_changes(body: &[u8], creating: bool) -> Result<Changes, ApiError> {
    let known: &[&str] =
        if creating { &["name", "kyc_tier", "kyb_status"] } else { &["name", "kyc_tier", "kyb_status", "status"] };
    let fields = Fields::parse(body, known)?;
    let mut errors = fields.errors();
    let name = fields.string("name", NAME_CHARS_MAX, creating, &mut errors);
    if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        fail(&mut errors, "name", "must not be blank");
    }
    let kyc_tier = match fields.get("/kyc_tier") {
        None => None,
        Some(value) => match value.as_u64().and_then(|t| u8::try_from(t).ok()).filter(|t| *t <= KYC_TIER_MAX) {
            Some(tier) => Some(tier),
            None => {
                fail(&mut errors, "kyc_tier", format!("must be an integer from 0 to {KYC_TIER_MAX}"));
                None
            }
        },
    };
    let kyb_status = fields.string("kyb_status", 20, false, &mut errors).and_then(|value| {
        KybStatus::parse(&value).or_else(|| {
            fail(&mut errors, "kyb_status", format!("must be one of: {}", KybStatus::words()));
            None
        })
    });
    let status = fields.string("status", 20, false, &mut errors).and_then(|value| {
        AccountStatus::parse(&value).or_else(|| {
            fail(&mut errors, "status", format!("must be one of: {}", AccountStatus::words()));
            None
        })
    });
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(Changes { name, kyc_tier, kyb_status, status })
}

async fn create_merchant(State(state): State<AdminState>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let changes = parse_changes(&body, true)?;
    let clock = state.app.ops.clock.clone();
    let account = state
        .app
        .ops
        .store
        .write(move |conn| {
            let name = changes.name.as_deref().unwrap_or_default().trim();
            let kyb = changes.kyb_status.unwrap_or(KybStatus::None);
            let id = accounts::create(conn, name, changes.kyc_tier.unwrap_or(0), kyb, clock.now_ms())?;
            accounts::load(conn, &id)
        })
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the new merchant vanished")))?;
    Ok(created(account))
}

#[derive(serde::Deserialize)]
struct PageQuery {
    starting_after: Option<String>,
}

async fn list_merchants(
    State(state): State<AdminState>,
    axum::extract::Query(page): axum::extract::Query<PageQuery>,
) -> Result<axum::Json<Page<Account>>, ApiError> {
    let accounts = state.app.ops.store.read(move |conn| accounts::list(conn, page.starting_after.as_deref())).await?;
    let has_more = i64::try_from(accounts.len()).unwrap_or(i64::MAX) == accounts::LIST_LIMIT;
    Ok(axum::Json(Page::new(accounts, has_more)))
}

/// An account with its key pairs and payout accounts.
#[derive(Serialize)]
struct MerchantDetails {
    #[serde(flatten)]
    account: Account,
    key_pairs: Vec<KeyPair>,
    payout_accounts: Vec<PayoutAccount>,
}

async fn get_merchant(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<axum::Json<MerchantDetails>, ApiError> {
    let found = state
        .app
        .ops
        .store
        .read(move |conn| {
            let Some(account) = accounts::load(conn, &id)? else { return Ok(None) };
            let key_pairs = keys::pairs(conn, &id)?;
            let payout_accounts = settlement_batches::payout_accounts(conn, &id)?;
            Ok(Some(MerchantDetails { account, key_pairs, payout_accounts }))
        })
        .await?;
    Ok(axum::Json(found.ok_or(ApiError::NotFound { what: "merchant" })?))
}

async fn update_merchant(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<axum::Json<Account>, ApiError> {
    let changes = parse_changes(&body, false)?;
    let merchant_id = id.clone();
    let account = state.app.ops.store.write(move |conn| accounts::update(conn, &merchant_id, &changes)).await?;
    let account = account.ok_or(ApiError::NotFound { what: "merchant" })?;
    state.app.keys.forget(&id);
    tracing::info!(merchant = %id, status = %account.status, kyc_tier = account.kyc_tier, kyb = %account.kyb_status, "account updated");
    Ok(axum::Json(account))
}

/// Reads `{mode, scopes?, ip_allowlist?}`.
fn parse_new_pair(body: &[u8]) -> Result<NewPair, ApiError> {
    let fields = Fields::parse(body, &["mode", "scopes", "ip_allowlist"])?;
    let mut errors = fields.errors();
    let mode = fields.string("mode", 10, true, &mut errors).and_then(|m| {
        Mode::parse(&m).or_else(|| {
            fail(&mut errors, "mode", "must be test or live");
            None
        })
    });
    let strings = |field: &str, errors: &mut Vec<_>| -> Option<Vec<String>> {
        let value = fields.get(&format!("/{field}"))?;
        let list: Option<Vec<String>> =
            value.as_array().and_then(|items| items.iter().map(|i| i.as_str().map(str::to_string)).collect());
        if list.is_none() {
            fail(errors, field, "must be an array of strings");
        }
        list
    };
    let scopes = strings("scopes", &mut errors).and_then(|names| {
        if names.is_empty() {
            fail(&mut errors, "scopes", "must name at least one scope (leave it out for every scope)");
            return None;
        }
        ScopeSet::parse(names.iter().map(String::as_str)).map_err(|why| fail(&mut errors, "scopes", why)).ok()
    });
    let ip_allowlist = strings("ip_allowlist", &mut errors).and_then(|entries| {
        if entries.is_empty() || entries.len() > ALLOWLIST_ENTRIES_MAX {
            let why = format!("must list 1 to {ALLOWLIST_ENTRIES_MAX} addresses (leave it out for any address)");
            fail(&mut errors, "ip_allowlist", why);
            return None;
        }
        entries
            .iter()
            .map(|entry| keys::parse_allowed(entry))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|why| fail(&mut errors, "ip_allowlist", why))
            .ok()
    });
    match mode {
        Some(mode) if errors.is_empty() => Ok(NewPair { mode, scopes, ip_allowlist }),
        _ => Err(ApiError::Validation(errors)),
    }
}

async fn create_key_pair(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let new = parse_new_pair(&body)?;
    let clock = state.app.ops.clock.clone();
    let pair = state.app.ops.store.write(move |conn| keys::create_pair(conn, &id, &new, clock.now_ms())).await?;
    Ok(created(pair))
}

async fn rotate_key_pair(
    State(state): State<AdminState>,
    Path(pair_id): Path<String>,
) -> Result<axum::Json<KeyPair>, ApiError> {
    let clock = state.app.ops.clock.clone();
    let (merchant_id, pair) =
        state.app.ops.store.write(move |conn| keys::rotate_pair(conn, &pair_id, clock.now_ms())).await?;
    state.app.keys.forget(&merchant_id);
    Ok(axum::Json(pair))
}

/// A revoked pair.
#[derive(Serialize)]
struct Revoked {
    object: ObjectType,
    id: String,
    revoked: bool,
}

async fn revoke_key_pair(
    State(state): State<AdminState>,
    Path(pair_id): Path<String>,
) -> Result<axum::Json<Revoked>, ApiError> {
    let (id, clock) = (pair_id.clone(), state.app.ops.clock.clone());
    let merchant_id = state.app.ops.store.write(move |conn| keys::revoke_pair(conn, &id, clock.now_ms())).await?;
    state.app.keys.forget(&merchant_id);
    Ok(axum::Json(Revoked { object: ObjectType::KeyPair, id: pair_id, revoked: true }))
}

/// Reads `{mode, currency, method, destination}` (destination: E.164).
fn parse_payout_account(body: &[u8]) -> Result<PayoutAccount, ApiError> {
    let fields = Fields::parse(body, &["mode", "currency", "method", "destination"])?;
    let mut errors = fields.errors();
    let mode = fields.string("mode", 10, true, &mut errors).and_then(|m| {
        Mode::parse(&m).or_else(|| {
            fail(&mut errors, "mode", "must be test or live");
            None
        })
    });
    let currency = fields.currency("currency", &mut errors);
    let method = fields.string("method", 40, true, &mut errors).and_then(|m| {
        Method::parse(&m).or_else(|| {
            fail(&mut errors, "method", "must be a payment method: mtn_momo, orange_money or card");
            None
        })
    });
    let destination = fields
        .string("destination", 40, true, &mut errors)
        .and_then(|d| crate::values::phone::parse_e164(&d).map_err(|why| fail(&mut errors, "destination", why)).ok());
    match (mode, currency, method, destination) {
        (Some(mode), Some(currency), Some(method), Some(destination)) if errors.is_empty() => {
            Ok(PayoutAccount { mode, currency, method, destination })
        }
        _ => Err(ApiError::Validation(errors)),
    }
}

async fn set_payout_account(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<axum::Json<Page<PayoutAccount>>, ApiError> {
    let account = parse_payout_account(&body)?;
    let clock = state.app.ops.clock.clone();
    let accounts = state
        .app
        .ops
        .store
        .write(move |conn| {
            if accounts::load(conn, &id)?.is_none() {
                return Err(StoreError::rejected(ApiError::NotFound { what: "merchant" }));
            }
            settlement_batches::set_payout_account(conn, &id, &account, clock.now_ms())?;
            settlement_batches::payout_accounts(conn, &id)
        })
        .await?;
    Ok(axum::Json(Page::new(accounts, false)))
}

async fn run_settlements(State(state): State<AdminState>) -> Result<axum::Json<Batch>, ApiError> {
    let now_ms = state.app.ops.clock.now_ms();
    Ok(axum::Json(settlement_batches::run(&state.app.ops, state.app.settings.settlement, now_ms).await?))
}
