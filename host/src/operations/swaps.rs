//! Swaps: a customer's money from one wallet into their other-currency
//! wallet, at a locked FX quote (`domain::fx`). A swap takes the customer's
//! money, so it waits for their approval (`approvals`): made `processing`
//! with the quote reserved for it, in one write with its idempotency key;
//! approved, it executes at the quote's amounts (the customer's wallet
//! must still hold them); refused, expired or over-guessed, it fails with
//! nothing moved. This module owns the `fx_swaps` table and the swap object.
//!
//! Ledger (entry `swap`): the customer pays `from` out of one wallet and
//! receives `to` in the other; the platform takes `from` into its position,
//! gives the mid value out of its position in `to`, and keeps the
//! difference as FX revenue.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::approvals::{self, Ask};
use super::context::Context;
use super::idempotency::{self, KeyedRequest, Reply, StoredResponse};
use super::objects::{NextAction, Swap};
use crate::domain::customers;
use crate::domain::customers::CustomerPhone;
use crate::domain::fx::{Amount, QuoteRow};
use crate::domain::wallets::{self, Wallets};
use crate::ledger::{self, AccountKind, EntryKind, PLATFORM_OWNER, Posting};
use crate::store::{StoreError, TenantRecord};
use crate::values::clock::rfc3339;
use crate::values::error::ApiError;
use crate::values::failure::FailureReason;
use crate::values::mode::Tenant;
use crate::values::status::{ApprovalPurpose, ObjectType, SwapStatus, TransactionKind};

/// A validated swap request.
#[derive(Debug, Clone)]
pub struct NewSwap {
    pub quote_id: String,
    pub phone: String,
}

/// `POST /v1/fx/swaps`: reserves the quote for a swap of the customer's
/// money and asks them to approve it.
pub async fn create(ctx: &Context, request: KeyedRequest, new: NewSwap) -> Result<Reply, ApiError> {
    let mode = request.tenant.mode;
    let Some(messenger) = ctx.messengers.for_mode(mode).cloned() else {
        return idempotency::replay_or(&ctx.store, &request, ApiError::MessagingUnavailable { mode }).await;
    };
    let (codes, messenger_name) = (ctx.codes.clone(), messenger.plugin_name().to_string());
    let ttl_ms = i64::try_from(ctx.codes.settings.approval_ttl_ms).unwrap_or(i64::MAX);
    let id = TransactionKind::Swap.new_id();
    let (tenant, swap_id) = (request.tenant.clone(), id.clone());
    let (reply, message) = idempotency::write_once(&ctx.store, &ctx.clock, request, id, move |conn, now_ms| {
        let mut swap = SwapRow::reserve(conn, &tenant, swap_id, &new, now_ms)?;
        let (approval, message) =
            approvals::request(conn, &codes, swap.approval_ask(), &messenger_name, ttl_ms, now_ms)?;
        swap.approval_id = Some(approval.id.clone());
        swap.awaiting_approval_until_ms = Some(approval.expires_at_ms);
        swap.insert(conn)?;
        Ok((StoredResponse::created(&swap.object()), message))
    })
    .await?;
    if let Some(message) = message {
        approvals::deliver(ctx, messenger, message).await;
    }
    Ok(reply)
}

/// The customer approved swap `id`: it executes at its quote's amounts, in
/// the approving write, or fails with nothing moved when their wallet no
/// longer holds the amount.
pub fn on_approved(conn: &Connection, wallets: &Wallets, id: &str, now_ms: i64) -> Result<(), StoreError> {
    let Some(mut swap) = SwapRow::load(conn, id)?.filter(|s| s.status == SwapStatus::Processing) else {
        return Ok(());
    };
    let mode = swap.tenant.mode;
    let q = &swap.quote;
    let from_wallet = wallets.wallet(mode, &swap.phone, q.from);
    let from_amount = u64::try_from(q.from_amount_minor).expect("stored amounts are positive");
    if !wallets::holds_at_least(conn, &from_wallet, from_amount)? {
        let reason = FailureReason {
            code: "INSUFFICIENT_FUNDS".into(),
            message: Some("the customer's wallet held too little when they approved".into()),
        };
        return swap.end(conn, SwapStatus::Failed, Some(reason), now_ms);
    }
    let platform = |kind, currency| wallets.account(mode, PLATFORM_OWNER, kind, currency);
    let postings: Vec<Posting> = [
        Posting { account: from_wallet, amount_minor: q.from_amount_minor },
        Posting { account: platform(AccountKind::FxPosition, q.from), amount_minor: -q.from_amount_minor },
        Posting { account: platform(AccountKind::FxPosition, q.to), amount_minor: q.mid_to_amount_minor },
        Posting { account: wallets.wallet(mode, &swap.phone, q.to), amount_minor: -q.to_amount_minor },
        Posting {
            account: platform(AccountKind::FxRevenue, q.to),
            amount_minor: -(q.mid_to_amount_minor - q.to_amount_minor),
        },
    ]
    .into_iter()
    .filter(|p| p.amount_minor != 0)
    .collect();
    ledger::post(conn, mode, EntryKind::Swap, &swap.id, &postings, now_ms)?;
    swap.awaiting_approval_until_ms = None;
    swap.end(conn, SwapStatus::Completed, None, now_ms)
}

/// The customer did not approve swap `id`: it fails with nothing moved.
pub fn on_not_approved(conn: &Connection, id: &str, reason: &FailureReason, now_ms: i64) -> Result<(), StoreError> {
    match SwapRow::load(conn, id)?.filter(|s| s.status == SwapStatus::Processing) {
        Some(swap) => swap.end(conn, SwapStatus::Failed, Some(reason.clone()), now_ms),
        None => Ok(()),
    }
}

/// The swap that reserved a quote, if one did (`quote_id` is unique).
fn swap_of_quote(conn: &Connection, quote_id: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id FROM fx_swaps WHERE quote_id = ?1")?
        .query_row(params![quote_id], |row| row.get(0))
        .optional()?)
}

/// A swap as stored, with its quote.
#[derive(Debug, Clone)]
pub struct SwapRow {
    pub id: String,
    pub tenant: Tenant,
    phone: String,
    status: SwapStatus,
    approval_id: Option<String>,
    /// Set until the customer approves.
    awaiting_approval_until_ms: Option<i64>,
    failure: Option<FailureReason>,
    created_at_ms: i64,
    completed_at_ms: Option<i64>,
    quote: QuoteRow,
}

impl SwapRow {
    /// A new swap of the customer's money at `new`'s quote: the tenant's,
    /// not reserved by another swap, not expired.
    fn reserve(
        conn: &Connection,
        tenant: &Tenant,
        id: String,
        new: &NewSwap,
        now_ms: i64,
    ) -> Result<SwapRow, StoreError> {
        let refuse = StoreError::rejected;
        let quote = crate::store::load_owned::<QuoteRow>(conn, tenant, &new.quote_id)?
            .ok_or_else(|| refuse(ApiError::NotFound { what: "quote" }))?;
        if let Some(swap_id) = swap_of_quote(conn, &quote.id)? {
            return Err(refuse(ApiError::QuoteAlreadyUsed { by: format!("swap {swap_id}") }));
        }
        if now_ms > quote.expires_at_ms {
            return Err(refuse(ApiError::QuoteExpired { expired_at: rfc3339(quote.expires_at_ms) }));
        }
        Ok(SwapRow {
            id,
            tenant: tenant.clone(),
            phone: new.phone.clone(),
            status: SwapStatus::Processing,
            approval_id: None,
            awaiting_approval_until_ms: None,
            failure: None,
            created_at_ms: now_ms,
            completed_at_ms: None,
            quote,
        })
    }

    fn approval_ask(&self) -> Ask {
        Ask {
            tenant: self.tenant.clone(),
            phone: self.phone.clone(),
            purpose: ApprovalPurpose::Swap,
            transaction_id: Some(self.id.clone()),
            amount: Some((self.quote.from_amount_minor, self.quote.from)),
        }
    }

    fn insert(&self, conn: &Connection) -> Result<(), StoreError> {
        conn.prepare_cached(
            "INSERT INTO fx_swaps (id, merchant_id, mode, quote_id, customer_phone, status, approval_id,
                                   approval_expires_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            self.id,
            self.tenant.merchant_id,
            self.tenant.mode,
            self.quote.id,
            self.phone,
            self.status,
            self.approval_id,
            self.awaiting_approval_until_ms,
            self.created_at_ms
        ])?;
        customers::index_transaction(
            conn,
            &self.id,
            &self.tenant,
            &self.phone,
            TransactionKind::Swap,
            self.created_at_ms,
        )
    }

    fn end(
        mut self,
        conn: &Connection,
        status: SwapStatus,
        failure: Option<FailureReason>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        (self.status, self.failure, self.completed_at_ms) = (status, failure, Some(now_ms));
        let (code, message) = self.failure.clone().map(|f| (f.code, f.message)).unzip();
        conn.prepare_cached(
            "UPDATE fx_swaps SET status = ?2, failure_code = ?3, failure_message = ?4, completed_at = ?5,
                                 approval_expires_at = ?6
             WHERE id = ?1",
        )?
        .execute(params![
            self.id,
            self.status,
            code,
            message.flatten(),
            now_ms,
            self.awaiting_approval_until_ms
        ])?;
        Ok(())
    }

    pub fn load(conn: &Connection, id: &str) -> Result<Option<SwapRow>, StoreError> {
        let row = conn
            .prepare_cached(
                "SELECT merchant_id, mode, quote_id, customer_phone, status, approval_id, approval_expires_at,
                        failure_code, failure_message, created_at, completed_at
                 FROM fx_swaps WHERE id = ?1",
            )?
            .query_row(params![id], |row| Ok((row.get::<_, String>(2)?, Partial::from_row(row)?)))
            .optional()?;
        let Some((quote_id, partial)) = row else { return Ok(None) };
        let quote = QuoteRow::load(conn, &quote_id)?
            .ok_or_else(|| StoreError::Invariant(format!("quote {quote_id} vanished")))?;
        Ok(Some(partial.with(id, quote)))
    }

    /// The swap object, with its quote's amounts.
    pub fn object(&self) -> Swap {
        Swap {
            object: ObjectType::FxSwap,
            id: self.id.clone(),
            kind: TransactionKind::Swap,
            status: self.status,
            quote_id: self.quote.id.clone(),
            customer: CustomerPhone { phone: self.phone.clone() },
            from: Amount { currency: self.quote.from, amount: self.quote.from_amount_minor },
            to: Amount { currency: self.quote.to, amount: self.quote.to_amount_minor },
            rate: self.quote.rate.into(),
            livemode: self.tenant.mode.is_live(),
            created_at_ms: self.created_at_ms,
            completed_at_ms: self.completed_at_ms,
            failure: self.failure.clone(),
            next_action: match (self.status, &self.approval_id, self.awaiting_approval_until_ms) {
                (SwapStatus::Processing, Some(approval), Some(expires_at_ms)) => {
                    Some(NextAction::CustomerApproval { approval: approval.clone(), expires_at_ms })
                }
                _ => None,
            },
        }
    }
}

/// A swap row's own columns, before its quote is read.
struct Partial {
    tenant: Tenant,
    phone: String,
    status: SwapStatus,
    approval_id: Option<String>,
    awaiting_approval_until_ms: Option<i64>,
    failure: Option<FailureReason>,
    created_at_ms: i64,
    completed_at_ms: Option<i64>,
}

impl Partial {
    fn from_row(row: &Row) -> rusqlite::Result<Partial> {
        Ok(Partial {
            tenant: Tenant { merchant_id: row.get(0)?, mode: row.get(1)? },
            phone: row.get(3)?,
            status: row.get(4)?,
            approval_id: row.get(5)?,
            awaiting_approval_until_ms: row.get(6)?,
            failure: FailureReason::from_columns(row.get(7)?, row.get(8)?),
            created_at_ms: row.get(9)?,
            completed_at_ms: row.get(10)?,
        })
    }

    fn with(self, id: &str, quote: QuoteRow) -> SwapRow {
        SwapRow {
            id: id.to_string(),
            tenant: self.tenant,
            phone: self.phone,
            status: self.status,
            approval_id: self.approval_id,
            awaiting_approval_until_ms: self.awaiting_approval_until_ms,
            failure: self.failure,
            created_at_ms: self.created_at_ms,
            completed_at_ms: self.completed_at_ms,
            quote,
        }
    }
}

impl TenantRecord for SwapRow {
    const WHAT: &'static str = "swap";

    fn load(conn: &Connection, id: &str) -> Result<Option<Self>, StoreError> {
        SwapRow::load(conn, id)
    }

    fn tenant(&self) -> &Tenant {
        &self.tenant
    }
}
