//! API key pairs. A pair is a secret key and a public key made together,
//! sharing scopes and an IP allowlist; an account may hold up to
//! `PAIRS_PER_MODE_MAX` active pairs per mode. Making a pair is gated on
//! the account (`accounts`): active; Tier 2 KYC for test keys; Tier 3 and
//! KYB approval for live keys. Rotating a pair replaces both keys and
//! revokes the old ones at once; revoking ends the pair. Keys are shown in
//! full only in the answer that makes them (the database keeps SHA-256).

use ipnet::IpNet;
use rusqlite::{Connection, params};
use serde_json::{Value, json};

use crate::accounts::{self, Account};
use crate::auth::{KeyKind, hash_key};
use crate::error::ApiError;
use crate::mode::Mode;
use crate::scopes::ScopeSet;
use crate::store::StoreError;
use crate::validate::{Fields, fail};

/// The seed's limit: 5 key pairs per environment.
pub const PAIRS_PER_MODE_MAX: i64 = 5;
/// Entries an IP allowlist may hold.
pub const ALLOWLIST_ENTRIES_MAX: usize = 50;
/// Random characters after a key's prefix (32 alphanumerics ≈ 190 bits).
pub const KEY_RANDOM_CHARS: usize = 32;

/// A validated request for a key pair.
#[derive(Debug, Clone)]
pub struct NewPair {
    pub mode: Mode,
    /// `None`: every scope.
    pub scopes: Option<ScopeSet>,
    /// `None`: any address.
    pub ip_allowlist: Option<Vec<IpNet>>,
}

/// Reads `{mode, scopes?, ip_allowlist?}`.
pub fn parse_new_pair(body: &[u8]) -> Result<NewPair, ApiError> {
    let fields = Fields::parse(body, &["mode", "scopes", "ip_allowlist"])?;
    let mut errors = fields.errors();
    let mode = fields.string("mode", 10, true, &mut errors);
    let mode = mode.and_then(|m| {
        let parsed = Mode::parse(&m);
        if parsed.is_none() {
            fail(&mut errors, "mode", "must be test or live");
        }
        parsed
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
            .map(|entry| parse_allowed(entry))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|why| fail(&mut errors, "ip_allowlist", why))
            .ok()
    });
    match mode {
        Some(mode) if errors.is_empty() => Ok(NewPair { mode, scopes, ip_allowlist }),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// An address (`203.0.113.7`, `2001:db8::1`) or a CIDR block (`203.0.113.0/24`).
fn parse_allowed(entry: &str) -> Result<IpNet, String> {
    entry
        .parse::<IpNet>()
        .map(|net| net.trunc())
        .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{entry:?} is not an IP address or CIDR block"))
}

/// Reads a stored allowlist (space-separated).
pub fn allowlist_from_stored(stored: Option<&str>) -> Option<Vec<IpNet>> {
    stored.map(|text| text.split_whitespace().filter_map(|entry| parse_allowed(entry).ok()).collect())
}

fn allowlist_to_stored(allowlist: &[IpNet]) -> String {
    allowlist.iter().map(IpNet::to_string).collect::<Vec<_>>().join(" ")
}

/// Why `account` may not have a `mode` key, if it may not.
fn gate(account: &Account, mode: Mode) -> Option<ApiError> {
    if let Some(refused) = accounts::refusal(&account.status) {
        return Some(refused);
    }
    let needed = match mode {
        Mode::Test => accounts::SANDBOX_KYC_TIER,
        Mode::Live => accounts::LIVE_KYC_TIER,
    };
    if account.kyc_tier < needed {
        return Some(ApiError::KycTierInsufficient { needed, tier: account.kyc_tier });
    }
    (mode == Mode::Live && account.kyb_status != "approved").then_some(ApiError::KybVerificationRequired)
}

/// Makes a key pair for `merchant_id`, in one write: gated on the account,
/// counted against the pair limit, then both keys stored.
pub fn create_pair(conn: &Connection, merchant_id: &str, new: &NewPair) -> Result<Value, StoreError> {
    let account = accounts::load(conn, merchant_id)?
        .ok_or_else(|| StoreError::rejected(ApiError::NotFound { what: "merchant" }))?;
    if let Some(refused) = gate(&account, new.mode) {
        return Err(StoreError::rejected(refused));
    }
    let active: i64 = conn
        .prepare_cached(
            "SELECT COUNT(DISTINCT pair_id) FROM api_keys WHERE merchant_id = ?1 AND mode = ?2 AND revoked_at IS NULL",
        )?
        .query_row(params![merchant_id, new.mode.as_str()], |row| row.get(0))?;
    if active >= PAIRS_PER_MODE_MAX {
        return Err(StoreError::rejected(ApiError::KeyLimitReached { max: PAIRS_PER_MODE_MAX }));
    }
    let pair_id = crate::ids::new_id("kp");
    let stored = Stored {
        scopes: new.scopes.map(ScopeSet::to_stored),
        ip_allowlist: new.ip_allowlist.as_deref().map(allowlist_to_stored),
    };
    let secret = insert_key(conn, merchant_id, new.mode, KeyKind::Secret, &pair_id, &stored)?;
    let public = insert_key(conn, merchant_id, new.mode, KeyKind::Public, &pair_id, &stored)?;
    pair_with_keys(conn, &pair_id, &secret, &public)
}

/// A pair's shared settings, as stored.
struct Stored {
    scopes: Option<String>,
    ip_allowlist: Option<String>,
}

fn insert_key(
    conn: &Connection,
    merchant_id: &str,
    mode: Mode,
    kind: KeyKind,
    pair_id: &str,
    stored: &Stored,
) -> Result<String, StoreError> {
    let key =
        format!("sxm_{}_{}_{}", mode.as_str(), kind.prefix_part(), crate::ids::random_alphanumeric(KEY_RANDOM_CHARS));
    let hint: String = key.chars().take(16).collect();
    conn.prepare_cached(
        "INSERT INTO api_keys (id, merchant_id, mode, kind, key_hash, key_hint, created_at, pair_id, scopes, ip_allowlist)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        crate::ids::new_id("key"),
        merchant_id,
        mode.as_str(),
        kind.as_str(),
        hash_key(&key),
        hint,
        crate::clock::now_ms(),
        pair_id,
        stored.scopes,
        stored.ip_allowlist,
    ])?;
    Ok(key)
}

/// One key with every scope and no allowlist, in a pair of its own (the
/// sandbox key made at first start; test set-ups).
pub fn create_key(conn: &Connection, merchant_id: &str, mode: Mode, kind: KeyKind) -> Result<String, StoreError> {
    let pair_id = crate::ids::new_id("kp");
    insert_key(conn, merchant_id, mode, kind, &pair_id, &Stored { scopes: None, ip_allowlist: None })
}

/// Replaces both keys of an active pair (same scopes and allowlist); the old
/// ones stop working at once. Returns the merchant and the pair with its
/// new keys.
pub fn rotate_pair(conn: &Connection, pair_id: &str) -> Result<(String, Value), StoreError> {
    let keys = active_keys(conn, pair_id)?;
    let Some((merchant_id, mode, stored)) = keys.first().map(|k| (k.merchant_id.clone(), k.mode, k.stored())) else {
        return Err(StoreError::rejected(ApiError::NotFound { what: "active key pair" }));
    };
    let account = accounts::load(conn, &merchant_id)?
        .ok_or_else(|| StoreError::Invariant(format!("key pair {pair_id} has no merchant")))?;
    if let Some(refused) = accounts::refusal(&account.status) {
        return Err(StoreError::rejected(refused));
    }
    revoke(conn, pair_id)?;
    let secret = insert_key(conn, &merchant_id, mode, KeyKind::Secret, pair_id, &stored)?;
    let public = insert_key(conn, &merchant_id, mode, KeyKind::Public, pair_id, &stored)?;
    Ok((merchant_id, pair_with_keys(conn, pair_id, &secret, &public)?))
}

/// Revokes every key of an active pair; returns its merchant.
pub fn revoke_pair(conn: &Connection, pair_id: &str) -> Result<String, StoreError> {
    let keys = active_keys(conn, pair_id)?;
    let merchant_id = keys
        .first()
        .map(|k| k.merchant_id.clone())
        .ok_or_else(|| StoreError::rejected(ApiError::NotFound { what: "active key pair" }))?;
    revoke(conn, pair_id)?;
    Ok(merchant_id)
}

fn revoke(conn: &Connection, pair_id: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE api_keys SET revoked_at = ?2 WHERE pair_id = ?1 AND revoked_at IS NULL")?
        .execute(params![pair_id, crate::clock::now_ms()])?;
    Ok(())
}

struct KeyRow {
    merchant_id: String,
    mode: Mode,
    kind: String,
    hint: String,
    scopes: Option<String>,
    ip_allowlist: Option<String>,
    created_at: i64,
    revoked_at: Option<i64>,
    pair_id: String,
}

impl KeyRow {
    fn stored(&self) -> Stored {
        Stored { scopes: self.scopes.clone(), ip_allowlist: self.ip_allowlist.clone() }
    }
}

const KEY_COLUMNS: &str = "merchant_id, mode, kind, key_hint, scopes, ip_allowlist, created_at, revoked_at, pair_id";

fn key_row(row: &rusqlite::Row) -> rusqlite::Result<KeyRow> {
    let mode: String = row.get(1)?;
    Ok(KeyRow {
        merchant_id: row.get(0)?,
        mode: Mode::parse(&mode).unwrap_or(Mode::Live),
        kind: row.get(2)?,
        hint: row.get(3)?,
        scopes: row.get(4)?,
        ip_allowlist: row.get(5)?,
        created_at: row.get(6)?,
        revoked_at: row.get(7)?,
        pair_id: row.get(8)?,
    })
}

fn active_keys(conn: &Connection, pair_id: &str) -> Result<Vec<KeyRow>, StoreError> {
    let sql =
        format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE pair_id = ?1 AND revoked_at IS NULL ORDER BY kind DESC");
    let rows = conn.prepare_cached(&sql)?.query_map(params![pair_id], key_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// A pair as listed: its keys' hints, never the keys.
fn pair_json(keys: &[KeyRow]) -> Value {
    let first = &keys[0];
    let key = |kind: &str| keys.iter().find(|k| k.kind == kind).map(|k| k.hint.clone());
    json!({
        "object": "key_pair",
        "id": first.pair_id,
        "mode": first.mode.as_str(),
        "secret_key_hint": key("secret"),
        "public_key_hint": key("public"),
        "scopes": ScopeSet::from_stored(first.scopes.as_deref()).names(),
        "ip_allowlist": allowlist_from_stored(first.ip_allowlist.as_deref())
            .map(|list| list.iter().map(IpNet::to_string).collect::<Vec<_>>()),
        "created_at": crate::clock::rfc3339(first.created_at),
        "revoked_at": first.revoked_at.map(crate::clock::rfc3339),
    })
}

fn pair_with_keys(conn: &Connection, pair_id: &str, secret: &str, public: &str) -> Result<Value, StoreError> {
    let mut pair = pair_json(&active_keys(conn, pair_id)?);
    pair["secret_key"] = json!(secret);
    pair["public_key"] = json!(public);
    Ok(pair)
}

/// Every pair of a merchant, newest first: its current keys, or for a
/// revoked pair the keys it last had.
pub fn pairs_json(conn: &Connection, merchant_id: &str) -> Result<Value, StoreError> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE merchant_id = ?1 ORDER BY created_at DESC, kind DESC");
    let rows = conn.prepare_cached(&sql)?.query_map(params![merchant_id], key_row)?.collect::<Result<Vec<_>, _>>()?;
    let mut pairs: Vec<Vec<KeyRow>> = Vec::new();
    for row in rows {
        match pairs.iter_mut().find(|pair| pair[0].pair_id == row.pair_id) {
            Some(pair) => pair.push(row),
            None => pairs.push(vec![row]),
        }
    }
    let data: Vec<Value> = pairs
        .into_iter()
        .map(|mut keys| {
            // Its active keys; else those revoked last (one update revokes
            // a pair's keys together).
            let current = keys.iter().map(|k| k.revoked_at.unwrap_or(i64::MAX)).max().unwrap_or(i64::MAX);
            keys.retain(|k| k.revoked_at.unwrap_or(i64::MAX) == current);
            pair_json(&keys)
        })
        .collect();
    Ok(json!({ "object": "list", "data": data }))
}
