//! Refunds: money back to the customer for a completed payment, all or part,
//! through the rail that collected it (straight back into the customer's
//! wallet for wallet payments). The same order as payments: validate, claim
//! the idempotency key together with the refund (what is left to refund is
//! checked in that same write, so two refunds can never exceed the
//! payment), ask the rail outside any transaction with the refund id as the
//! provider's idempotency key, record, answer. A refund the rail leaves
//! processing is settled by status checks (`rail_updates`).
//!
//! Ledger, on completion only (entry `refund`, transaction = the refund id):
//! `merchant_pending` +A, and the rail's clearing account (or the
//! customer's wallet) −A. The platform keeps its fee. This module owns the
//! refund object's shape.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::idempotency::{self, Claim, Reply, Scope, StoredResponse};
use crate::ledger::{self, Account, AccountKind, Posting};
use crate::mode::Mode;
use crate::payments::Schedule;
use crate::plugins::{LoadedRail, Money, PluginError, RailOutcome, RefundRequest, TransactionStatus};
use crate::store::StoreError;
use crate::validate::{Fields, fail};

pub const REASON_CHARS_MAX: usize = 500;
const PAYMENT_ID_CHARS_MAX: usize = 64;

/// A validated `POST /v1/refunds` body.
#[derive(Debug, Clone)]
pub struct NewRefund {
    pub payment_id: String,
    /// `None`: whatever is left to refund.
    pub amount_minor: Option<u64>,
    pub reason: Option<String>,
    pub canonical: String,
}

/// Parses and validates a `POST /v1/refunds` body, reporting every bad field.
pub fn parse_new_refund(body: &[u8]) -> Result<NewRefund, ApiError> {
    let fields = Fields::parse(body, &["payment_id", "amount", "reason"])?;
    let mut errors = fields.errors();
    let payment_id = fields.string("payment_id", PAYMENT_ID_CHARS_MAX, true, &mut errors);
    let amount_minor = match fields.get("/amount") {
        None => None,
        Some(_) => fields.amount(&mut errors),
    };
    let reason = fields.string("reason", REASON_CHARS_MAX, false, &mut errors);
    if payment_id.as_ref().is_some_and(|id| !id.starts_with("pay_")) {
        fail(&mut errors, "payment_id", "must be a payment id (pay_…)");
    }
    match (payment_id, errors.is_empty()) {
        (Some(payment_id), true) => Ok(NewRefund { payment_id, amount_minor, reason, canonical: fields.canonical() }),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// What a refund needs to know about its payment.
#[derive(Debug, Clone)]
struct PaymentFacts {
    merchant_id: String,
    mode: Mode,
    status: String,
    amount: i64,
    amount_refunded: i64,
    currency: String,
    rail: String,
    entity: String,
    method: String,
    customer_phone: Option<String>,
    provider_reference: Option<String>,
}

impl PaymentFacts {
    fn load(conn: &Connection, payment_id: &str) -> Result<Option<PaymentFacts>, StoreError> {
        let facts = conn
            .prepare_cached(
                "SELECT merchant_id, mode, status, amount, amount_refunded, currency, rail, entity, method,
                 customer_phone, provider_reference FROM payments WHERE id = ?1",
            )?
            .query_row(params![payment_id], |row| {
                let mode: String = row.get(1)?;
                Ok(PaymentFacts {
                    merchant_id: row.get(0)?,
                    mode: Mode::parse(&mode).ok_or_else(|| rusqlite::Error::InvalidColumnName(mode))?,
                    status: row.get(2)?,
                    amount: row.get(3)?,
                    amount_refunded: row.get(4)?,
                    currency: row.get(5)?,
                    rail: row.get(6)?,
                    entity: row.get(7)?,
                    method: row.get(8)?,
                    customer_phone: row.get(9)?,
                    provider_reference: row.get(10)?,
                })
            })
            .optional()?;
        Ok(facts)
    }

    fn is_wallet(&self) -> bool {
        self.method == "wallet"
    }
}

/// `POST /v1/refunds`.
pub async fn create(state: &AppState, caller: &Caller, key: String, request: NewRefund) -> Result<Reply, ApiError> {
    let scope = Scope { merchant_id: caller.merchant_id.clone(), mode: caller.mode, key };
    let fingerprint = idempotency::fingerprint("POST /v1/refunds", &request.canonical);
    let payment_id = request.payment_id.clone();
    let facts = state.store.read(move |conn| PaymentFacts::load(conn, &payment_id)).await?;
    let facts = facts
        .filter(|f| f.merchant_id == caller.merchant_id && f.mode == caller.mode)
        .ok_or(ApiError::NotFound { what: "payment" })?;
    // The rail that collected it, never whatever is bound today.
    let rail = if facts.is_wallet() { None } else { state.registry.rail_named(&facts.rail) };
    if !facts.is_wallet() && rail.is_none() {
        let (peek_scope, peek_fingerprint) = (scope.clone(), fingerprint.clone());
        let used = state.store.read(move |conn| idempotency::peek(conn, &peek_scope, &peek_fingerprint)).await?;
        return match used {
            Some(used) => idempotency::answer_used_key(used),
            None => Err(ApiError::PaymentMethodUnavailable(format!(
                "the rail that collected this payment ({}) is not loaded on this gateway, so it cannot refund it now",
                facts.rail
            ))),
        };
    }

    let now_ms = crate::clock::now_ms();
    let refund_id = crate::ids::new_id("ref");
    let (id, request_for_claim) = (refund_id.clone(), request.clone());
    let claim = state
        .store
        .write(move |conn| {
            let claim = idempotency::claim(conn, &scope, &fingerprint, &id, now_ms)?;
            if let Claim::New = claim {
                insert(conn, &id, &scope, &request_for_claim, now_ms)?;
            }
            Ok(claim)
        })
        .await?;
    if !matches!(claim, Claim::New) {
        return idempotency::answer_used_key(claim);
    }

    // From here the rail may act: the record must follow even if the client
    // hangs up, so the work runs in its own task.
    let state = state.clone();
    let work = async move { refund_and_record(&state, rail, refund_id).await };
    let finished = tokio::spawn(tracing::Instrument::in_current_span(work));
    let stored = finished.await.map_err(|e| ApiError::Internal(anyhow::anyhow!("refund task failed: {e}")))??;
    Ok(Reply::new(stored))
}

/// Inserts the refund, refusing (and so undoing the claim) when the payment
/// is not completed or has too little left to refund.
fn insert(conn: &Connection, id: &str, scope: &Scope, request: &NewRefund, now_ms: i64) -> Result<(), StoreError> {
    let refuse = |error: ApiError| StoreError::Rejected(Box::new(error));
    let facts = PaymentFacts::load(conn, &request.payment_id)?
        .filter(|f| f.merchant_id == scope.merchant_id && f.mode == scope.mode)
        .ok_or_else(|| refuse(ApiError::NotFound { what: "payment" }))?;
    if facts.status != "completed" {
        return Err(refuse(ApiError::RefundNotAllowed(format!(
            "only a completed payment can be refunded; this one is {}",
            facts.status
        ))));
    }
    let left = facts.amount - committed_elsewhere(conn, &request.payment_id)?;
    let amount = match request.amount_minor {
        Some(amount) => i64::try_from(amount).unwrap_or(i64::MAX),
        None => left,
    };
    if amount <= 0 || amount > left {
        return Err(refuse(ApiError::RefundExceedsPayment { refundable: left.max(0), currency: facts.currency }));
    }
    conn.prepare_cached(
        "INSERT INTO refunds (id, payment_id, merchant_id, mode, rail, amount, currency, reason, status,
         idempotency_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'processing', ?9, ?10)",
    )?
    .execute(params![
        id,
        request.payment_id,
        facts.merchant_id,
        facts.mode.as_str(),
        facts.rail,
        amount,
        facts.currency,
        request.reason,
        scope.key,
        now_ms
    ])?;
    if let Some(phone) = &facts.customer_phone {
        crate::wallets::record_customer_transaction(conn, id, &facts.merchant_id, facts.mode, phone, "refund", now_ms)?;
    }
    Ok(())
}

/// What of a payment is already spoken for: refunds completed or under
/// way, and money held for disputes (a chargeback and a refund must never
/// return the same money twice).
pub fn committed_elsewhere(conn: &Connection, payment_id: &str) -> Result<i64, StoreError> {
    let committed = conn
        .prepare_cached(
            "SELECT p.amount_refunded
                  + (SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE payment_id = p.id AND status = 'processing')
                  + (SELECT COALESCE(SUM(amount), 0) FROM disputes WHERE payment_id = p.id)
             FROM payments p WHERE p.id = ?1",
        )?
        .query_row(params![payment_id], |row| row.get(0))
        .optional()?;
    Ok(committed.unwrap_or(0))
}

/// Asks the rail (none for wallet payments), then records what it said.
async fn refund_and_record(
    state: &AppState,
    rail: Option<Arc<LoadedRail>>,
    refund_id: String,
) -> Result<StoredResponse, ApiError> {
    let id = refund_id.clone();
    let (refund, facts) = state.store.read(move |conn| RefundRow::load_with_payment(conn, &id)).await?;
    let outcome = match rail {
        // Wallet money never left the gateway: it goes straight back.
        None => Ok(Ok(RailOutcome {
            status: TransactionStatus::Completed,
            provider_reference: None,
            failure: None,
            redirect_url: None,
        })),
        Some(rail) => {
            let request = refund.request(&facts);
            tokio::task::spawn_blocking(move || rail.refund(&request))
                .await
                .unwrap_or_else(|e| Err(PluginError::Host(format!("the call panicked: {e}"))))
        }
    };
    let first_check_ms = state.status_checks.delay_ms(0);
    let stored = state
        .store
        .write(move |conn| {
            let now_ms = crate::clock::now_ms();
            record_outcome(conn, &refund_id, outcome, now_ms, now_ms.saturating_add(first_check_ms))
        })
        .await?;
    Ok(stored)
}

/// Applies the rail's first answer and stores the key's response, in one write.
fn record_outcome(
    conn: &Connection,
    refund_id: &str,
    outcome: Result<Result<RailOutcome, crate::plugins::Failure>, PluginError>,
    now_ms: i64,
    check_at_ms: i64,
) -> Result<StoredResponse, StoreError> {
    let (refund, facts) = RefundRow::load_with_payment(conn, refund_id)?;
    if refund.status == "processing" {
        match outcome {
            // Never ran: nothing can have been refunded.
            Err(PluginError::Busy) => {
                let failed =
                    failure_outcome("RAIL_BUSY", "the gateway had no free plugin instance; retry with a new key");
                apply(conn, &refund, &facts, failed, now_ms, Schedule::First(check_at_ms))?;
            }
            // The provider may have acted: status checks settle it.
            Err(plugin_error) => {
                tracing::warn!(refund = %refund.id, error = %plugin_error, "rail failed on a refund; left processing");
                crate::payments::schedule_in(conn, "refunds", &refund.id, Schedule::First(check_at_ms))?;
            }
            Ok(Err(failure)) => {
                apply(
                    conn,
                    &refund,
                    &facts,
                    failure_outcome(&failure.code, &failure.message),
                    now_ms,
                    Schedule::First(check_at_ms),
                )?;
            }
            Ok(Ok(answer)) => apply(conn, &refund, &facts, answer, now_ms, Schedule::First(check_at_ms))?,
        }
    }
    if let Some(stored) = idempotency::stored_response(conn, refund_id)? {
        return Ok(stored);
    }
    let body =
        json_by_id(conn, refund_id)?.ok_or_else(|| StoreError::Invariant(format!("refund {refund_id} vanished")))?;
    let response = StoredResponse { status: 201, body: body.to_string() };
    idempotency::record_response(conn, refund_id, &response)?;
    Ok(response)
}

fn failure_outcome(code: &str, message: &str) -> RailOutcome {
    RailOutcome {
        status: TransactionStatus::Failed,
        provider_reference: None,
        failure: Some(crate::plugins::Failure {
            code: code.to_string(),
            message: message.to_string(),
            retryable: false,
        }),
        redirect_url: None,
    }
}

/// Moves a processing refund to what the rail reported. Completion posts the
/// ledger entry, counts the amount on the payment (which becomes `refunded`
/// when nothing is left) and emits the events.
fn apply(
    conn: &Connection,
    refund: &RefundRow,
    facts: &PaymentFacts,
    outcome: RailOutcome,
    now_ms: i64,
    next: Schedule,
) -> Result<(), StoreError> {
    // A rail may say a refund is done as either `completed` or `refunded`.
    let status = match outcome.status {
        TransactionStatus::Completed | TransactionStatus::Refunded => "completed",
        TransactionStatus::Processing => "processing",
        TransactionStatus::Failed => "failed",
        TransactionStatus::Cancelled => "cancelled",
    };
    if status == "processing" {
        conn.prepare_cached("UPDATE refunds SET provider_reference = COALESCE(?2, provider_reference) WHERE id = ?1")?
            .execute(params![refund.id, outcome.provider_reference])?;
        return crate::payments::schedule_in(conn, "refunds", &refund.id, next);
    }
    let failure = outcome.failure.map(|f| (f.code, f.message));
    let changed = conn
        .prepare_cached(
            "UPDATE refunds SET status = ?2, provider_reference = COALESCE(?3, provider_reference),
             failure_code = ?4, failure_message = ?5, completed_at = ?6, next_check_at = NULL
             WHERE id = ?1 AND status = 'processing'",
        )?
        .execute(params![
            refund.id,
            status,
            outcome.provider_reference,
            failure.as_ref().map(|f| &f.0),
            failure.as_ref().map(|f| &f.1),
            now_ms
        ])?;
    if changed == 0 || status != "completed" {
        if changed == 1 {
            let object = json_by_id(conn, &refund.id)?.expect("the refund was just updated");
            crate::webhooks::emit(conn, &refund.merchant_id, refund.mode, "refund.failed", &object, now_ms)?;
        }
        return Ok(());
    }
    let account = |owner: &str, kind| Account {
        mode: refund.mode,
        entity: facts.entity.clone(),
        owner: owner.to_string(),
        kind,
        currency: facts.currency.clone(),
    };
    let source = if facts.is_wallet() {
        let phone = facts
            .customer_phone
            .as_deref()
            .ok_or_else(|| StoreError::Invariant(format!("wallet payment {} has no phone", refund.payment_id)))?;
        crate::wallets::wallet_account(refund.mode, phone, &facts.currency)
    } else {
        account(&format!("rail:{}", facts.rail), AccountKind::RailClearing)
    };
    let postings = [
        Posting { account: account(&refund.merchant_id, AccountKind::MerchantPending), amount_minor: refund.amount },
        Posting { account: source, amount_minor: -refund.amount },
    ];
    ledger::post(conn, refund.mode, "refund", &refund.id, &postings, now_ms)?;
    conn.prepare_cached(
        "UPDATE payments SET amount_refunded = amount_refunded + ?2,
         status = CASE WHEN amount_refunded + ?2 >= amount THEN 'refunded' ELSE status END WHERE id = ?1",
    )?
    .execute(params![refund.payment_id, refund.amount])?;
    let object = json_by_id(conn, &refund.id)?.expect("the refund was just updated");
    crate::webhooks::emit(conn, &refund.merchant_id, refund.mode, "refund.succeeded", &object, now_ms)?;
    if facts.amount_refunded + refund.amount >= facts.amount {
        let payment = crate::payments::json_by_id(conn, &refund.payment_id)?.expect("the payment exists");
        crate::webhooks::emit(conn, &refund.merchant_id, refund.mode, "transaction.refunded", &payment, now_ms)?;
    }
    Ok(())
}

/// A refund whose status check is due.
pub struct DueRefundCheck {
    pub refund_id: String,
    pub rail: String,
    pub request: RefundRequest,
    /// The refund's own provider reference.
    pub provider_reference: Option<String>,
    pub checks: i64,
    pub created_at_ms: i64,
    pub due_at: i64,
}

/// Processing refunds whose next status check is due, oldest first.
pub fn due_checks(conn: &Connection, now_ms: i64, limit: usize) -> Result<Vec<DueRefundCheck>, StoreError> {
    let ids: Vec<(String, i64, i64)> = conn
        .prepare_cached(
            "SELECT id, status_checks, next_check_at FROM refunds
             WHERE status = 'processing' AND next_check_at IS NOT NULL AND next_check_at <= ?1
             ORDER BY next_check_at LIMIT ?2",
        )?
        .query_map(params![now_ms, i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut due = Vec::with_capacity(ids.len());
    for (id, checks, due_at) in ids {
        let (refund, facts) = RefundRow::load_with_payment(conn, &id)?;
        due.push(DueRefundCheck {
            request: refund.request(&facts),
            refund_id: refund.id,
            rail: refund.rail,
            provider_reference: refund.provider_reference,
            checks,
            created_at_ms: refund.created_at_ms,
            due_at,
        });
    }
    Ok(due)
}

/// Applies a status check's answer to a processing refund of rail `rail`.
pub fn apply_check(
    conn: &Connection,
    refund_id: &str,
    rail: &str,
    outcome: RailOutcome,
    now_ms: i64,
    next: Schedule,
) -> Result<(), StoreError> {
    let (refund, facts) = RefundRow::load_with_payment(conn, refund_id)?;
    if refund.rail != rail || refund.status != "processing" {
        return Ok(());
    }
    apply(conn, &refund, &facts, outcome, now_ms, next)
}

/// After a crash: refunds claimed but never recorded are asked of the rail
/// again with the same refund id (its idempotency key), then recorded.
pub async fn resume_in_flight(state: &AppState) -> anyhow::Result<usize> {
    let pending: Vec<(String, String, String)> = state
        .store
        .read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT r.id, r.rail, p.method FROM refunds r JOIN idempotency_keys k ON k.transaction_id = r.id
                 JOIN payments p ON p.id = r.payment_id WHERE k.response_body IS NULL",
            )?;
            let rows =
                stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await?;
    let count = pending.len();
    for (refund_id, rail_name, method) in pending {
        let rail = if method == "wallet" { None } else { state.registry.rail_named(&rail_name) };
        if method != "wallet" && rail.is_none() {
            tracing::warn!(refund = %refund_id, rail = %rail_name, "cannot resume refund: its rail is not loaded; checked later");
            let check_at = crate::clock::now_ms().saturating_add(state.status_checks.delay_ms(0));
            state
                .store
                .write(move |conn| crate::payments::schedule_in(conn, "refunds", &refund_id, Schedule::First(check_at)))
                .await?;
            continue;
        }
        refund_and_record(state, rail, refund_id).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(count)
}

/// `GET /v1/refunds/{id}`.
pub async fn get(state: &AppState, caller: &Caller, id: String) -> Result<Value, ApiError> {
    let (merchant, mode) = (caller.merchant_id.clone(), caller.mode);
    let found = state
        .store
        .read(move |conn| {
            let owner: Option<(String, String)> = conn
                .prepare_cached("SELECT merchant_id, mode FROM refunds WHERE id = ?1")?
                .query_row(params![id], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            match owner {
                Some((m, md)) if m == merchant && md == mode.as_str() => json_by_id(conn, &id),
                _ => Ok(None),
            }
        })
        .await?;
    found.ok_or(ApiError::NotFound { what: "refund" })
}

/// A refund as stored.
struct RefundRow {
    id: String,
    payment_id: String,
    merchant_id: String,
    mode: Mode,
    rail: String,
    amount: i64,
    currency: String,
    status: String,
    provider_reference: Option<String>,
    created_at_ms: i64,
}

impl RefundRow {
    fn from_row(row: &Row) -> rusqlite::Result<RefundRow> {
        let mode: String = row.get(3)?;
        Ok(RefundRow {
            id: row.get(0)?,
            payment_id: row.get(1)?,
            merchant_id: row.get(2)?,
            mode: Mode::parse(&mode).ok_or_else(|| rusqlite::Error::InvalidColumnName(mode))?,
            rail: row.get(4)?,
            amount: row.get(5)?,
            currency: row.get(6)?,
            status: row.get(7)?,
            provider_reference: row.get(8)?,
            created_at_ms: row.get(9)?,
        })
    }

    fn load_with_payment(conn: &Connection, id: &str) -> Result<(RefundRow, PaymentFacts), StoreError> {
        let refund = conn
            .prepare_cached(
                "SELECT id, payment_id, merchant_id, mode, rail, amount, currency, status, provider_reference,
                 created_at FROM refunds WHERE id = ?1",
            )?
            .query_row(params![id], RefundRow::from_row)
            .optional()?
            .ok_or_else(|| StoreError::Invariant(format!("refund {id} vanished")))?;
        let facts = PaymentFacts::load(conn, &refund.payment_id)?
            .ok_or_else(|| StoreError::Invariant(format!("refund {id}: payment {} vanished", refund.payment_id)))?;
        Ok((refund, facts))
    }

    /// What the rail is asked.
    fn request(&self, facts: &PaymentFacts) -> RefundRequest {
        RefundRequest {
            refund_id: self.id.clone(),
            payment_id: self.payment_id.clone(),
            provider_reference: facts.provider_reference.clone(),
            money: Money { amount: u64::try_from(self.amount).unwrap_or(0), currency: self.currency.clone() },
            customer_phone: facts.customer_phone.clone(),
            created_at_ms: u64::try_from(self.created_at_ms).unwrap_or(0),
        }
    }
}

/// The refund object merchants see.
pub fn json_by_id(conn: &Connection, id: &str) -> Result<Option<Value>, StoreError> {
    let object = conn
        .prepare_cached(
            "SELECT r.id, r.payment_id, r.mode, r.amount, r.currency, r.reason, r.status, r.provider_reference,
             r.failure_code, r.failure_message, r.idempotency_key, r.created_at, r.completed_at, p.entity
             FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE r.id = ?1",
        )?
        .query_row(params![id], |row| {
            let mut object = json!({
                "object": "refund",
                "id": row.get::<_, String>(0)?,
                "payment_id": row.get::<_, String>(1)?,
                "livemode": row.get::<_, String>(2)? == Mode::Live.as_str(),
                "amount": row.get::<_, i64>(3)?,
                "currency": row.get::<_, String>(4)?,
                "reason": row.get::<_, Option<String>>(5)?,
                "status": row.get::<_, String>(6)?,
                "provider_reference": row.get::<_, Option<String>>(7)?,
                "idempotency_key": row.get::<_, String>(10)?,
                "created_at": crate::clock::rfc3339(row.get::<_, i64>(11)?),
                "completed_at": row.get::<_, Option<i64>>(12)?.map(crate::clock::rfc3339),
                "entity": row.get::<_, String>(13)?,
            });
            if let Some(code) = row.get::<_, Option<String>>(8)? {
                object["failure"] = json!({ "code": code, "message": row.get::<_, Option<String>>(9)? });
            }
            Ok(object)
        })
        .optional()?;
    Ok(object)
}
