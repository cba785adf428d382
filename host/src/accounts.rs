//! Merchant accounts: who may hold keys and use the API. Operators set an
//! account's KYC tier (0–3), KYB status and status through the admin API;
//! key creation is gated on them (`keys`), and every key of a suspended or
//! deactivated account is refused on every request (`auth`).

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::store::StoreError;
use crate::validate::{Fields, fail};

pub const NAME_CHARS_MAX: usize = 200;
/// The highest KYC tier (identity document, proof of address, selfie).
pub const KYC_TIER_MAX: u8 = 3;
/// Sandbox keys need identity verification (Tier 2)…
pub const SANDBOX_KYC_TIER: u8 = 2;
/// …live keys full verification (Tier 3) and KYB approval.
pub const LIVE_KYC_TIER: u8 = 3;

pub const KYB_STATUSES: [&str; 4] = ["none", "pending", "approved", "rejected"];
pub const ACCOUNT_STATUSES: [&str; 3] = ["active", "suspended", "deactivated"];

/// A merchant account as stored.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub kyc_tier: u8,
    pub kyb_status: String,
    pub status: String,
    pub created_at: i64,
}

impl Account {
    pub fn json(&self) -> Value {
        json!({
            "object": "account",
            "id": self.id,
            "name": self.name,
            "kyc_tier": self.kyc_tier,
            "kyb_status": self.kyb_status,
            "status": self.status,
            "created_at": crate::clock::rfc3339(self.created_at),
        })
    }
}

/// Why a request by a key of an account in `status` is refused, if it is.
pub fn refusal(status: &str) -> Option<ApiError> {
    match status {
        "suspended" => Some(ApiError::AccountSuspended),
        "deactivated" => Some(ApiError::AccountDeactivated),
        _ => None,
    }
}

const COLUMNS: &str = "id, name, kyc_tier, kyb_status, status, created_at";

fn from_row(row: &rusqlite::Row) -> rusqlite::Result<Account> {
    Ok(Account {
        id: row.get(0)?,
        name: row.get(1)?,
        kyc_tier: row.get(2)?,
        kyb_status: row.get(3)?,
        status: row.get(4)?,
        created_at: row.get(5)?,
    })
}

pub fn load(conn: &Connection, id: &str) -> Result<Option<Account>, StoreError> {
    let account = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM merchants WHERE id = ?1"))?
        .query_row(params![id], from_row)
        .optional()?;
    Ok(account)
}

/// Accounts at most this many per listing page.
pub const LIST_LIMIT: i64 = 100;

/// Up to `LIST_LIMIT` accounts, newest first, created before the account
/// `starting_after` (a cursor: the last id of the previous page).
pub fn list(conn: &Connection, starting_after: Option<&str>) -> Result<Vec<Account>, StoreError> {
    let accounts = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM merchants
             WHERE ?1 IS NULL OR (created_at, id) < (SELECT created_at, id FROM merchants WHERE id = ?1)
             ORDER BY created_at DESC, id DESC LIMIT ?2"
        ))?
        .query_map(params![starting_after, LIST_LIMIT], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(accounts)
}

pub fn create(conn: &Connection, name: &str, kyc_tier: u8, kyb_status: &str) -> Result<String, StoreError> {
    let id = crate::ids::new_id("mer");
    conn.prepare_cached(
        "INSERT INTO merchants (id, name, kyc_tier, kyb_status, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, name, kyc_tier, kyb_status, crate::clock::now_ms()])?;
    Ok(id)
}

/// What an operator sets on an account; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct Changes {
    pub name: Option<String>,
    pub kyc_tier: Option<u8>,
    pub kyb_status: Option<String>,
    pub status: Option<String>,
}

/// Reads `{name?, kyc_tier?, kyb_status?, status?}`; `name` is required
/// when `creating`, and `status` cannot be set then (a new account is active).
pub fn parse_changes(body: &[u8], creating: bool) -> Result<Changes, ApiError> {
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
    let one_of = |field: &str, allowed: &[&str], errors: &mut Vec<_>| {
        let value = fields.string(field, 20, false, errors)?;
        if allowed.contains(&value.as_str()) {
            Some(value)
        } else {
            fail(errors, field, format!("must be one of: {}", allowed.join(", ")));
            None
        }
    };
    let kyb_status = one_of("kyb_status", &KYB_STATUSES, &mut errors);
    let status = one_of("status", &ACCOUNT_STATUSES, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(Changes { name, kyc_tier, kyb_status, status })
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
