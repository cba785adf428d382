//! Disputes: a customer's chargeback on a completed payment, reported by the
//! rail that collected it (a provider callback). Opening one commits the
//! disputed amount on the payment (so refunds and disputes together never
//! exceed it), holds it — it moves from the merchant's pending balance to a
//! dispute reserve — and emits `dispute.opened`, all in one write. This
//! module owns the `disputes` table and the dispute object.
//!
//! The reserve is the gross disputed amount, though the merchant was
//! credited the payment net of the fee: the card network takes back the
//! gross, and the fee is not returned on a chargeback. The merchant's
//! pending balance may go below zero; settlement must net it.

use rusqlite::{Connection, OptionalExtension, params};

use super::objects::Dispute;
use super::payments::PaymentRow;
use crate::domain::webhooks::{self, EventType};
use crate::ledger::{self, AccountKind, EntryKind, Posting};
use crate::plugins::DisputeNotice;
use crate::store::{StoreError, TenantRecord};
use crate::values::entity::Entity;
use crate::values::mode::Tenant;
use crate::values::money::Currency;
use crate::values::status::{DisputeStatus, ObjectType, PaymentStatus};

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
    let Some(payment) = PaymentRow::load(conn, &notice.payment_id)?.filter(|p| p.rail == rail) else {
        return Ok(DisputeApplied::Refused("no payment of this rail has the id the dispute names"));
    };
    if payment.work.status != PaymentStatus::Completed {
        return Ok(DisputeApplied::Refused("only a completed payment can be disputed"));
    }
    if notice.money.currency != payment.currency.code {
        return Ok(DisputeApplied::Refused("the dispute's currency is not the payment's"));
    }
    // Several disputes may open on one payment, never for more than is not
    // already refunded or disputed.
    let committed = match i64::try_from(notice.money.amount) {
        Ok(amount) => PaymentRow::commit(conn, &payment.work.id, amount)?.then_some(amount),
        Err(_) => None,
    };
    let Some(amount_minor) = committed else {
        return Ok(DisputeApplied::Refused("the dispute is for more than is left of the payment"));
    };
    let dispute = DisputeRow {
        id: crate::values::ids::new_id("dsp"),
        tenant: payment.work.tenant.clone(),
        payment_id: payment.work.id.clone(),
        amount_minor,
        currency: payment.currency,
        reason: notice.reason.clone(),
        status: DisputeStatus::Open,
        created_at_ms: now_ms,
        entity: payment.entity.clone(),
    };
    conn.prepare_cached(
        "INSERT INTO disputes (id, payment_id, merchant_id, mode, rail, provider_dispute_id, amount, currency, reason,
         status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        dispute.id,
        dispute.payment_id,
        dispute.tenant.merchant_id,
        dispute.tenant.mode,
        rail,
        notice.provider_dispute_id,
        dispute.amount_minor,
        dispute.currency,
        dispute.reason,
        dispute.status,
        now_ms
    ])?;
    let postings = [
        Posting {
            account: payment.account(&payment.work.tenant.merchant_id, AccountKind::MerchantPending),
            amount_minor,
        },
        Posting {
            account: payment.account(&payment.work.tenant.merchant_id, AccountKind::DisputeReserve),
            amount_minor: -amount_minor,
        },
    ];
    ledger::post(conn, dispute.tenant.mode, EntryKind::DisputeReserve, &dispute.id, &postings, now_ms)?;
    webhooks::emit(conn, &dispute.tenant, EventType::DisputeOpened, &dispute.id, &dispute.object(), now_ms)?;
    Ok(DisputeApplied::Opened(dispute.id))
}

/// A dispute as stored (with its payment's entity).
#[derive(Debug, Clone)]
pub struct DisputeRow {
    pub id: String,
    pub tenant: Tenant,
    payment_id: String,
    amount_minor: i64,
    currency: Currency,
    reason: String,
    status: DisputeStatus,
    created_at_ms: i64,
    entity: Entity,
}

impl DisputeRow {
    pub fn load(conn: &Connection, id: &str) -> Result<Option<DisputeRow>, StoreError> {
        let row = conn
            .prepare_cached(
                "SELECT id, payment_id, merchant_id, mode, amount, currency, reason, status, created_at
                 FROM disputes WHERE id = ?1",
            )?
            .query_row(params![id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    Tenant { merchant_id: row.get(2)?, mode: row.get(3)? },
                    row.get::<_, i64>(4)?,
                    row.get::<_, Currency>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, DisputeStatus>(7)?,
                    row.get::<_, i64>(8)?,
                ))
            })
            .optional()?;
        let Some((id, payment_id, tenant, amount_minor, currency, reason, status, created_at_ms)) = row else {
            return Ok(None);
        };
        let payment = PaymentRow::load(conn, &payment_id)?
            .ok_or_else(|| StoreError::Invariant(format!("dispute {id}: payment {payment_id} vanished")))?;
        Ok(Some(DisputeRow {
            id,
            tenant,
            payment_id,
            amount_minor,
            currency,
            reason,
            status,
            created_at_ms,
            entity: payment.entity,
        }))
    }

    /// The dispute object merchants see.
    pub fn object(&self) -> Dispute {
        Dispute {
            object: ObjectType::Dispute,
            id: self.id.clone(),
            payment_id: self.payment_id.clone(),
            livemode: self.tenant.mode.is_live(),
            amount: self.amount_minor,
            currency: self.currency,
            reason: self.reason.clone(),
            status: self.status,
            created_at_ms: self.created_at_ms,
            entity: self.entity.clone(),
        }
    }
}

impl TenantRecord for DisputeRow {
    const WHAT: &'static str = "dispute";

    fn load(conn: &Connection, id: &str) -> Result<Option<Self>, StoreError> {
        DisputeRow::load(conn, id)
    }

    fn tenant(&self) -> &Tenant {
        &self.tenant
    }
}
