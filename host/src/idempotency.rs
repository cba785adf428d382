//! Idempotency: a key, scoped to the merchant and mode, is bound to exactly one
//! transaction for ever. The first request claims it; a replay of the same
//! request gets the stored response; the same key with another body is
//! refused; a key whose request is still running gets a 409.

use axum::http::HeaderMap;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::mode::Mode;
use crate::store::StoreError;

/// Longest idempotency key accepted, in bytes.
pub const KEY_BYTES_MAX: usize = 255;

/// The headers that may carry the key (Soxara's, then Sogo's).
const KEY_HEADERS: [&str; 2] = ["x-idempotency-key", "idempotency-key"];

/// A key within its merchant and mode.
#[derive(Debug, Clone)]
pub struct Scope {
    pub merchant_id: String,
    pub mode: Mode,
    pub key: String,
}

/// A response as first sent, replayed verbatim.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// What a write endpoint sends back: the stored answer, and whether it is a replay.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub replayed: bool,
}

impl Reply {
    pub fn new(stored: StoredResponse) -> Reply {
        Reply { status: stored.status, body: stored.body, replayed: false }
    }

    pub fn replayed(stored: StoredResponse) -> Reply {
        Reply { status: stored.status, body: stored.body, replayed: true }
    }
}

#[derive(Debug)]
pub enum Claim {
    /// The key was free and is now bound to the new transaction.
    New,
    /// The same request already finished: here is what it answered.
    Replay(StoredResponse),
    /// The same request is still running.
    InFlight,
    /// The key was used with a different request.
    Mismatch,
}

/// The answer for a key that was already used: its stored response (a
/// replay), or why it cannot be answered yet.
pub fn answer_used_key(claim: Claim) -> Result<Reply, ApiError> {
    match claim {
        Claim::Replay(stored) => Ok(Reply::replayed(stored)),
        Claim::InFlight => Err(ApiError::IdempotencyInProgress),
        Claim::Mismatch => Err(ApiError::IdempotencyKeyReused),
        Claim::New => Err(ApiError::Internal(anyhow::anyhow!("a new claim is not a used key"))),
    }
}

/// Reads the key from either header; refuses a missing or malformed key.
pub fn key_from_headers(headers: &HeaderMap) -> Result<String, ApiError> {
    let mut found: Option<(&str, &str)> = None;
    for name in KEY_HEADERS {
        let Some(value) = headers.get(name) else {
            continue;
        };
        let value = value.to_str().map_err(|_| ApiError::invalid(name, "must be printable ASCII"))?.trim();
        if let Some((first_name, first)) = found
            && first != value
        {
            return Err(ApiError::invalid(
                name,
                format!("differs from {first_name}; send one idempotency header, or the same key in both"),
            ));
        }
        found = Some((name, value));
    }
    let (name, key) = found.ok_or(ApiError::IdempotencyKeyRequired)?;
    if key.is_empty() {
        return Err(ApiError::IdempotencyKeyRequired);
    }
    if key.len() > KEY_BYTES_MAX || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            name,
            format!("must be 1 to {KEY_BYTES_MAX} printable ASCII characters without spaces (a UUID v4 is ideal)"),
        ));
    }
    Ok(key.to_string())
}

/// Identifies a request: the operation and its canonical JSON body.
pub fn fingerprint(operation: &str, canonical_body: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(operation.as_bytes());
    hasher.update([0]);
    hasher.update(canonical_body.as_bytes());
    hex::encode(hasher.finalize())
}

/// Claims `scope` for `transaction_id` inside the caller's write. On `New`
/// the caller must create the transaction in the same write.
pub fn claim(
    conn: &Connection,
    scope: &Scope,
    fingerprint: &str,
    transaction_id: &str,
    now_ms: i64,
) -> Result<Claim, StoreError> {
    if let Some(existing) = peek(conn, scope, fingerprint)? {
        return Ok(existing);
    }
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (merchant_id, mode, key, fingerprint, transaction_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![scope.merchant_id, scope.mode.as_str(), scope.key, fingerprint, transaction_id, now_ms])?;
    Ok(Claim::New)
}

/// What an already-used key answers (replay, in flight, mismatch), or None
/// for a key never used. Reads only.
pub fn peek(conn: &Connection, scope: &Scope, fingerprint: &str) -> Result<Option<Claim>, StoreError> {
    let existing = conn
        .prepare_cached(
            "SELECT fingerprint, response_status, response_body FROM idempotency_keys
             WHERE merchant_id = ?1 AND mode = ?2 AND key = ?3",
        )?
        .query_row(params![scope.merchant_id, scope.mode.as_str(), scope.key], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Option<u16>>(1)?, row.get::<_, Option<String>>(2)?))
        })
        .optional()?;
    Ok(match existing {
        Some((stored, _, _)) if stored != fingerprint => Some(Claim::Mismatch),
        Some((_, Some(status), Some(body))) => Some(Claim::Replay(StoredResponse { status, body })),
        Some(_) => Some(Claim::InFlight),
        None => None,
    })
}

/// Stores the response for the key bound to `transaction_id`.
pub fn record_response(conn: &Connection, transaction_id: &str, response: &StoredResponse) -> Result<(), StoreError> {
    let updated = conn
        .prepare_cached(
            "UPDATE idempotency_keys SET response_status = ?2, response_body = ?3 WHERE transaction_id = ?1",
        )?
        .execute(params![transaction_id, response.status, response.body])?;
    if updated != 1 {
        return Err(StoreError::Invariant(format!("transaction {transaction_id} has {updated} idempotency keys")));
    }
    Ok(())
}

/// The response stored for the key bound to `transaction_id`, if any yet.
pub fn stored_response(conn: &Connection, transaction_id: &str) -> Result<Option<StoredResponse>, StoreError> {
    let stored = conn
        .prepare_cached("SELECT response_status, response_body FROM idempotency_keys WHERE transaction_id = ?1")?
        .query_row(params![transaction_id], |row| {
            Ok(match (row.get::<_, Option<u16>>(0)?, row.get::<_, Option<String>>(1)?) {
                (Some(status), Some(body)) => Some(StoredResponse { status, body }),
                _ => None,
            })
        })
        .optional()?;
    Ok(stored.flatten())
}

/// The transaction a key is bound to, if any.
pub fn transaction_for_key(
    conn: &Connection,
    merchant_id: &str,
    mode: Mode,
    key: &str,
) -> Result<Option<String>, StoreError> {
    let id = conn
        .prepare_cached(
            "SELECT transaction_id FROM idempotency_keys WHERE merchant_id = ?1 AND mode = ?2 AND key = ?3",
        )?
        .query_row(params![merchant_id, mode.as_str(), key], |row| row.get(0))
        .optional()?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn either_header_carries_the_key() {
        assert_eq!(key_from_headers(&headers(&[("x-idempotency-key", "abc")])).unwrap(), "abc");
        assert_eq!(key_from_headers(&headers(&[("idempotency-key", "abc")])).unwrap(), "abc");
        assert_eq!(key_from_headers(&headers(&[("idempotency-key", "a"), ("x-idempotency-key", "a")])).unwrap(), "a");
        assert!(matches!(key_from_headers(&headers(&[])), Err(ApiError::IdempotencyKeyRequired)));
        assert!(matches!(
            key_from_headers(&headers(&[("idempotency-key", "a"), ("x-idempotency-key", "b")])),
            Err(ApiError::Validation(_))
        ));
        let long = "k".repeat(KEY_BYTES_MAX + 1);
        assert!(matches!(key_from_headers(&headers(&[("idempotency-key", &long)])), Err(ApiError::Validation(_))));
    }
}
