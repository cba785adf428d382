//! Approvals: a customer's consent to what a merchant asks of their money.
//! Every debit of a customer's wallet (a wallet payment, a swap) and every
//! standing access to their balances waits for one. Asking records a
//! pending approval, makes its code (`domain::codes`) and the message that
//! carries it through the mode's messenger, in the caller's write; the
//! customer approves by giving the code to the merchant, who sends it to
//! `POST /v1/approvals/{id}/approve`. This module owns `approvals` and
//! decides them; what a decision means for the payment, swap or access it
//! is for is `consent`'s.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::context::Context;

use crate::domain::accounts;
use crate::domain::codes::{Codes, Verdict};
use crate::domain::customers::CustomerPhone;
use crate::domain::messaging::{Outgoing, SendOutcome, Subject};
use crate::plugins::LoadedMessenger;
use crate::store::{StoreError, TenantRecord};
use crate::values::clock::{format_for_people, serialize_rfc3339, serialize_rfc3339_opt};
use crate::values::error::ApiError;
use crate::values::mode::Tenant;
use crate::values::money::{Currency, display_amount};
use crate::values::status::{ApprovalPurpose, ApprovalStatus, ObjectType};

/// Approvals one sweep expires at most.
const EXPIRIES_PER_SWEEP_MAX: usize = 100;

/// What a merchant asks a customer to approve.
#[derive(Debug, Clone)]
pub struct Ask {
    pub tenant: Tenant,
    pub phone: String,
    pub purpose: ApprovalPurpose,
    /// The payment or swap (none for wallet access).
    pub transaction_id: Option<String>,
    /// What it takes from the customer's wallet (none for wallet access).
    pub amount: Option<(i64, Currency)>,
}

/// An approval as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRow {
    pub id: String,
    pub tenant: Tenant,
    pub phone: String,
    pub purpose: ApprovalPurpose,
    pub transaction_id: Option<String>,
    pub amount: Option<(i64, Currency)>,
    pub status: ApprovalStatus,
    pub expires_at_ms: i64,
    pub created_at_ms: i64,
    pub decided_at_ms: Option<i64>,
}

const SELECT: &str = "SELECT id, merchant_id, mode, phone, purpose, transaction_id, amount, currency, status, \
     expires_at, created_at, decided_at FROM approvals";

/// Records a pending approval of `ask` until `ttl_ms` from now, makes its
/// code and records the message that carries it (through `messenger`), in
/// the caller's write. Returns the approval and the message to deliver once
/// the write is committed.
pub fn request(
    conn: &Connection,
    codes: &Codes,
    ask: Ask,
    messenger: &str,
    ttl_ms: i64,
    now_ms: i64,
) -> Result<(ApprovalRow, Outgoing), StoreError> {
    let approval = ApprovalRow {
        id: crate::values::ids::new_id("apv"),
        tenant: ask.tenant,
        phone: ask.phone,
        purpose: ask.purpose,
        transaction_id: ask.transaction_id,
        amount: ask.amount,
        status: ApprovalStatus::Pending,
        expires_at_ms: now_ms.saturating_add(ttl_ms),
        created_at_ms: now_ms,
        decided_at_ms: None,
    };
    conn.prepare_cached(
        "INSERT INTO approvals (id, merchant_id, mode, phone, purpose, transaction_id, amount, currency, status,
                                expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        approval.id,
        approval.tenant.merchant_id,
        approval.tenant.mode,
        approval.phone,
        approval.purpose,
        approval.transaction_id,
        approval.amount.map(|(amount, _)| amount),
        approval.amount.map(|(_, currency)| currency),
        approval.status,
        approval.expires_at_ms,
        now_ms
    ])?;
    let code =
        codes.issue(conn, approval.tenant.mode, &approval.phone, &approval.id, approval.expires_at_ms, now_ms)?;
    let merchant = accounts::load(conn, &approval.tenant.merchant_id)?
        .ok_or_else(|| StoreError::Invariant(format!("merchant {} vanished", approval.tenant.merchant_id)))?;
    let outgoing = approval.message(&merchant.name, &code)?;
    crate::domain::messaging::record(conn, &outgoing, messenger, now_ms)?;
    Ok((approval, outgoing))
}

/// Sends an approval's recorded message. A message that does not go out
/// is logged; the approval then expires unapproved, and the merchant may
/// ask again.
pub async fn deliver(ctx: &Context, messenger: Arc<LoadedMessenger>, message: Outgoing) {
    let id = message.id.clone();
    match crate::domain::messaging::deliver(&ctx.store, &ctx.clock, messenger, message).await {
        Ok(SendOutcome::Sent) => {}
        Ok(SendOutcome::Refused(failure)) => {
            tracing::info!(message = id, code = failure.code, "approval code refused by the channel")
        }
        Ok(SendOutcome::Failed(why)) => tracing::warn!(message = id, why, "approval code not sent"),
        Err(error) => tracing::warn!(message = id, %error, "approval code not sent"),
    }
}

/// How a code sent for a pending approval was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The right code: the approval is approved.
    Approved(ApprovalRow),
    /// A wrong code, counted against the customer's phone.
    Wrong { attempts_left: u32 },
    /// That wrong code was the last the phone may send: the approval failed.
    Failed(ApprovalRow),
    /// The phone's codes are locked; the approval still waits.
    Locked,
}

impl ApprovalRow {
    /// Takes `code` for this pending approval (refused when it is not
    /// pending, or expired by `now_ms`), in the caller's write.
    pub fn decide(&self, conn: &Connection, codes: &Codes, code: &str, now_ms: i64) -> Result<Decision, StoreError> {
        self.require_pending(now_ms)?;
        match codes.check(conn, self.tenant.mode, &self.phone, &self.id, code, now_ms)? {
            Verdict::Right => Ok(Decision::Approved(self.end(conn, ApprovalStatus::Approved, now_ms)?)),
            Verdict::Wrong { attempts_left: 0 } => {
                codes.forget(conn, self.tenant.mode, &self.phone, &self.id)?;
                Ok(Decision::Failed(self.end(conn, ApprovalStatus::Failed, now_ms)?))
            }
            Verdict::Wrong { attempts_left } => Ok(Decision::Wrong { attempts_left }),
            Verdict::Locked => Ok(Decision::Locked),
        }
    }

    /// Refuses this pending approval on the customer's word.
    pub fn refuse(&self, conn: &Connection, codes: &Codes, now_ms: i64) -> Result<ApprovalRow, StoreError> {
        self.require_pending(now_ms)?;
        codes.forget(conn, self.tenant.mode, &self.phone, &self.id)?;
        self.end(conn, ApprovalStatus::Refused, now_ms)
    }

    /// Pending and not expired, or refused with its status (an approval
    /// past its time that the sweep has not reached yet counts as expired).
    fn require_pending(&self, now_ms: i64) -> Result<(), StoreError> {
        let status = match self.status {
            ApprovalStatus::Pending if now_ms >= self.expires_at_ms => ApprovalStatus::Expired,
            status => status,
        };
        if status == ApprovalStatus::Pending {
            Ok(())
        } else {
            Err(StoreError::rejected(ApiError::ApprovalNotPending { status }))
        }
    }

    fn end(&self, conn: &Connection, status: ApprovalStatus, now_ms: i64) -> Result<ApprovalRow, StoreError> {
        conn.prepare_cached("UPDATE approvals SET status = ?2, decided_at = ?3 WHERE id = ?1")?
            .execute(params![self.id, status, now_ms])?;
        Ok(ApprovalRow { status, decided_at_ms: Some(now_ms), ..self.clone() })
    }

    fn from_row(row: &Row) -> rusqlite::Result<ApprovalRow> {
        let amount: Option<i64> = row.get(6)?;
        let currency: Option<Currency> = row.get(7)?;
        Ok(ApprovalRow {
            id: row.get(0)?,
            tenant: Tenant { merchant_id: row.get(1)?, mode: row.get(2)? },
            phone: row.get(3)?,
            purpose: row.get(4)?,
            transaction_id: row.get(5)?,
            amount: amount.zip(currency),
            status: row.get(8)?,
            expires_at_ms: row.get(9)?,
            created_at_ms: row.get(10)?,
            decided_at_ms: row.get(11)?,
        })
    }

    /// The words the customer reads: the merchant's name, what it asks, the
    /// code, and that ignoring the message refuses.
    fn message(&self, merchant_name: &str, code: &str) -> Result<Outgoing, StoreError> {
        let expires = format_for_people(self.expires_at_ms);
        let (template, asked) = match (self.purpose, self.amount) {
            (ApprovalPurpose::WalletAccess, _) => {
                ("wallet_access_approval", "to see the balances of your Soxara wallets until you withdraw it".into())
            }
            (purpose, Some((amount, currency))) => {
                let amount = u64::try_from(amount).map_err(|_| StoreError::Invariant("negative approval".into()))?;
                let what = match purpose {
                    ApprovalPurpose::Swap => "to exchange",
                    _ => "to take",
                };
                ("debit_approval", format!("{what} {} from your Soxara wallet", display_amount(amount, currency)))
            }
            (_, None) => return Err(StoreError::Invariant(format!("approval {} of a debit has no amount", self.id))),
        };
        let text = format!(
            "Soxara: {merchant_name} asks {asked}. To agree, give them the code {code} before {expires}. If you \
             do not agree, ignore this message: nothing happens without the code. Soxara will never ask you for it."
        );
        Ok(Outgoing {
            id: crate::values::ids::new_id("msg"),
            tenant: self.tenant.clone(),
            subject: Subject::Approval(self.id.clone()),
            to: self.phone.clone(),
            template: template.to_string(),
            parameters: vec![merchant_name.to_string(), asked, code.to_string(), expires],
            text,
        })
    }

    /// The approval object merchants see.
    pub fn object(&self) -> Approval {
        Approval {
            object: ObjectType::Approval,
            id: self.id.clone(),
            purpose: self.purpose,
            status: self.status,
            customer: CustomerPhone { phone: self.phone.clone() },
            transaction: self.transaction_id.clone(),
            amount: self.amount.map(|(amount, _)| amount),
            currency: self.amount.map(|(_, currency)| currency),
            livemode: self.tenant.mode.is_live(),
            created_at_ms: self.created_at_ms,
            expires_at_ms: self.expires_at_ms,
            decided_at_ms: self.decided_at_ms,
        }
    }
}

impl TenantRecord for ApprovalRow {
    const WHAT: &'static str = "approval";

    fn load(conn: &Connection, id: &str) -> Result<Option<ApprovalRow>, StoreError> {
        Ok(conn
            .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
            .query_row(params![id], ApprovalRow::from_row)
            .optional()?)
    }

    fn tenant(&self) -> &Tenant {
        &self.tenant
    }
}

/// Marks the pending approvals whose time ran out by `now_ms` expired (at
/// most a sweep's worth) and returns them.
pub fn expire_due(conn: &Connection, codes: &Codes, now_ms: i64) -> Result<Vec<ApprovalRow>, StoreError> {
    let due = conn
        .prepare_cached(&format!("{SELECT} WHERE status = ?1 AND expires_at <= ?2 ORDER BY expires_at LIMIT ?3"))?
        .query_map(params![ApprovalStatus::Pending, now_ms, EXPIRIES_PER_SWEEP_MAX as i64], ApprovalRow::from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    due.iter()
        .map(|approval| {
            codes.forget(conn, approval.tenant.mode, &approval.phone, &approval.id)?;
            approval.end(conn, ApprovalStatus::Expired, now_ms)
        })
        .collect()
}

/// Notes that the rail gave its first answer on the approved operation
/// `transaction_id`: a restart no longer asks it again.
pub fn mark_answered(conn: &Connection, transaction_id: &str, now_ms: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE approvals SET answered_at = ?2 WHERE transaction_id = ?1 AND answered_at IS NULL")?
        .execute(params![transaction_id, now_ms])?;
    Ok(())
}

/// Approved operations whose rail has not answered yet (a crash came
/// between the approval and the answer): (purpose, transaction id).
pub fn approved_unanswered(conn: &Connection) -> Result<Vec<(ApprovalPurpose, String)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT purpose, transaction_id FROM approvals
             WHERE status = ?1 AND answered_at IS NULL AND transaction_id IS NOT NULL",
        )?
        .query_map(params![ApprovalStatus::Approved], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?)
}

/// The approval object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Approval {
    object: ObjectType,
    pub id: String,
    pub purpose: ApprovalPurpose,
    pub status: ApprovalStatus,
    pub customer: CustomerPhone<String>,
    /// The payment or swap it is for (none for wallet access).
    pub transaction: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<Currency>,
    pub livemode: bool,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at_ms: i64,
    #[serde(rename = "expires_at", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at_ms: i64,
    #[serde(rename = "decided_at", serialize_with = "serialize_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at_ms: Option<i64>,
}
