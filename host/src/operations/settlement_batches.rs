//! Settlement batches: paying merchants what the platform owes them. A
//! batch (daily by default, or when an operator runs one) takes every
//! merchant balance settleable at its cutoff (`now - hold_ms`, read from
//! the ledger: `ledger::settleable`) and makes one settlement of each
//! (`settlements`) through the rail bound to the method of the merchant's
//! payout account in that mode and currency. Batches are recorded, so the
//! daily one follows the clock across restarts. This module owns the
//! `payout_accounts` and `settlement_batches` tables.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::context::Context;
use super::lifecycle;
use super::objects::Settlement;
use super::settlements::{Payout, SettlementRow};
use crate::config::SettlementSettings;
use crate::ledger::{self, Settleable};
use crate::store::StoreError;
use crate::store::TenantRecord;
use crate::values::clock::serialize_rfc3339;
use crate::values::entity::Entity;
use crate::values::error::ApiError;
use crate::values::method::Method;
use crate::values::mode::{Mode, Tenant};
use crate::values::money::Currency;

/// Where a merchant is paid in one mode and currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayoutAccount {
    pub mode: Mode,
    pub currency: Currency,
    /// The payment method whose bound rail pays out.
    pub method: Method,
    /// Where to (an E.164 phone).
    pub destination: String,
}

/// Sets (or replaces) where a merchant is paid in one mode and currency.
/// The merchant must exist (checked by the caller's write).
pub fn set_payout_account(
    conn: &Connection,
    merchant_id: &str,
    account: &PayoutAccount,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO payout_accounts (merchant_id, mode, currency, method, destination, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (merchant_id, mode, currency) DO UPDATE
         SET method = excluded.method, destination = excluded.destination, updated_at = excluded.updated_at",
    )?
    .execute(params![merchant_id, account.mode, account.currency, account.method, account.destination, now_ms])?;
    Ok(())
}

/// A merchant's payout accounts, by mode and currency.
pub fn payout_accounts(conn: &Connection, merchant_id: &str) -> Result<Vec<PayoutAccount>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT mode, currency, method, destination FROM payout_accounts WHERE merchant_id = ?1
             ORDER BY mode, currency",
        )?
        .query_map(params![merchant_id], |row| {
            Ok(PayoutAccount {
                mode: row.get(0)?,
                currency: row.get(1)?,
                method: row.get(2)?,
                destination: row.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn payout_account(
    conn: &Connection,
    tenant: &Tenant,
    currency: Currency,
) -> Result<Option<(Method, String)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT method, destination FROM payout_accounts WHERE merchant_id = ?1 AND mode = ?2 AND currency = ?3",
        )?
        .query_row(params![tenant.merchant_id, tenant.mode, currency], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?)
}

/// What a batch did.
#[derive(Debug, Clone, Serialize)]
pub struct Batch {
    #[serde(rename = "cutoff_at", serialize_with = "serialize_rfc3339")]
    pub cutoff_at_ms: i64,
    pub settlements: Vec<Settlement>,
    pub skipped: Vec<Skipped>,
}

/// A balance a batch could not settle, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub merchant_id: String,
    pub mode: Mode,
    pub currency: Currency,
    pub entity: Entity,
    pub amount: i64,
    pub reason: String,
}

/// Runs a batch at `now_ms`: one settlement per settleable balance whose
/// merchant has a payout account in that mode and currency.
pub async fn run(ctx: &Context, settings: SettlementSettings, now_ms: i64) -> Result<Batch, ApiError> {
    let cutoff_ms = now_ms.saturating_sub(i64::try_from(settings.hold_ms).unwrap_or(i64::MAX));
    let owed = ctx.store.read(move |conn| ledger::settleable(conn, cutoff_ms, None)).await?;
    let (mut settlements, mut skipped) = (Vec::new(), Vec::new());
    for owed in owed.into_iter().filter(|o| o.amount_minor > 0) {
        match settle(ctx, &owed, cutoff_ms).await {
            Ok(settlement) => settlements.push(settlement),
            Err(reason) => {
                tracing::warn!(merchant = %owed.tenant.merchant_id, currency = %owed.currency, reason, "not settled");
                skipped.push(Skipped {
                    merchant_id: owed.tenant.merchant_id,
                    mode: owed.tenant.mode,
                    currency: owed.currency,
                    entity: owed.entity,
                    amount: owed.amount_minor,
                    reason,
                });
            }
        }
    }
    let counts =
        (i64::try_from(settlements.len()).unwrap_or(i64::MAX), i64::try_from(skipped.len()).unwrap_or(i64::MAX));
    ctx.store
        .write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO settlement_batches (ran_at, cutoff_at, settlements, skipped) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![now_ms, cutoff_ms, counts.0, counts.1])?;
            Ok(())
        })
        .await?;
    Ok(Batch { cutoff_at_ms: cutoff_ms, settlements, skipped })
}

/// Runs a batch if `interval_ms` has passed since the last one (by the
/// clock and the database, so restarts neither skip nor repeat it).
pub async fn run_if_due(ctx: &Context, settings: SettlementSettings) -> Result<Option<Batch>, ApiError> {
    let now_ms = ctx.clock.now_ms();
    let interval_ms = i64::try_from(settings.interval_ms).unwrap_or(i64::MAX);
    let last_ms: Option<i64> = ctx
        .store
        .read(|conn| Ok(conn.query_row("SELECT MAX(ran_at) FROM settlement_batches", [], |row| row.get(0))?))
        .await?;
    if last_ms.is_some_and(|at| now_ms.saturating_sub(at) < interval_ms) {
        return Ok(None);
    }
    run(ctx, settings, now_ms).await.map(Some)
}

/// Claims, pays out and records one settlement; `Err` says why none was made.
async fn settle(ctx: &Context, owed: &Settleable, cutoff_ms: i64) -> Result<Settlement, String> {
    let (tenant, currency) = (owed.tenant.clone(), owed.currency);
    let (method, destination) = ctx
        .store
        .read(move |conn| payout_account(conn, &tenant, currency))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no payout account for this mode and currency")?;
    let rail = ctx.rails.routes().rail_for(owed.tenant.mode, method, owed.currency)?;
    if rail.entity_for(method).as_ref() != Some(&owed.entity) {
        return Err(format!("the {method} rail pays out for another entity than {}", owed.entity));
    }
    let payout = Payout { method, destination, rail: rail.name().to_string() };
    let (owed_now, clock, first_check_ms) = (owed.clone(), ctx.clock.clone(), ctx.checks.delay_ms(0));
    let claimed = ctx
        .store
        .write(move |conn| {
            let now_ms = clock.now_ms();
            SettlementRow::claim(conn, &owed_now, payout, cutoff_ms, now_ms, now_ms.saturating_add(first_check_ms))
        })
        .await
        .map_err(|e| e.to_string())?;
    let settlement = claimed.ok_or("nothing left to settle")?;
    let id = settlement.work.id.clone();
    lifecycle::submit(ctx, Some(rail), settlement).await.map_err(|e| e.to_string())?;
    let settled = ctx.store.read(move |conn| SettlementRow::load(conn, &id)).await.map_err(|e| e.to_string())?;
    settled.map(|row| row.object()).ok_or_else(|| "the settlement vanished".to_string())
}
