//! Settlement: paying merchants what the platform owes them. A batch (daily
//! by default, or when an operator runs it) takes, per merchant, mode,
//! entity and currency, the pending balance collected before the cutoff
//! (`now - hold_ms`) and pays it to the merchant's payout account through
//! the rail bound to that account's method, with the settlement id as the
//! rail's idempotency key. Same order as payments: claim in one write (the
//! settlement row and its ledger entry), ask the rail outside any
//! transaction, record the answer; a payout the rail leaves processing is
//! settled by status checks (`rail_updates`).
//!
//! What is settleable is read from the ledger: the `merchant_pending`
//! postings of entries made before the cutoff, plus every settlement entry
//! (so what was settled is never settled again), capped at the pending
//! balance now (a refund after the cutoff comes out first).
//!
//! Ledger (transaction = the settlement id):
//! - `settlement` at the claim: `merchant_pending` +A, `settlement_in_transit` −A;
//! - `settlement_paid`: `settlement_in_transit` +A, the rail's clearing −A
//!   (the rail paid out money it held for us);
//! - `settlement_return` when the payout fails: `settlement_in_transit` +A,
//!   `merchant_pending` −A (owed again, settled by a later batch).

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::ApiError;
use crate::ledger::{self, Account, AccountKind, Posting};
use crate::mode::Mode;
use crate::payments::Schedule;
use crate::plugins::routes::{method_name, parse_method};
use crate::plugins::{Money, PayoutRequest, PluginError, RailOutcome, TransactionStatus};
use crate::store::StoreError;
use crate::validate::{Fields, fail};

/// Journal entry kinds that move settled money; their postings always count
/// as settled, whenever they were made.
const SETTLEMENT_KINDS: [&str; 3] = ["settlement", "settlement_paid", "settlement_return"];

// ---- payout accounts -------------------------------------------------------

/// A validated `PUT /admin/merchants/{id}/payout_accounts` body.
#[derive(Debug, Clone)]
pub struct NewPayoutAccount {
    pub mode: Mode,
    pub currency: String,
    pub method: String,
    pub destination: String,
}

/// Reads `{mode, currency, method, destination}` (destination: E.164).
pub fn parse_payout_account(body: &[u8]) -> Result<NewPayoutAccount, ApiError> {
    let fields = Fields::parse(body, &["mode", "currency", "method", "destination"])?;
    let mut errors = fields.errors();
    let mode = fields.string("mode", 10, true, &mut errors).and_then(|m| {
        Mode::parse(&m).or_else(|| {
            fail(&mut errors, "mode", "must be test or live");
            None
        })
    });
    let currency = fields.currency("currency", &mut errors);
    let method = fields.string("method", 40, true, &mut errors).and_then(|m| {
        parse_method(&m).map(|_| m).or_else(|| {
            fail(&mut errors, "method", "must be a payment method: mtn_momo, orange_money or card");
            None
        })
    });
    let destination = fields
        .string("destination", 40, true, &mut errors)
        .and_then(|d| crate::phone::parse_e164(&d).map_err(|why| fail(&mut errors, "destination", why)).ok());
    match (mode, currency, method, destination) {
        (Some(mode), Some(currency), Some(method), Some(destination)) if errors.is_empty() => {
            Ok(NewPayoutAccount { mode, currency: currency.code.to_string(), method, destination })
        }
        _ => Err(ApiError::Validation(errors)),
    }
}

/// Sets (or replaces) where a merchant is paid in one mode and currency.
pub fn set_payout_account(conn: &Connection, merchant_id: &str, account: &NewPayoutAccount) -> Result<(), StoreError> {
    if crate::accounts::load(conn, merchant_id)?.is_none() {
        return Err(StoreError::rejected(ApiError::NotFound { what: "merchant" }));
    }
    conn.prepare_cached(
        "INSERT INTO payout_accounts (merchant_id, mode, currency, method, destination, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (merchant_id, mode, currency) DO UPDATE
         SET method = excluded.method, destination = excluded.destination, updated_at = excluded.updated_at",
    )?
    .execute(params![
        merchant_id,
        account.mode.as_str(),
        account.currency,
        account.method,
        account.destination,
        crate::clock::now_ms()
    ])?;
    Ok(())
}

pub fn payout_accounts_json(conn: &Connection, merchant_id: &str) -> Result<Value, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT mode, currency, method, destination FROM payout_accounts WHERE merchant_id = ?1
             ORDER BY mode, currency",
        )?
        .query_map(params![merchant_id], |row| {
            Ok(json!({
                "mode": row.get::<_, String>(0)?,
                "currency": row.get::<_, String>(1)?,
                "method": row.get::<_, String>(2)?,
                "destination": row.get::<_, String>(3)?,
            }))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Value::Array(rows))
}

// ---- what is owed ------------------------------------------------------------

/// One merchant balance that may be settled.
#[derive(Debug, Clone)]
pub struct Settleable {
    pub merchant_id: String,
    pub mode: Mode,
    pub entity: String,
    pub currency: String,
    pub amount: i64,
}

/// Every merchant pending balance with money settleable at `cutoff_ms`
/// (optionally of one merchant and mode).
pub fn settleable(
    conn: &Connection,
    cutoff_ms: i64,
    only: Option<(&str, Mode)>,
) -> Result<Vec<Settleable>, StoreError> {
    let (merchant, mode) = only.map_or((None, None), |(m, mode)| (Some(m), Some(mode.as_str())));
    let sql = format!(
        "SELECT a.owner, a.mode, a.entity, a.currency, -SUM(p.amount),
                -SUM(CASE WHEN e.created_at <= ?1 OR e.kind IN ({kinds}) THEN p.amount ELSE 0 END)
         FROM postings p JOIN ledger_accounts a ON a.id = p.account_id JOIN journal_entries e ON e.id = p.entry_id
         WHERE a.kind = 'merchant_pending' AND (?2 IS NULL OR a.owner = ?2) AND (?3 IS NULL OR a.mode = ?3)
         GROUP BY a.id ORDER BY a.owner, a.mode, a.currency, a.entity",
        kinds = SETTLEMENT_KINDS.map(|k| format!("'{k}'")).join(", ")
    );
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params![cutoff_ms, merchant, mode], |row| {
            let mode: String = row.get(1)?;
            let (pending, before_cutoff): (i64, i64) = (row.get(4)?, row.get(5)?);
            Ok(Settleable {
                merchant_id: row.get(0)?,
                mode: Mode::parse(&mode).unwrap_or(Mode::Live),
                entity: row.get(2)?,
                currency: row.get(3)?,
                amount: pending.min(before_cutoff).max(0),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

// ---- the batch ---------------------------------------------------------------

/// Runs a settlement batch at `now_ms`: one settlement per settleable
/// balance whose merchant has a payout account in that mode and currency.
/// Answers what was made and what was skipped, and why.
pub async fn run(state: &AppState, now_ms: i64) -> Result<Value, ApiError> {
    let cutoff_ms = now_ms.saturating_sub(i64::try_from(state.settlement.hold_ms).unwrap_or(i64::MAX));
    let candidates = state.store.read(move |conn| settleable(conn, cutoff_ms, None)).await?;
    let (mut made, mut skipped) = (Vec::new(), Vec::new());
    for owed in candidates.into_iter().filter(|o| o.amount > 0) {
        match settle_one(state, &owed, cutoff_ms).await {
            Ok(settlement) => made.push(settlement),
            Err(why) => {
                tracing::warn!(merchant = %owed.merchant_id, currency = %owed.currency, why, "not settled");
                skipped.push(json!({
                    "merchant_id": owed.merchant_id,
                    "mode": owed.mode.as_str(),
                    "currency": owed.currency,
                    "entity": owed.entity,
                    "amount": owed.amount,
                    "reason": why,
                }));
            }
        }
    }
    let counts = (i64::try_from(made.len()).unwrap_or(i64::MAX), i64::try_from(skipped.len()).unwrap_or(i64::MAX));
    state
        .store
        .write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO settlement_batches (ran_at, cutoff_at, settlements, skipped) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![now_ms, cutoff_ms, counts.0, counts.1])?;
            Ok(())
        })
        .await?;
    Ok(json!({ "cutoff_at": crate::clock::rfc3339(cutoff_ms), "settlements": made, "skipped": skipped }))
}

/// When the last batch ran, if one ever did.
fn last_batch_at(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn.query_row("SELECT MAX(ran_at) FROM settlement_batches", [], |row| row.get(0))?)
}

/// Claims, pays out and records one settlement; `Err` says why none was made.
async fn settle_one(state: &AppState, owed: &Settleable, cutoff_ms: i64) -> Result<Value, String> {
    let (merchant, mode, currency) = (owed.merchant_id.clone(), owed.mode, owed.currency.clone());
    let payout_account = state
        .store
        .read(move |conn| payout_account(conn, &merchant, mode, &currency))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no payout account for this mode and currency")?;
    let (method_text, destination) = payout_account;
    let method = parse_method(&method_text).ok_or("the payout account's method is unknown")?;
    let rail = state.registry.routes().rail_for(owed.mode, method, &owed.currency)?;
    if rail.entity_for(method) != Some(owed.entity.as_str()) {
        return Err(format!("the {method_text} rail pays out for another entity than {}", owed.entity));
    }
    let claim = Claim {
        owed: owed.clone(),
        method: method_name(method).to_string(),
        destination,
        rail: rail.name().to_string(),
        cutoff_ms,
    };
    let first_check_ms = state.status_checks.delay_ms(0);
    let claimed = state.store.write(move |conn| claim.insert(conn, first_check_ms)).await.map_err(|e| e.to_string())?;
    let Some(request) = claimed else { return Err("nothing left to settle".into()) };
    let settlement_id = request.payout_id.clone();
    let outcome = tokio::task::spawn_blocking(move || rail.payout(&request))
        .await
        .unwrap_or_else(|e| Err(PluginError::Host(format!("the call panicked: {e}"))));
    let outcome = match outcome {
        Ok(Ok(outcome)) => Some(outcome),
        Ok(Err(failure)) => Some(failed(failure)),
        // Never ran: no payout can have been made.
        Err(PluginError::Busy) => Some(failed(crate::plugins::Failure {
            code: "RAIL_BUSY".into(),
            message: "the gateway had no free plugin instance".into(),
            retryable: true,
        })),
        // The rail may have acted: the status checks will know.
        Err(plugin_error) => {
            tracing::warn!(settlement = %settlement_id, error = %plugin_error, "payout failed in the plugin; left processing");
            None
        }
    };
    let id = settlement_id.clone();
    state
        .store
        .write(move |conn| {
            if let Some(outcome) = outcome {
                let now_ms = crate::clock::now_ms();
                apply(conn, &id, outcome, now_ms, Schedule::First(now_ms.saturating_add(first_check_ms)))?;
            }
            json_by_id(conn, &id)?.ok_or_else(|| StoreError::Invariant(format!("settlement {id} vanished")))
        })
        .await
        .map_err(|e| e.to_string())
}

fn failed(failure: crate::plugins::Failure) -> RailOutcome {
    RailOutcome {
        status: TransactionStatus::Failed,
        provider_reference: None,
        failure: Some(failure),
        redirect_url: None,
    }
}

fn payout_account(
    conn: &Connection,
    merchant_id: &str,
    mode: Mode,
    currency: &str,
) -> Result<Option<(String, String)>, StoreError> {
    let found = conn
        .prepare_cached(
            "SELECT method, destination FROM payout_accounts WHERE merchant_id = ?1 AND mode = ?2 AND currency = ?3",
        )?
        .query_row(params![merchant_id, mode.as_str(), currency], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    Ok(found)
}

/// What a batch is about to settle.
struct Claim {
    owed: Settleable,
    method: String,
    destination: String,
    rail: String,
    cutoff_ms: i64,
}

impl Claim {
    /// Re-reads what is settleable (another batch may have run), and if
    /// anything is, inserts the settlement and moves the money in transit,
    /// with its first status check scheduled (so a crash before the rail's
    /// answer is recorded is settled by a check, never paid twice).
    fn insert(&self, conn: &Connection, first_check_ms: i64) -> Result<Option<PayoutRequest>, StoreError> {
        let owed = &self.owed;
        let now = settleable(conn, self.cutoff_ms, Some((&owed.merchant_id, owed.mode)))?;
        let amount =
            now.iter().find(|o| o.entity == owed.entity && o.currency == owed.currency).map_or(0, |o| o.amount);
        if amount <= 0 {
            return Ok(None);
        }
        let now_ms = crate::clock::now_ms();
        let id = crate::ids::new_id("stl");
        conn.prepare_cached(
            "INSERT INTO settlements (id, merchant_id, mode, entity, currency, amount, method, destination, rail,
             cutoff_at, status, created_at, next_check_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'processing', ?11, ?12)",
        )?
        .execute(params![
            id,
            owed.merchant_id,
            owed.mode.as_str(),
            owed.entity,
            owed.currency,
            amount,
            self.method,
            self.destination,
            self.rail,
            self.cutoff_ms,
            now_ms,
            now_ms.saturating_add(first_check_ms)
        ])?;
        let row = SettlementRow::load(conn, &id)?;
        ledger::post(
            conn,
            owed.mode,
            "settlement",
            &id,
            &[
                Posting { account: row.account(AccountKind::MerchantPending, &owed.merchant_id), amount_minor: amount },
                Posting {
                    account: row.account(AccountKind::SettlementInTransit, &owed.merchant_id),
                    amount_minor: -amount,
                },
            ],
            now_ms,
        )?;
        Ok(Some(row.request()))
    }
}

// ---- recording what the rail said ---------------------------------------------

/// A settlement as stored.
pub struct SettlementRow {
    pub id: String,
    pub merchant_id: String,
    pub mode: Mode,
    pub entity: String,
    pub currency: String,
    pub amount: i64,
    pub destination: String,
    pub rail: String,
    pub status: String,
    pub provider_reference: Option<String>,
    pub created_at_ms: i64,
    pub cutoff_ms: i64,
}

const COLUMNS: &str = "id, merchant_id, mode, entity, currency, amount, destination, rail, status, provider_reference,
     created_at, method, cutoff_at, failure_code, failure_message, completed_at";

impl SettlementRow {
    fn load(conn: &Connection, id: &str) -> Result<SettlementRow, StoreError> {
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM settlements WHERE id = ?1"))?
            .query_row(params![id], SettlementRow::from_row)
            .map_err(StoreError::from)
    }

    fn from_row(row: &Row) -> rusqlite::Result<SettlementRow> {
        let mode: String = row.get(2)?;
        Ok(SettlementRow {
            id: row.get(0)?,
            merchant_id: row.get(1)?,
            mode: Mode::parse(&mode).unwrap_or(Mode::Live),
            entity: row.get(3)?,
            currency: row.get(4)?,
            amount: row.get(5)?,
            destination: row.get(6)?,
            rail: row.get(7)?,
            status: row.get(8)?,
            provider_reference: row.get(9)?,
            created_at_ms: row.get(10)?,
            cutoff_ms: row.get(12)?,
        })
    }

    fn account(&self, kind: AccountKind, owner: &str) -> Account {
        Account {
            mode: self.mode,
            entity: self.entity.clone(),
            owner: owner.to_string(),
            kind,
            currency: self.currency.clone(),
        }
    }

    /// What the rail is asked: the settlement id is its idempotency key.
    pub fn request(&self) -> PayoutRequest {
        PayoutRequest {
            payout_id: self.id.clone(),
            money: Money { amount: u64::try_from(self.amount).unwrap_or(0), currency: self.currency.clone() },
            destination: self.destination.clone(),
            created_at_ms: u64::try_from(self.created_at_ms).unwrap_or(0),
        }
    }
}

/// Moves a processing settlement to what the rail reported, with its
/// ledger entry and event; still processing: checked next as `next` says.
pub fn apply(conn: &Connection, id: &str, outcome: RailOutcome, now_ms: i64, next: Schedule) -> Result<(), StoreError> {
    let row = SettlementRow::load(conn, id)?;
    if row.status != "processing" {
        return Ok(());
    }
    let status = match outcome.status {
        TransactionStatus::Completed | TransactionStatus::Refunded => "paid",
        TransactionStatus::Failed | TransactionStatus::Cancelled => "failed",
        TransactionStatus::Processing => {
            conn.prepare_cached(
                "UPDATE settlements SET provider_reference = COALESCE(?2, provider_reference) WHERE id = ?1",
            )?
            .execute(params![id, outcome.provider_reference])?;
            return crate::payments::schedule_in(conn, "settlements", id, next);
        }
    };
    let failure = outcome.failure.map(|f| (f.code, f.message));
    conn.prepare_cached(
        "UPDATE settlements SET status = ?2, provider_reference = COALESCE(?3, provider_reference),
         failure_code = ?4, failure_message = ?5, completed_at = ?6, next_check_at = NULL
         WHERE id = ?1 AND status = 'processing'",
    )?
    .execute(params![
        id,
        status,
        outcome.provider_reference,
        failure.as_ref().map(|f| &f.0),
        failure.as_ref().map(|f| &f.1),
        now_ms
    ])?;
    let in_transit = row.account(AccountKind::SettlementInTransit, &row.merchant_id);
    let (kind, other) = if status == "paid" {
        ("settlement_paid", row.account(AccountKind::RailClearing, &format!("rail:{}", row.rail)))
    } else {
        ("settlement_return", row.account(AccountKind::MerchantPending, &row.merchant_id))
    };
    let postings = [
        Posting { account: in_transit, amount_minor: row.amount },
        Posting { account: other, amount_minor: -row.amount },
    ];
    ledger::post(conn, row.mode, kind, id, &postings, now_ms)?;
    let object = json_by_id(conn, id)?.ok_or_else(|| StoreError::Invariant(format!("settlement {id} vanished")))?;
    let event = if status == "paid" { "settlement.paid" } else { "settlement.failed" };
    crate::webhooks::emit(conn, &row.merchant_id, row.mode, event, &object, now_ms)?;
    Ok(())
}

/// A settlement whose status check is due.
pub struct DueSettlementCheck {
    pub settlement_id: String,
    pub rail: String,
    pub request: PayoutRequest,
    pub provider_reference: Option<String>,
    pub checks: i64,
    pub created_at_ms: i64,
    pub due_at: i64,
}

pub fn due_checks(conn: &Connection, now_ms: i64, limit: usize) -> Result<Vec<DueSettlementCheck>, StoreError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS}, status_checks, next_check_at FROM settlements
             WHERE status = 'processing' AND next_check_at IS NOT NULL AND next_check_at <= ?1
             ORDER BY next_check_at LIMIT ?2"
        ))?
        .query_map(params![now_ms, i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
            let settlement = SettlementRow::from_row(row)?;
            Ok(DueSettlementCheck {
                request: settlement.request(),
                settlement_id: settlement.id,
                rail: settlement.rail,
                provider_reference: settlement.provider_reference,
                created_at_ms: settlement.created_at_ms,
                checks: row.get(16)?,
                due_at: row.get(17)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

// ---- what merchants see -------------------------------------------------------

fn object_json(row: &Row) -> rusqlite::Result<Value> {
    let failure_code: Option<String> = row.get(13)?;
    let mut object = json!({
        "object": "settlement",
        "id": row.get::<_, String>(0)?,
        "livemode": row.get::<_, String>(2)? == "live",
        "entity": row.get::<_, String>(3)?,
        "currency": row.get::<_, String>(4)?,
        "amount": row.get::<_, i64>(5)?,
        "payout": { "method": row.get::<_, String>(11)?, "destination": row.get::<_, String>(6)? },
        "status": row.get::<_, String>(8)?,
        "provider_reference": row.get::<_, Option<String>>(9)?,
        "cutoff_at": crate::clock::rfc3339(row.get(12)?),
        "created_at": crate::clock::rfc3339(row.get(10)?),
        "completed_at": row.get::<_, Option<i64>>(15)?.map(crate::clock::rfc3339),
    });
    if let Some(code) = failure_code {
        object["failure"] = json!({ "code": code, "message": row.get::<_, Option<String>>(14)? });
    }
    Ok(object)
}

pub fn json_by_id(conn: &Connection, id: &str) -> Result<Option<Value>, StoreError> {
    let found = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM settlements WHERE id = ?1"))?
        .query_row(params![id], object_json)
        .optional()?;
    Ok(found)
}

/// `GET /v1/settlements`: the newest 100 of the caller's mode.
pub fn list_json(conn: &Connection, merchant_id: &str, mode: Mode) -> Result<Value, StoreError> {
    let data = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM settlements WHERE merchant_id = ?1 AND mode = ?2 ORDER BY created_at DESC, id DESC
             LIMIT 100"
        ))?
        .query_map(params![merchant_id, mode.as_str()], object_json)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({ "object": "list", "data": data }))
}

/// `GET /v1/settlements/{id}`: the settlement and its report: every ledger
/// movement of the merchant's pending balance it covered (after the cutoff
/// of the previous settlement that did not fail, up to its own: money a
/// failed payout returned is paid, and listed, by the next one).
pub fn report_json(conn: &Connection, merchant_id: &str, mode: Mode, id: &str) -> Result<Option<Value>, StoreError> {
    let Some(mut object) = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM settlements WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3"))?
        .query_row(params![id, merchant_id, mode.as_str()], object_json)
        .optional()?
    else {
        return Ok(None);
    };
    let row = SettlementRow::load(conn, id)?;
    let cutoff = row.cutoff_ms;
    let previous: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(MAX(cutoff_at), 0) FROM settlements
             WHERE merchant_id = ?1 AND mode = ?2 AND entity = ?3 AND currency = ?4 AND cutoff_at < ?5
               AND status <> 'failed'",
        )?
        .query_row(params![merchant_id, mode.as_str(), row.entity, row.currency, cutoff], |r| r.get(0))?;
    let sql = format!(
        "SELECT e.transaction_id, e.kind, -p.amount, e.created_at
         FROM postings p JOIN ledger_accounts a ON a.id = p.account_id JOIN journal_entries e ON e.id = p.entry_id
         WHERE a.kind = 'merchant_pending' AND a.owner = ?1 AND a.mode = ?2 AND a.entity = ?3 AND a.currency = ?4
           AND e.created_at > ?5 AND e.created_at <= ?6 AND e.kind NOT IN ({kinds})
         ORDER BY e.created_at, e.id",
        kinds = SETTLEMENT_KINDS.map(|k| format!("'{k}'")).join(", ")
    );
    let lines = conn
        .prepare_cached(&sql)?
        .query_map(params![merchant_id, mode.as_str(), row.entity, row.currency, previous, cutoff], |r| {
            Ok(json!({
                "transaction_id": r.get::<_, String>(0)?,
                "type": r.get::<_, String>(1)?,
                "amount": r.get::<_, i64>(2)?,
                "created_at": crate::clock::rfc3339(r.get(3)?),
            }))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    object["lines"] = Value::Array(lines);
    Ok(Some(object))
}

// ---- the daily batch ---------------------------------------------------------------

/// Runs the batch when `[settlement] interval_ms` has passed since the last
/// one (by the clock and the database, so restarts neither skip nor repeat
/// it); not at all when 0. Looks a second after the start, then at least
/// once a minute.
pub struct Worker {
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The longest wait between two looks at whether a batch is due.
const LOOK_EVERY_MS_MAX: u64 = 60_000;
/// The first look, once the gateway has started.
const FIRST_LOOK_MS: u64 = 1_000;

impl Worker {
    pub fn spawn(state: AppState) -> Worker {
        let interval_ms = state.settlement.interval_ms;
        if interval_ms == 0 {
            return Worker { task: None };
        }
        let task = tokio::spawn(async move {
            let look_every = std::time::Duration::from_millis(interval_ms.min(LOOK_EVERY_MS_MAX));
            let interval_ms = i64::try_from(interval_ms).unwrap_or(i64::MAX);
            tokio::time::sleep(std::time::Duration::from_millis(FIRST_LOOK_MS)).await;
            loop {
                let now_ms = crate::clock::now_ms();
                match state.store.read(last_batch_at).await {
                    Ok(last) if last.is_none_or(|at| now_ms.saturating_sub(at) >= interval_ms) => {
                        match run(&state, now_ms).await {
                            Ok(batch) => tracing::info!(
                                settlements = batch["settlements"].as_array().map_or(0, Vec::len),
                                skipped = batch["skipped"].as_array().map_or(0, Vec::len),
                                "settlement batch"
                            ),
                            Err(err) => tracing::error!(error = %err, "settlement batch failed; the next look retries"),
                        }
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "settlement: cannot read the last batch; looking again later")
                    }
                }
                tokio::time::sleep(look_every).await;
            }
        });
        Worker { task: Some(task) }
    }

    /// Stops at once; a batch cut short leaves claimed settlements to the
    /// status checks.
    pub async fn stop(self) {
        if let Some(task) = self.task {
            task.abort();
            let _ = task.await;
        }
    }
}
