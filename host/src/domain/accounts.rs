//! Merchant accounts: who may hold keys and use the API. Operators set an
//! account's KYC tier (0–3), KYB status and status through the admin API.
//! One gate (`gate`) decides what an account's standing allows: it is
//! checked when a key pair is made or rotated (`keys`) and on every request
//! (`http::auth`), so a suspension, a KYB rejection or a KYC downgrade stops
//! keys already issued. This module owns the `merchants` table.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::store::StoreError;
use crate::values::clock::serialize_rfc3339;
use crate::values::error::ApiError;
use crate::values::mode::Mode;
use crate::values::status::{AccountStatus, KybStatus, ObjectType};

pub const NAME_CHARS_MAX: usize = 200;
/// The highest KYC tier (identity document, proof of address, selfie).
pub const KYC_TIER_MAX: u8 = 3;
/// Sandbox keys need identity verification (Tier 2)…
pub const SANDBOX_KYC_TIER: u8 = 2;
/// …live keys full verification (Tier 3) and KYB approval.
pub const LIVE_KYC_TIER: u8 = 3;
/// Accounts at most this many per listing page.
pub const LIST_LIMIT: i64 = 100;

/// A merchant account; also the account object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Account {
    object: ObjectType,
    pub id: String,
    pub name: String,
    pub kyc_tier: u8,
    pub kyb_status: KybStatus,
    pub status: AccountStatus,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at_ms: i64,
}

impl Account {
    pub fn standing(&self) -> Standing {
        Standing { status: self.status, kyc_tier: self.kyc_tier, kyb_status: self.kyb_status }
    }
}

/// What the gate looks at: an account's status and verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub status: AccountStatus,
    pub kyc_tier: u8,
    pub kyb_status: KybStatus,
}

/// Why an account of `standing` may not use (or be given) a `mode` key, if
/// it may not: it must be active; test keys need Tier 2 KYC; live keys
/// Tier 3 and KYB approval.
pub fn gate(standing: Standing, mode: Mode) -> Option<ApiError> {
    match standing.status {
        AccountStatus::Active => {}
        AccountStatus::Suspended => return Some(ApiError::AccountSuspended),
        AccountStatus::Deactivated => return Some(ApiError::AccountDeactivated),
    }
    let needed = match mode {
        Mode::Test => SANDBOX_KYC_TIER,
        Mode::Live => LIVE_KYC_TIER,
    };
    if standing.kyc_tier < needed {
        return Some(ApiError::KycTierInsufficient { needed, tier: standing.kyc_tier });
    }
    (mode == Mode::Live && standing.kyb_status != KybStatus::Approved).then_some(ApiError::KybVerificationRequired)
}

const SELECT: &str = "SELECT id, name, kyc_tier, kyb_status, status, created_at FROM merchants";

fn from_row(row: &rusqlite::Row) -> rusqlite::Result<Account> {
    Ok(Account {
        object: ObjectType::Account,
        id: row.get(0)?,
        name: row.get(1)?,
        kyc_tier: row.get(2)?,
        kyb_status: row.get(3)?,
        status: row.get(4)?,
        created_at_ms: row.get(5)?,
    })
}

pub fn load(conn: &Connection, id: &str) -> Result<Option<Account>, StoreError> {
    Ok(conn.prepare_cached(&format!("{SELECT} WHERE id = ?1"))?.query_row(params![id], from_row).optional()?)
}

/// Up to `LIST_LIMIT` accounts, newest first, created before the account
/// `starting_after` (a cursor: the last id of the previous page).
pub fn list(conn: &Connection, starting_after: Option<&str>) -> Result<Vec<Account>, StoreError> {
    let accounts = conn
        .prepare_cached(&format!(
            "{SELECT} WHERE ?1 IS NULL OR (created_at, id) < (SELECT created_at, id FROM merchants WHERE id = ?1)
             ORDER BY created_at DESC, id DESC LIMIT ?2"
        ))?
        .query_map(params![starting_after, LIST_LIMIT], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(accounts)
}

/// How many merchants there are (none: a fresh database).
pub fn count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT COUNT(*) FROM merchants", [], |row| row.get(0))?)
}

pub fn create(
    conn: &Connection,
    name: &str,
    kyc_tier: u8,
    kyb_status: KybStatus,
    now_ms: i64,
) -> Result<String, StoreError> {
    let id = crate::values::ids::new_id("mer");
    conn.prepare_cached(
        "INSERT INTO merchants (id, name, kyc_tier, kyb_status, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, name, kyc_tier, kyb_status, now_ms])?;
    Ok(id)
}

/// What an operator sets on an account; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct Changes {
    pub name: Option<String>,
    pub kyc_tier: Option<u8>,
    pub kyb_status: Option<KybStatus>,
    pub status: Option<AccountStatus>,
}

/// Applies `changes`, returning the account as it now is (`None`: no such
/// account).
pub fn update(conn: &Connection, id: &str, changes: &Changes) -> Result<Option<Account>, StoreError> {
    conn.prepare_cached(
        "UPDATE merchants SET name = COALESCE(?2, name), kyc_tier = COALESCE(?3, kyc_tier),
         kyb_status = COALESCE(?4, kyb_status), status = COALESCE(?5, status) WHERE id = ?1",
    )?
    .execute(params![id, changes.name, changes.kyc_tier, changes.kyb_status, changes.status])?;
    load(conn, id)
}
