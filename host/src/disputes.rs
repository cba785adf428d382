//! Disputes: a customer's chargeback on a completed payment, reported by the
//! rail that collected it (a provider callback). Opening one holds the
//! disputed amount — it moves from the merchant's pending balance to a
//! dispute reserve — and emits `dispute.opened`, all in one write. This
//! module owns the dispute object's shape.
//!
//! The reserve is the gross disputed amount, though the merchant was
//! credited the payment net of the fee: the card network takes back the
//! gross, and the fee is not returned on a chargeback. The merchant's
//! pending balance may go below zero; settlement must net it.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::ledger::{self, Account, AccountKind, Posting};
use crate::mode::Mode;
use crate::plugins::DisputeNotice;
use crate::store::StoreError;

/// What became of a rail's dispute notice.
#[derive(Debug, PartialEq, Eq)]
pub enum DisputeApplied {
    /// A new dispute with this id.
    Opened(String),
    /// The provider already reported this dispute (a repeated callback).
    AlreadyOpen(String),
    /// The notice does not fit the payment; nothing was written.
    Refused(&'static str),
}

/// Opens the dispute `notice` reports, if it fits a completed payment that
/// rail `rail` collected.
pub fn open(conn: &Connection, rail: &str, notice: &DisputeNotice, now_ms: i64) -> Result<DisputeApplied, StoreError> {
    let existing: Option<String> = conn
        .prepare_cached("SELECT id FROM disputes WHERE rail = ?1 AND provider_dispute_id = ?2")?
        .query_row(params![rail, notice.provider_dispute_id], |row| row.get(0))
        .optional()?;
    if let Some(id) = existing {
        return Ok(DisputeApplied::AlreadyOpen(id));
    }
    let payment = conn
        .prepare_cached(
            "SELECT merchant_id, mode, status, amount, currency, entity FROM payments WHERE id = ?1 AND rail = ?2",
        )?
        .query_row(params![notice.payment_id, rail], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
            ))
        })
        .optional()?;
    let Some((merchant_id, mode, status, payment_amount, currency, entity)) = payment else {
        return Ok(DisputeApplied::Refused("no payment of this rail has the id the dispute names"));
    };
    let mode = Mode::parse(&mode).ok_or_else(|| StoreError::Invariant(format!("payment mode {mode}")))?;
    if status != "completed" {
        return Ok(DisputeApplied::Refused("only a completed payment can be disputed"));
    }
    if notice.money.currency != currency {
        return Ok(DisputeApplied::Refused("the dispute's currency is not the payment's"));
    }
    // Several disputes may open on one payment, never for more than is not
    // already refunded or disputed.
    let committed = crate::refunds::committed_elsewhere(conn, &notice.payment_id)?;
    let amount = match i64::try_from(notice.money.amount) {
        Ok(amount) if amount.checked_add(committed).is_some_and(|total| total <= payment_amount) => amount,
        _ => return Ok(DisputeApplied::Refused("the dispute is for more than is left of the payment")),
    };

    let id = crate::ids::new_id("dsp");
    conn.prepare_cached(
        "INSERT INTO disputes (id, payment_id, merchant_id, mode, rail, provider_dispute_id, amount, currency, reason,
         status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'open', ?10)",
    )?
    .execute(params![
        id,
        notice.payment_id,
        merchant_id,
        mode.as_str(),
        rail,
        notice.provider_dispute_id,
        amount,
        currency,
        notice.reason,
        now_ms
    ])?;
    let account =
        |kind| Account { mode, entity: entity.clone(), owner: merchant_id.clone(), kind, currency: currency.clone() };
    let postings = [
        Posting { account: account(AccountKind::MerchantPending), amount_minor: amount },
        Posting { account: account(AccountKind::DisputeReserve), amount_minor: -amount },
    ];
    ledger::post(conn, mode, "dispute_reserve", &id, &postings, now_ms)?;
    let object = json_by_id(conn, &id)?.ok_or_else(|| StoreError::Invariant(format!("dispute {id} vanished")))?;
    crate::webhooks::emit(conn, &merchant_id, mode, "dispute.opened", &object, now_ms)?;
    Ok(DisputeApplied::Opened(id))
}

/// `GET /v1/disputes/{id}`.
pub async fn get(state: &crate::app::AppState, caller: &Caller, id: String) -> Result<Value, ApiError> {
    let (merchant, mode) = (caller.merchant_id.clone(), caller.mode);
    let found = state
        .store
        .read(move |conn| {
            let owned: Option<(String, String)> = conn
                .prepare_cached("SELECT merchant_id, mode FROM disputes WHERE id = ?1")?
                .query_row(params![id], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            match owned {
                Some((m, md)) if m == merchant && md == mode.as_str() => json_by_id(conn, &id),
                _ => Ok(None),
            }
        })
        .await?;
    found.ok_or(ApiError::NotFound { what: "dispute" })
}

/// The dispute object merchants see.
pub fn json_by_id(conn: &Connection, id: &str) -> Result<Option<Value>, StoreError> {
    let object = conn
        .prepare_cached(
            "SELECT d.id, d.payment_id, d.mode, d.amount, d.currency, d.reason, d.status, d.created_at, p.entity
             FROM disputes d JOIN payments p ON p.id = d.payment_id WHERE d.id = ?1",
        )?
        .query_row(params![id], |row| {
            Ok(json!({
                "object": "dispute",
                "id": row.get::<_, String>(0)?,
                "payment_id": row.get::<_, String>(1)?,
                "livemode": row.get::<_, String>(2)? == Mode::Live.as_str(),
                "amount": row.get::<_, i64>(3)?,
                "currency": row.get::<_, String>(4)?,
                "reason": row.get::<_, String>(5)?,
                "status": row.get::<_, String>(6)?,
                "created_at": crate::clock::rfc3339(row.get::<_, i64>(7)?),
                "entity": row.get::<_, String>(8)?,
            }))
        })
        .optional()?;
    Ok(object)
}
