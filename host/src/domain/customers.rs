//! Customers: the phone number is a customer's identity (E.164). A phone is
//! on Soxara in a mode once it holds wallets (a sandbox top-up, or a claimed
//! transfer); every transaction that involves a customer is indexed under
//! them for their history. This module owns the `customers` and
//! `customer_transactions` tables.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::store::StoreError;
use crate::values::mode::{Mode, Tenant};
use crate::values::status::{JoinedBy, TransactionKind};

/// The customer an object names, by phone (`Option<String>` where an
/// object may have none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CustomerPhone<P = String> {
    /// The customer's phone number, E.164.
    #[schema(examples("+231770001234"))]
    pub phone: P,
}

/// Whether a phone is on Soxara in `mode`.
pub fn is_registered(conn: &Connection, mode: Mode, phone: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM customers WHERE mode = ?1 AND phone = ?2")?
        .query_row(params![mode, phone], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Registers a phone (once; joining again changes nothing).
pub fn register(
    conn: &Connection,
    mode: Mode,
    phone: &str,
    joined_by: JoinedBy,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO customers (mode, phone, joined_by, registered_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (mode, phone) DO NOTHING",
    )?
    .execute(params![mode, phone, joined_by, now_ms])?;
    Ok(())
}

/// How and when a phone joined, if it is on Soxara in `mode`.
pub fn registration(conn: &Connection, mode: Mode, phone: &str) -> Result<Option<(JoinedBy, i64)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT joined_by, registered_at FROM customers WHERE mode = ?1 AND phone = ?2")?
        .query_row(params![mode, phone], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Indexes a transaction under its customer, for history pages.
pub fn index_transaction(
    conn: &Connection,
    id: &str,
    tenant: &Tenant,
    phone: &str,
    kind: TransactionKind,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO customer_transactions (id, merchant_id, mode, customer_phone, type, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![id, tenant.merchant_id, tenant.mode, phone, kind, now_ms])?;
    Ok(())
}

/// Where a history page starts: the position of the transaction `id` in
/// `phone`'s history with `tenant`, if it is one of them.
pub fn history_position(conn: &Connection, tenant: &Tenant, phone: &str, id: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT seq FROM customer_transactions
             WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3 AND customer_phone = ?4",
        )?
        .query_row(params![id, tenant.merchant_id, tenant.mode, phone], |row| row.get(0))
        .optional()?)
}

/// Up to `limit` ids of `phone`'s transactions with `tenant` before
/// position `before` (all when `None`), newest first.
pub fn history(
    conn: &Connection,
    tenant: &Tenant,
    phone: &str,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let ids = conn
        .prepare_cached(
            "SELECT id FROM customer_transactions
             WHERE merchant_id = ?1 AND mode = ?2 AND customer_phone = ?3 AND seq < ?4
             ORDER BY seq DESC LIMIT ?5",
        )?
        .query_map(
            params![
                tenant.merchant_id,
                tenant.mode,
                phone,
                before.unwrap_or(i64::MAX),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |row| row.get(0),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}
