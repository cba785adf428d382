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

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};

use super::context::Context;
use super::idempotency::{self, Claimed, KeyedRequest, Reply, StoredResponse};
use super::lifecycle::{self, FailureReason, RailAnswer, RailOperation, RailWork};
use super::objects::Refund;
use super::payments::PaymentRow;
use crate::domain::customers;
use crate::domain::webhooks::{self, EventType};
use crate::ledger::{self, AccountKind, EntryKind, Posting};
use crate::plugins::{LoadedRail, PluginError, RailOutcome, RefundRequest, TransactionStatus};
use crate::store::{StoreError, TenantRecord};
use crate::values::error::ApiError;
use crate::values::method::Method;
use crate::values::mode::{Mode, Tenant};
use crate::values::money::Currency;
use crate::values::status::{ObjectType, PaymentStatus, RefundStatus, TransactionKind};

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
        _ => match ctx.rails.rail_named(&payment.rail, request.tenant.mode) {
            Some(rail) => Some(rail),
            None => {
                let unavailable = ApiError::PaymentMethodUnavailable(format!(
                    "the rail that collected this payment ({}) is not loaded on this gateway, so it cannot refund it now",
                    payment.rail
                ));
                return idempotency::replay_or(&ctx.store, &request, unavailable).await;
            }
        },
    };
    let now_ms = ctx.clock.now_ms();
    let ctx = ctx.clone();
    lifecycle::detached(async move {
        let work = RailWork::new(TransactionKind::Refund, request.tenant.clone(), RefundStatus::Processing, now_ms);
        let (id, key) = (work.id.clone(), request.key.clone());
        let claimed = idempotency::claim_with(&ctx.store, request, id, now_ms, move |conn| {
            RefundRow::insert(conn, work, key, &new)
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

/// A refund as stored, with the payment it refunds.
#[derive(Debug, Clone)]
pub struct RefundRow {
    pub work: RailWork<RefundStatus>,
    amount_minor: i64,
    currency: Currency,
    reason: Option<String>,
    idempotency_key: String,
    pub payment: PaymentRow,
}

impl RefundRow {
    /// Inserts a refund of `new.payment_id`, refusing (and so undoing the
    /// claim) when the payment is not the tenant's, not completed, or has
    /// too little left that no refund or dispute holds.
    fn insert(
        conn: &Connection,
        work: RailWork<RefundStatus>,
        key: String,
        new: &NewRefund,
    ) -> Result<RefundRow, StoreError> {
        let refuse = StoreError::rejected;
        let payment = crate::store::load_owned::<PaymentRow>(conn, &work.tenant, &new.payment_id)?
            .ok_or_else(|| refuse(ApiError::NotFound { what: "payment" }))?;
        if payment.work.status != PaymentStatus::Completed {
            let status = payment.work.status;
            return Err(refuse(ApiError::RefundNotAllowed(format!(
                "only a completed payment can be refunded; this one is {status}"
            ))));
        }
        let left = payment.amount_minor - payment.amount_committed_minor;
        let amount_minor = new.amount_minor.map_or(left, |amount| i64::try_from(amount).unwrap_or(i64::MAX));
        if amount_minor <= 0 || amount_minor > left || !PaymentRow::commit(conn, &payment.work.id, amount_minor)? {
            let currency = payment.currency.code.to_string();
            return Err(refuse(ApiError::RefundExceedsPayment { refundable: left.max(0), currency }));
        }
        let refund = RefundRow {
            work,
            amount_minor,
            currency: payment.currency,
            reason: new.reason.clone(),
            idempotency_key: key,
            payment,
        };
        let work = &refund.work;
        conn.prepare_cached(
            "INSERT INTO refunds (id, payment_id, merchant_id, mode, rail, amount, currency, reason, status,
             idempotency_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            work.id,
            refund.payment.work.id,
            work.tenant.merchant_id,
            work.tenant.mode,
            refund.payment.rail,
            refund.amount_minor,
            refund.currency,
            refund.reason,
            work.status,
            refund.idempotency_key,
            work.created_at_ms
        ])?;
        if let Some(phone) = &refund.payment.customer_phone {
            customers::index_transaction(
                conn,
                &work.id,
                &work.tenant,
                phone,
                TransactionKind::Refund,
                work.created_at_ms,
            )?;
        }
        Ok(refund)
    }

    /// The refund object merchants see.
    pub fn object(&self) -> Refund {
        let work = &self.work;
        Refund {
            object: ObjectType::Refund,
            id: work.id.clone(),
            payment_id: self.payment.work.id.clone(),
            livemode: work.tenant.mode.is_live(),
            amount: self.amount_minor,
            currency: self.currency,
            reason: self.reason.clone(),
            status: work.status,
            provider_reference: work.provider_reference.clone(),
            idempotency_key: self.idempotency_key.clone(),
            created_at_ms: work.created_at_ms,
            completed_at_ms: work.completed_at_ms,
            entity: self.payment.entity.clone(),
            failure: work.failure.clone(),
        }
    }
}

impl TenantRecord for RefundRow {
    const WHAT: &'static str = "refund";

    fn load(conn: &Connection, id: &str) -> Result<Option<RefundRow>, StoreError> {
        let payment_id: Option<String> = conn
            .prepare_cached("SELECT payment_id FROM refunds WHERE id = ?1")?
            .query_row(params![id], |row| row.get(0))
            .optional()?;
        let Some(payment_id) = payment_id else { return Ok(None) };
        let payment = PaymentRow::load(conn, &payment_id)?
            .ok_or_else(|| StoreError::Invariant(format!("refund {id}: payment {payment_id} vanished")))?;
        let refund = conn
            .prepare_cached(
                "SELECT id, merchant_id, mode, status, provider_reference, failure_code, failure_message, created_at,
                 completed_at, amount, currency, reason, idempotency_key FROM refunds WHERE id = ?1",
            )?
            .query_row(params![id], move |row| {
                Ok(RefundRow {
                    work: RailWork {
                        id: row.get(0)?,
                        tenant: Tenant { merchant_id: row.get(1)?, mode: row.get(2)? },
                        status: row.get(3)?,
                        provider_reference: row.get(4)?,
                        failure: FailureReason::from_columns(row.get(5)?, row.get(6)?),
                        created_at_ms: row.get(7)?,
                        completed_at_ms: row.get(8)?,
                    },
                    amount_minor: row.get(9)?,
                    currency: row.get(10)?,
                    reason: row.get(11)?,
                    idempotency_key: row.get(12)?,
                    payment,
                })
            })?;
        Ok(Some(refund))
    }

    fn tenant(&self) -> &Tenant {
        &self.work.tenant
    }
}

impl RailOperation for RefundRow {
    const KIND: TransactionKind = TransactionKind::Refund;
    const BUSY_MESSAGE: &'static str = "the gateway had no free plugin instance; retry with a new key";
    type Status = RefundStatus;
    const PROCESSING: RefundStatus = RefundStatus::Processing;
    type Request = RefundRequest;
    type Plugin = LoadedRail;
    type Outcome = RailOutcome;

    fn plugin(ctx: &Context, name: &str, mode: Mode) -> Option<Arc<LoadedRail>> {
        ctx.rails.rail_named(name, mode)
    }

    fn work(&self) -> &RailWork<RefundStatus> {
        &self.work
    }

    fn work_mut(&mut self) -> &mut RailWork<RefundStatus> {
        &mut self.work
    }

    fn rail(&self) -> Option<&str> {
        (self.payment.method != Method::Wallet).then_some(self.payment.rail.as_str())
    }

    fn rail_request(&self) -> Result<RefundRequest, String> {
        Ok(RefundRequest {
            refund_id: self.work.id.clone(),
            payment_id: self.payment.work.id.clone(),
            provider_reference: self.payment.work.provider_reference.clone(),
            money: lifecycle::rail_money(self.amount_minor, self.currency)?,
            customer_phone: self.payment.customer_phone.clone(),
            created_at_ms: self.work.created_at_for_rail(),
        })
    }

    fn call(rail: &LoadedRail, request: &RefundRequest) -> RailAnswer {
        rail.refund(request)
    }

    fn ask(rail: &LoadedRail, request: &RefundRequest, provider_reference: Option<&str>) -> RailAnswer {
        rail.refund_status(request, provider_reference)
    }

    /// A rail may say a refund is done as either `completed` or `refunded`.
    fn final_status(reported: TransactionStatus) -> Option<RefundStatus> {
        match reported {
            TransactionStatus::Processing => None,
            TransactionStatus::Completed | TransactionStatus::Refunded => Some(RefundStatus::Completed),
            TransactionStatus::Failed => Some(RefundStatus::Failed),
            TransactionStatus::Cancelled => Some(RefundStatus::Cancelled),
        }
    }

    /// Completion moves the money back and counts it on the payment (which
    /// becomes `refunded` when nothing is left); any other end gives the
    /// payment its committed amount back.
    fn settle(&mut self, conn: &Connection, now_ms: i64) -> Result<(), StoreError> {
        let (tenant, id) = (&self.work.tenant, &self.work.id);
        if self.work.status != RefundStatus::Completed {
            PaymentRow::release(conn, &self.payment.work.id, self.amount_minor)?;
            return webhooks::emit(conn, tenant, EventType::RefundFailed, id, &self.object(), now_ms).map(drop);
        }
        let postings = [
            Posting {
                account: self.payment.account(&tenant.merchant_id, AccountKind::MerchantPending),
                amount_minor: self.amount_minor,
            },
            Posting { account: self.payment.refund_destination()?, amount_minor: -self.amount_minor },
        ];
        ledger::post(conn, tenant.mode, EntryKind::Refund, id, &postings, now_ms)?;
        let payment = PaymentRow::add_refunded(conn, &self.payment.work.id, self.amount_minor)?;
        webhooks::emit(conn, tenant, EventType::RefundSucceeded, id, &self.object(), now_ms)?;
        if payment.amount_refunded_minor >= payment.amount_minor {
            webhooks::emit(conn, tenant, EventType::TransactionRefunded, &payment.work.id, &payment.object(), now_ms)?;
        }
        Ok(())
    }

    fn save(&self, conn: &Connection) -> Result<(), StoreError> {
        let work = &self.work;
        conn.prepare_cached(
            "UPDATE refunds SET status = ?2, provider_reference = ?3, failure_code = ?4, failure_message = ?5,
             completed_at = ?6 WHERE id = ?1",
        )?
        .execute(params![
            work.id,
            work.status,
            work.provider_reference,
            work.failure.as_ref().map(|f| &f.code),
            work.failure.as_ref().and_then(|f| f.message.as_ref()),
            work.completed_at_ms
        ])?;
        Ok(())
    }

    fn response(&self, _unanswered: Option<&PluginError>) -> Option<StoredResponse> {
        Some(StoredResponse::created(&self.object()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::AccountKind::{MerchantPending, RailClearing};
    use crate::operations::idempotency::WriteEndpoint;
    use crate::operations::lifecycle::record_first_answer;
    use crate::operations::payments::tests::completed;
    use crate::plugins::Failure;
    use crate::testing::{self, events, outcome, posted};

    /// A refund of `amount` (all that is left when `None`) claimed under a key.
    fn claimed(conn: &Connection, payment: &PaymentRow, amount_minor: Option<u64>) -> Result<RefundRow, StoreError> {
        let tenant = payment.work.tenant.clone();
        let request =
            KeyedRequest::new(tenant.clone(), crate::values::ids::new_id("idem"), WriteEndpoint::Refunds, "{}");
        let work = RailWork::new(TransactionKind::Refund, tenant, RefundStatus::Processing, 3_000);
        assert_eq!(request.claim(conn, &work.id, 3_000).unwrap(), None);
        let new = NewRefund { payment_id: payment.work.id.clone(), amount_minor, reason: None };
        RefundRow::insert(conn, work, request.key, &new)
    }

    fn answer(conn: &Connection, refund: &RefundRow, answer: lifecycle::RailAnswer) -> serde_json::Value {
        let stored = record_first_answer::<RefundRow>(conn, &refund.work.id, answer, 4_000, 9_000).unwrap().unwrap();
        serde_json::from_str(&stored.body).unwrap()
    }

    #[test]
    fn a_completed_refund_moves_the_money_back_and_a_full_one_refunds_the_payment() {
        let (conn, merchant) = testing::database_with_merchant();
        let payment = completed(&conn, &merchant, 1_250);
        let part = claimed(&conn, &payment, Some(250)).unwrap();
        assert_eq!(
            answer(&conn, &part, Ok(Ok(outcome(TransactionStatus::Completed))))["status"],
            RefundStatus::Completed.as_str()
        );
        assert_eq!(
            (posted(&conn, &part.work.id, MerchantPending), posted(&conn, &part.work.id, RailClearing)),
            (250, -250)
        );
        let after_part = PaymentRow::load(&conn, &payment.work.id).unwrap().unwrap();
        assert_eq!((after_part.work.status, after_part.amount_refunded_minor), (PaymentStatus::Completed, 250));
        assert_eq!(events(&conn, &payment.work.id, EventType::TransactionRefunded), 0);

        let rest = claimed(&conn, &payment, None).unwrap();
        assert_eq!(rest.amount_minor, 1_000, "what is left");
        assert_eq!(
            answer(&conn, &rest, Ok(Ok(outcome(TransactionStatus::Refunded))))["status"],
            RefundStatus::Completed.as_str()
        );
        let refunded = PaymentRow::load(&conn, &payment.work.id).unwrap().unwrap();
        assert_eq!((refunded.work.status, refunded.amount_refunded_minor), (PaymentStatus::Refunded, 1_250));
        assert_eq!(events(&conn, &rest.work.id, EventType::RefundSucceeded), 1);
        assert_eq!(events(&conn, &payment.work.id, EventType::TransactionRefunded), 1);
        assert_eq!(refunded.charged(), (12, 1_238), "the platform keeps its fee");
        crate::operations::verify(&conn).unwrap();
    }

    #[test]
    fn what_refunds_hold_is_never_refunded_twice_and_a_failed_refund_gives_it_back() {
        let (conn, merchant) = testing::database_with_merchant();
        let payment = completed(&conn, &merchant, 1_250);
        let first = claimed(&conn, &payment, Some(1_000)).unwrap();
        let too_much = claimed(&conn, &payment, Some(300)).unwrap_err();
        assert!(too_much.to_string().contains("refused"), "{too_much}");
        let declined = Failure { code: "REFUND_DECLINED".into(), message: "no".into(), retryable: false };
        assert_eq!(answer(&conn, &first, Ok(Err(declined)))["status"], RefundStatus::Failed.as_str());
        assert_eq!(events(&conn, &first.work.id, EventType::RefundFailed), 1);
        assert_eq!(posted(&conn, &first.work.id, MerchantPending), 0, "nothing moved");
        // The failed refund's hold is released: the whole amount may be refunded again.
        assert_eq!(claimed(&conn, &payment, None).unwrap().amount_minor, 1_250);
        crate::operations::verify(&conn).unwrap();
    }

    #[test]
    fn only_a_completed_payment_of_the_same_tenant_can_be_refunded() {
        let (conn, merchant) = testing::database_with_merchant();
        let processing = crate::operations::payments::tests::claimed(&conn, &merchant, Method::MtnMomo, 1_250);
        let refused = claimed(&conn, &processing, None).unwrap_err();
        assert!(matches!(refused, StoreError::Rejected(_)), "{refused}");
        let mut other_mode = completed(&conn, &merchant, 1_250);
        other_mode.work.tenant.mode = crate::values::mode::Mode::Live;
        let refused = claimed(&conn, &other_mode, None).unwrap_err();
        assert!(refused.to_string().contains("No payment"), "{refused}");
    }
}
