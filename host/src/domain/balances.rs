//! A merchant's balances, read from the ledger (`GET /v1/balance`): per
//! currency and operating entity, what the platform owes them (`pending`:
//! collected, net of fees and refunds, not yet paid out), how much of it the
//! next settlement would pay (`available`: collected before the cutoff),
//! what is on its way to them (`in_transit`) and what is held back for open
//! disputes (`reserved`). `pending` can go below zero (a dispute reserves
//! the gross amount while the fee stays earned).

use rusqlite::Connection;
use serde::Serialize;

use crate::ledger;
use crate::store::StoreError;
use crate::values::entity::Entity;
use crate::values::mode::Tenant;
use crate::values::money::Currency;
use crate::values::status::ObjectType;

/// The balance object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Balance {
    object: ObjectType,
    pub livemode: bool,
    pub balances: Vec<BalanceLine>,
}

/// A tenant's balances in one currency and entity.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BalanceLine {
    pub currency: Currency,
    pub entity: Entity,
    pub pending: i64,
    pub available: i64,
    pub in_transit: i64,
    pub reserved: i64,
}

/// The tenant's balances at a settlement cutoff of `cutoff_ms`.
pub fn balance(conn: &Connection, tenant: &Tenant, cutoff_ms: i64) -> Result<Balance, StoreError> {
    let settleable = ledger::settleable(conn, cutoff_ms, Some(tenant))?;
    let balances = ledger::merchant_balances(conn, tenant)?
        .into_iter()
        .map(|b| BalanceLine {
            available: settleable
                .iter()
                .find(|s| s.currency == b.currency && s.entity == b.entity)
                .map_or(0, |s| s.amount_minor),
            currency: b.currency,
            entity: b.entity,
            pending: b.pending,
            in_transit: b.in_transit,
            reserved: b.reserved,
        })
        .collect();
    Ok(Balance { object: ObjectType::Balance, livemode: tenant.mode.is_live(), balances })
}
