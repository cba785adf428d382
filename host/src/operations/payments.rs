//! Payments: money in from a customer, through the rail bound to the mode
//! and method (or from their Soxara wallet). A payment is a
//! [`RailOperation`]: created here together with its idempotency claim (a
//! wallet payment also holds the customer's money in that write), then
//! collected and recorded by the lifecycle, replying only after the record
//! is committed. This module owns the `payments` table, the payment object,
//! and what each status means for the ledger.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::value::RawValue;

use super::context::Context;
use super::idempotency::{self, Claimed, KeyedRequest, Reply, StoredResponse};
use super::lifecycle::{self, FailureReason, RailAnswer, RailOperation, Report};
use crate::domain::customers;
use crate::domain::wallets;
use crate::domain::webhooks::{self, EventType};
use crate::ledger::{self, Account, AccountKind, EntryKind, PLATFORM_OWNER, Posting};
use crate::plugins::{CollectRequest, LoadedRail, Money, PluginError, TransactionStatus};
use crate::store::{StoreError, TenantRecord};
use crate::values::clock::{serialize_rfc3339, serialize_rfc3339_opt};
use crate::values::entity::Entity;
use crate::values::error::ApiError;
use crate::values::method::Method;
use crate::values::mode::{Mode, Tenant};
use crate::values::money::{self, Currency};
use crate::values::status::{PaymentStatus, TransactionKind};

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
            return Err(format!(
                "rail {} moves wallet money under {entity}, but wallets are held by {}",
                rail.name(),
                ctx.wallets.entity()
            ));
        }
        Ok((rail, entity))
    });
    let (rail, entity) = match routed {
        Ok(routed) => routed,
        // A used key answers from its record, whatever the routes say today.
        Err(unavailable) => {
            return match idempotency::answer_if_used(&ctx.store, &request).await? {
                Some(reply) => Ok(reply),
                None => Err(ApiError::PaymentMethodUnavailable(unavailable)),
            };
        }
    };
    let now_ms = ctx.clock.now_ms();
    let payment = PaymentRow::new(&request, &new, rail.name(), entity, now_ms);
    let ctx = ctx.clone();
    lifecycle::detached(async move {
        let to_insert = payment.clone();
        let claimed = idempotency::claim_with(&ctx.store, request, payment.id.clone(), now_ms, move |conn| {
            to_insert.insert(conn)?;
            if to_insert.method == Method::Wallet {
                to_insert.hold_wallet_funds(conn, now_ms)?;
            }
            Ok(())
        });
        if let Claimed::Used(reply) = claimed.await? {
            return Ok(reply);
        }
        let stored = lifecycle::submit(&ctx, Some(rail), payment).await?;
        stored.map(Reply::new).ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a payment's key stored no answer")))
    })
    .await
}

/// What a payment status means as the rail's outcome, and back.
fn status_for(reported: TransactionStatus) -> PaymentStatus {
    match reported {
        TransactionStatus::Processing => PaymentStatus::Processing,
        TransactionStatus::Completed => PaymentStatus::Completed,
        TransactionStatus::Failed => PaymentStatus::Failed,
        TransactionStatus::Refunded => PaymentStatus::Refunded,
        TransactionStatus::Cancelled => PaymentStatus::Cancelled,
    }
}

/// The payment status a rail's reported outcome stands for.
pub fn reported_status(reported: TransactionStatus) -> PaymentStatus {
    status_for(reported)
}

/// Events a payment's new final status emits.
fn events_for(status: PaymentStatus) -> &'static [EventType] {
    match status {
        PaymentStatus::Completed => &[EventType::PaymentSucceeded, EventType::TransactionCompleted],
        PaymentStatus::Failed => &[EventType::PaymentFailed, EventType::TransactionFailed],
        PaymentStatus::Refunded => &[EventType::RefundSucceeded, EventType::TransactionRefunded],
        PaymentStatus::Cancelled => &[EventType::TransactionCancelled],
        PaymentStatus::Processing => &[],
    }
}

/// A payment as stored.
#[derive(Debug, Clone)]
pub struct PaymentRow {
    pub id: String,
    pub tenant: Tenant,
    pub reference: String,
    pub idempotency_key: String,
    pub status: PaymentStatus,
    pub amount_minor: i64,
    pub fee_minor: i64,
    pub currency: Currency,
    pub method: Method,
    pub customer_phone: Option<String>,
    /// What the rail needs to collect again after a crash (a test card
    /// number or a provider token); cleared once it leaves `processing`.
    rail_instrument: Option<String>,
    card_last4: Option<String>,
    pub description: Option<String>,
    /// The merchant's metadata, as JSON text.
    metadata: String,
    pub rail: String,
    pub entity: Entity,
    pub provider_reference: Option<String>,
    pub failure: Option<FailureReason>,
    pub created_at_ms: i64,
    pub completed_at_ms: Option<i64>,
    /// While processing: where the customer approves the payment.
    next_action_url: Option<String>,
    /// The sum of completed refunds.
    pub amount_refunded_minor: i64,
    /// What refunds under way or done and open disputes hold of it: never
    /// more than the amount, so no money goes back twice.
    pub amount_committed_minor: i64,
}

const COLUMNS: &str = "id, merchant_id, mode, reference, idempotency_key, status, amount, fee, currency, method, \
     customer_phone, rail_instrument, card_last4, description, metadata, rail, entity, provider_reference, \
     failure_code, failure_message, created_at, completed_at, next_action_url, amount_refunded, amount_committed";

impl PaymentRow {
    fn new(request: &KeyedRequest, new: &NewPayment, rail: &str, entity: Entity, now_ms: i64) -> PaymentRow {
        let amount_minor = i64::try_from(new.amount_minor).expect("amounts are validated to fit in i64");
        let fee = money::basis_points_of(new.amount_minor, PAYMENT_FEE_BPS);
        PaymentRow {
            id: TransactionKind::Payment.new_id(),
            tenant: request.tenant.clone(),
            reference: crate::values::ids::new_reference("PAY", now_ms),
            idempotency_key: request.key.clone(),
            status: PaymentStatus::Processing,
            amount_minor,
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
            provider_reference: None,
            failure: None,
            created_at_ms: now_ms,
            completed_at_ms: None,
            next_action_url: None,
            amount_refunded_minor: 0,
            amount_committed_minor: 0,
        }
    }

    fn insert(&self, conn: &Connection) -> Result<(), StoreError> {
        conn.prepare_cached(
            "INSERT INTO payments (id, merchant_id, mode, reference, idempotency_key, status, amount, fee, currency,
             method, customer_phone, rail_instrument, card_last4, description, metadata, rail, entity, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
        )?
        .execute(params![
            self.id,
            self.tenant.merchant_id,
            self.tenant.mode,
            self.reference,
            self.idempotency_key,
            self.status,
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
            self.created_at_ms
        ])?;
        if let Some(phone) = &self.customer_phone {
            customers::index_transaction(
                conn,
                &self.id,
                &self.tenant,
                phone,
                TransactionKind::Payment,
                self.created_at_ms,
            )?;
        }
        Ok(())
    }

    pub fn load(conn: &Connection, id: &str) -> Result<Option<PaymentRow>, StoreError> {
        Ok(conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM payments WHERE id = ?1"))?
            .query_row(params![id], PaymentRow::from_row)
            .optional()?)
    }

    /// A payment of `tenant` by its merchant-facing reference.
    pub fn id_by_reference(conn: &Connection, tenant: &Tenant, reference: &str) -> Result<Option<String>, StoreError> {
        Ok(conn
            .prepare_cached("SELECT id FROM payments WHERE merchant_id = ?1 AND mode = ?2 AND reference = ?3")?
            .query_row(params![tenant.merchant_id, tenant.mode, reference], |row| row.get(0))
            .optional()?)
    }

    fn from_row(row: &Row) -> rusqlite::Result<PaymentRow> {
        Ok(PaymentRow {
            id: row.get(0)?,
            tenant: Tenant { merchant_id: row.get(1)?, mode: row.get(2)? },
            reference: row.get(3)?,
            idempotency_key: row.get(4)?,
            status: row.get(5)?,
            amount_minor: row.get(6)?,
            fee_minor: row.get(7)?,
            currency: row.get(8)?,
            method: row.get(9)?,
            customer_phone: row.get(10)?,
            rail_instrument: row.get(11)?,
            card_last4: row.get(12)?,
            description: row.get(13)?,
            metadata: row.get(14)?,
            rail: row.get(15)?,
            entity: row.get(16)?,
            provider_reference: row.get(17)?,
            failure: FailureReason::from_columns(row.get(18)?, row.get(19)?),
            created_at_ms: row.get(20)?,
            completed_at_ms: row.get(21)?,
            next_action_url: row.get(22)?,
            amount_refunded_minor: row.get(23)?,
            amount_committed_minor: row.get(24)?,
        })
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
    /// nothing is left. Returns whether it did.
    pub fn add_refunded(conn: &Connection, id: &str, amount_minor: i64) -> Result<bool, StoreError> {
        let refunded: PaymentStatus = conn
            .prepare_cached(
                "UPDATE payments SET amount_refunded = amount_refunded + ?2,
                 status = CASE WHEN amount_refunded + ?2 >= amount THEN ?3 ELSE status END
                 WHERE id = ?1 RETURNING status",
            )?
            .query_row(params![id, amount_minor, PaymentStatus::Refunded], |row| row.get(0))?;
        Ok(refunded == PaymentStatus::Refunded)
    }

    pub fn account(&self, owner: &str, kind: AccountKind) -> Account {
        Account {
            mode: self.tenant.mode,
            entity: self.entity.clone(),
            owner: owner.to_string(),
            kind,
            currency: self.currency,
        }
    }

    /// Where a wallet payment's customer money is (their wallet, or held).
    fn customer_account(&self, kind: AccountKind) -> Result<Account, StoreError> {
        let phone = self
            .customer_phone
            .as_deref()
            .ok_or_else(|| StoreError::Invariant(format!("wallet payment {} has no customer phone", self.id)))?;
        Ok(self.account(phone, kind))
    }

    /// The customer's wallet (for a wallet payment's refunds), or the
    /// rail's clearing account: where refunded money goes.
    pub fn refund_destination(&self) -> Result<Account, StoreError> {
        match self.method {
            Method::Wallet => self.customer_account(AccountKind::CustomerWallet),
            _ => Ok(self.account(&ledger::rail_owner(&self.rail), AccountKind::RailClearing)),
        }
    }

    /// Reserves a wallet payment's amount, refusing (and so undoing the
    /// whole claim) when the wallet holds too little.
    fn hold_wallet_funds(&self, conn: &Connection, now_ms: i64) -> Result<(), StoreError> {
        let wallet = self.customer_account(AccountKind::CustomerWallet)?;
        wallets::require_funds(conn, &wallet, u64::try_from(self.amount_minor).expect("stored amounts are positive"))?;
        let postings = [
            Posting { account: wallet, amount_minor: self.amount_minor },
            Posting { account: self.customer_account(AccountKind::WalletHold)?, amount_minor: -self.amount_minor },
        ];
        ledger::post(conn, self.tenant.mode, EntryKind::Hold, &self.id, &postings, now_ms)?;
        Ok(())
    }

    /// Posts what a new final status means for the money.
    fn post_outcome(&self, conn: &Connection, now_ms: i64) -> Result<(), StoreError> {
        let mode = self.tenant.mode;
        match self.status {
            PaymentStatus::Completed => {
                ledger::post(conn, mode, EntryKind::Payment, &self.id, &self.collection_postings(1)?, now_ms)?;
            }
            PaymentStatus::Refunded => {
                ledger::post(conn, mode, EntryKind::Payment, &self.id, &self.collection_postings(1)?, now_ms)?;
                ledger::post(conn, mode, EntryKind::Refund, &self.id, &self.collection_postings(-1)?, now_ms)?;
            }
            PaymentStatus::Failed | PaymentStatus::Cancelled if self.method == Method::Wallet => {
                let postings = [
                    Posting {
                        account: self.customer_account(AccountKind::WalletHold)?,
                        amount_minor: self.amount_minor,
                    },
                    Posting {
                        account: self.customer_account(AccountKind::CustomerWallet)?,
                        amount_minor: -self.amount_minor,
                    },
                ];
                ledger::post(conn, mode, EntryKind::Release, &self.id, &postings, now_ms)?;
            }
            PaymentStatus::Failed | PaymentStatus::Cancelled | PaymentStatus::Processing => {}
        }
        Ok(())
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
        let net = self
            .amount_minor
            .checked_sub(self.fee_minor)
            .ok_or_else(|| StoreError::Invariant(format!("payment {} fee exceeds amount", self.id)))?;
        let postings = vec![
            Posting { account: source, amount_minor: sign * self.amount_minor },
            Posting {
                account: self.account(&self.tenant.merchant_id, AccountKind::MerchantPending),
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
        let collected = match self.status {
            PaymentStatus::Completed => true,
            PaymentStatus::Refunded => self.amount_refunded_minor > 0,
            PaymentStatus::Processing | PaymentStatus::Failed | PaymentStatus::Cancelled => false,
        };
        if collected { (self.fee_minor, self.amount_minor - self.fee_minor) } else { (0, 0) }
    }

    /// The payment object merchants see.
    pub fn object(&self) -> Payment {
        let (fee, net_amount) = self.charged();
        Payment {
            object: "payment",
            id: self.id.clone(),
            reference: self.reference.clone(),
            kind: TransactionKind::Payment,
            status: self.status,
            amount: self.amount_minor,
            fee,
            net_amount,
            amount_refunded: self.amount_refunded_minor,
            currency: self.currency,
            method: self.method,
            customer: CustomerRef { phone: self.customer_phone.clone() },
            description: self.description.clone(),
            metadata: RawValue::from_string(self.metadata.clone())
                .unwrap_or_else(|_| RawValue::from_string("{}".into()).expect("{} is JSON")),
            livemode: self.tenant.mode.is_live(),
            entity: self.entity.clone(),
            provider_reference: self.provider_reference.clone(),
            idempotency_key: self.idempotency_key.clone(),
            created_at_ms: self.created_at_ms,
            completed_at_ms: self.completed_at_ms,
            card: self.card_last4.clone().map(|last4| CardSummary { last4 }),
            failure: self.failure.clone(),
            next_action: match (&self.next_action_url, self.status) {
                (Some(url), PaymentStatus::Processing) => Some(NextAction { kind: "redirect", url: url.clone() }),
                _ => None,
            },
        }
    }
}

impl TenantRecord for PaymentRow {
    const WHAT: &'static str = "payment";

    fn load(conn: &Connection, id: &str) -> Result<Option<Self>, StoreError> {
        PaymentRow::load(conn, id)
    }

    fn tenant(&self) -> &Tenant {
        &self.tenant
    }
}

impl RailOperation for PaymentRow {
    const KIND: TransactionKind = TransactionKind::Payment;
    const BUSY_MESSAGE: &'static str =
        "the gateway had no free plugin instance; nothing was charged, retry with a new key";
    type Request = CollectRequest;

    fn load(conn: &Connection, id: &str) -> Result<Option<Self>, StoreError> {
        PaymentRow::load(conn, id)
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn rail(&self) -> Option<&str> {
        Some(&self.rail)
    }

    fn is_processing(&self) -> bool {
        self.status == PaymentStatus::Processing
    }

    fn provider_reference(&self) -> Option<&str> {
        self.provider_reference.as_deref()
    }

    fn created_at_ms(&self) -> i64 {
        self.created_at_ms
    }

    fn rail_request(&self) -> Result<CollectRequest, String> {
        Ok(CollectRequest {
            payment_id: self.id.clone(),
            money: Money {
                amount: u64::try_from(self.amount_minor).map_err(|_| "a negative amount".to_string())?,
                currency: self.currency.code.to_string(),
            },
            method: self.method.into(),
            customer_phone: self.customer_phone.clone(),
            card: self.rail_instrument.clone(),
            description: self.description.clone(),
            created_at_ms: u64::try_from(self.created_at_ms).unwrap_or(0),
        })
    }

    fn call(rail: &LoadedRail, request: &CollectRequest) -> RailAnswer {
        rail.collect(request)
    }

    fn ask(rail: &LoadedRail, request: &CollectRequest, provider_reference: Option<&str>) -> RailAnswer {
        rail.status(request, provider_reference)
    }

    fn apply(&mut self, conn: &Connection, report: &Report, now_ms: i64) -> Result<(), StoreError> {
        if let Some(reference) = &report.provider_reference {
            self.provider_reference = Some(reference.clone());
        }
        let status = status_for(report.status);
        if status == PaymentStatus::Processing {
            if let Some(url) = &report.redirect_url {
                self.next_action_url = Some(url.clone());
            }
            conn.prepare_cached("UPDATE payments SET provider_reference = ?2, next_action_url = ?3 WHERE id = ?1")?
                .execute(params![self.id, self.provider_reference, self.next_action_url])?;
            return Ok(());
        }
        self.status = status;
        self.failure = report.failure.clone();
        self.completed_at_ms = Some(now_ms);
        self.rail_instrument = None;
        self.next_action_url = None;
        conn.prepare_cached(
            "UPDATE payments SET status = ?2, provider_reference = ?3, failure_code = ?4, failure_message = ?5,
             completed_at = ?6, rail_instrument = NULL, next_action_url = NULL WHERE id = ?1",
        )?
        .execute(params![
            self.id,
            self.status,
            self.provider_reference,
            self.failure.as_ref().map(|f| &f.code),
            self.failure.as_ref().and_then(|f| f.message.as_ref()),
            now_ms
        ])?;
        self.post_outcome(conn, now_ms)?;
        let object = self.object();
        for event in events_for(self.status) {
            webhooks::emit(conn, &self.tenant, *event, &self.id, &object, now_ms)?;
        }
        Ok(())
    }

    fn response(
        &self,
        _conn: &Connection,
        unanswered: Option<&PluginError>,
    ) -> Result<Option<StoredResponse>, StoreError> {
        Ok(Some(match unanswered {
            // The provider may have acted, so the key is bound to this
            // answer: a retry never makes a second charge.
            Some(_) => StoredResponse::error(&ApiError::RailFailed { payment_id: self.id.clone() }),
            None => StoredResponse::created(&self.object()),
        }))
    }
}

/// The payment object.
#[derive(Debug, Clone, Serialize)]
pub struct Payment {
    object: &'static str,
    pub id: String,
    pub reference: String,
    #[serde(rename = "type")]
    kind: TransactionKind,
    pub status: PaymentStatus,
    pub amount: i64,
    /// The platform's fee, as charged (0 unless the payment completed).
    pub fee: i64,
    /// What the merchant was credited: `amount − fee` once completed.
    pub net_amount: i64,
    pub amount_refunded: i64,
    pub currency: Currency,
    pub method: Method,
    pub customer: CustomerRef,
    pub description: Option<String>,
    pub metadata: Box<RawValue>,
    pub livemode: bool,
    pub entity: Entity,
    pub provider_reference: Option<String>,
    pub idempotency_key: String,
    #[serde(rename = "created_at", serialize_with = "serialize_rfc3339")]
    pub created_at_ms: i64,
    #[serde(rename = "completed_at", serialize_with = "serialize_rfc3339_opt")]
    pub completed_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<CardSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_action: Option<NextAction>,
}

/// The customer an object names, by phone.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerRef {
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CardSummary {
    pub last4: String,
}

/// Where the customer approves a payment still processing.
#[derive(Debug, Clone, Serialize)]
pub struct NextAction {
    #[serde(rename = "type")]
    kind: &'static str,
    pub url: String,
}
