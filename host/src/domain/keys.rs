//! API key pairs. A pair is a secret key and a public key made together,
//! sharing scopes and an IP allowlist; an account may hold up to
//! `PAIRS_PER_MODE_MAX` active pairs per mode. Making or rotating a pair
//! passes the account's gate (`accounts::gate`), as every request does.
//! Rotating a pair replaces both keys and
//! revokes the old ones at once; revoking ends the pair. Keys are shown in
//! full only in the answer that makes them (the database keeps SHA-256).
//! This module owns the `api_keys` table.

use ipnet::IpNet;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::accounts;
use super::scopes::ScopeSet;
use crate::store::StoreError;
use crate::values::clock::{serialize_rfc3339, serialize_rfc3339_opt};
use crate::values::error::ApiError;
use crate::values::mode::Mode;
use crate::values::status::{KybStatus, ObjectType};
use crate::values::text::text_enum;

/// The seed's limit: 5 key pairs per environment.
pub const PAIRS_PER_MODE_MAX: i64 = 5;
/// Entries an IP allowlist may hold.
pub const ALLOWLIST_ENTRIES_MAX: usize = 50;
/// Random characters after a key's prefix (32 alphanumerics ≈ 190 bits).
pub const KEY_RANDOM_CHARS: usize = 32;

text_enum! {
    /// Secret keys do everything their scopes allow; public keys (safe in
    /// client apps) only the public scopes.
    pub enum KeyKind {
        Secret => "secret",
        Public => "public",
    }
}

impl KeyKind {
    /// Its part of a key's prefix (`sxm_test_sk_…`).
    pub fn prefix_part(self) -> &'static str {
        match self {
            KeyKind::Secret => "sk",
            KeyKind::Public => "pk",
        }
    }
}

/// Splits `sxm_<mode>_<kind>_<random>` into its mode and kind.
pub fn parse_key(key: &str) -> Option<(Mode, KeyKind)> {
    let mut parts = key.splitn(4, '_');
    let (Some("sxm"), Some(mode), Some(kind), Some(random)) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let mode = Mode::parse(mode)?;
    let kind = KeyKind::ALL.iter().copied().find(|k| k.prefix_part() == kind)?;
    let well_formed = random.len() == KEY_RANDOM_CHARS && random.bytes().all(|b| b.is_ascii_alphanumeric());
    well_formed.then_some((mode, kind))
}

/// What is stored of a key: its SHA-256 (a key has ~190 bits of entropy,
/// so a slow hash adds nothing).
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A validated request for a key pair.
#[derive(Debug, Clone)]
pub struct NewPair {
    pub mode: Mode,
    /// `None`: every scope.
    pub scopes: Option<ScopeSet>,
    /// `None`: any address.
    pub ip_allowlist: Option<Vec<IpNet>>,
}

/// An address (`203.0.113.7`, `2001:db8::1`) or a CIDR block (`203.0.113.0/24`).
pub fn parse_allowed(entry: &str) -> Result<IpNet, String> {
    entry
        .parse::<IpNet>()
        .map(|net| net.trunc())
        .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{entry:?} is not an IP address or CIDR block"))
}

/// Reads a stored allowlist (space-separated).
fn allowlist_from_stored(stored: Option<&str>) -> Option<Vec<IpNet>> {
    stored.map(|text| text.split_whitespace().filter_map(|entry| parse_allowed(entry).ok()).collect())
}

fn allowlist_to_stored(allowlist: &[IpNet]) -> String {
    allowlist.iter().map(IpNet::to_string).collect::<Vec<_>>().join(" ")
}

/// An active key, as a request presents it: what it may do and from where.
#[derive(Debug, Clone)]
pub struct ActiveKey {
    pub key_id: String,
    pub merchant_id: String,
    pub mode: Mode,
    pub kind: KeyKind,
    pub pair_id: String,
    pub hint: String,
    pub scopes: ScopeSet,
    /// `None`: any address.
    pub ip_allowlist: Option<Vec<IpNet>>,
}

/// The unrevoked key with this hash, if any.
pub fn find_active(conn: &Connection, key_hash: &str) -> Result<Option<ActiveKey>, StoreError> {
    let key = conn
        .prepare_cached(
            "SELECT id, merchant_id, mode, kind, pair_id, key_hint, scopes, ip_allowlist
             FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
        )?
        .query_row(params![key_hash], |row| {
            let scopes: Option<String> = row.get(6)?;
            let allowlist: Option<String> = row.get(7)?;
            Ok(ActiveKey {
                key_id: row.get(0)?,
                merchant_id: row.get(1)?,
                mode: row.get(2)?,
                kind: row.get(3)?,
                pair_id: row.get(4)?,
                hint: row.get(5)?,
                scopes: ScopeSet::from_stored(scopes.as_deref()),
                ip_allowlist: allowlist_from_stored(allowlist.as_deref()),
            })
        })
        .optional()?;
    Ok(key)
}

/// A pair's shared settings, as stored.
struct Stored {
    scopes: Option<String>,
    ip_allowlist: Option<String>,
}

/// Makes a key pair for `merchant_id`, in one write: gated on the account,
/// counted against the pair limit, then both keys stored.
pub fn create_pair(conn: &Connection, merchant_id: &str, new: &NewPair, now_ms: i64) -> Result<KeyPair, StoreError> {
    let account = accounts::load(conn, merchant_id)?
        .ok_or_else(|| StoreError::rejected(ApiError::NotFound { what: "merchant" }))?;
    if let Some(refused) = accounts::gate(account.standing(), new.mode) {
        return Err(StoreError::rejected(refused));
    }
    let active: i64 = conn
        .prepare_cached(
            "SELECT COUNT(DISTINCT pair_id) FROM api_keys WHERE merchant_id = ?1 AND mode = ?2 AND revoked_at IS NULL",
        )?
        .query_row(params![merchant_id, new.mode], |row| row.get(0))?;
    if active >= PAIRS_PER_MODE_MAX {
        return Err(StoreError::rejected(ApiError::KeyLimitReached { max: PAIRS_PER_MODE_MAX }));
    }
    let pair_id = crate::values::ids::new_id("kp");
    let stored = Stored {
        scopes: new.scopes.map(ScopeSet::to_stored),
        ip_allowlist: new.ip_allowlist.as_deref().map(allowlist_to_stored),
    };
    let secret = insert_key(conn, merchant_id, new.mode, KeyKind::Secret, &pair_id, &stored, now_ms)?;
    let public = insert_key(conn, merchant_id, new.mode, KeyKind::Public, &pair_id, &stored, now_ms)?;
    pair_with_keys(conn, &pair_id, secret, public)
}

fn insert_key(
    conn: &Connection,
    merchant_id: &str,
    mode: Mode,
    kind: KeyKind,
    pair_id: &str,
    stored: &Stored,
    now_ms: i64,
) -> Result<String, StoreError> {
    let random = crate::values::ids::random_alphanumeric(KEY_RANDOM_CHARS);
    let key = format!("sxm_{mode}_{}_{random}", kind.prefix_part());
    let hint: String = key.chars().take(16).collect();
    conn.prepare_cached(
        "INSERT INTO api_keys (id, merchant_id, mode, kind, key_hash, key_hint, created_at, pair_id, scopes, ip_allowlist)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        crate::values::ids::new_id("key"),
        merchant_id,
        mode,
        kind,
        hash_key(&key),
        hint,
        now_ms,
        pair_id,
        stored.scopes,
        stored.ip_allowlist,
    ])?;
    Ok(key)
}

/// One key with every scope and no allowlist, in a pair of its own (the
/// sandbox key made at first start; test set-ups).
pub fn create_key(
    conn: &Connection,
    merchant_id: &str,
    mode: Mode,
    kind: KeyKind,
    now_ms: i64,
) -> Result<String, StoreError> {
    let pair_id = crate::values::ids::new_id("kp");
    insert_key(conn, merchant_id, mode, kind, &pair_id, &Stored { scopes: None, ip_allowlist: None }, now_ms)
}

/// Replaces both keys of an active pair (same scopes and allowlist); the old
/// ones stop working at once. Returns the merchant and the pair with its
/// new keys.
pub fn rotate_pair(conn: &Connection, pair_id: &str, now_ms: i64) -> Result<(String, KeyPair), StoreError> {
    let keys = active_keys(conn, pair_id)?;
    let Some((merchant_id, mode, stored)) = keys.first().map(|k| (k.merchant_id.clone(), k.mode, k.stored())) else {
        return Err(StoreError::rejected(ApiError::NotFound { what: "active key pair" }));
    };
    let account = accounts::load(conn, &merchant_id)?
        .ok_or_else(|| StoreError::Invariant(format!("key pair {pair_id} has no merchant")))?;
    if let Some(refused) = accounts::gate(account.standing(), mode) {
        return Err(StoreError::rejected(refused));
    }
    revoke(conn, pair_id, now_ms)?;
    let secret = insert_key(conn, &merchant_id, mode, KeyKind::Secret, pair_id, &stored, now_ms)?;
    let public = insert_key(conn, &merchant_id, mode, KeyKind::Public, pair_id, &stored, now_ms)?;
    Ok((merchant_id, pair_with_keys(conn, pair_id, secret, public)?))
}

/// Revokes every key of an active pair; returns its merchant.
pub fn revoke_pair(conn: &Connection, pair_id: &str, now_ms: i64) -> Result<String, StoreError> {
    let keys = active_keys(conn, pair_id)?;
    let merchant_id = keys
        .first()
        .map(|k| k.merchant_id.clone())
        .ok_or_else(|| StoreError::rejected(ApiError::NotFound { what: "active key pair" }))?;
    revoke(conn, pair_id, now_ms)?;
    Ok(merchant_id)
}

fn revoke(conn: &Connection, pair_id: &str, now_ms: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE api_keys SET revoked_at = ?2 WHERE pair_id = ?1 AND revoked_at IS NULL")?
        .execute(params![pair_id, now_ms])?;
    Ok(())
}

struct KeyRow {
    merchant_id: String,
    mode: Mode,
    kind: KeyKind,
    hint: String,
    scopes: Option<String>,
    ip_allowlist: Option<String>,
    created_at_ms: i64,
    revoked_at_ms: Option<i64>,
    pair_id: String,
}

impl KeyRow {
    fn stored(&self) -> Stored {
        Stored { scopes: self.scopes.clone(), ip_allowlist: self.ip_allowlist.clone() }
    }
}

const SELECT_KEYS: &str =
    "SELECT merchant_id, mode, kind, key_hint, scopes, ip_allowlist, created_at, revoked_at, pair_id FROM api_keys";

fn key_row(row: &rusqlite::Row) -> rusqlite::Result<KeyRow> {
    Ok(KeyRow {
        merchant_id: row.get(0)?,
        mode: row.get(1)?,
        kind: row.get(2)?,
        hint: row.get(3)?,
        scopes: row.get(4)?,
        ip_allowlist: row.get(5)?,
        created_at_ms: row.get(6)?,
        revoked_at_ms: row.get(7)?,
        pair_id: row.get(8)?,
    })
}

fn active_keys(conn: &Connection, pair_id: &str) -> Result<Vec<KeyRow>, StoreError> {
    let rows = conn
        .prepare_cached(&format!("{SELECT_KEYS} WHERE pair_id = ?1 AND revoked_at IS NULL ORDER BY kind DESC"))?
        .query_map(params![pair_id], key_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// A key pair as listed: its keys' hints; the keys themselves only in the
/// answer that makes them.
#[derive(Debug, Clone, Serialize)]
pub struct KeyPair {
    object: ObjectType,
    pub id: String,
    pub mode: Mode,
    pub secret_key_hint: Option<String>,
    pub public_key_hint: Option<String>,
    pub scopes: Vec<&'static str>,
    pub ip_allowlist: Option<Vec<String>>,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    pub created_at_ms: i64,
    #[serde(rename = "revoked_at", serialize_with = "serialize_rfc3339_opt")]
    pub revoked_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

fn pair_of(keys: &[KeyRow]) -> KeyPair {
    let first = &keys[0];
    let hint = |kind: KeyKind| keys.iter().find(|k| k.kind == kind).map(|k| k.hint.clone());
    KeyPair {
        object: ObjectType::KeyPair,
        id: first.pair_id.clone(),
        mode: first.mode,
        secret_key_hint: hint(KeyKind::Secret),
        public_key_hint: hint(KeyKind::Public),
        scopes: ScopeSet::from_stored(first.scopes.as_deref()).names(),
        ip_allowlist: allowlist_from_stored(first.ip_allowlist.as_deref())
            .map(|list| list.iter().map(IpNet::to_string).collect()),
        created_at_ms: first.created_at_ms,
        revoked_at_ms: first.revoked_at_ms,
        secret_key: None,
        public_key: None,
    }
}

fn pair_with_keys(conn: &Connection, pair_id: &str, secret: String, public: String) -> Result<KeyPair, StoreError> {
    let mut pair = pair_of(&active_keys(conn, pair_id)?);
    pair.secret_key = Some(secret);
    pair.public_key = Some(public);
    Ok(pair)
}

/// Every pair of a merchant, newest first: its current keys, or for a
/// revoked pair the keys it last had.
pub fn pairs(conn: &Connection, merchant_id: &str) -> Result<Vec<KeyPair>, StoreError> {
    let rows = conn
        .prepare_cached(&format!("{SELECT_KEYS} WHERE merchant_id = ?1 ORDER BY created_at DESC, kind DESC"))?
        .query_map(params![merchant_id], key_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let mut pairs: Vec<Vec<KeyRow>> = Vec::new();
    for row in rows {
        match pairs.iter_mut().find(|pair| pair[0].pair_id == row.pair_id) {
            Some(pair) => pair.push(row),
            None => pairs.push(vec![row]),
        }
    }
    Ok(pairs
        .into_iter()
        .map(|mut keys| {
            // Its active keys; else those revoked last (one update revokes
            // a pair's keys together).
            let current = keys.iter().map(|k| k.revoked_at_ms.unwrap_or(i64::MAX)).max().unwrap_or(i64::MAX);
            keys.retain(|k| k.revoked_at_ms.unwrap_or(i64::MAX) == current);
            pair_of(&keys)
        })
        .collect())
}

/// Whether any merchant exists and, on a fresh database, the sandbox
/// merchant with its first test secret key (to print once).
pub fn bootstrap_sandbox(conn: &Connection, now_ms: i64) -> Result<Option<(String, String)>, StoreError> {
    if accounts::count(conn)? > 0 {
        return Ok(None);
    }
    // Tier 2: identity verified, so sandbox keys are allowed (live ones not).
    let merchant_id = accounts::create(conn, "Sandbox merchant", accounts::SANDBOX_KYC_TIER, KybStatus::None, now_ms)?;
    let key = create_key(conn, &merchant_id, Mode::Test, KeyKind::Secret, now_ms)?;
    Ok(Some((merchant_id, key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_by_prefix() {
        let random = "a".repeat(KEY_RANDOM_CHARS);
        assert_eq!(parse_key(&format!("sxm_test_sk_{random}")), Some((Mode::Test, KeyKind::Secret)));
        assert_eq!(parse_key(&format!("sxm_live_pk_{random}")), Some((Mode::Live, KeyKind::Public)));
        for bad in [
            format!("sxm_prod_sk_{random}"),
            format!("sogo_sk_test_{random}"),
            format!("sxm_test_sk_{}", &random[1..]),
            format!("sxm_test_xx_{random}"),
            "sxm_test_sk_".to_string(),
        ] {
            assert_eq!(parse_key(&bad), None, "{bad}");
        }
    }
}
