//! Idempotency: a key, scoped to the merchant and mode, is bound to exactly
//! one transaction for ever. The first request claims it; a replay of the
//! same request gets the stored response; the same key with another body is
//! refused; a key whose request is still running gets a 409. Every write
//! endpoint goes through [`KeyedRequest`] (`write_once` for writes done in
//! one transaction, `claim_with` for operations that call a rail and store
//! their answer later), and this is the only module that touches
//! `idempotency_keys`.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError};
use crate::values::clock::Clock;
use crate::values::error::ApiError;
use crate::values::mode::Tenant;
use crate::values::text::text_enum;

/// Longest idempotency key accepted, in bytes.
pub const KEY_BYTES_MAX: usize = 255;

text_enum! {
    /// The endpoints that take an idempotency key. A request's fingerprint
    /// includes its endpoint, so one key never serves two endpoints.
    pub enum WriteEndpoint {
        Payments => "POST /v1/payments",
        Refunds => "POST /v1/refunds",
        TopUps => "POST /v1/wallets/top-ups",
        Swaps => "POST /v1/fx/swaps",
        Transfers => "POST /v1/transfers",
        Claims => "POST /v1/claims",
        BillAirtime => "POST /v1/bills/airtime",
        BillData => "POST /v1/bills/data",
        BillElectricity => "POST /v1/bills/electricity",
        BillCable => "POST /v1/bills/cable",
        BillEducation => "POST /v1/bills/education",
        BillEpin => "POST /v1/bills/epin",
        BillBet => "POST /v1/bills/bet",
        RmbOrders => "POST /v1/rmb/orders",
        GiftCardSales => "POST /v1/gift-cards/sales",
        CryptoTestDeposits => "POST /v1/crypto/test-deposit",
    }
}

/// A response as first sent, replayed verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

impl StoredResponse {
    /// `201 Created` with `object`.
    pub fn created(object: &impl serde::Serialize) -> StoredResponse {
        StoredResponse { status: 201, body: to_json(object) }
    }

    /// `200 OK` with `object`.
    pub fn ok(object: &impl serde::Serialize) -> StoredResponse {
        StoredResponse { status: 200, body: to_json(object) }
    }

    /// A refusal, stored so that a replay gets the same one.
    pub fn error(error: &ApiError) -> StoredResponse {
        StoredResponse { status: error.status().as_u16(), body: to_json(&error.envelope()) }
    }
}

fn to_json(object: &impl serde::Serialize) -> String {
    serde_json::to_string(object).expect("API objects serialise: their fields are strings, numbers and maps")
}

/// What a write endpoint sends back: the stored answer, and whether it is a replay.
#[derive(Debug)]
pub struct Reply {
    pub response: StoredResponse,
    pub replayed: bool,
}

impl Reply {
    pub fn new(response: StoredResponse) -> Reply {
        Reply { response, replayed: false }
    }
}

/// What a key that was already used answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsedKey {
    /// The same request finished: its answer, again.
    Replay(StoredResponse),
    /// The same request is still running.
    InFlight,
    /// The key was used with a different request.
    OtherRequest,
}

impl UsedKey {
    pub fn answer(self) -> Result<Reply, ApiError> {
        match self {
            UsedKey::Replay(response) => Ok(Reply { response, replayed: true }),
            UsedKey::InFlight => Err(ApiError::IdempotencyInProgress),
            UsedKey::OtherRequest => Err(ApiError::IdempotencyKeyReused),
        }
    }
}

/// A write request under an idempotency key: whose it is, the key, and
/// the fingerprint of what was asked (endpoint and canonical body).
#[derive(Debug, Clone)]
pub struct KeyedRequest {
    pub tenant: Tenant,
    pub key: String,
    fingerprint: String,
}

impl KeyedRequest {
    pub fn new(tenant: Tenant, key: String, endpoint: WriteEndpoint, canonical_body: &str) -> KeyedRequest {
        let mut hasher = Sha256::new();
        hasher.update(endpoint.as_str().as_bytes());
        hasher.update([0]);
        hasher.update(canonical_body.as_bytes());
        KeyedRequest { tenant, key, fingerprint: hex::encode(hasher.finalize()) }
    }

    /// Claims the key for `transaction_id` inside the caller's write:
    /// `None` when it was free (the caller creates the transaction in the
    /// same write), else what the used key answers.
    pub fn claim(&self, conn: &Connection, transaction_id: &str, now_ms: i64) -> Result<Option<UsedKey>, StoreError> {
        if let Some(used) = self.peek(conn)? {
            return Ok(Some(used));
        }
        self.insert(conn, transaction_id, now_ms, None)?;
        Ok(None)
    }

    /// Binds the free key to `transaction_id` with its answer already
    /// known, in one row: for a transaction created and answered in the
    /// same write (after [`KeyedRequest::peek`] found the key free in it).
    pub fn claim_answered(
        &self,
        conn: &Connection,
        transaction_id: &str,
        now_ms: i64,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        self.insert(conn, transaction_id, now_ms, Some(response))
    }

    /// The key's row, unanswered (`None`) or with its answer.
    fn insert(
        &self,
        conn: &Connection,
        transaction_id: &str,
        now_ms: i64,
        response: Option<&StoredResponse>,
    ) -> Result<(), StoreError> {
        conn.prepare_cached(
            "INSERT INTO idempotency_keys
             (merchant_id, mode, key, fingerprint, transaction_id, created_at, response_status, response_body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            self.tenant.merchant_id,
            self.tenant.mode,
            self.key,
            self.fingerprint,
            transaction_id,
            now_ms,
            response.map(|r| r.status),
            response.map(|r| &r.body)
        ])?;
        Ok(())
    }

    /// What the key answers if it was already used. Reads only.
    pub fn peek(&self, conn: &Connection) -> Result<Option<UsedKey>, StoreError> {
        let existing = conn
            .prepare_cached(
                "SELECT fingerprint, response_status, response_body FROM idempotency_keys
                 WHERE merchant_id = ?1 AND mode = ?2 AND key = ?3",
            )?
            .query_row(params![self.tenant.merchant_id, self.tenant.mode, self.key], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, Option<u16>>(1)?, row.get::<_, Option<String>>(2)?))
            })
            .optional()?;
        Ok(match existing {
            Some((stored, _, _)) if stored != self.fingerprint => Some(UsedKey::OtherRequest),
            Some((_, Some(status), Some(body))) => Some(UsedKey::Replay(StoredResponse { status, body })),
            Some(_) => Some(UsedKey::InFlight),
            None => None,
        })
    }
}

/// Runs `work` once under the request's key, in one write with the claim,
/// and stores its answer for the key. A used key answers from its record
/// instead (and `work` does not run: no `T`); a refusal from `work`
/// (`StoreError::Rejected`) undoes the claim too, so a refused request
/// binds nothing to its key.
pub async fn write_once<T, F>(
    store: &Store,
    clock: &Clock,
    request: KeyedRequest,
    transaction_id: String,
    work: F,
) -> Result<(Reply, Option<T>), ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Connection, i64) -> Result<(StoredResponse, T), StoreError> + Send + 'static,
{
    let clock = clock.clone();
    let written = store
        .write(move |conn| {
            let now_ms = clock.now_ms();
            if let Some(used) = request.claim(conn, &transaction_id, now_ms)? {
                return used.answer().map(|reply| (reply, None)).map_err(StoreError::rejected);
            }
            let (response, made) = work(conn, now_ms)?;
            record_response(conn, &transaction_id, &response)?;
            Ok((Reply::new(response), Some(made)))
        })
        .await?;
    Ok(written)
}

/// A key claimed with what was made under it, or the answer of a key used before.
#[derive(Debug)]
pub enum Claimed<T> {
    New(T),
    Used(Reply),
}

/// Claims the request's key for `transaction_id` and runs `create` in the
/// same write. `New`: both done, and the caller stores the key's answer
/// later (`lifecycle`); `Used`: the key was used, and this is its answer.
pub async fn claim_with<T, F>(
    store: &Store,
    request: KeyedRequest,
    transaction_id: String,
    now_ms: i64,
    create: F,
) -> Result<Claimed<T>, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    let claimed = store
        .write(move |conn| match request.claim(conn, &transaction_id, now_ms)? {
            None => Ok(Ok(create(conn)?)),
            Some(used) => Ok(Err(used)),
        })
        .await?;
    match claimed {
        Ok(made) => Ok(Claimed::New(made)),
        Err(used) => used.answer().map(Claimed::Used),
    }
}

/// For a request that cannot be served now: its key's answer if it was
/// used before (a used key answers from its record, whatever changed
/// since), else `refusal`.
pub async fn replay_or(store: &Store, request: &KeyedRequest, refusal: ApiError) -> Result<Reply, ApiError> {
    let request = request.clone();
    match store.read(move |conn| request.peek(conn)).await? {
        Some(used) => used.answer(),
        None => Err(refusal),
    }
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

/// The transaction a tenant's key is bound to, if any.
pub fn transaction_for_key(conn: &Connection, tenant: &Tenant, key: &str) -> Result<Option<String>, StoreError> {
    let id = conn
        .prepare_cached(
            "SELECT transaction_id FROM idempotency_keys WHERE merchant_id = ?1 AND mode = ?2 AND key = ?3",
        )?
        .query_row(params![tenant.merchant_id, tenant.mode, key], |row| row.get(0))
        .optional()?;
    Ok(id)
}

/// Transactions whose key has no answer yet: claimed, then interrupted
/// before the answer was stored (by a crash), oldest first.
pub fn unanswered(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let ids = conn
        .prepare_cached(
            "SELECT transaction_id FROM idempotency_keys WHERE response_body IS NULL ORDER BY created_at, rowid",
        )?
        .query_map([], |row| row.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}

/// Every key bound to more than one transaction's worth: a ledger check
/// (`soxara verify`) names the first transaction bound to several keys.
pub fn transaction_with_several_keys(conn: &Connection) -> Result<Option<String>, StoreError> {
    let found = conn
        .prepare_cached(
            "SELECT 'transaction ' || transaction_id || ' is bound to ' || COUNT(*) || ' idempotency keys'
             FROM idempotency_keys GROUP BY transaction_id HAVING COUNT(*) > 1 LIMIT 1",
        )?
        .query_row([], |row| row.get(0))
        .optional()?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::mode::Mode;

    fn request(merchant_id: &str, key: &str, body: &str) -> KeyedRequest {
        KeyedRequest::new(Tenant::new(merchant_id, Mode::Test), key.into(), WriteEndpoint::Payments, body)
    }

    #[test]
    fn a_key_is_bound_once_and_then_answers_from_its_record() {
        let (conn, merchant) = crate::testing::database_with_merchant();
        let request = |key: &str, body: &str| request(&merchant, key, body);
        let first = request("k", "{\"amount\":1}");
        assert_eq!(first.claim(&conn, "pay_1", 0).unwrap(), None);
        assert_eq!(first.claim(&conn, "pay_2", 0).unwrap(), Some(UsedKey::InFlight));
        assert_eq!(request("k", "{\"amount\":2}").peek(&conn).unwrap(), Some(UsedKey::OtherRequest));
        assert_eq!(unanswered(&conn).unwrap(), ["pay_1"]);
        let answer = StoredResponse { status: 201, body: "{}".into() };
        record_response(&conn, "pay_1", &answer).unwrap();
        assert_eq!(first.peek(&conn).unwrap(), Some(UsedKey::Replay(answer)));
        assert!(unanswered(&conn).unwrap().is_empty());
        // The same key under another endpoint is another request.
        let refund = KeyedRequest::new(first.tenant.clone(), "k".into(), WriteEndpoint::Refunds, "{\"amount\":1}");
        assert_eq!(refund.peek(&conn).unwrap(), Some(UsedKey::OtherRequest));
        // Another tenant's key of the same name is its own.
        let live = KeyedRequest::new(Tenant::new(&merchant, Mode::Live), "k".into(), WriteEndpoint::Payments, "{}");
        assert_eq!(live.peek(&conn).unwrap(), None);
    }
}
