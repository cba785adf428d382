//! Payments: money in from a customer, through the rail bound to the mode
//! and method (or from their Soxara wallet). A payment is a
//! [`RailOperation`]: created here together with its idempotency claim,
//! then collected and recorded by the lifecycle, replying only after the
//! record is committed. A wallet payment first waits for its customer's
//! approval (`approvals`): only then is their money held and the rail
//! called; refused, expired or over-guessed, it fails with nothing moved. This module owns the `payments` table, the payment object,
//! and what each status means for the ledger.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::value::RawValue;

use super::approvals::{self, ApprovalRow};
use super::context::Context;
use super::idempotency::{self, Claimed, KeyedRequest, Reply, StoredResponse};
use super::lifecycle::{self, FailureReason, RailAnswer, RailOperation, RailWork, Report};
use super::objects::{CardSummary, NextAction, Payment};
use crate::domain::customers::{self, CustomerPhone};
use crate::domain::wallets;
use crate::domain::webhooks::{self, EventType};
use crate::ledger::{self, Account, AccountKind, EntryKind, PLATFORM_OWNER, Posting};
use crate::plugins::{CollectRequest, LoadedRail, PluginError, RailOutcome, TransactionStatus};
use crate::store::{StoreError, TenantRecord};
use crate::values::entity::Entity;
use crate::values::error::ApiError;
use crate::values::method::Method;
use crate::values::mode::{Mode, Tenant};
use crate::values::money::{self, Currency};
use crate::values::status::{ApprovalPurpose, ObjectType, PaymentStatus, TransactionKind};

/// The platform's fee on a payment, in basis points, rounded down.
pub const PAYMENT_FEE_BPS: u64 = 100;

/// A validated payment request (read at the edge, `http::payments`).
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub amount_minor: u64,
    pub currency: Currency,
    pub method: Method,
    pub customer_phone: Option<String>,
    pub card: Option<CardInput>,
    pub description: Option<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// How a card payment names the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardInput {
    /// The digits (test keys only: the sandbox decides by them).
    Number(String),
    /// A provider payment-method token (`pm_…`, `tok_…`) made by the
    /// provider's own client library, so card numbers never reach us live.
    Token(String),
}

/// `POST /v1/payments`.
pub async fn create(ctx: &Context, request: KeyedRequest, new: NewPayment) -> Result<Reply, ApiError> {
    let mode = request.tenant.mode;
    if mode == Mode::Live && matches!(new.card, Some(CardInput::Number(_))) {
        // Raw card numbers would put the gateway in PCI scope; live cards
        // come tokenised by the provider's client library.
        return Err(ApiError::invalid(
            "card.number",
            "card numbers are accepted with test keys only; live card payments take card.token \
             (a payment-method id from Stripe.js or Stripe's mobile SDKs)",
        ));
    }
    let routed = ctx.rails.routes().rail_for(mode, new.method, new.currency).and_then(|rail| {
        let entity =
            rail.entity_for(new.method).ok_or_else(|| format!("rail {} does not serve {}", rail.name(), new.method))?;
        if new.method == Method::Wallet && &entity != ctx.wallets.entity() {
            let holder = ctx.wallets.entity();
            return Err(format!(
                "rail {} moves wallet money under {entity}, but wallets are held by {holder}",
                rail.name()
            ));
        }
        Ok((rail, entity))
    });
    let (rail, entity) = match routed {
        Ok(routed) => routed,
        Err(unavailable) => {
            return idempotency::replay_or(&ctx.store, &request, ApiError::PaymentMethodUnavailable(unavailable)).await;
        }
    };
    let now_ms = ctx.clock.now_ms();
    let payment = PaymentRow::new(&request, &new, rail.name(), entity, now_ms);
    if payment.approval().is_some() {
        return lifecycle::submit_for_approval(ctx, request, payment, PaymentRow::insert).await;
    }
    if !rail.acts_outside() {
        return lifecycle::submit_in_one_write(ctx, request, rail, payment, PaymentRow::insert).await;
    }
    let ctx = ctx.clone();
    lifecycle::detached(async move {
        let to_insert = payment.clone();
        let claimed = idempotency::claim_with(&ctx.store, request, payment.work.id.clone(), now_ms, move |conn| {
            to_insert.insert(conn)
        });
        if let Claimed::Used(reply) = claimed.await? {
            return Ok(reply);
        }
        let stored = lifecycle::submit(&ctx, Some(rail), payment).await?;
        stored.map(Reply::new).ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a payment's key stored no answer")))
    })
    .await
}

/// The payment status a rail's reported outcome stands for.
pub fn status_for(reported: TransactionStatus) -> PaymentStatus {
    match reported {
        TransactionStatus::Processing => PaymentStatus::Processing,
        TransactionStatus::Completed => PaymentStatus::Completed,
        TransactionStatus::Failed => PaymentStatus::Failed,
        TransactionStatus::Refunded => PaymentStatus::Refunded,
        TransactionStatus::Cancelled => PaymentStatus::Cancelled,
    }
}

/// A payment as stored.
#[derive(Debug, Clone)]
pub struct PaymentRow {
    pub work: RailWork<PaymentStatus>,
    pub reference: String,
    idempotency_key: String,
    pub amount_minor: i64,
    fee_minor: i64,
    pub currency: Currency,
    pub method: Method,
    pub customer_phone: Option<String>,
    /// What the rail needs to collect again after a crash (a test card
    /// number or a provider token); cleared once it leaves `processing`.
    rail_instrument: Option<String>,
    card_last4: Option<String>,
    description: Option<String>,
    /// The merchant's metadata, as JSON text.
    metadata: String,
    pub rail: String,
    pub entity: Entity,
    /// While processing: where the customer approves the payment.
    next_action_url: Option<String>,
    /// The customer's approval a wallet payment waits for.
    approval_id: Option<String>,
    /// Set until the customer approves: nothing of theirs is held before.
    awaiting_approval_until_ms: Option<i64>,
    /// The sum of completed refunds.
    pub amount_refunded_minor: i64,
    /// What refunds under way or done and open disputes hold of it: never
    /// more than the amount, so no money goes back twice.
    pub amount_committed_minor: i64,
}

const SELECT: &str = "SELECT id, merchant_id, mode, status, provider_reference, failure_code, failure_message, \
     created_at, completed_at, reference, idempotency_key, amount, fee, currency, method, customer_phone, \
     rail_instrument, card_last4, description, metadata, rail, entity, next_action_url, amount_refunded, \
     amount_committed, approval_id, approval_expires_at FROM payments";

impl PaymentRow {
    fn new(request: &KeyedRequest, new: &NewPayment, rail: &str, entity: Entity, now_ms: i64) -> PaymentRow {
        let fee = money::basis_points_of(new.amount_minor, PAYMENT_FEE_BPS);
        PaymentRow {
            work: RailWork::new(TransactionKind::Payment, request.tenant.clone(), PaymentStatus::Processing, now_ms),
            reference: crate::values::ids::new_reference("PAY", now_ms),
            idempotency_key: request.key.clone(),
            amount_minor: i64::try_from(new.amount_minor).expect("amounts are validated to fit in i64"),
            fee_minor: i64::try_from(fee).expect("the fee never exceeds the amount"),
            currency: new.currency,
            method: new.method,
            customer_phone: new.customer_phone.clone(),
            rail_instrument: match &new.card {
                Some(CardInput::Number(n) | CardInput::Token(n)) => Some(n.clone()),
                None => None,
            },
            card_last4: match &new.card {
                Some(CardInput::Number(n)) => Some(n[n.len() - 4..].to_string()),
                _ => None,
            },
            description: new.description.clone(),
            metadata: serde_json::Value::Object(new.metadata.clone()).to_string(),
            rail: rail.to_string(),
            entity,
            next_action_url: None,
            approval_id: None,
            awaiting_approval_until_ms: None,
            amount_refunded_minor: 0,
            amount_committed_minor: 0,
        }
    }

    fn insert(&self, conn: &Connection) -> Result<(), StoreError> {
        let work = &self.work;
        conn.prepare_cached(
            "INSERT INTO payments (id, merchant_id, mode, reference, idempotency_key, status, amount, fee, currency,
             method, customer_phone, rail_instrument, card_last4, description, metadata, rail, entity, created_at,
             approval_id, approval_expires_at, provider_reference, failure_code, failure_message, completed_at,
             next_action_url)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
             ?21, ?22, ?23, ?24, ?25)",
        )?
        .execute(params![
            work.id,
            work.tenant.merchant_id,
            work.tenant.mode,
            self.reference,
            self.idempotency_key,
            work.status,
            self.amount_minor,
            self.fee_minor,
            self.currency,
            self.method,
            self.customer_phone,
            self.rail_instrument,
            self.card_last4,
            self.description,
            self.metadata,
            self.rail,
            self.entity,
            work.created_at_ms,
            self.approval_id,
            self.awaiting_approval_until_ms,
            // Set when the payment is inserted with its first answer.
            work.provider_reference,
            work.failure.as_ref().map(|f| &f.code),
            work.failure.as_ref().and_then(|f| f.message.as_ref()),
            work.completed_at_ms,
            self.next_action_url
        ])?;
        if let Some(phone) = &self.customer_phone {
            customers::index_transaction(
                conn,
                &work.id,
                &work.tenant,
                phone,
                TransactionKind::Payment,
                work.created_at_ms,
            )?;
        }
        Ok(())
    }

    fn from_row(row: &Row) -> rusqlite::Result<PaymentRow> {
        Ok(PaymentRow {
            work: RailWork {
                id: row.get(0)?,
                tenant: Tenant { merchant_id: row.get(1)?, mode: row.get(2)? },
                status: row.get(3)?,
                provider_reference: row.get(4)?,
                failure: FailureReason::from_columns(row.get(5)?, row.get(6)?),
                created_at_ms: row.get(7)?,
                completed_at_ms: row.get(8)?,
            },
            reference: row.get(9)?,
            idempotency_key: row.get(10)?,
            amount_minor: row.get(11)?,
            fee_minor: row.get(12)?,
            currency: row.get(13)?,
            method: row.get(14)?,
            customer_phone: row.get(15)?,
            rail_instrument: row.get(16)?,
            card_last4: row.get(17)?,
            description: row.get(18)?,
            metadata: row.get(19)?,
            rail: row.get(20)?,
            entity: row.get(21)?,
            next_action_url: row.get(22)?,
            amount_refunded_minor: row.get(23)?,
            amount_committed_minor: row.get(24)?,
            approval_id: row.get(25)?,
            awaiting_approval_until_ms: row.get(26)?,
        })
    }

    /// A payment of `tenant` by its merchant-facing reference.
    pub fn id_by_reference(conn: &Connection, tenant: &Tenant, reference: &str) -> Result<Option<String>, StoreError> {
        Ok(conn
            .prepare_cached("SELECT id FROM payments WHERE merchant_id = ?1 AND mode = ?2 AND reference = ?3")?
            .query_row(params![tenant.merchant_id, tenant.mode, reference], |row| row.get(0))
            .optional()?)
    }

    /// Commits `amount` of the payment to a refund or a dispute, if that much
    /// is left; returns whether it was.
    pub fn commit(conn: &Connection, id: &str, amount_minor: i64) -> Result<bool, StoreError> {
        let updated = conn
            .prepare_cached(
                "UPDATE payments SET amount_committed = amount_committed + ?2
                 WHERE id = ?1 AND amount_committed + ?2 <= amount",
            )?
            .execute(params![id, amount_minor])?;
        Ok(updated == 1)
    }

    /// Gives back what a refund that did not complete had committed.
    pub fn release(conn: &Connection, id: &str, amount_minor: i64) -> Result<(), StoreError> {
        conn.prepare_cached("UPDATE payments SET amount_committed = amount_committed - ?2 WHERE id = ?1")?
            .execute(params![id, amount_minor])?;
        Ok(())
    }

    /// Counts a completed refund; the payment becomes `refunded` when
    /// nothing is left. Returns the payment as it now is.
    pub fn add_refunded(conn: &Connection, id: &str, amount_minor: i64) -> Result<PaymentRow, StoreError> {
        conn.prepare_cached(
            "UPDATE payments SET amount_refunded = amount_refunded + ?2,
             status = CASE WHEN amount_refunded + ?2 >= amount THEN ?3 ELSE status END WHERE id = ?1",
        )?
        .execute(params![id, amount_minor, PaymentStatus::Refunded])?;
        PaymentRow::load(conn, id)?.ok_or_else(|| StoreError::Invariant(format!("payment {id} vanished")))
    }

    /// An account of its entity and currency.
    pub fn account(&self, owner: &str, kind: AccountKind) -> Account {
        Account {
            mode: self.work.tenant.mode,
            entity: self.entity.clone(),
            owner: owner.to_string(),
            kind,
            currency: self.currency,
        }
    }

    /// Where a wallet payment's customer money is (their wallet, or held).
    fn customer_account(&self, kind: AccountKind) -> Result<Account, StoreError> {
        let phone = self.customer_phone.as_deref();
        let phone =
            phone.ok_or_else(|| StoreError::Invariant(format!("wallet payment {} has no phone", self.work.id)))?;
        Ok(self.account(phone, kind))
    }

    /// Where money back goes: the customer's wallet for wallet payments,
    /// else the rail's clearing account.
    pub fn refund_destination(&self) -> Result<Account, StoreError> {
        match self.method {
            Method::Wallet => self.customer_account(AccountKind::CustomerWallet),
            _ => Ok(self.account(&ledger::rail_owner(&self.rail), AccountKind::RailClearing)),
        }
    }

    fn amount_unsigned(&self) -> u64 {
        u64::try_from(self.amount_minor).expect("stored amounts are positive")
    }

    /// `sign` 1, money in: the source (the rail, or the customer's held
    /// wallet money) gives the amount, the merchant is owed the net and the
    /// platform earns the fee; `sign` -1: the reverse, back into the
    /// customer's wallet for wallet payments.
    fn collection_postings(&self, sign: i64) -> Result<Vec<Posting>, StoreError> {
        let source = match (self.method, sign) {
            (Method::Wallet, 1) => self.customer_account(AccountKind::WalletHold)?,
            _ => self.refund_destination()?,
        };
        let net = self.amount_minor - self.fee_minor;
        let postings = vec![
            Posting { account: source, amount_minor: sign * self.amount_minor },
            Posting {
                account: self.account(&self.work.tenant.merchant_id, AccountKind::MerchantPending),
                amount_minor: -sign * net,
            },
            Posting {
                account: self.account(PLATFORM_OWNER, AccountKind::FeeRevenue),
                amount_minor: -sign * self.fee_minor,
            },
        ];
        Ok(postings.into_iter().filter(|p| p.amount_minor != 0).collect())
    }

    /// The fee the platform kept and the net the merchant was credited, as
    /// the payment's own ledger entries hold them: posted when it
    /// completed; reversed with it when the rail reported it refunded
    /// outright (refunds made later are refunds of their own, and leave the
    /// fee); nothing while processing, or when it failed or was cancelled.
    pub fn charged(&self) -> (i64, i64) {
        let collected = match self.work.status {
            PaymentStatus::Completed => true,
            PaymentStatus::Refunded => self.amount_refunded_minor > 0,
            PaymentStatus::Processing | PaymentStatus::Failed | PaymentStatus::Cancelled => false,
        };
        if collected { (self.fee_minor, self.amount_minor - self.fee_minor) } else { (0, 0) }
    }

    /// The payment object merchants see.
    pub fn object(&self) -> Payment {
        let (fee, net_amount) = self.charged();
        let work = &self.work;
        Payment {
            object: ObjectType::Payment,
            id: work.id.clone(),
            reference: self.reference.clone(),
            kind: TransactionKind::Payment,
            status: work.status,
            amount: self.amount_minor,
            fee,
            net_amount,
            amount_refunded: self.amount_refunded_minor,
            currency: self.currency,
            method: self.method,
            customer: CustomerPhone { phone: self.customer_phone.clone() },
            description: self.description.clone(),
            metadata: RawValue::from_string(self.metadata.clone())
                .unwrap_or_else(|_| RawValue::from_string("{}".into()).expect("{} is JSON")),
            livemode: work.tenant.mode.is_live(),
            entity: self.entity.clone(),
            provider_reference: work.provider_reference.clone(),
            idempotency_key: self.idempotency_key.clone(),
            created_at_ms: work.created_at_ms,
            completed_at_ms: work.completed_at_ms,
            card: self.card_last4.clone().map(|last4| CardSummary { last4 }),
            failure: work.failure.clone(),
            next_action: match (&self.next_action_url, &self.approval_id, self.awaiting_approval_until_ms) {
                _ if work.status != PaymentStatus::Processing => None,
                (_, Some(approval), Some(expires_at_ms)) => {
                    Some(NextAction::CustomerApproval { approval: approval.clone(), expires_at_ms })
                }
                (Some(url), _, _) => Some(NextAction::Redirect { url: url.clone() }),
                _ => None,
            },
        }
    }
}

impl TenantRecord for PaymentRow {
    const WHAT: &'static str = "payment";

    fn load(conn: &Connection, id: &str) -> Result<Option<Self>, StoreError> {
        Ok(conn
            .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
            .query_row(params![id], PaymentRow::from_row)
            .optional()?)
    }

    fn tenant(&self) -> &Tenant {
        &self.work.tenant
    }
}

impl RailOperation for PaymentRow {
    const KIND: TransactionKind = TransactionKind::Payment;
    const BUSY_MESSAGE: &'static str =
        "the gateway had no free plugin instance; nothing was charged, retry with a new key";
    type Status = PaymentStatus;
    const PROCESSING: PaymentStatus = PaymentStatus::Processing;
    type Request = CollectRequest;
    type Plugin = LoadedRail;
    type Outcome = RailOutcome;

    fn plugin(ctx: &Context, name: &str, mode: Mode) -> Option<Arc<LoadedRail>> {
        ctx.rails.rail_named(name, mode)
    }

    fn work(&self) -> &RailWork<PaymentStatus> {
        &self.work
    }

    fn work_mut(&mut self) -> &mut RailWork<PaymentStatus> {
        &mut self.work
    }

    fn rail(&self) -> Option<&str> {
        Some(&self.rail)
    }

    fn rail_request(&self) -> Result<CollectRequest, String> {
        Ok(CollectRequest {
            payment_id: self.work.id.clone(),
            money: lifecycle::rail_money(self.amount_minor, self.currency)?,
            method: self.method.into(),
            customer_phone: self.customer_phone.clone(),
            card: self.rail_instrument.clone(),
            description: self.description.clone(),
            created_at_ms: self.work.created_at_for_rail(),
        })
    }

    fn call(rail: &LoadedRail, request: &CollectRequest) -> RailAnswer {
        rail.collect(request)
    }

    fn ask(rail: &LoadedRail, request: &CollectRequest, provider_reference: Option<&str>) -> RailAnswer {
        rail.status(request, provider_reference)
    }

    fn final_status(reported: TransactionStatus) -> Option<PaymentStatus> {
        Some(status_for(reported)).filter(|status| *status != PaymentStatus::Processing)
    }

    /// A wallet payment takes the customer's money: they approve it first.
    fn approval(&self) -> Option<approvals::Ask> {
        (self.method == Method::Wallet).then(|| approvals::Ask {
            tenant: self.work.tenant.clone(),
            phone: self.customer_phone.clone().unwrap_or_default(),
            purpose: ApprovalPurpose::Payment,
            transaction_id: Some(self.work.id.clone()),
            amount: Some((self.amount_minor, self.currency)),
        })
    }

    fn awaiting(&mut self, approval: &ApprovalRow) {
        self.approval_id = Some(approval.id.clone());
        self.awaiting_approval_until_ms = Some(approval.expires_at_ms);
    }

    /// Holds the customer's money now that they approved; a wallet that
    /// holds too little fails it with nothing moved.
    fn approved(&mut self, conn: &Connection, now_ms: i64) -> Result<Option<FailureReason>, StoreError> {
        let wallet = self.customer_account(AccountKind::CustomerWallet)?;
        if !wallets::hold(conn, &wallet, self.amount_unsigned(), &self.work.id, now_ms)? {
            return Ok(Some(FailureReason {
                code: "INSUFFICIENT_FUNDS".into(),
                message: Some("the customer's wallet held too little when they approved".into()),
            }));
        }
        self.awaiting_approval_until_ms = None;
        Ok(None)
    }

    fn note(&mut self, report: &Report) {
        if report.redirect_url.is_some() {
            self.next_action_url.clone_from(&report.redirect_url);
        }
    }

    /// Completed: the collection entry; refunded outright: it and its
    /// reverse; a wallet payment that did not complete gives the customer's
    /// money back. Then the status's events.
    fn settle(&mut self, conn: &Connection, now_ms: i64) -> Result<(), StoreError> {
        self.rail_instrument = None;
        self.next_action_url = None;
        let (mode, id) = (self.work.tenant.mode, self.work.id.clone());
        let events: &[EventType] = match self.work.status {
            PaymentStatus::Completed => {
                ledger::post(conn, mode, EntryKind::Payment, &id, &self.collection_postings(1)?, now_ms)?;
                &[EventType::PaymentSucceeded, EventType::TransactionCompleted]
            }
            PaymentStatus::Refunded => {
                ledger::post(conn, mode, EntryKind::Payment, &id, &self.collection_postings(1)?, now_ms)?;
                ledger::post(conn, mode, EntryKind::Refund, &id, &self.collection_postings(-1)?, now_ms)?;
                &[EventType::RefundSucceeded, EventType::TransactionRefunded]
            }
            PaymentStatus::Failed | PaymentStatus::Cancelled => {
                // Held only once the customer approved.
                if self.method == Method::Wallet && self.awaiting_approval_until_ms.is_none() {
                    let wallet = self.customer_account(AccountKind::CustomerWallet)?;
                    wallets::release(conn, &wallet, self.amount_unsigned(), &id, now_ms)?;
                }
                match self.work.status {
                    PaymentStatus::Failed => &[EventType::PaymentFailed, EventType::TransactionFailed],
                    _ => &[EventType::TransactionCancelled],
                }
            }
            PaymentStatus::Processing => &[],
        };
        webhooks::emit_each(conn, &self.work.tenant, events, &id, &self.object(), now_ms)
    }

    fn save(&self, conn: &Connection) -> Result<(), StoreError> {
        let work = &self.work;
        conn.prepare_cached(
            "UPDATE payments SET status = ?2, provider_reference = ?3, failure_code = ?4, failure_message = ?5,
             completed_at = ?6, rail_instrument = ?7, next_action_url = ?8, approval_expires_at = ?9 WHERE id = ?1",
        )?
        .execute(params![
            work.id,
            work.status,
            work.provider_reference,
            work.failure.as_ref().map(|f| &f.code),
            work.failure.as_ref().and_then(|f| f.message.as_ref()),
            work.completed_at_ms,
            self.rail_instrument,
            self.next_action_url,
            self.awaiting_approval_until_ms
        ])?;
        Ok(())
    }

    fn response(&self, unanswered: Option<&PluginError>) -> Option<StoredResponse> {
        Some(match unanswered {
            // The provider may have acted, so the key is bound to this
            // answer: a retry never makes a second charge.
            Some(_) => StoredResponse::error(&ApiError::RailFailed { payment_id: self.work.id.clone() }),
            None => StoredResponse::created(&self.object()),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ledger::AccountKind::{CustomerWallet, FeeRevenue, MerchantPending, RailClearing, WalletHold};
    use crate::operations::checks::{self, Schedule};
    use crate::operations::idempotency::WriteEndpoint;
    use crate::operations::lifecycle::{
        ReportApplied, apply_later_report, on_approved, on_not_approved, record_first_answer,
    };
    use crate::plugins::Failure;
    use crate::testing::{self, events, outcome, posted};

    pub(crate) fn usd() -> Currency {
        Currency::from_code("USD").unwrap()
    }

    /// A payment claimed under a key and inserted by the simulator, as
    /// `create` leaves it before the rail answers (a wallet payment
    /// approved by its customer, so its money held).
    pub(crate) fn claimed(conn: &Connection, merchant_id: &str, method: Method, amount_minor: u64) -> PaymentRow {
        let payment = waiting(conn, merchant_id, method, amount_minor);
        if method != Method::Wallet {
            return payment;
        }
        on_approved::<PaymentRow>(conn, &payment.work.id, 1_000).unwrap().expect("the wallet holds enough")
    }

    /// A payment claimed and inserted; a wallet payment waits for approval.
    fn waiting(conn: &Connection, merchant_id: &str, method: Method, amount_minor: u64) -> PaymentRow {
        let key = crate::values::ids::new_id("idem");
        let request = KeyedRequest::new(testing::tenant(merchant_id), key, WriteEndpoint::Payments, "{}");
        let new = NewPayment {
            amount_minor,
            currency: usd(),
            method,
            customer_phone: Some("+231770001234".into()),
            card: None,
            description: None,
            metadata: Default::default(),
        };
        let mut payment = PaymentRow::new(&request, &new, "simulator", testing::entity(), 1_000);
        assert_eq!(request.claim(conn, &payment.work.id, 1_000).unwrap(), None);
        if method == Method::Wallet {
            payment.approval_id = Some("apv_test".into());
            payment.awaiting_approval_until_ms = Some(600_000);
        }
        payment.insert(conn).unwrap();
        payment
    }

    /// A payment the simulator completed.
    pub(crate) fn completed(conn: &Connection, merchant_id: &str, amount_minor: u64) -> PaymentRow {
        let payment = claimed(conn, merchant_id, Method::MtnMomo, amount_minor);
        let answer = Ok(Ok(outcome(TransactionStatus::Completed)));
        record_first_answer::<PaymentRow>(conn, &payment.work.id, answer, 1_500, 6_500).unwrap();
        PaymentRow::load(conn, &payment.work.id).unwrap().unwrap()
    }

    fn stored_json(stored: Option<StoredResponse>) -> (u16, serde_json::Value) {
        let stored = stored.expect("a keyed payment stores an answer");
        (stored.status, serde_json::from_str(&stored.body).unwrap())
    }

    #[test]
    fn a_completed_first_answer_posts_the_collection_emits_its_events_and_stores_the_answer() {
        let (conn, merchant) = testing::database_with_merchant();
        let payment = claimed(&conn, &merchant, Method::MtnMomo, 1_250);
        let id = payment.work.id.as_str();
        let answer = Ok(Ok(outcome(TransactionStatus::Completed)));
        let (status, body) = stored_json(record_first_answer::<PaymentRow>(&conn, id, answer, 2_000, 7_000).unwrap());
        assert_eq!(
            (status, &body["status"], &body["fee"], &body["net_amount"]),
            (201, &PaymentStatus::Completed.as_str().into(), &12.into(), &1238.into())
        );
        assert_eq!(posted(&conn, id, RailClearing), 1_250);
        assert_eq!((posted(&conn, id, MerchantPending), posted(&conn, id, FeeRevenue)), (-1_238, -12));
        assert_eq!(events(&conn, id, EventType::PaymentSucceeded), 1);
        assert_eq!(events(&conn, id, EventType::TransactionCompleted), 1);
        assert!(checks::due(&conn, i64::MAX, 10).unwrap().is_empty(), "a final payment is never checked");
        assert_eq!(idempotency::stored_response(&conn, id).unwrap().map(|s| s.status), Some(201));
        crate::operations::verify(&conn).unwrap();
    }

    #[test]
    fn without_an_answer_it_stays_processing_bound_to_a_rail_error_and_a_later_report_settles_it_once() {
        let (conn, merchant) = testing::database_with_merchant();
        let id = claimed(&conn, &merchant, Method::MtnMomo, 1_250).work.id;
        let trapped = Err(PluginError::Trapped("unreachable executed in the guest".into()));
        let (status, body) = stored_json(record_first_answer::<PaymentRow>(&conn, &id, trapped, 2_000, 7_000).unwrap());
        assert_eq!(
            (status, body["error"]["code"].as_str(), body["error"]["payment_id"].as_str()),
            (502, Some("RAIL_ERROR"), Some(id.as_str()))
        );
        assert!(!body.to_string().contains("unreachable"), "the plugin's detail stays in the log: {body}");
        assert_eq!(checks::due(&conn, 7_000, 10).unwrap()[0].operation_id, id, "checked when the first check is due");
        assert_eq!(posted(&conn, &id, MerchantPending), 0, "nothing moves while it is processing");

        let after = Schedule::After { due_at_ms: 7_000, next_at_ms: 22_000, checks_made: 1 };
        let completed = outcome(TransactionStatus::Completed);
        assert_eq!(
            apply_later_report::<PaymentRow>(&conn, &id, "mtn-momo", completed.clone(), 8_000, after).unwrap(),
            ReportApplied::NotThisRail
        );
        let applied =
            apply_later_report::<PaymentRow>(&conn, &id, "simulator", completed.clone(), 8_000, after).unwrap();
        assert_eq!(applied, ReportApplied::Applied(TransactionStatus::Completed));
        assert_eq!(posted(&conn, &id, MerchantPending), -1_238);
        assert!(checks::due(&conn, i64::MAX, 10).unwrap().is_empty());
        assert_eq!(checks::checks_made(&conn, &id).unwrap(), 1);
        // A repeat changes nothing, and the key keeps its first answer.
        assert_eq!(
            apply_later_report::<PaymentRow>(&conn, &id, "simulator", completed, 9_000, after).unwrap(),
            ReportApplied::AlreadyFinal
        );
        assert_eq!(posted(&conn, &id, MerchantPending), -1_238);
        assert_eq!(idempotency::stored_response(&conn, &id).unwrap().map(|s| s.status), Some(502));
        crate::operations::verify(&conn).unwrap();
    }

    #[test]
    fn a_rail_that_never_ran_fails_the_payment_at_once_and_moves_nothing() {
        let (conn, merchant) = testing::database_with_merchant();
        let id = claimed(&conn, &merchant, Method::MtnMomo, 1_250).work.id;
        let (status, body) =
            stored_json(record_first_answer::<PaymentRow>(&conn, &id, Err(PluginError::Busy), 2_000, 7_000).unwrap());
        assert_eq!(
            (status, body["status"].as_str(), body["failure"]["code"].as_str()),
            (201, Some(PaymentStatus::Failed.as_str()), Some("RAIL_BUSY"))
        );
        assert_eq!((body["fee"].as_i64(), body["net_amount"].as_i64()), (Some(0), Some(0)), "nothing was charged");
        assert!(checks::due(&conn, i64::MAX, 10).unwrap().is_empty());
        assert_eq!(testing::count(&conn, "SELECT COUNT(*) FROM journal_entries"), 0);
    }

    #[test]
    fn a_failed_wallet_payment_gives_the_customer_their_money_back() {
        let (conn, merchant) = testing::database_with_merchant();
        let wallet = Account {
            mode: Mode::Test,
            entity: testing::entity(),
            owner: "+231770001234".into(),
            kind: CustomerWallet,
            currency: usd(),
        };
        let funding = Account { owner: PLATFORM_OWNER.into(), kind: AccountKind::SandboxFunding, ..wallet.clone() };
        let top_up = [
            Posting { account: funding, amount_minor: 5_000 },
            Posting { account: wallet.clone(), amount_minor: -5_000 },
        ];
        ledger::post(&conn, Mode::Test, EntryKind::TopUp, "tup_1", &top_up, 0).unwrap();
        let id = claimed(&conn, &merchant, Method::Wallet, 1_000).work.id;
        assert_eq!(wallets::balance_minor(&conn, &wallet).unwrap(), 4_000, "held while it is processing");
        let declined = Ok(Err(Failure { code: "CUSTOMER_DECLINED".into(), message: "no".into(), retryable: false }));
        let (_, body) = stored_json(record_first_answer::<PaymentRow>(&conn, &id, declined, 2_000, 7_000).unwrap());
        assert_eq!(
            (body["status"].as_str(), body["failure"]["code"].as_str()),
            (Some(PaymentStatus::Failed.as_str()), Some("CUSTOMER_DECLINED"))
        );
        assert_eq!(wallets::balance_minor(&conn, &wallet).unwrap(), 5_000);
        assert_eq!(posted(&conn, &id, WalletHold), 0);
        assert_eq!(events(&conn, &id, EventType::PaymentFailed), 1);
        crate::operations::verify(&conn).unwrap();
    }

    #[test]
    fn a_report_that_beats_the_first_answer_settles_it_and_the_first_answer_only_stores_the_key() {
        let (conn, merchant) = testing::database_with_merchant();
        let id = claimed(&conn, &merchant, Method::MtnMomo, 1_250).work.id;
        let prompt = Schedule::Prompt(3_000);
        let applied = apply_later_report::<PaymentRow>(
            &conn,
            &id,
            "simulator",
            outcome(TransactionStatus::Completed),
            2_000,
            prompt,
        );
        assert_eq!(applied.unwrap(), ReportApplied::Applied(TransactionStatus::Completed));
        let late = Ok(Ok(outcome(TransactionStatus::Processing)));
        let (_, body) = stored_json(record_first_answer::<PaymentRow>(&conn, &id, late, 4_000, 9_000).unwrap());
        assert_eq!(body["status"], PaymentStatus::Completed.as_str(), "the key answers with the payment as it is");
        assert_eq!(posted(&conn, &id, MerchantPending), -1_238, "posted once");
        assert!(checks::due(&conn, i64::MAX, 10).unwrap().is_empty());
    }

    #[test]
    fn a_report_naming_another_provider_reference_is_not_applied_but_moves_the_schedule() {
        let (conn, merchant) = testing::database_with_merchant();
        let id = claimed(&conn, &merchant, Method::MtnMomo, 1_250).work.id;
        let pending = crate::plugins::RailOutcome {
            provider_reference: Some("ref-1".into()),
            ..outcome(TransactionStatus::Processing)
        };
        record_first_answer::<PaymentRow>(&conn, &id, Ok(Ok(pending)), 2_000, 7_000).unwrap();
        let other = crate::plugins::RailOutcome {
            provider_reference: Some("ref-2".into()),
            ..outcome(TransactionStatus::Completed)
        };
        let after = Schedule::After { due_at_ms: 7_000, next_at_ms: 22_000, checks_made: 1 };
        assert_eq!(
            apply_later_report::<PaymentRow>(&conn, &id, "simulator", other, 8_000, after).unwrap(),
            ReportApplied::ReferenceMismatch
        );
        assert_eq!(PaymentRow::load(&conn, &id).unwrap().unwrap().work.status, PaymentStatus::Processing);
        assert_eq!(checks::due(&conn, 21_999, 10).unwrap(), vec![], "checked next at 22 s, not again at once");
    }

    fn fund_wallet(conn: &Connection, amount_minor: i64) -> Account {
        let wallet = Account {
            mode: Mode::Test,
            entity: testing::entity(),
            owner: "+231770001234".into(),
            kind: CustomerWallet,
            currency: usd(),
        };
        let funding = Account { owner: PLATFORM_OWNER.into(), kind: AccountKind::SandboxFunding, ..wallet.clone() };
        let top_up = [
            Posting { account: funding, amount_minor },
            Posting { account: wallet.clone(), amount_minor: -amount_minor },
        ];
        ledger::post(conn, Mode::Test, EntryKind::TopUp, &crate::values::ids::new_id("tup"), &top_up, 0).unwrap();
        wallet
    }

    #[test]
    fn a_wallet_payment_moves_nothing_until_its_customer_approves() {
        let (conn, merchant) = testing::database_with_merchant();
        let wallet = fund_wallet(&conn, 5_000);
        let payment = waiting(&conn, &merchant, Method::Wallet, 1_000);
        let object = serde_json::to_value(payment.object()).unwrap();
        assert_eq!(object["next_action"]["type"], "customer_approval", "{object}");
        assert_eq!(object["next_action"]["approval"], "apv_test");
        assert_eq!(wallets::balance_minor(&conn, &wallet).unwrap(), 5_000, "nothing held before approval");
        let expired = FailureReason { code: "APPROVAL_EXPIRED".into(), message: None };
        on_not_approved::<PaymentRow>(&conn, &payment.work.id, &expired, 700_000).unwrap();
        let failed = PaymentRow::load(&conn, &payment.work.id).unwrap().unwrap();
        assert_eq!(failed.work.status, PaymentStatus::Failed);
        assert_eq!(failed.work.failure.as_ref().map(|f| f.code.as_str()), Some("APPROVAL_EXPIRED"));
        assert_eq!(serde_json::to_value(failed.object()).unwrap()["next_action"], serde_json::Value::Null);
        assert_eq!(wallets::balance_minor(&conn, &wallet).unwrap(), 5_000);
        assert_eq!(testing::count(&conn, "SELECT COUNT(*) FROM journal_entries"), 1, "only the top-up");
        assert_eq!(events(&conn, &payment.work.id, EventType::PaymentFailed), 1);
        crate::operations::verify(&conn).unwrap();
    }

    #[test]
    fn approved_with_too_little_in_the_wallet_it_fails_with_nothing_moved() {
        let (conn, merchant) = testing::database_with_merchant();
        let wallet = fund_wallet(&conn, 500);
        let payment = waiting(&conn, &merchant, Method::Wallet, 1_000);
        assert!(on_approved::<PaymentRow>(&conn, &payment.work.id, 2_000).unwrap().is_none(), "no rail call");
        let failed = PaymentRow::load(&conn, &payment.work.id).unwrap().unwrap();
        assert_eq!(
            (failed.work.status, failed.work.failure.map(|f| f.code)),
            (PaymentStatus::Failed, Some("INSUFFICIENT_FUNDS".to_string()))
        );
        assert_eq!(wallets::balance_minor(&conn, &wallet).unwrap(), 500);
        assert_eq!(posted(&conn, &payment.work.id, WalletHold), 0);
        assert_eq!(testing::count(&conn, "SELECT COUNT(*) FROM journal_entries"), 1, "only the top-up");
        crate::operations::verify(&conn).unwrap();
    }
}
