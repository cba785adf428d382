//! Auth: API keys. A key's prefix says its mode and kind
//! (`sxm_test_sk_…`, `sxm_live_pk_…`); the database holds only its SHA-256.
//! This module turns a request's key into a `Caller` or an error, in this
//! order: a known, unrevoked key; an active account; for a live key, a
//! secure request (`transport`); a client address on the key's allowlist;
//! within the key's rate limit. Handlers then ask for the
//! scope they need (`Caller::require`). Keys are made in `keys`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use ipnet::IpNet;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::error::ApiError;
use crate::keys::KEY_RANDOM_CHARS;
use crate::mode::Mode;
use crate::scopes::{Scope, ScopeSet};
use crate::store::StoreError;
use crate::transport::Peer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Secret,
    Public,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Secret => "secret",
            KeyKind::Public => "public",
        }
    }

    pub fn prefix_part(self) -> &'static str {
        match self {
            KeyKind::Secret => "sk",
            KeyKind::Public => "pk",
        }
    }
}

/// Who is calling: the merchant, the mode and the kind of key, and what
/// the key may do.
#[derive(Debug, Clone)]
pub struct Caller {
    pub merchant_id: String,
    pub mode: Mode,
    pub kind: KeyKind,
    pub key_id: String,
    pub pair_id: String,
    pub key_hint: String,
    pub scopes: ScopeSet,
    /// `None`: any address.
    pub ip_allowlist: Option<Arc<[IpNet]>>,
    /// The account's status when the key was read (`accounts`).
    pub account_status: String,
}

impl Caller {
    /// Refuses a key without `scope`, and public keys on scopes they may
    /// not use.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.kind == KeyKind::Public && !scope.allows_public_keys() {
            return Err(ApiError::SecretKeyRequired);
        }
        if !self.scopes.contains(scope) {
            return Err(ApiError::InvalidScope { scope: scope.name() });
        }
        Ok(())
    }

    /// Whether the key may be used from `ip`.
    fn allows(&self, ip: Option<IpAddr>) -> bool {
        let Some(allowlist) = &self.ip_allowlist else { return true };
        ip.is_some_and(|ip| allowlist.iter().any(|net| net.contains(&ip)))
    }

    /// The key's context, as `GET /v1/account` shows it.
    pub fn key_json(&self) -> serde_json::Value {
        serde_json::json!({
            "pair_id": self.pair_id,
            "hint": self.key_hint,
            "mode": self.mode.as_str(),
            "kind": self.kind.as_str(),
            "scopes": self.scopes.names(),
            "ip_allowlist": self.ip_allowlist.as_ref().map(|list| list.iter().map(IpNet::to_string).collect::<Vec<_>>()),
        })
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
    let kind = match kind {
        "sk" => KeyKind::Secret,
        "pk" => KeyKind::Public,
        _ => return None,
    };
    let well_formed = random.len() == KEY_RANDOM_CHARS && random.bytes().all(|b| b.is_ascii_alphanumeric());
    well_formed.then_some((mode, kind))
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// On a database with no merchants, creates the sandbox merchant and a test
/// secret key, and returns the key (to print once). Otherwise returns None.
pub fn bootstrap_sandbox(conn: &Connection) -> Result<Option<(String, String)>, StoreError> {
    let merchants: i64 = conn.query_row("SELECT COUNT(*) FROM merchants", [], |r| r.get(0))?;
    if merchants > 0 {
        return Ok(None);
    }
    // Tier 2: identity verified, so sandbox keys are allowed (live ones not).
    let merchant_id = crate::accounts::create(conn, "Sandbox merchant", crate::accounts::SANDBOX_KYC_TIER, "none")?;
    let key = crate::keys::create_key(conn, &merchant_id, Mode::Test, KeyKind::Secret)?;
    Ok(Some((merchant_id, key)))
}

/// Looks up an active key by its hash, with its account's status.
fn find_caller(conn: &Connection, key_hash: &str) -> Result<Option<Caller>, StoreError> {
    let caller = conn
        .prepare_cached(
            "SELECT k.id, k.merchant_id, k.mode, k.kind, k.pair_id, k.key_hint, k.scopes, k.ip_allowlist, m.status
             FROM api_keys k JOIN merchants m ON m.id = k.merchant_id
             WHERE k.key_hash = ?1 AND k.revoked_at IS NULL",
        )?
        .query_row(params![key_hash], |row| {
            let mode: String = row.get(2)?;
            let kind: String = row.get(3)?;
            let scopes: Option<String> = row.get(6)?;
            let allowlist: Option<String> = row.get(7)?;
            Ok(Caller {
                key_id: row.get(0)?,
                merchant_id: row.get(1)?,
                mode: Mode::parse(&mode).unwrap_or(Mode::Live),
                kind: if kind == "public" { KeyKind::Public } else { KeyKind::Secret },
                pair_id: row.get(4)?,
                key_hint: row.get(5)?,
                scopes: ScopeSet::from_stored(scopes.as_deref()),
                ip_allowlist: crate::keys::allowlist_from_stored(allowlist.as_deref()).map(Arc::from),
                account_status: row.get(8)?,
            })
        })
        .optional()?;
    Ok(caller)
}

/// The key from `Authorization: Bearer …` or `X-API-Key`.
fn presented_key(parts: &Parts) -> Option<String> {
    let bearer = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|v| v.trim().to_string());
    let api_key = || parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(|v| v.trim().to_string());
    bearer.or_else(api_key).filter(|k| !k.is_empty())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let key = presented_key(parts).ok_or(ApiError::AuthenticationRequired)?;
        if parse_key(&key).is_none() {
            return Err(ApiError::AuthenticationFailed);
        }
        let hash = hash_key(&key);
        let caller = match state.keys.get(&hash) {
            Some(caller) => caller,
            None => {
                let (lookup, generation) = (hash.clone(), state.keys.generation());
                let caller = state.store.read(move |conn| find_caller(conn, &lookup)).await?;
                let caller = caller.ok_or(ApiError::AuthenticationFailed)?;
                state.keys.insert(hash, caller.clone(), generation);
                caller
            }
        };
        if let Some(refused) = crate::accounts::refusal(&caller.account_status) {
            return Err(refused);
        }
        let client = parts
            .extensions
            .get::<ConnectInfo<Peer>>()
            .map(|info| crate::transport::client(&info.0, &parts.headers, &state.trusted_proxies));
        // Live keys move real money: never over plain HTTP from afar.
        if caller.mode == Mode::Live && !client.is_some_and(|c| c.secure) {
            return Err(ApiError::HttpsRequired);
        }
        let ip = client.map(|c| c.ip);
        if !caller.allows(ip) {
            return Err(ApiError::IpNotAllowed { ip: ip.map(|ip| ip.to_string()).unwrap_or_default() });
        }
        // Counted per valid key used from an allowed address, so requests
        // from elsewhere cannot spend the owner's limit.
        state.rate_limiter.check(&caller.key_id, caller.mode, crate::clock::now_ms()).map_err(|limited| {
            ApiError::RateLimited { per_minute: limited.per_minute, retry_after_s: limited.retry_after_s }
        })?;
        Ok(caller)
    }
}

/// Keys recently found valid, by hash, so most requests skip reading the
/// key table. An entry is trusted for `KEY_CACHE_TTL` only: a key revoked in
/// the database stops working within that time (code that revokes a key
/// should also call `forget`). Unknown keys are never cached.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<CacheEntries>,
}

#[derive(Default)]
struct CacheEntries {
    by_hash: HashMap<String, (Caller, Instant)>,
    /// Bumped by every `forget`: a lookup that began before one must not
    /// put back what it read.
    generation: u64,
}

/// How long a verified key is trusted without reading the database again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(5);
/// Entries kept at most; the cache is emptied when it is full.
const KEY_CACHE_ENTRIES_MAX: usize = 10_000;

impl KeyCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, CacheEntries> {
        self.entries.lock().expect("key cache lock is never held across a panic")
    }

    fn get(&self, hash: &str) -> Option<Caller> {
        let entries = self.lock();
        entries.by_hash.get(hash).filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL).map(|(caller, _)| caller.clone())
    }

    fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Caches what a lookup that began at `generation` found, unless a key
    /// was forgotten since.
    fn insert(&self, hash: String, caller: Caller, generation: u64) {
        let mut entries = self.lock();
        if entries.generation != generation {
            return;
        }
        if entries.by_hash.len() >= KEY_CACHE_ENTRIES_MAX {
            entries.by_hash.clear();
        }
        entries.by_hash.insert(hash, (caller, Instant::now()));
    }

    /// Drops every cached key of a merchant (after a revocation).
    pub fn forget(&self, merchant_id: &str) {
        let mut entries = self.lock();
        entries.generation += 1;
        entries.by_hash.retain(|_, (caller, _)| caller.merchant_id != merchant_id);
    }
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
