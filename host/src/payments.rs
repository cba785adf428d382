//! Payments: validate a request, claim its idempotency key, ask the rail,
//! record the outcome (ledger entries included) and answer — in that order,
//! replying only after the record is committed. This module owns the payment
//! object's shape.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::idempotency::{self, Claim, Reply, Scope, StoredResponse};
use crate::ledger::{self, Account, AccountKind, PLATFORM_OWNER, Posting};
use crate::mode::Mode;
use crate::money::{self, Currency};
use crate::plugins::routes::{method_name, parse_method};
use crate::plugins::{CollectRequest, LoadedRail, Money, PaymentMethod, PluginError, RailOutcome, TransactionStatus};
use crate::store::StoreError;
use crate::validate::{Fields, fail};

/// The platform's fee on a payment, in basis points, rounded down.
pub const PAYMENT_FEE_BPS: u64 = 100;
pub const DESCRIPTION_CHARS_MAX: usize = 500;
pub const METADATA_KEYS_MAX: usize = 20;
pub const METADATA_KEY_CHARS_MAX: usize = 40;
pub const METADATA_VALUE_CHARS_MAX: usize = 500;

/// A validated payment request.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub amount_minor: u64,
    pub currency: Currency,
    pub method: PaymentMethod,
    pub customer_phone: Option<String>,
    pub card: Option<CardInput>,
    pub description: Option<String>,
    pub metadata: serde_json::Map<String, Value>,
    /// The body in canonical form (sorted keys), for the idempotency fingerprint.
    pub canonical: String,
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

/// The longest payment-method token accepted (Stripe's ids are far shorter).
pub const CARD_TOKEN_CHARS_MAX: usize = 255;

/// Parses and validates a `POST /v1/payments` body, reporting every bad field.
pub fn parse_new_payment(body: &[u8]) -> Result<NewPayment, ApiError> {
    const KNOWN: [&str; 7] = ["amount", "currency", "method", "customer", "card", "description", "metadata"];
    let fields = Fields::parse(body, &KNOWN)?;
    let mut errors = fields.errors();
    let amount_minor = fields.amount(&mut errors);
    let currency = fields.currency("currency", &mut errors);
    let method = match fields.get("/method") {
        None => {
            fail(&mut errors, "method", "is required: one of card, mtn_momo, orange_money, wallet");
            None
        }
        Some(Value::String(name)) => {
            let method = parse_method(name);
            if method.is_none() {
                let message = format!("unknown method \"{name}\"; use one of card, mtn_momo, orange_money, wallet");
                fail(&mut errors, "method", message);
            }
            method
        }
        Some(_) => {
            fail(&mut errors, "method", "must be a string: one of card, mtn_momo, orange_money, wallet");
            None
        }
    };
    let phone_required =
        matches!(method, Some(PaymentMethod::MtnMomo | PaymentMethod::OrangeMoney | PaymentMethod::Wallet));
    let customer_phone = fields.customer_phone(&mut errors, phone_required);
    let card = match (fields.get("/card"), method) {
        (None, Some(PaymentMethod::Card)) => {
            fail(
                &mut errors,
                "card",
                "is required for card payments: {\"token\": \"pm_…\"} or, with test keys, {\"number\": \"…\"}",
            );
            None
        }
        (None, _) => None,
        (Some(_), Some(m)) if m != PaymentMethod::Card => {
            fail(&mut errors, "card", format!("is only for card payments, not {}", method_name(m)));
            None
        }
        (Some(Value::Object(card)), _) => {
            for field in card.keys().filter(|k| !matches!(k.as_str(), "number" | "token")) {
                fail(&mut errors, &format!("card.{field}"), "is not a known field; expected token or number");
            }
            match (card.get("number"), card.get("token")) {
                (Some(_), Some(_)) => {
                    fail(&mut errors, "card", "takes either token or number, not both");
                    None
                }
                (Some(Value::String(number)), None) => parse_card_number(number)
                    .map(CardInput::Number)
                    .map_err(|m| fail(&mut errors, "card.number", m))
                    .ok(),
                (None, Some(Value::String(token))) => {
                    parse_card_token(token).map(CardInput::Token).map_err(|m| fail(&mut errors, "card.token", m)).ok()
                }
                (Some(_), None) => {
                    fail(&mut errors, "card.number", "must be a string of digits");
                    None
                }
                (None, Some(_)) => {
                    fail(&mut errors, "card.token", "must be a string such as \"pm_…\"");
                    None
                }
                (None, None) => {
                    fail(&mut errors, "card", "needs a token (\"pm_…\") or, with test keys, a number");
                    None
                }
            }
        }
        (Some(_), _) => {
            fail(&mut errors, "card", "must be an object such as {\"number\": \"4242424242424242\"}");
            None
        }
    };
    let description = fields.string("description", DESCRIPTION_CHARS_MAX, false, &mut errors);
    let metadata = match fields.get("/metadata") {
        None => serde_json::Map::new(),
        Some(Value::Object(map)) => {
            if map.len() > METADATA_KEYS_MAX {
                fail(&mut errors, "metadata", format!("may have at most {METADATA_KEYS_MAX} keys"));
            }
            for (key, value) in map {
                let field = format!("metadata.{key}");
                if key.is_empty() || key.chars().count() > METADATA_KEY_CHARS_MAX {
                    fail(&mut errors, &field, format!("keys must be 1 to {METADATA_KEY_CHARS_MAX} characters"));
                }
                match value {
                    Value::String(s) if s.chars().count() <= METADATA_VALUE_CHARS_MAX => {}
                    Value::String(_) => {
                        fail(&mut errors, &field, format!("must be at most {METADATA_VALUE_CHARS_MAX} characters"))
                    }
                    _ => fail(&mut errors, &field, "must be a string"),
                }
            }
            map.clone()
        }
        Some(_) => {
            fail(&mut errors, "metadata", "must be an object of string values");
            serde_json::Map::new()
        }
    };

    match (amount_minor, currency, method, errors.is_empty()) {
        (Some(amount_minor), Some(currency), Some(method), true) => Ok(NewPayment {
            amount_minor,
            currency,
            method,
            customer_phone,
            card,
            description,
            metadata,
            canonical: fields.canonical(),
        }),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// A provider payment-method token: `pm_` or `tok_` and then letters,
/// digits and underscores.
fn parse_card_token(text: &str) -> Result<String, String> {
    let known_prefix = ["pm_", "tok_"].iter().any(|p| text.starts_with(p));
    let charset = text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !known_prefix || !charset || text.len() > CARD_TOKEN_CHARS_MAX {
        return Err(format!(
            "must be a payment-method token from the card provider's client library (pm_…, tok_…), \
             at most {CARD_TOKEN_CHARS_MAX} characters"
        ));
    }
    Ok(text.to_string())
}

/// A card number: 12 to 19 digits (spaces allowed) passing the Luhn check.
fn parse_card_number(text: &str) -> Result<String, String> {
    let digits: String = text.chars().filter(|c| *c != ' ').collect();
    if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be 12 to 19 digits".into());
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }
        })
        .sum();
    if !sum.is_multiple_of(10) {
        return Err("is not a valid card number (checksum failed)".into());
    }
    Ok(digits)
}

/// `POST /v1/payments`.
pub async fn create(state: &AppState, caller: &Caller, key: String, request: NewPayment) -> Result<Reply, ApiError> {
    if caller.mode == Mode::Live && matches!(request.card, Some(CardInput::Number(_))) {
        // Raw card numbers would put the gateway in PCI scope; live cards
        // come tokenised by the provider's client library.
        return Err(ApiError::invalid(
            "card.number",
            "card numbers are accepted with test keys only; live card payments take card.token \
             (a payment-method id from Stripe.js or Stripe's mobile SDKs)",
        ));
    }
    let scope = Scope { merchant_id: caller.merchant_id.clone(), mode: caller.mode, key };
    let fingerprint = idempotency::fingerprint("POST /v1/payments", &request.canonical);
    let rail = match state.registry.routes().rail_for(caller.mode, request.method, request.currency.code) {
        Ok(rail) => rail,
        Err(unavailable) => {
            // A used key answers from its record, whatever the routes say
            // today (the claim below answers it when a route exists).
            let (peek_scope, peek_fingerprint) = (scope.clone(), fingerprint.clone());
            let used = state.store.read(move |conn| idempotency::peek(conn, &peek_scope, &peek_fingerprint)).await?;
            return match used {
                Some(used) => idempotency::answer_used_key(used),
                None => Err(ApiError::PaymentMethodUnavailable(unavailable)),
            };
        }
    };
    let entity = rail.entity_for(request.method).unwrap_or_default().to_string();
    let now_ms = crate::clock::now_ms();
    let payment = PaymentRow::new(caller, &scope.key, &request, rail.name(), &entity, now_ms);

    let to_insert = payment.clone();
    let claim = state
        .store
        .write(move |conn| {
            let claim = idempotency::claim(conn, &scope, &fingerprint, &to_insert.id, now_ms)?;
            if let Claim::New = claim {
                to_insert.insert(conn)?;
                if to_insert.is_wallet() {
                    to_insert.hold_wallet_funds(conn, now_ms)?;
                }
            }
            Ok(claim)
        })
        .await?;
    if !matches!(claim, Claim::New) {
        return idempotency::answer_used_key(claim);
    }

    // From here the rail may act, so the record must follow even if the
    // client hangs up: the work runs in its own task, not in this request.
    let state = state.clone();
    let work = async move { collect_and_record(&state, rail, payment).await };
    let finished = tokio::spawn(tracing::Instrument::in_current_span(work));
    let stored = finished.await.map_err(|e| ApiError::Internal(anyhow::anyhow!("payment task failed: {e}")))??;
    Ok(Reply::new(stored))
}

/// Calls the rail outside any transaction, then records what it said.
async fn collect_and_record(
    state: &AppState,
    rail: Arc<LoadedRail>,
    payment: PaymentRow,
) -> Result<StoredResponse, ApiError> {
    let request = payment.collect_request()?;
    let outcome = tokio::task::spawn_blocking(move || rail.collect(&request))
        .await
        .unwrap_or_else(|e| Err(PluginError::Host(format!("the call panicked: {e}"))));
    let payment_id = payment.id.clone();
    let first_check_ms = state.status_checks.delay_ms(0);
    let stored = state
        .store
        .write(move |conn| {
            let now_ms = crate::clock::now_ms();
            record_outcome(conn, &payment_id, outcome, now_ms, now_ms.saturating_add(first_check_ms))
        })
        .await?;
    Ok(stored)
}

/// Applies the rail's first answer to a processing payment, posts its ledger
/// entries and stores the response for its idempotency key — one write. A
/// payment the answer leaves processing gets its first status check at
/// `check_at_ms`.
fn record_outcome(
    conn: &Connection,
    payment_id: &str,
    outcome: Result<Result<RailOutcome, crate::plugins::Failure>, PluginError>,
    now_ms: i64,
    check_at_ms: i64,
) -> Result<StoredResponse, StoreError> {
    let payment = PaymentRow::load(conn, payment_id)?
        .ok_or_else(|| StoreError::Invariant(format!("payment {payment_id} vanished")))?;
    if payment.status != "processing" {
        // Already final: a resume raced the original, or a callback or status
        // check settled it first. Nothing is posted twice.
        return answer_settled(conn, &payment);
    }
    // A rail that never ran cannot have charged anyone: the payment fails
    // cleanly, and the merchant may retry with a new key.
    let outcome = match outcome {
        Err(PluginError::Busy) => Ok(Err(crate::plugins::Failure {
            code: "RAIL_BUSY".into(),
            message: "the gateway had no free plugin instance; nothing was charged, retry with a new key".into(),
            retryable: true,
        })),
        other => other,
    };
    let response = match outcome {
        Err(plugin_error) => {
            // We cannot know whether the provider acted, so the payment stays
            // processing (status checks settle it) and the key is bound to
            // this answer: a retry never creates a second charge.
            schedule(conn, &payment.id, Schedule::First(check_at_ms))?;
            let error = ApiError::RailFailed(plugin_error, payment.id.clone());
            StoredResponse { status: error.status().as_u16(), body: error.body().to_string() }
        }
        Ok(answer) => {
            let report = RailReport::from_answer(answer);
            let updated = apply_report(conn, &payment, &report, now_ms, Schedule::First(check_at_ms))?;
            StoredResponse { status: 201, body: updated.to_json().to_string() }
        }
    };
    idempotency::record_response(conn, payment_id, &response)?;
    Ok(response)
}

/// The key's answer for a payment that is already final: the one stored, or
/// the payment as it is now (stored, so the key stops being in flight).
fn answer_settled(conn: &Connection, payment: &PaymentRow) -> Result<StoredResponse, StoreError> {
    if let Some(stored) = idempotency::stored_response(conn, &payment.id)? {
        return Ok(stored);
    }
    let response = StoredResponse { status: 201, body: payment.to_json().to_string() };
    idempotency::record_response(conn, &payment.id, &response)?;
    Ok(response)
}

/// What a rail said about a payment, in the store's terms.
struct RailReport {
    status: &'static str,
    provider_reference: Option<String>,
    failure: Option<(String, String)>,
    redirect_url: Option<String>,
}

impl RailReport {
    /// A refusal as a value is a failed payment.
    fn from_answer(answer: Result<RailOutcome, crate::plugins::Failure>) -> RailReport {
        match answer {
            Ok(o) => RailReport {
                status: status_name(o.status),
                provider_reference: o.provider_reference,
                failure: o.failure.map(|f| (f.code, f.message)),
                redirect_url: o.redirect_url,
            },
            Err(f) => RailReport {
                status: "failed",
                provider_reference: None,
                failure: Some((f.code, f.message)),
                redirect_url: None,
            },
        }
    }
}

/// When a payment still processing is checked next.
#[derive(Debug, Clone, Copy)]
pub enum Schedule {
    /// After the rail's first answer: the first check, at this time.
    First(i64),
    /// After status check number `checks`, which was due at `due_at`: the
    /// next at `next_at`, unless a callback moved it meanwhile.
    After { due_at: i64, next_at: i64, checks: i64 },
    /// A callback's prompt: no later than this, once the first answer is
    /// recorded (never while `collect` may still be running).
    Prompt(i64),
}

/// Moves a processing payment to what the rail reported: a final status
/// with its ledger entries and events, or still processing, checked next as
/// `next` says.
fn apply_report(
    conn: &Connection,
    payment: &PaymentRow,
    report: &RailReport,
    now_ms: i64,
    next: Schedule,
) -> Result<PaymentRow, StoreError> {
    let checks = match next {
        Schedule::After { checks, .. } => Some(checks),
        _ => None,
    };
    if report.status == "processing" {
        conn.prepare_cached(
            "UPDATE payments SET provider_reference = COALESCE(?2, provider_reference),
             next_action_url = COALESCE(?3, next_action_url) WHERE id = ?1",
        )?
        .execute(params![payment.id, report.provider_reference, report.redirect_url])?;
        schedule(conn, &payment.id, next)?;
    } else {
        conn.prepare_cached(
            "UPDATE payments SET status = ?2, provider_reference = COALESCE(?3, provider_reference),
             failure_code = ?4, failure_message = ?5, completed_at = ?6, rail_instrument = NULL,
             next_check_at = NULL, next_action_url = NULL, status_checks = COALESCE(?7, status_checks)
             WHERE id = ?1 AND status = 'processing'",
        )?
        .execute(params![
            payment.id,
            report.status,
            report.provider_reference,
            report.failure.as_ref().map(|f| &f.0),
            report.failure.as_ref().map(|f| &f.1),
            now_ms,
            checks
        ])?;
        payment.post_outcome(conn, report.status, now_ms)?;
    }
    let updated = PaymentRow::load(conn, &payment.id)?.expect("the payment was just updated");
    if report.status != "processing" {
        let object = updated.to_json();
        for event in crate::webhooks::payment_events(report.status) {
            crate::webhooks::emit(conn, &updated.merchant_id, updated.mode, event, &object, now_ms)?;
        }
    }
    Ok(updated)
}

/// Sets when a processing payment is checked next.
pub fn schedule(conn: &Connection, payment_id: &str, next: Schedule) -> Result<(), StoreError> {
    schedule_in(conn, "payments", payment_id, next)
}

/// Sets when a processing row of `table` (`payments` or `refunds`, which
/// share the `status`, `next_check_at` and `status_checks` columns) is
/// checked next.
pub fn schedule_in(conn: &Connection, table: &'static str, id: &str, next: Schedule) -> Result<(), StoreError> {
    debug_assert!(matches!(table, "payments" | "refunds" | "settlements"));
    match next {
        Schedule::First(at) => conn
            .prepare_cached(&format!(
                "UPDATE {table} SET next_check_at = ?2, status_checks = 0 WHERE id = ?1 AND status = 'processing'"
            ))?
            .execute(params![id, at])?,
        Schedule::After { due_at, next_at, checks } => conn
            .prepare_cached(&format!(
                "UPDATE {table} SET status_checks = ?4,
                 next_check_at = CASE WHEN next_check_at = ?2 THEN ?3 ELSE next_check_at END
                 WHERE id = ?1 AND status = 'processing'"
            ))?
            .execute(params![id, due_at, next_at, checks])?,
        Schedule::Prompt(at) => conn
            .prepare_cached(&format!(
                "UPDATE {table} SET next_check_at = MIN(next_check_at, ?2)
                 WHERE id = ?1 AND status = 'processing' AND next_check_at IS NOT NULL"
            ))?
            .execute(params![id, at])?,
    };
    Ok(())
}

/// A payment whose status check is due.
pub struct DueCheck {
    pub payment_id: String,
    /// The name of the rail that collected it.
    pub rail: String,
    /// What was asked of the rail (an error if the stored row cannot say).
    pub request: Result<CollectRequest, String>,
    pub provider_reference: Option<String>,
    /// Checks made so far.
    pub checks: i64,
    pub created_at_ms: i64,
    /// When this check was due (to tell whether a callback moved it since).
    pub due_at: i64,
}

/// Processing payments whose next status check is due, oldest first.
pub fn due_checks(conn: &Connection, now_ms: i64, limit: usize) -> Result<Vec<DueCheck>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PAYMENT_COLUMNS}, p.status_checks, p.next_check_at FROM payments p
         WHERE p.status = 'processing' AND p.next_check_at IS NOT NULL AND p.next_check_at <= ?1
         ORDER BY p.next_check_at LIMIT ?2"
    ))?;
    let checks_column = PAYMENT_COLUMNS.split(',').count();
    let rows = stmt
        .query_map(params![now_ms, i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
            Ok((PaymentRow::from_row(row)?, row.get::<_, i64>(checks_column)?, row.get::<_, i64>(checks_column + 1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut due = Vec::with_capacity(rows.len());
    for (payment, checks, due_at) in rows {
        // One unreadable row must not stop the other checks.
        let request = payment.collect_request().map_err(|e| e.to_string());
        due.push(DueCheck {
            payment_id: payment.id,
            rail: payment.rail,
            request,
            provider_reference: payment.provider_reference,
            checks,
            created_at_ms: payment.created_at_ms,
            due_at,
        });
    }
    Ok(due)
}

/// Stops checking a processing row of `table`: it stays processing for an
/// operator to reconcile.
pub fn stop_checks(conn: &Connection, table: &'static str, id: &str) -> Result<(), StoreError> {
    debug_assert!(matches!(table, "payments" | "refunds" | "settlements"));
    conn.prepare_cached(&format!("UPDATE {table} SET next_check_at = NULL WHERE id = ?1 AND status = 'processing'"))?
        .execute(params![id])?;
    Ok(())
}

/// What became of a rail's later report on a payment.
#[derive(Debug, PartialEq, Eq)]
pub enum ReportApplied {
    /// The payment moved to this status (or stays processing).
    Status(&'static str),
    /// The payment was already final; nothing changed.
    AlreadyFinal,
    /// No payment has this id, or another rail collected it.
    NotThisRail,
    /// The report names another provider reference than the one stored.
    ReferenceMismatch,
}

/// Applies a status check's or callback's outcome from rail `rail` to
/// payment `payment_id`, if that rail collected it and it is processing.
/// If it stays processing, it is checked next as `next` says.
pub fn apply_later_report(
    conn: &Connection,
    payment_id: &str,
    rail: &str,
    outcome: RailOutcome,
    now_ms: i64,
    next: Schedule,
) -> Result<ReportApplied, StoreError> {
    let Some(payment) = PaymentRow::load(conn, payment_id)?.filter(|p| p.rail == rail) else {
        return Ok(ReportApplied::NotThisRail);
    };
    if payment.status != "processing" {
        return Ok(ReportApplied::AlreadyFinal);
    }
    let report = RailReport::from_answer(Ok(outcome));
    let reference_differs = matches!(
        (&payment.provider_reference, &report.provider_reference),
        (Some(stored), Some(reported)) if stored != reported
    );
    if reference_differs {
        // Not applied, but the schedule still moves on: a rail that keeps
        // answering another reference must not be asked again every second.
        schedule(conn, payment_id, next)?;
        tracing::error!(payment = payment_id, rail, "the rail reported another provider reference; reconcile it");
        return Ok(ReportApplied::ReferenceMismatch);
    }
    apply_report(conn, &payment, &report, now_ms, next)?;
    Ok(ReportApplied::Status(report.status))
}

/// After a crash: payments claimed but never recorded are collected again
/// with the same payment id (the rail's idempotency key), then recorded.
/// One a callback or status check settled before the crash only gets its
/// key's answer stored.
pub async fn resume_in_flight(state: &AppState) -> anyhow::Result<usize> {
    let pending: Vec<PaymentRow> = state
        .store
        .read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {PAYMENT_COLUMNS} FROM payments p JOIN idempotency_keys k ON k.transaction_id = p.id
                 WHERE k.response_body IS NULL"
            ))?;
            let rows = stmt.query_map([], PaymentRow::from_row)?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await?;
    let count = pending.len();
    for payment in pending {
        if payment.status != "processing" {
            state.store.write(move |conn| answer_settled(conn, &payment).map(drop)).await?;
            continue;
        }
        // The rail that may already have acted, never whatever is bound today.
        let rail = state.registry.rail_named(&payment.rail);
        match rail {
            Some(rail) => {
                tracing::info!(payment = %payment.id, rail = %payment.rail, "resuming a payment interrupted before it was recorded");
                collect_and_record(state, rail, payment).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            None => {
                tracing::warn!(
                    payment = %payment.id,
                    rail = %payment.rail,
                    "cannot resume payment: its rail is not loaded; it stays processing and is checked later"
                );
                let check_at = crate::clock::now_ms().saturating_add(state.status_checks.delay_ms(0));
                state.store.write(move |conn| schedule(conn, &payment.id, Schedule::First(check_at))).await?;
            }
        }
    }
    Ok(count)
}

/// `GET /v1/payments/{id}`.
pub async fn get(state: &AppState, caller: &Caller, id: String) -> Result<Value, ApiError> {
    let (merchant, mode) = (caller.merchant_id.clone(), caller.mode);
    let row = state.store.read(move |conn| PaymentRow::load(conn, &id)).await?;
    match row {
        Some(p) if p.merchant_id == merchant && p.mode == mode => Ok(p.to_json()),
        _ => Err(ApiError::NotFound { what: "payment" }),
    }
}

/// The payment object for an id, if it exists (no ownership check).
pub fn json_by_id(conn: &Connection, id: &str) -> Result<Option<Value>, StoreError> {
    Ok(PaymentRow::load(conn, id)?.map(|p| p.to_json()))
}

pub fn status_name(status: TransactionStatus) -> &'static str {
    match status {
        TransactionStatus::Processing => "processing",
        TransactionStatus::Completed => "completed",
        TransactionStatus::Failed => "failed",
        TransactionStatus::Refunded => "refunded",
        TransactionStatus::Cancelled => "cancelled",
    }
}

const PAYMENT_COLUMNS: &str = "p.id, p.merchant_id, p.mode, p.reference, p.idempotency_key, p.status, p.amount, p.fee, \
     p.currency, p.method, p.customer_phone, p.rail_instrument, p.card_last4, p.description, p.metadata, p.rail, \
     p.entity, p.provider_reference, p.failure_code, p.failure_message, p.created_at, p.completed_at, p.next_action_url, p.amount_refunded";

/// A payment as stored.
#[derive(Debug, Clone)]
struct PaymentRow {
    id: String,
    merchant_id: String,
    mode: Mode,
    reference: String,
    idempotency_key: String,
    status: String,
    amount_minor: i64,
    fee_minor: i64,
    currency: String,
    method: String,
    customer_phone: Option<String>,
    rail_instrument: Option<String>,
    card_last4: Option<String>,
    description: Option<String>,
    metadata: String,
    rail: String,
    entity: String,
    provider_reference: Option<String>,
    failure_code: Option<String>,
    failure_message: Option<String>,
    created_at_ms: i64,
    completed_at_ms: Option<i64>,
    /// While processing: where the customer approves the payment.
    next_action_url: Option<String>,
    /// The sum of completed refunds.
    amount_refunded_minor: i64,
}

impl PaymentRow {
    fn new(caller: &Caller, key: &str, request: &NewPayment, rail: &str, entity: &str, now_ms: i64) -> PaymentRow {
        let amount_minor = i64::try_from(request.amount_minor).expect("amounts are validated to fit in i64");
        let fee = money::basis_points_of(request.amount_minor, PAYMENT_FEE_BPS);
        PaymentRow {
            id: crate::ids::new_id("pay"),
            merchant_id: caller.merchant_id.clone(),
            mode: caller.mode,
            reference: crate::ids::new_reference("PAY", now_ms),
            idempotency_key: key.to_string(),
            status: "processing".into(),
            amount_minor,
            fee_minor: i64::try_from(fee).expect("the fee never exceeds the amount"),
            currency: request.currency.code.to_string(),
            method: method_name(request.method).to_string(),
            customer_phone: request.customer_phone.clone(),
            rail_instrument: match &request.card {
                Some(CardInput::Number(n) | CardInput::Token(n)) => Some(n.clone()),
                None => None,
            },
            card_last4: match &request.card {
                Some(CardInput::Number(n)) => Some(n[n.len() - 4..].to_string()),
                _ => None,
            },
            description: request.description.clone(),
            metadata: Value::Object(request.metadata.clone()).to_string(),
            rail: rail.to_string(),
            entity: entity.to_string(),
            provider_reference: None,
            failure_code: None,
            failure_message: None,
            created_at_ms: now_ms,
            completed_at_ms: None,
            next_action_url: None,
            amount_refunded_minor: 0,
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
            self.merchant_id,
            self.mode.as_str(),
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
            crate::wallets::record_customer_transaction(
                conn,
                &self.id,
                &self.merchant_id,
                self.mode,
                phone,
                "payment",
                self.created_at_ms,
            )?;
        }
        Ok(())
    }

    fn load(conn: &Connection, id: &str) -> Result<Option<PaymentRow>, StoreError> {
        let row = conn
            .prepare_cached(&format!("SELECT {PAYMENT_COLUMNS} FROM payments p WHERE p.id = ?1"))?
            .query_row(params![id], PaymentRow::from_row)
            .optional()?;
        Ok(row)
    }

    fn from_row(row: &Row) -> rusqlite::Result<PaymentRow> {
        let mode: String = row.get(2)?;
        Ok(PaymentRow {
            id: row.get(0)?,
            merchant_id: row.get(1)?,
            mode: Mode::parse(&mode).ok_or_else(|| rusqlite::Error::InvalidColumnName(format!("mode {mode}")))?,
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
            failure_code: row.get(18)?,
            failure_message: row.get(19)?,
            created_at_ms: row.get(20)?,
            completed_at_ms: row.get(21)?,
            next_action_url: row.get(22)?,
            amount_refunded_minor: row.get(23)?,
        })
    }

    fn collect_request(&self) -> Result<CollectRequest, ApiError> {
        let method = parse_method(&self.method)
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("stored payment has unknown method {}", self.method)))?;
        Ok(CollectRequest {
            payment_id: self.id.clone(),
            money: Money {
                amount: u64::try_from(self.amount_minor).expect("stored amounts are positive"),
                currency: self.currency.clone(),
            },
            method,
            customer_phone: self.customer_phone.clone(),
            card: self.rail_instrument.clone(),
            description: self.description.clone(),
            created_at_ms: u64::try_from(self.created_at_ms).unwrap_or(0),
        })
    }

    fn account(&self, owner: &str, kind: AccountKind) -> Account {
        Account {
            mode: self.mode,
            entity: self.entity.clone(),
            owner: owner.to_string(),
            kind,
            currency: self.currency.clone(),
        }
    }

    fn is_wallet(&self) -> bool {
        self.method == method_name(PaymentMethod::Wallet)
    }

    fn phone(&self) -> Result<&str, StoreError> {
        self.customer_phone
            .as_deref()
            .ok_or_else(|| StoreError::Invariant(format!("wallet payment {} has no customer phone", self.id)))
    }

    fn customer_wallet(&self) -> Result<Account, StoreError> {
        Ok(crate::wallets::wallet_account(self.mode, self.phone()?, &self.currency))
    }

    fn wallet_hold(&self) -> Result<Account, StoreError> {
        Ok(crate::wallets::hold_account(self.mode, self.phone()?, &self.currency))
    }

    /// Reserves a wallet payment's amount, refusing (and so undoing the
    /// whole claim) when the wallet holds too little.
    fn hold_wallet_funds(&self, conn: &Connection, now_ms: i64) -> Result<(), StoreError> {
        let amount = u64::try_from(self.amount_minor).expect("stored amounts are positive");
        crate::wallets::require_funds(conn, self.mode, self.phone()?, &self.currency, amount)?;
        let postings = [
            Posting { account: self.customer_wallet()?, amount_minor: self.amount_minor },
            Posting { account: self.wallet_hold()?, amount_minor: -self.amount_minor },
        ];
        ledger::post(conn, self.mode, "hold", &self.id, &postings, now_ms)?;
        Ok(())
    }

    /// Posts what a new status means for the money.
    fn post_outcome(&self, conn: &Connection, status: &str, now_ms: i64) -> Result<(), StoreError> {
        match status {
            "completed" => {
                ledger::post(conn, self.mode, "payment", &self.id, &self.collection_postings()?, now_ms)?;
            }
            "refunded" => {
                ledger::post(conn, self.mode, "payment", &self.id, &self.collection_postings()?, now_ms)?;
                ledger::post(conn, self.mode, "refund", &self.id, &self.refund_postings()?, now_ms)?;
            }
            "failed" | "cancelled" if self.is_wallet() => {
                let postings = [
                    Posting { account: self.wallet_hold()?, amount_minor: self.amount_minor },
                    Posting { account: self.customer_wallet()?, amount_minor: -self.amount_minor },
                ];
                ledger::post(conn, self.mode, "release", &self.id, &postings, now_ms)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Money in: the source (the rail, or the customer's held wallet money)
    /// gives the amount; the merchant is owed the net; the platform earns the fee.
    fn collection_postings(&self) -> Result<Vec<Posting>, StoreError> {
        let source = if self.is_wallet() {
            self.wallet_hold()?
        } else {
            self.account(&format!("rail:{}", self.rail), AccountKind::RailClearing)
        };
        self.postings_between(source, 1)
    }

    /// Money back: the collection reversed, into the customer's wallet for
    /// wallet payments.
    fn refund_postings(&self) -> Result<Vec<Posting>, StoreError> {
        let destination = if self.is_wallet() {
            self.customer_wallet()?
        } else {
            self.account(&format!("rail:{}", self.rail), AccountKind::RailClearing)
        };
        self.postings_between(destination, -1)
    }

    /// `sign` 1: `source` gives the amount, merchant and platform receive it;
    /// `sign` -1: the reverse.
    fn postings_between(&self, source: Account, sign: i64) -> Result<Vec<Posting>, StoreError> {
        let net = self
            .amount_minor
            .checked_sub(self.fee_minor)
            .ok_or_else(|| StoreError::Invariant(format!("payment {} fee exceeds amount", self.id)))?;
        let postings = vec![
            Posting { account: source, amount_minor: sign * self.amount_minor },
            Posting {
                account: self.account(&self.merchant_id, AccountKind::MerchantPending),
                amount_minor: -sign * net,
            },
            Posting {
                account: self.account(PLATFORM_OWNER, AccountKind::FeeRevenue),
                amount_minor: -sign * self.fee_minor,
            },
        ];
        Ok(postings.into_iter().filter(|p| p.amount_minor != 0).collect())
    }

    /// The payment object merchants see.
    fn to_json(&self) -> Value {
        let metadata: Value = serde_json::from_str(&self.metadata).unwrap_or_else(|_| json!({}));
        let mut object = json!({
            "object": "payment",
            "id": self.id,
            "reference": self.reference,
            "type": "payment",
            "status": self.status,
            "amount": self.amount_minor,
            "fee": self.fee_minor,
            "net_amount": self.amount_minor - self.fee_minor,
            "amount_refunded": self.amount_refunded_minor,
            "currency": self.currency,
            "method": self.method,
            "customer": { "phone": self.customer_phone },
            "description": self.description,
            "metadata": metadata,
            "livemode": self.mode == Mode::Live,
            "entity": self.entity,
            "provider_reference": self.provider_reference,
            "idempotency_key": self.idempotency_key,
            "created_at": crate::clock::rfc3339(self.created_at_ms),
            "completed_at": self.completed_at_ms.map(crate::clock::rfc3339),
        });
        if let Some(last4) = &self.card_last4 {
            object["card"] = json!({ "last4": last4 });
        }
        if let Some(code) = &self.failure_code {
            object["failure"] = json!({ "code": code, "message": self.failure_message });
        }
        if let (Some(url), "processing") = (&self.next_action_url, self.status.as_str()) {
            object["next_action"] = json!({ "type": "redirect", "url": url });
        }
        object
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_ignores_key_order_and_spacing() {
        let a = parse_new_payment(
            br#"{"amount":100,"currency":"USD","method":"mtn_momo","customer":{"phone":"+231770001234"}}"#,
        )
        .unwrap();
        let b = parse_new_payment(
            br#"{ "customer": {"phone": "+231770001234"}, "method": "mtn_momo", "currency": "USD", "amount": 100 }"#,
        )
        .unwrap();
        assert_eq!(a.canonical, b.canonical);
    }

    #[test]
    fn every_bad_field_is_named() {
        let Err(ApiError::Validation(fields)) =
            parse_new_payment(br#"{"amount":12.5,"currency":"usd","method":"cash","x":1}"#)
        else {
            panic!("expected a validation error");
        };
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        for expected in ["x", "amount", "currency", "method"] {
            assert!(names.contains(&expected), "{expected} missing from {names:?}");
        }
    }

    #[test]
    fn card_numbers_need_a_valid_checksum() {
        assert!(parse_card_number("4242 4242 4242 4242").is_ok());
        assert!(parse_card_number("4242424242424241").is_err());
        assert!(parse_card_number("42424242").is_err());
    }
}
