//! Transfers: a merchant sends money from its balance to any E.164 phone.
//! A customer already on Soxara is credited at once. Anyone else is sent a
//! one-time code through the mode's messenger while the money waits in
//! claim escrow; proving the number with the code (`POST /v1/claims`) joins
//! them to Soxara with a USD and an LRD wallet and credits every transfer
//! waiting for them. Money not claimed in time, or for a number the
//! messenger can never reach, goes back to the merchant. Wrong codes lock
//! out the key that sent them (for that phone, until a new code is sent),
//! never the money: otherwise anyone could bounce a transfer by guessing.
//!
//! Ledger: the merchant's pending balance held by the wallet entity pays
//! (`transfer`); escrow → wallet (`transfer_claim`); escrow → merchant
//! (`transfer_return`).

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::idempotency::{self, Claim, Reply, Scope, StoredResponse};
use crate::ledger::{self, Account, AccountKind, Posting};
use crate::messaging::{self, Outgoing, SendOutcome};
use crate::mode::Mode;
use crate::money::{CURRENCIES, Currency};
use crate::store::StoreError;
use crate::wallets::WALLET_ENTITY;

/// Digits in a claim code.
const CODE_DIGITS: u32 = 6;
/// The longest wait between two claim messages that did not go out.
const RESEND_DELAY_MS_MAX: i64 = 3_600_000;
/// Claim messages one sweep sends at most.
const RESENDS_PER_SWEEP_MAX: usize = 100;
/// The approved message template for a claim code.
const CLAIM_TEMPLATE: &str = "transfer_claim";
/// Longest transfer description.
const DESCRIPTION_CHARS_MAX: usize = 255;

/// A validated transfer request.
#[derive(Debug)]
pub struct NewTransfer {
    pub phone: String,
    pub amount_minor: u64,
    pub currency: Currency,
    pub description: Option<String>,
    pub canonical: String,
}

pub fn parse(body: &[u8]) -> Result<NewTransfer, ApiError> {
    let fields = crate::validate::Fields::parse(body, &["amount", "currency", "recipient", "description"])?;
    let mut errors = fields.errors();
    let amount = fields.amount(&mut errors);
    let currency = fields.currency("currency", &mut errors);
    let phone = fields.phone_of("recipient", &mut errors, true);
    let description = fields.string("description", DESCRIPTION_CHARS_MAX, false, &mut errors);
    match (amount, currency, phone, errors.is_empty()) {
        (Some(amount_minor), Some(currency), Some(phone), true) => {
            Ok(NewTransfer { phone, amount_minor, currency, description, canonical: fields.canonical() })
        }
        _ => Err(ApiError::Validation(errors)),
    }
}

/// A validated claim: the recipient's phone and the code it was sent.
#[derive(Debug)]
pub struct NewClaim {
    pub phone: String,
    pub code: String,
    pub canonical: String,
}

pub fn parse_claim(body: &[u8]) -> Result<NewClaim, ApiError> {
    let fields = crate::validate::Fields::parse(body, &["phone", "code"])?;
    let mut errors = fields.errors();
    let phone = fields
        .string("phone", 32, true, &mut errors)
        .and_then(|p| crate::phone::parse_e164(&p).map_err(|m| crate::validate::fail(&mut errors, "phone", m)).ok());
    let code = fields.string("code", 32, true, &mut errors);
    let code = code.filter(|c| {
        let well_formed = c.len() == CODE_DIGITS as usize && c.bytes().all(|b| b.is_ascii_digit());
        if !well_formed {
            crate::validate::fail(
                &mut errors,
                "code",
                format!("must be the {CODE_DIGITS}-digit code the recipient was sent"),
            );
        }
        well_formed
    });
    match (phone, code, errors.is_empty()) {
        (Some(phone), Some(code), true) => Ok(NewClaim { phone, code, canonical: fields.canonical() }),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// `POST /v1/transfers`.
pub async fn create(state: &AppState, caller: &Caller, key: String, request: NewTransfer) -> Result<Reply, ApiError> {
    let mode = caller.mode;
    let messenger = state.messengers.for_mode(mode).map(|m| m.plugin_name().to_string());
    let scope = Scope { merchant_id: caller.merchant_id.clone(), mode, key };
    let fingerprint = idempotency::fingerprint("POST /v1/transfers", &request.canonical);
    let id = crate::ids::new_id("trf");
    let merchant = caller.merchant_id.clone();
    let claim_ttl_ms = i64::try_from(state.transfers.claim_ttl_ms).unwrap_or(i64::MAX);
    let transfer_id = id.clone();
    let (reply, needs_code) = state
        .store
        .write(move |conn| {
            let now_ms = crate::clock::now_ms();
            match idempotency::claim(conn, &scope, &fingerprint, &id, now_ms)? {
                Claim::New => {}
                claimed => return Ok((idempotency::answer_used_key(claimed).map_err(StoreError::rejected)?, false)),
            }
            let amount = i64::try_from(request.amount_minor).expect("amounts are validated to fit in i64");
            let currency = request.currency.code;
            let source = merchant_balance(mode, &merchant, currency);
            let available = ledger::balance(conn, &source)?
                .checked_neg()
                .ok_or_else(|| StoreError::Invariant(format!("balance of {merchant} overflows")))?;
            if available < amount {
                return Err(StoreError::rejected(ApiError::TransferBalanceInsufficient {
                    currency: currency.to_string(),
                    available,
                    needed: request.amount_minor,
                }));
            }
            let registered = is_registered(conn, mode, &request.phone)?;
            if !registered && messenger.is_none() {
                return Err(StoreError::rejected(ApiError::MessagingUnavailable { mode: mode.as_str() }));
            }
            let (status, destination, expires_at) = if registered {
                ("completed", crate::wallets::wallet_account(mode, &request.phone, currency), None)
            } else {
                let expires_at = now_ms.saturating_add(claim_ttl_ms);
                ("pending_claim", escrow_account(mode, &request.phone, currency), Some(expires_at))
            };
            conn.prepare_cached(
                "INSERT INTO transfers (id, merchant_id, mode, recipient_phone, amount, currency, description, status,
                                        claim_expires_at, created_at, completed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                id,
                merchant,
                mode.as_str(),
                request.phone,
                amount,
                currency,
                request.description,
                status,
                expires_at,
                now_ms,
                registered.then_some(now_ms)
            ])?;
            let postings = [
                Posting { account: source, amount_minor: amount },
                Posting { account: destination, amount_minor: -amount },
            ];
            ledger::post(conn, mode, "transfer", &id, &postings, now_ms)?;
            crate::wallets::record_customer_transaction(
                conn,
                &id,
                &merchant,
                mode,
                &request.phone,
                "transfer",
                now_ms,
            )?;
            let object = json_by_id(conn, &id)?.ok_or_else(|| StoreError::Invariant(format!("{id} vanished")))?;
            if registered {
                crate::webhooks::emit(conn, &merchant, mode, "transfer.completed", &object, now_ms)?;
            }
            let stored = StoredResponse { status: 201, body: object.to_string() };
            idempotency::record_response(conn, &id, &stored)?;
            Ok((Reply::new(stored), !registered))
        })
        .await?;
    if needs_code {
        let state = state.clone();
        tokio::spawn(async move { send_claim_code(&state, &transfer_id).await });
    }
    Ok(reply)
}

/// Sends a transfer's recipient a fresh claim code (replacing any earlier
/// one), and returns the transfer if the messenger says the number cannot
/// be reached. Errors are logged: the sweep tries again.
pub async fn send_claim_code(state: &AppState, transfer_id: &str) {
    if let Err(err) = try_send_claim_code(state, transfer_id).await {
        tracing::warn!(transfer = transfer_id, error = %err, "claim code not sent; the sweep retries");
    }
}

async fn try_send_claim_code(state: &AppState, transfer_id: &str) -> Result<(), ApiError> {
    let id = transfer_id.to_string();
    let mode = state
        .store
        .read(move |conn| {
            let mode: Option<String> = conn
                .prepare_cached("SELECT mode FROM transfers WHERE id = ?1")?
                .query_row(params![id], |r| r.get(0))
                .optional()?;
            Ok(mode.as_deref().and_then(Mode::parse))
        })
        .await?;
    let Some(messenger) = mode.and_then(|mode| state.messengers.for_mode(mode).cloned()) else {
        return Ok(());
    };
    let id = transfer_id.to_string();
    let messenger_name = messenger.plugin_name().to_string();
    let outgoing = state
        .store
        .write(move |conn| {
            let now_ms = crate::clock::now_ms();
            let Some(transfer) = Pending::load(conn, &id)? else { return Ok(None) };
            let code =
                format!("{:0width$}", rand::random_range(0..10u32.pow(CODE_DIGITS)), width = CODE_DIGITS as usize);
            conn.prepare_cached("UPDATE transfers SET code_hash = ?2 WHERE id = ?1")?
                .execute(params![id, code_hash(&id, &code)])?;
            forget_claim_failures(conn, transfer.mode, &transfer.phone)?;
            let outgoing = claim_message(&transfer, &code)?;
            messaging::record(conn, &outgoing, &messenger_name, now_ms)?;
            Ok(Some(outgoing))
        })
        .await?;
    let Some(outgoing) = outgoing else { return Ok(()) };
    match messaging::deliver(state, messenger, outgoing).await? {
        SendOutcome::Sent => Ok(()),
        SendOutcome::Failed(why) => {
            tracing::warn!(transfer = transfer_id, why, "claim message not delivered; the sweep sends a new code");
            Ok(())
        }
        SendOutcome::Refused(failure) => {
            tracing::info!(transfer = transfer_id, code = failure.code, "recipient unreachable; transfer returned");
            let id = transfer_id.to_string();
            state.store.write(move |conn| give_up_on_recipient(conn, &id, crate::clock::now_ms())).await?;
            Ok(())
        }
    }
}

/// The words a recipient reads: only ever "Soxara", never the entity that
/// holds the money or the merchant's legal name.
fn claim_message(transfer: &Pending, code: &str) -> Result<Outgoing, StoreError> {
    let currency = Currency::from_code(&transfer.currency).map_err(StoreError::Invariant)?;
    let amount = u64::try_from(transfer.amount).map_err(|_| StoreError::Invariant("negative transfer".into()))?;
    let amount = crate::money::display_amount(amount, currency);
    let expires = crate::clock::format_for_people(transfer.claim_expires_at);
    let text = format!(
        "Soxara: you have received {amount}. Your claim code is {code}. Reply with it in this chat before \
         {expires} to claim the money into your Soxara wallet; after that it goes back to the sender. \
         Never share this code: Soxara will never ask you for it."
    );
    Ok(Outgoing {
        id: crate::ids::new_id("msg"),
        merchant_id: transfer.merchant_id.clone(),
        mode: transfer.mode,
        transfer_id: transfer.id.clone(),
        to: transfer.phone.clone(),
        template: CLAIM_TEMPLATE.to_string(),
        parameters: vec![amount, code.to_string(), expires],
        text,
    })
}

/// `POST /v1/claims`: the recipient proves their number with a code it was
/// sent. Joins them to Soxara and credits every transfer waiting for them.
/// A wrong code counts against the calling key for that phone.
pub async fn claim(state: &AppState, caller: &Caller, key: String, request: NewClaim) -> Result<Reply, ApiError> {
    let mode = caller.mode;
    let scope = Scope { merchant_id: caller.merchant_id.clone(), mode, key };
    let fingerprint = idempotency::fingerprint("POST /v1/claims", &request.canonical);
    let id = crate::ids::new_id("clm");
    let attempts_max = i64::from(state.transfers.code_attempts_max);
    let key_id = caller.key_id.clone();
    let reply = state
        .store
        .write(move |conn| {
            let now_ms = crate::clock::now_ms();
            match idempotency::claim(conn, &scope, &fingerprint, &id, now_ms)? {
                Claim::New => {}
                claimed => return idempotency::answer_used_key(claimed).map_err(StoreError::rejected),
            }
            let waiting = Pending::for_phone(conn, mode, &request.phone, now_ms)?;
            let failures = claim_failures(conn, mode, &request.phone, &key_id)?;
            let (status, body) = if waiting.is_empty() {
                let error = ApiError::ClaimNotFound;
                (error.status().as_u16(), error.body())
            } else if failures >= attempts_max {
                let error = ApiError::ClaimAttemptsExceeded { max: attempts_max };
                (error.status().as_u16(), error.body())
            } else if waiting.iter().any(|t| t.code_hash.as_deref() == Some(&code_hash(&t.id, &request.code))) {
                forget_claim_failures(conn, mode, &request.phone)?;
                (200, onboard_and_credit(conn, mode, &request.phone, &waiting, &id, now_ms)?)
            } else {
                conn.prepare_cached(
                    "INSERT INTO claim_attempts (mode, phone, key_id, failures, last_at) VALUES (?1, ?2, ?3, 1, ?4)
                     ON CONFLICT (mode, phone, key_id) DO UPDATE SET failures = failures + 1, last_at = ?4",
                )?
                .execute(params![mode.as_str(), request.phone, key_id, now_ms])?;
                let error = ApiError::ClaimCodeInvalid { attempts_left: attempts_max - failures - 1 };
                (error.status().as_u16(), error.body())
            };
            // Refusals are answers too: stored, so that a replay is not
            // another attempt.
            let stored = StoredResponse { status, body: body.to_string() };
            idempotency::record_response(conn, &id, &stored)?;
            Ok(Reply::new(stored))
        })
        .await?;
    Ok(reply)
}

/// Wrong codes `key_id` sent for `phone` since its newest code.
fn claim_failures(conn: &Connection, mode: Mode, phone: &str, key_id: &str) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT failures FROM claim_attempts WHERE mode = ?1 AND phone = ?2 AND key_id = ?3")?
        .query_row(params![mode.as_str(), phone, key_id], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// A new code (or a claim) makes earlier guesses worthless: every key may
/// try again.
fn forget_claim_failures(conn: &Connection, mode: Mode, phone: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM claim_attempts WHERE mode = ?1 AND phone = ?2")?
        .execute(params![mode.as_str(), phone])?;
    Ok(())
}

/// Registers the phone (with a USD and an LRD wallet) if it is new, and
/// moves every waiting transfer from escrow into its wallets.
fn onboard_and_credit(
    conn: &Connection,
    mode: Mode,
    phone: &str,
    waiting: &[Pending],
    claim_id: &str,
    now_ms: i64,
) -> Result<Value, StoreError> {
    conn.prepare_cached(
        "INSERT INTO customers (mode, phone, joined_by, registered_at) VALUES (?1, ?2, 'transfer_claim', ?3)
         ON CONFLICT (mode, phone) DO NOTHING",
    )?
    .execute(params![mode.as_str(), phone, now_ms])?;
    for currency in CURRENCIES {
        ledger::open_account(conn, &crate::wallets::wallet_account(mode, phone, currency.code))?;
    }
    let mut credited = Vec::new();
    for transfer in waiting {
        let postings = [
            Posting { account: escrow_account(mode, phone, &transfer.currency), amount_minor: transfer.amount },
            Posting {
                account: crate::wallets::wallet_account(mode, phone, &transfer.currency),
                amount_minor: -transfer.amount,
            },
        ];
        ledger::post(conn, mode, "transfer_claim", &transfer.id, &postings, now_ms)?;
        conn.prepare_cached(
            "UPDATE transfers SET status = 'completed', completed_at = ?2, code_hash = NULL WHERE id = ?1",
        )?
        .execute(params![transfer.id, now_ms])?;
        let object =
            json_by_id(conn, &transfer.id)?.ok_or_else(|| StoreError::Invariant("transfer vanished".into()))?;
        crate::webhooks::emit(conn, &transfer.merchant_id, mode, "transfer.completed", &object, now_ms)?;
        credited.push(json!({ "id": transfer.id, "amount": transfer.amount, "currency": transfer.currency }));
    }
    let (joined_by, registered_at): (String, i64) = conn
        .prepare_cached("SELECT joined_by, registered_at FROM customers WHERE mode = ?1 AND phone = ?2")?
        .query_row(params![mode.as_str(), phone], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let wallets = CURRENCIES
        .iter()
        .map(|c| {
            let balance = crate::wallets::balance_minor(conn, mode, phone, c.code)?;
            Ok(json!({ "currency": c.code, "balance": balance }))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(json!({
        "object": "claim",
        "id": claim_id,
        "customer": { "phone": phone, "joined_by": joined_by, "registered_at": crate::clock::rfc3339(registered_at) },
        "transfers": credited,
        "wallets": wallets,
        "livemode": mode == Mode::Live,
    }))
}

/// The messenger can never reach the recipient: a transfer still waiting
/// goes back to its merchant.
pub fn give_up_on_recipient(conn: &Connection, transfer_id: &str, now_ms: i64) -> Result<(), StoreError> {
    match Pending::load(conn, transfer_id)? {
        Some(transfer) => return_transfer(conn, &transfer, "recipient_unreachable", now_ms),
        None => Ok(()),
    }
}

/// Sends a pending transfer's money back to its merchant.
fn return_transfer(conn: &Connection, transfer: &Pending, reason: &str, now_ms: i64) -> Result<(), StoreError> {
    let postings = [
        Posting {
            account: escrow_account(transfer.mode, &transfer.phone, &transfer.currency),
            amount_minor: transfer.amount,
        },
        Posting {
            account: merchant_balance(transfer.mode, &transfer.merchant_id, &transfer.currency),
            amount_minor: -transfer.amount,
        },
    ];
    ledger::post(conn, transfer.mode, "transfer_return", &transfer.id, &postings, now_ms)?;
    conn.prepare_cached(
        "UPDATE transfers SET status = 'returned', return_reason = ?2, returned_at = ?3, code_hash = NULL
         WHERE id = ?1",
    )?
    .execute(params![transfer.id, reason, now_ms])?;
    let object = json_by_id(conn, &transfer.id)?.ok_or_else(|| StoreError::Invariant("transfer vanished".into()))?;
    crate::webhooks::emit(conn, &transfer.merchant_id, transfer.mode, "transfer.returned", &object, now_ms)?;
    Ok(())
}

/// A transfer waiting for its recipient.
struct Pending {
    id: String,
    merchant_id: String,
    mode: Mode,
    phone: String,
    amount: i64,
    currency: String,
    code_hash: Option<String>,
    claim_expires_at: i64,
}

const PENDING_COLUMNS: &str = "id, merchant_id, mode, recipient_phone, amount, currency, code_hash, claim_expires_at";

impl Pending {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Pending> {
        let mode: String = row.get(2)?;
        let mode = Mode::parse(&mode).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, format!("mode {mode:?}").into())
        })?;
        Ok(Pending {
            id: row.get(0)?,
            merchant_id: row.get(1)?,
            mode,
            phone: row.get(3)?,
            amount: row.get(4)?,
            currency: row.get(5)?,
            code_hash: row.get(6)?,
            claim_expires_at: row.get(7)?,
        })
    }

    fn load(conn: &Connection, id: &str) -> Result<Option<Pending>, StoreError> {
        Ok(conn
            .prepare_cached(&format!(
                "SELECT {PENDING_COLUMNS} FROM transfers WHERE id = ?1 AND status = 'pending_claim'"
            ))?
            .query_row(params![id], Pending::from_row)
            .optional()?)
    }

    /// Transfers to `phone` that can still be claimed, oldest first.
    fn for_phone(conn: &Connection, mode: Mode, phone: &str, now_ms: i64) -> Result<Vec<Pending>, StoreError> {
        let mut statement = conn.prepare_cached(&format!(
            "SELECT {PENDING_COLUMNS} FROM transfers
             WHERE mode = ?1 AND recipient_phone = ?2 AND status = 'pending_claim' AND claim_expires_at > ?3
             ORDER BY created_at, id"
        ))?;
        let rows = statement.query_map(params![mode.as_str(), phone, now_ms], Pending::from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

/// What the sweep found to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub returned: usize,
    pub resent: usize,
}

/// Returns transfers whose claim time ran out, and sends a new code where
/// the last message did not go out (a crash, a messenger outage): after
/// `resend_after_ms`, doubling with each failed message up to an hour, until
/// the claim period ends.
pub async fn sweep(state: &AppState, now_ms: i64) -> Result<Swept, ApiError> {
    let returned = state
        .store
        .write(move |conn| {
            let expired = {
                let mut statement = conn.prepare_cached(&format!(
                    "SELECT {PENDING_COLUMNS} FROM transfers
                     WHERE status = 'pending_claim' AND claim_expires_at <= ?1 ORDER BY claim_expires_at LIMIT 500"
                ))?;
                let rows = statement.query_map(params![now_ms], Pending::from_row)?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            for transfer in &expired {
                return_transfer(conn, transfer, "expired", now_ms)?;
            }
            Ok(expired.len())
        })
        .await?;
    let resend_after_ms = i64::try_from(state.transfers.resend_after_ms).unwrap_or(i64::MAX);
    let unsent: Vec<String> = state
        .store
        .read(move |conn| {
            // Each pending transfer's messages: how many, and the newest one.
            let mut statement = conn.prepare_cached(
                "SELECT t.id, t.created_at,
                        (SELECT COUNT(*) FROM messages m WHERE m.transfer_id = t.id),
                        (SELECT m.status FROM messages m WHERE m.transfer_id = t.id
                         ORDER BY m.created_at DESC, m.rowid DESC LIMIT 1),
                        (SELECT m.updated_at FROM messages m WHERE m.transfer_id = t.id
                         ORDER BY m.created_at DESC, m.rowid DESC LIMIT 1)
                 FROM transfers t WHERE t.status = 'pending_claim'",
            )?;
            let rows = statement.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            })?;
            let mut due = Vec::new();
            for row in rows {
                let (id, created_at, sends, last_status, last_at) = row?;
                let due_at = match (last_status.as_deref(), last_at) {
                    (Some("sent" | "delivered"), _) => continue,
                    (Some(_), Some(at)) => at.saturating_add(resend_delay_ms(resend_after_ms, sends)),
                    _ => created_at.saturating_add(resend_after_ms),
                };
                if due_at <= now_ms && due.len() < RESENDS_PER_SWEEP_MAX {
                    due.push(id);
                }
            }
            Ok(due)
        })
        .await?;
    for id in &unsent {
        send_claim_code(state, id).await;
    }
    Ok(Swept { returned, resent: unsent.len() })
}

/// How long after the newest of `sends` failed messages the next goes out.
fn resend_delay_ms(resend_after_ms: i64, sends: i64) -> i64 {
    let doublings = u32::try_from(sends.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    resend_after_ms.saturating_mul(1 << doublings).min(RESEND_DELAY_MS_MAX.max(resend_after_ms))
}

/// Runs the sweep every `SWEEP_EVERY_MS`.
pub struct Worker {
    task: tokio::task::JoinHandle<()>,
}

const SWEEP_EVERY_MS: u64 = 1_000;

impl Worker {
    pub fn spawn(state: AppState) -> Worker {
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(SWEEP_EVERY_MS)).await;
                match sweep(&state, crate::clock::now_ms()).await {
                    Ok(swept) if swept != Swept::default() => {
                        tracing::info!(returned = swept.returned, resent = swept.resent, "transfer sweep")
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "transfer sweep failed; the next one retries"),
                }
            }
        });
        Worker { task }
    }

    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// `GET /v1/transfers`: newest first, `limit` (1–100, default 10) a page
/// after `starting_after` (the last id of the previous page), optionally
/// only one `status`.
pub async fn list(state: &AppState, caller: &Caller, query: &[(String, String)]) -> Result<Value, ApiError> {
    let mut errors = Vec::new();
    let (mut limit, mut starting_after, mut status) = (crate::validate::PAGE_LIMIT_DEFAULT, None, None);
    for (name, value) in query {
        match name.as_str() {
            "limit" => limit = crate::validate::page_limit(value, &mut errors).unwrap_or(limit),
            "starting_after" => starting_after = Some(value.clone()),
            "status" if ["pending_claim", "completed", "returned"].contains(&value.as_str()) => {
                status = Some(value.clone())
            }
            "status" => crate::validate::fail(&mut errors, "status", "must be pending_claim, completed or returned"),
            other => crate::validate::fail(
                &mut errors,
                other,
                "is not a known parameter; expected limit, starting_after, status",
            ),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let (merchant, mode) = (caller.merchant_id.clone(), caller.mode);
    let page = state
        .store
        .read(move |conn| {
            let cursor: Option<i64> = match &starting_after {
                None => None,
                Some(id) => Some(
                    conn.prepare_cached(
                        "SELECT rowid FROM transfers WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3",
                    )?
                    .query_row(params![id, merchant, mode.as_str()], |r| r.get(0))
                    .optional()?
                    .ok_or_else(|| {
                        StoreError::rejected(ApiError::invalid(
                            "starting_after",
                            "is not one of your transfers; use the id of the last item of the previous page",
                        ))
                    })?,
                ),
            };
            let mut statement = conn.prepare_cached(
                "SELECT id FROM transfers
                 WHERE merchant_id = ?1 AND mode = ?2 AND rowid < ?3 AND (?4 IS NULL OR status = ?4)
                 ORDER BY rowid DESC LIMIT ?5",
            )?;
            let ids: Vec<String> = statement
                .query_map(
                    params![merchant, mode.as_str(), cursor.unwrap_or(i64::MAX), status, limit as i64 + 1],
                    |r| r.get(0),
                )?
                .collect::<Result<_, _>>()?;
            let has_more = ids.len() > limit;
            let mut data = Vec::with_capacity(limit);
            for id in ids.iter().take(limit) {
                data.push(json_by_id(conn, id)?.ok_or_else(|| StoreError::Invariant(format!("{id} vanished")))?);
            }
            Ok(json!({ "object": "list", "data": data, "has_more": has_more }))
        })
        .await?;
    Ok(page)
}

/// `GET /v1/transfers/{id}`: only this merchant's and mode's.
pub async fn get(state: &AppState, caller: &Caller, id: String) -> Result<Value, ApiError> {
    let (merchant, mode) = (caller.merchant_id.clone(), caller.mode);
    state
        .store
        .read(move |conn| crate::history::transaction_json(conn, &merchant, mode, &id))
        .await?
        .filter(|object| object["object"] == "transfer")
        .ok_or(ApiError::NotFound { what: "transfer" })
}

/// The transfer object merchants see.
pub fn json_by_id(conn: &Connection, id: &str) -> Result<Option<Value>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT mode, recipient_phone, amount, currency, description, status, return_reason, claim_expires_at,
                    created_at, completed_at, returned_at,
                    EXISTS (SELECT 1 FROM customers c WHERE c.mode = t.mode AND c.phone = t.recipient_phone)
             FROM transfers t WHERE id = ?1",
        )?
        .query_row(params![id], |row| {
            let time = |at: Option<i64>| at.map(crate::clock::rfc3339);
            let status: String = row.get(5)?;
            let claim = match row.get::<_, Option<i64>>(7)? {
                Some(expires_at) => json!({ "expires_at": crate::clock::rfc3339(expires_at) }),
                None => Value::Null,
            };
            Ok(json!({
                "object": "transfer",
                "id": id,
                "type": "transfer",
                "status": status,
                "amount": row.get::<_, i64>(2)?,
                "currency": row.get::<_, String>(3)?,
                "recipient": { "phone": row.get::<_, String>(1)?, "registered": row.get::<_, bool>(11)? },
                "description": row.get::<_, Option<String>>(4)?,
                "claim": claim,
                "return_reason": row.get::<_, Option<String>>(6)?,
                "entity": WALLET_ENTITY,
                "livemode": row.get::<_, String>(0)? == "live",
                "created_at": crate::clock::rfc3339(row.get(8)?),
                "completed_at": time(row.get(9)?),
                "returned_at": time(row.get(10)?),
            }))
        })
        .optional()?)
}

/// Whether a phone is on Soxara in `mode`.
pub fn is_registered(conn: &Connection, mode: Mode, phone: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM customers WHERE mode = ?1 AND phone = ?2")?
        .query_row(params![mode.as_str(), phone], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Registers a phone that got a wallet another way (a sandbox top-up).
pub fn register_by_wallet(conn: &Connection, mode: Mode, phone: &str, now_ms: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO customers (mode, phone, joined_by, registered_at) VALUES (?1, ?2, 'wallet', ?3)
         ON CONFLICT (mode, phone) DO NOTHING",
    )?
    .execute(params![mode.as_str(), phone, now_ms])?;
    Ok(())
}

/// Where a merchant's transfers are paid from: its pending balance held by
/// the wallet entity (money collected by mobile money and wallet payments).
fn merchant_balance(mode: Mode, merchant_id: &str, currency: &str) -> Account {
    Account {
        mode,
        entity: WALLET_ENTITY.to_string(),
        owner: merchant_id.to_string(),
        kind: AccountKind::MerchantPending,
        currency: currency.to_string(),
    }
}

fn escrow_account(mode: Mode, phone: &str, currency: &str) -> Account {
    Account {
        mode,
        entity: WALLET_ENTITY.to_string(),
        owner: phone.to_string(),
        kind: AccountKind::ClaimEscrow,
        currency: currency.to_string(),
    }
}

/// SHA-256 of "transfer id:code": a code only claims its own transfer's
/// hash, and the code itself is never stored.
fn code_hash(transfer_id: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{transfer_id}:{code}").as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resends_back_off_to_an_hour() {
        assert_eq!(resend_delay_ms(60_000, 1), 60_000);
        assert_eq!(resend_delay_ms(60_000, 3), 240_000);
        assert_eq!(resend_delay_ms(60_000, 50), RESEND_DELAY_MS_MAX);
        assert_eq!(resend_delay_ms(7_200_000, 2), 7_200_000, "never below the configured delay");
    }

    #[test]
    fn a_code_hash_binds_the_code_to_its_transfer() {
        assert_ne!(code_hash("trf_a", "123456"), code_hash("trf_b", "123456"));
        assert_eq!(code_hash("trf_a", "123456").len(), 64);
    }
}
