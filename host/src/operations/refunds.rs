//! Refunds: money back to the customer for a completed payment, all or part,
//! through the rail that collected it (straight back into the customer's
//! wallet for wallet payments). A refund is a [`RailOperation`]: claimed
//! here together with its idempotency key, its amount committed on the
//! payment in that same write (so refunds and disputes together can never
//! exceed it), then asked of the rail and recorded by the lifecycle.
//!
//! Ledger, on completion only (entry `refund`, transaction = the refund id):
//! `merchant_pending` +A, and the rail's clearing account (or the
//! customer's wallet) −A. The platform keeps its fee. This module owns the
//! `refunds` table and the refund object.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::context::Context;
use super::idempotency::{self, Claimed, KeyedRequest, Reply, StoredResponse};
use super::lifecycle::{self, FailureReason, RailAnswer, RailOperation, Report};
use super::payments::PaymentRow;
use crate::domain::customers;
use crate::domain::webhooks::{self, EventType};
use crate::ledger::{self, AccountKind, EntryKind, Posting};
use crate::plugins::{LoadedRail, Money, PluginError, RefundRequest, TransactionStatus};
use crate::store::{StoreError, TenantRecord};
use crate::values::clock::{serialize_rfc3339, serialize_rfc3339_opt};
use crate::values::entity::Entity;
use crate::values::error::ApiError;
use crate::values::method::Method;
use crate::values::mode::Tenant;
use crate::values::money::Currency;
use crate::values::status::{PaymentStatus, RefundStatus, TransactionKind};

/// A validated `POST /v1/refunds` body.
#[derive(Debug, Clone)]
pub struct NewRefund {
    pub payment_id: String,
    /// `None`: whatever is left to refund.
    pub amount_minor: Option<u64>,
    pub reason: Option<String>,
}

/// `POST /v1/refunds`.
pub async fn create(ctx: &Context, request: KeyedRequest, new: NewRefund) -> Result<Reply, ApiError> {
    let payment: PaymentRow = crate::store::fetch(&ctx.store, &request.tenant, new.payment_id.clone()).await?;
    // The rail that collected it, never whatever is bound today; wallet
    // money never left the gateway and needs none.
    let rail = match payment.method {
        Method::Wallet => None,
        _ => match ctx.rails.rail_named(&payment.rail) {
            Some(rail) => Some(rail),
            None => {
                return match idempotency::answer_if_used(&ctx.store, &request).await? {
                    Some(reply) => Ok(reply),
                    None => Err(ApiError::PaymentMethodUnavailable(format!(
                        "the rail that collected this payment ({}) is not loaded on this gateway, so it cannot refund it now",
                        payment.rail
                    ))),
                };
            }
        },
    };
    let now_ms = ctx.clock.now_ms();
    let id = TransactionKind::Refund.new_id();
    let ctx = ctx.clone();
    lifecycle::detached(async move {
        let (insert_id, key) = (id.clone(), request.key.clone());
        let claimed = idempotency::claim_with(&ctx.store, request, id, now_ms, move |conn| {
            RefundRow::insert(conn, &insert_id, &key, &new, now_ms)
        });
        let refund = match claimed.await? {
            Claimed::New(refund) => refund,
            Claimed::Used(reply) => return Ok(reply),
        };
        let stored = lifecycle::submit(&ctx, rail, refund).await?;
        stored.map(Reply::new).ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a refund's key stored no answer")))
    })
    .await
}

/// `GET /v1/refunds/{id}`.
pub async fn get(ctx: &Context, tenant: &Tenant, id: String) -> Result<Refund, ApiError> {
    let refund: RefundRow = crate::store::fetch(&ctx.store, tenant, id).await?;
    Ok(refund.object())
}

/// A refund as stored, with the payment it refunds.
#[derive(Debug, Clone)]
pub struct RefundRow {
    pub id: String,
    pub tenant: Tenant,
    pub amount_minor: i64,
    pub currency: Currency,
    reason: Option<String>,
    pub status: RefundStatus,
    provider_reference: Option<String>,
    failure: Option<FailureReason>,
    idempotency_key: String,
    created_at_ms: i64,
    completed_at_ms: Option<i64>,
    pub payment: PaymentRow,
}

impl RefundRow {
    /// Inserts a refund of `new.payment_id`, refusing (and so undoing the
    /// claim) when the payment is not the tenant's, not completed, or has
    /// too little left that no refund or dispute holds.
    fn insert(conn: &Connection, id: &str, key: &str, new: &NewRefund, now_ms: i64) -> Result<RefundRow, StoreError> {
        let refuse = StoreError::rejected;
        let payment =
            PaymentRow::load(conn, &new.payment_id)?.ok_or_else(|| refuse(ApiError::NotFound { what: "payment" }))?;
        if payment.status != PaymentStatus::Completed {
            return Err(refuse(ApiError::RefundNotAllowed(format!(
                "only a completed payment can be refunded; this one is {}",
                payment.status
            ))));
        }
        let left = payment.amount_minor - payment.amount_committed_minor;
        let amount_minor = new.amount_minor.map_or(left, |amount| i64::try_from(amount).unwrap_or(i64::MAX));
        if amount_minor <= 0 || amount_minor > left || !PaymentRow::commit(conn, &payment.id, amount_minor)? {
            return Err(refuse(ApiError::RefundExceedsPayment {
                refundable: left.max(0),
                currency: payment.currency.code.into(),
            }));
        }
        let refund = RefundRow {
            id: id.to_string(),
            tenant: payment.tenant.clone(),
            amount_minor,
            currency: payment.currency,
            reason: new.reason.clone(),
            status: RefundStatus::Processing,
            provider_reference: None,
            failure: None,
            idempotency_key: key.to_string(),
            created_at_ms: now_ms,
            completed_at_ms: None,
            payment,
        };
        conn.prepare_cached(
            "INSERT INTO refunds (id, payment_id, merchant_id, mode, rail, amount, currency, reason, status,
             idempotency_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            refund.id,
            refund.payment.id,
            refund.tenant.merchant_id,
            refund.tenant.mode,
            refund.payment.rail,
            refund.amount_minor,
            refund.currency,
            refund.reason,
            refund.status,
            refund.idempotency_key,
            now_ms
        ])?;
        if let Some(phone) = &refund.payment.customer_phone {
            customers::index_transaction(conn, id, &refund.tenant, phone, TransactionKind::Refund, now_ms)?;
        }
        Ok(refund)
    }

    pub fn load(conn: &Connection, id: &str) -> Result<Option<RefundRow>, StoreError> {
        let payment_id: Option<String> = conn
            .prepare_cached("SELECT payment_id FROM refunds WHERE id = ?1")?
            .query_row(params![id], |row| row.get(0))
            .optional()?;
        let Some(payment_id) = payment_id else { return Ok(None) };
        let payment = PaymentRow::load(conn, &payment_id)?
            .ok_or_else(|| StoreError::Invariant(format!("refund {id}: payment {payment_id} vanished")))?;
        let refund = conn
            .prepare_cached(
                "SELECT id, merchant_id, mode, amount, currency, reason, status, provider_reference, failure_code,
                 failure_message, idempotency_key, created_at, completed_at FROM refunds WHERE id = ?1",
            )?
            .query_row(params![id], move |row| {
                Ok(RefundRow {
                    id: row.get(0)?,
                    tenant: Tenant { merchant_id: row.get(1)?, mode: row.get(2)? },
                    amount_minor: row.get(3)?,
                    currency: row.get(4)?,
                    reason: row.get(5)?,
                    status: row.get(6)?,
                    provider_reference: row.get(7)?,
                    failure: FailureReason::from_columns(row.get(8)?, row.get(9)?),
                    idempotency_key: row.get(10)?,
                    created_at_ms: row.get(11)?,
                    completed_at_ms: row.get(12)?,
                    payment,
                })
            })?;
        Ok(Some(refund))
    }

    /// Completion moves the money back and counts it on the payment; any
    /// other end gives the payment its committed amount back.
    fn post_outcome(&self, conn: &Connection, now_ms: i64) -> Result<(), StoreError> {
        if self.status != RefundStatus::Completed {
            PaymentRow::release(conn, &self.payment.id, self.amount_minor)?;
            return webhooks::emit(conn, &self.tenant, EventType::RefundFailed, &self.id, &self.object(), now_ms)
                .map(drop);
        }
        let postings = [
            Posting {
                account: self.payment.account(&self.tenant.merchant_id, AccountKind::MerchantPending),
                amount_minor: self.amount_minor,
            },
            Posting { account: self.payment.refund_destination()?, amount_minor: -self.amount_minor },
        ];
        ledger::post(conn, self.tenant.mode, EntryKind::Refund, &self.id, &postings, now_ms)?;
        let refunded_in_full = PaymentRow::add_refunded(conn, &self.payment.id, self.amount_minor)?;
        webhooks::emit(conn, &self.tenant, EventType::RefundSucceeded, &self.id, &self.object(), now_ms)?;
        if refunded_in_full {
            let payment = PaymentRow::load(conn, &self.payment.id)?
                .ok_or_else(|| StoreError::Invariant("payment vanished".into()))?;
            webhooks::emit(conn, &self.tenant, EventType::TransactionRefunded, &payment.id, &payment.object(), now_ms)?;
        }
        Ok(())
    }

    /// The refund object merchants see.
    pub fn object(&self) -> Refund {
        Refund {
            object: "refund",
            id: self.id.clone(),
            payment_id: self.payment.id.clone(),
            livemode: self.tenant.mode.is_live(),
            amount: self.amount_minor,
            currency: self.currency,
            reason: self.reason.clone(),
            status: self.status,
            provider_reference: self.provider_reference.clone(),
            idempotency_key: self.idempotency_key.clone(),
            created_at_ms: self.created_at_ms,
            completed_at_ms: self.completed_at_ms,
            entity: self.payment.entity.clone(),
            failure: self.failure.clone(),
        }
    }
}

impl TenantRecord for RefundRow {
    const WHAT: &'static str = "refund";

    fn load(conn: &Connection, id: &str) -> Result<Option<Self>, StoreError> {
        RefundRow::load(conn, id)
    }

    fn tenant(&self) -> &Tenant {
        &self.tenant
    }
}

impl RailOperation for RefundRow {
    const KIND: TransactionKind = TransactionKind::Refund;
    const BUSY_MESSAGE: &'static str = "the gateway had no free plugin instance; retry with a new key";
    type Request = RefundRequest;

    fn load(conn: &Connection, id: &str) -> Result<Option<Self>, StoreError> {
        RefundRow::load(conn, id)
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn rail(&self) -> Option<&str> {
        (self.payment.method != Method::Wallet).then_some(self.payment.rail.as_str())
    }

    fn is_processing(&self) -> bool {
        self.status == RefundStatus::Processing
    }

    fn provider_reference(&self) -> Option<&str> {
        self.provider_reference.as_deref()
    }

    fn created_at_ms(&self) -> i64 {
        self.created_at_ms
    }

    fn rail_request(&self) -> Result<RefundRequest, String> {
        Ok(RefundRequest {
            refund_id: self.id.clone(),
            payment_id: self.payment.id.clone(),
            provider_reference: self.payment.provider_reference.clone(),
            money: Money {
                amount: u64::try_from(self.amount_minor).map_err(|_| "a negative amount".to_string())?,
                currency: self.currency.code.to_string(),
            },
            customer_phone: self.payment.customer_phone.clone(),
            created_at_ms: u64::try_from(self.created_at_ms).unwrap_or(0),
        })
    }

    fn call(rail: &LoadedRail, request: &RefundRequest) -> RailAnswer {
        rail.refund(request)
    }

    fn ask(rail: &LoadedRail, request: &RefundRequest, provider_reference: Option<&str>) -> RailAnswer {
        rail.refund_status(request, provider_reference)
    }

    fn apply(&mut self, conn: &Connection, report: &Report, now_ms: i64) -> Result<(), StoreError> {
        if let Some(reference) = &report.provider_reference {
            self.provider_reference = Some(reference.clone());
        }
        // A rail may say a refund is done as either `completed` or `refunded`.
        let status = match report.status {
            TransactionStatus::Processing => {
                conn.prepare_cached("UPDATE refunds SET provider_reference = ?2 WHERE id = ?1")?
                    .execute(params![self.id, self.provider_reference])?;
                return Ok(());
            }
            TransactionStatus::Completed | TransactionStatus::Refunded => RefundStatus::Completed,
            TransactionStatus::Failed => RefundStatus::Failed,
            TransactionStatus::Cancelled => RefundStatus::Cancelled,
        };
        self.status = status;
        self.failure = report.failure.clone();
        self.completed_at_ms = Some(now_ms);
        conn.prepare_cached(
            "UPDATE refunds SET status = ?2, provider_reference = ?3, failure_code = ?4, failure_message = ?5,
             completed_at = ?6 WHERE id = ?1",
        )?
        .execute(params![
            self.id,
            self.status,
            self.provider_reference,
            self.failure.as_ref().map(|f| &f.code),
            self.failure.as_ref().and_then(|f| f.message.as_ref()),
            now_ms
        ])?;
        self.post_outcome(conn, now_ms)
    }

    fn response(
        &self,
        _conn: &Connection,
        _unanswered: Option<&PluginError>,
    ) -> Result<Option<StoredResponse>, StoreError> {
        Ok(Some(StoredResponse::created(&self.object())))
    }
}

/// The refund object.
#[derive(Debug, Clone, Serialize)]
pub struct Refund {
    object: &'static str,
    pub id: String,
    pub payment_id: String,
    pub livemode: bool,
    pub amount: i64,
    pub currency: Currency,
    pub reason: Option<String>,
    pub status: RefundStatus,
    pub provider_reference: Option<String>,
    pub idempotency_key: String,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    pub created_at_ms: i64,
    #[serde(rename = "completed_at", serialize_with = "serialize_rfc3339_opt")]
    pub completed_at_ms: Option<i64>,
    pub entity: Entity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureReason>,
}
