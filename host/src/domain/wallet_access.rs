//! Wallet access: a customer's standing consent for one merchant (in one
//! mode) to read their wallet balances, given with an approval code and
//! withdrawn at any time. Without it a merchant cannot tell a customer's
//! wallets from a phone that has none. This module owns `wallet_access`.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::customers::CustomerPhone;
use crate::store::StoreError;
use crate::values::mode::Tenant;
use crate::values::status::ObjectType;

/// Whether a merchant may read a customer's wallets.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WalletAccess {
    object: ObjectType,
    pub customer: CustomerPhone<String>,
    pub granted: bool,
    pub livemode: bool,
}

impl WalletAccess {
    pub fn new(tenant: &Tenant, phone: String, granted: bool) -> WalletAccess {
        WalletAccess {
            object: ObjectType::WalletAccess,
            customer: CustomerPhone { phone },
            granted,
            livemode: tenant.mode.is_live(),
        }
    }
}

/// Records the customer's consent (approved by `approval_id`), replacing a
/// withdrawn one.
pub fn grant(
    conn: &Connection,
    tenant: &Tenant,
    phone: &str,
    approval_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO wallet_access (merchant_id, mode, phone, approval_id, granted_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (merchant_id, mode, phone)
         DO UPDATE SET approval_id = ?4, granted_at = ?5, revoked_at = NULL",
    )?
    .execute(params![tenant.merchant_id, tenant.mode, phone, approval_id, now_ms])?;
    Ok(())
}

/// Withdraws the consent; whether there was one to withdraw.
pub fn revoke(conn: &Connection, tenant: &Tenant, phone: &str, now_ms: i64) -> Result<bool, StoreError> {
    let updated = conn
        .prepare_cached(
            "UPDATE wallet_access SET revoked_at = ?4
             WHERE merchant_id = ?1 AND mode = ?2 AND phone = ?3 AND revoked_at IS NULL",
        )?
        .execute(params![tenant.merchant_id, tenant.mode, phone, now_ms])?;
    Ok(updated == 1)
}

/// Whether the customer lets `tenant` read their wallets now.
pub fn is_granted(conn: &Connection, tenant: &Tenant, phone: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM wallet_access
             WHERE merchant_id = ?1 AND mode = ?2 AND phone = ?3 AND revoked_at IS NULL",
        )?
        .query_row(params![tenant.merchant_id, tenant.mode, phone], |_| Ok(()))
        .optional()?
        .is_some())
}
