//! Auth: API keys. A key's prefix says its mode and kind
//! (`sxm_test_sk_…`, `sxm_live_pk_…`); the database holds only its SHA-256
//! (`domain::keys`). This module turns a request's key into a `Caller` or
//! an error, in this order: a known, unrevoked key; an account whose
//! standing allows keys of its mode (`accounts::gate`); a well-formed
//! forwarding chain from a trusted proxy; for a live key, a secure request
//! (`transport`); a client address on the
//! key's allowlist; within the key's rate limit. Handlers then ask for the
//! scope they need (`Caller::require`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use ipnet::IpNet;
use serde::Serialize;

use super::AppState;
use super::transport::Peer;
use crate::domain::accounts;
use crate::domain::keys::{self, KeyKind};
use crate::domain::scopes::{Scope, ScopeSet};
use crate::values::error::ApiError;
use crate::values::mode::{Mode, Tenant};

/// Who is calling: the merchant, the mode and the kind of key, and what
/// the key may do.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: Tenant,
    pub kind: KeyKind,
    pub key_id: String,
    pub pair_id: String,
    pub key_hint: String,
    pub scopes: ScopeSet,
    /// `None`: any address.
    pub ip_allowlist: Option<Arc<[IpNet]>>,
    /// The account's standing when the key was read (`accounts::gate`;
    /// the cache forgets a merchant's keys when an operator changes it).
    pub standing: accounts::Standing,
}

impl Caller {
    pub fn mode(&self) -> Mode {
        self.tenant.mode
    }

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
    pub fn key_context(&self) -> KeyContext {
        KeyContext {
            pair_id: self.pair_id.clone(),
            hint: self.key_hint.clone(),
            mode: self.tenant.mode,
            kind: self.kind,
            scopes: self.scopes.names(),
            ip_allowlist: self.ip_allowlist.as_ref().map(|list| list.iter().map(IpNet::to_string).collect()),
        }
    }
}

/// The calling key, as `GET /v1/account` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyContext {
    pub pair_id: String,
    pub hint: String,
    pub mode: Mode,
    pub kind: KeyKind,
    pub scopes: Vec<&'static str>,
    pub ip_allowlist: Option<Vec<String>>,
}

/// Looks up an active key by its hash, with its account's status.
fn find_caller(conn: &rusqlite::Connection, key_hash: &str) -> Result<Option<Caller>, crate::store::StoreError> {
    let Some(key) = keys::find_active(conn, key_hash)? else { return Ok(None) };
    let Some(account) = accounts::load(conn, &key.merchant_id)? else { return Ok(None) };
    Ok(Some(Caller {
        tenant: Tenant::new(key.merchant_id, key.mode),
        kind: key.kind,
        key_id: key.key_id,
        pair_id: key.pair_id,
        key_hint: key.hint,
        scopes: key.scopes,
        ip_allowlist: key.ip_allowlist.map(Arc::from),
        standing: account.standing(),
    }))
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
        if keys::parse_key(&key).is_none() {
            return Err(ApiError::AuthenticationFailed);
        }
        let hash = keys::hash_key(&key);
        let caller = match state.keys.get(&hash) {
            Some(caller) => caller,
            None => {
                let (lookup, generation) = (hash.clone(), state.keys.generation());
                let caller = state.ops.store.read(move |conn| find_caller(conn, &lookup)).await?;
                let caller = caller.ok_or(ApiError::AuthenticationFailed)?;
                state.keys.insert(hash, caller.clone(), generation);
                caller
            }
        };
        if let Some(refused) = accounts::gate(caller.standing, caller.mode()) {
            return Err(refused);
        }
        let client = parts
            .extensions
            .get::<ConnectInfo<Peer>>()
            .map(|info| super::transport::client(&info.0, &parts.headers, &state.settings.trust))
            .transpose()
            .map_err(|_| ApiError::ForwardingMalformed)?;
        // Live keys move real money: never over plain HTTP from afar.
        if caller.mode() == Mode::Live && !client.is_some_and(|c| c.secure) {
            return Err(ApiError::HttpsRequired);
        }
        let ip = client.map(|c| c.ip);
        if !caller.allows(ip) {
            return Err(ApiError::IpNotAllowed { ip: ip.map(|ip| ip.to_string()).unwrap_or_default() });
        }
        // Counted per valid key used from an allowed address, so requests
        // from elsewhere cannot spend the owner's limit.
        state.rate_limiter.check(&caller.key_id, caller.mode(), state.ops.clock.now_ms()).map_err(|limited| {
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
        entries.by_hash.retain(|_, (caller, _)| caller.tenant.merchant_id != merchant_id);
    }
}
