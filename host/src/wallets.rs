//! Wallets: one per customer (E.164 phone), mode and currency — a USD wallet
//! and an LRD wallet, never one wallet with two currencies. A wallet is a
//! ledger account; its balance is always derived from postings. This module
//! also owns sandbox top-ups.

use rusqlite::{Connection, params};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::idempotency::{self, Claim, Reply, Scope, StoredResponse};
use crate::ledger::{self, Account, AccountKind, PLATFORM_OWNER, Posting};
use crate::mode::Mode;
use crate::money::{CURRENCIES, Currency};
use crate::store::StoreError;

/// The entity that holds customer wallets (the Liberian operator).
pub const WALLET_ENTITY: &str = "Phoenix Hub Liberia, Inc.";

/// A customer's wallet account in one currency.
pub fn wallet_account(mode: Mode, phone: &str, currency: &str) -> Account {
    customer_account(mode, phone, currency, AccountKind::CustomerWallet)
}

/// Where a customer's money waits while a wallet payment is processing.
pub fn hold_account(mode: Mode, phone: &str, currency: &str) -> Account {
    customer_account(mode, phone, currency, AccountKind::WalletHold)
}

fn customer_account(mode: Mode, phone: &str, currency: &str, kind: AccountKind) -> Account {
    Account { mode, entity: WALLET_ENTITY.to_string(), owner: phone.to_string(), kind, currency: currency.to_string() }
}

/// What the customer can spend: minus the sum of the wallet's postings (a
/// wallet is money the platform owes the customer).
pub fn balance_minor(conn: &Connection, mode: Mode, phone: &str, currency: &str) -> Result<i64, StoreError> {
    let sum = ledger::balance(conn, &wallet_account(mode, phone, currency))?;
    sum.checked_neg().ok_or_else(|| StoreError::Invariant(format!("wallet of {phone} in {currency} overflows")))
}

/// Refuses, inside a write, when the wallet holds less than `needed`.
pub fn require_funds(
    conn: &Connection,
    mode: Mode,
    phone: &str,
    currency: &str,
    needed: u64,
) -> Result<(), StoreError> {
    let available = balance_minor(conn, mode, phone, currency)?;
    if u64::try_from(available).is_ok_and(|a| a >= needed) {
        Ok(())
    } else {
        Err(StoreError::rejected(ApiError::InsufficientFunds { currency: currency.to_string(), available, needed }))
    }
}

/// `GET /v1/customers/{phone}/wallets`: one wallet per enabled currency.
pub async fn list(state: &AppState, caller: &Caller, phone: String) -> Result<Value, ApiError> {
    let phone = crate::phone::parse_e164(&phone).map_err(|m| ApiError::invalid("phone", m))?;
    let mode = caller.mode;
    let wallets = state
        .store
        .read(move |conn| {
            CURRENCIES
                .iter()
                .map(|c| {
                    let balance = balance_minor(conn, mode, &phone, c.code)?;
                    Ok(json!({
                        "object": "wallet",
                        "customer": { "phone": phone },
                        "currency": c.code,
                        "balance": balance,
                        "livemode": mode == Mode::Live,
                    }))
                })
                .collect::<Result<Vec<Value>, StoreError>>()
        })
        .await?;
    Ok(json!({ "object": "list", "data": wallets, "has_more": false }))
}

/// A validated top-up request.
#[derive(Debug)]
pub struct NewTopUp {
    pub phone: String,
    pub amount_minor: u64,
    pub currency: Currency,
    pub canonical: String,
}

pub fn parse_top_up(body: &[u8]) -> Result<NewTopUp, ApiError> {
    let fields = crate::validate::Fields::parse(body, &["amount", "currency", "customer"])?;
    let mut errors = fields.errors();
    let amount = fields.amount(&mut errors);
    let currency = fields.currency("currency", &mut errors);
    let phone = fields.customer_phone(&mut errors, true);
    match (amount, currency, phone, errors.is_empty()) {
        (Some(amount_minor), Some(currency), Some(phone), true) => {
            Ok(NewTopUp { phone, amount_minor, currency, canonical: fields.canonical() })
        }
        _ => Err(ApiError::Validation(errors)),
    }
}

/// `POST /v1/wallets/top-ups`: adds sandbox money to a test wallet.
pub async fn top_up(state: &AppState, caller: &Caller, key: String, request: NewTopUp) -> Result<Reply, ApiError> {
    if caller.mode != Mode::Test {
        return Err(ApiError::TestModeOnly);
    }
    let scope = Scope { merchant_id: caller.merchant_id.clone(), mode: caller.mode, key };
    let fingerprint = idempotency::fingerprint("POST /v1/wallets/top-ups", &request.canonical);
    let id = crate::ids::new_id("tup");
    let merchant = caller.merchant_id.clone();
    let reply = state
        .store
        .write(move |conn| {
            let now_ms = crate::clock::now_ms();
            match idempotency::claim(conn, &scope, &fingerprint, &id, now_ms)? {
                Claim::New => {}
                Claim::Replay(stored) => return Ok(Reply::replayed(stored)),
                Claim::InFlight => return Err(StoreError::rejected(ApiError::IdempotencyInProgress)),
                Claim::Mismatch => return Err(StoreError::rejected(ApiError::IdempotencyKeyReused)),
            }
            let amount = i64::try_from(request.amount_minor).expect("amounts are validated to fit in i64");
            let currency = request.currency.code;
            conn.prepare_cached(
                "INSERT INTO top_ups (id, merchant_id, mode, customer_phone, amount, currency, created_at)
                 VALUES (?1, ?2, 'test', ?3, ?4, ?5, ?6)",
            )?
            .execute(params![id, merchant, request.phone, amount, currency, now_ms])?;
            record_customer_transaction(conn, &id, &merchant, Mode::Test, &request.phone, "top_up", now_ms)?;
            crate::transfers::register_by_wallet(conn, Mode::Test, &request.phone, now_ms)?;
            let funding = Account {
                mode: Mode::Test,
                entity: WALLET_ENTITY.to_string(),
                owner: PLATFORM_OWNER.to_string(),
                kind: AccountKind::SandboxFunding,
                currency: currency.to_string(),
            };
            let postings = [
                Posting { account: funding, amount_minor: amount },
                Posting { account: wallet_account(Mode::Test, &request.phone, currency), amount_minor: -amount },
            ];
            ledger::post(conn, Mode::Test, "top_up", &id, &postings, now_ms)?;
            let body = top_up_json(conn, &id)?.to_string();
            let stored = StoredResponse { status: 201, body };
            idempotency::record_response(conn, &id, &stored)?;
            Ok(Reply::new(stored))
        })
        .await?;
    Ok(reply)
}

/// Indexes a transaction under its customer, for history pages.
pub fn record_customer_transaction(
    conn: &Connection,
    id: &str,
    merchant_id: &str,
    mode: Mode,
    phone: &str,
    kind: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO customer_transactions (id, merchant_id, mode, customer_phone, type, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![id, merchant_id, mode.as_str(), phone, kind, now_ms])?;
    Ok(())
}

/// The top-up object.
pub fn top_up_json(conn: &Connection, id: &str) -> Result<Value, StoreError> {
    let value = conn
        .prepare_cached("SELECT customer_phone, amount, currency, created_at FROM top_ups WHERE id = ?1")?
        .query_row(params![id], |row| {
            Ok(json!({
                "object": "top_up",
                "id": id,
                "type": "top_up",
                "status": "completed",
                "customer": { "phone": row.get::<_, String>(0)? },
                "amount": row.get::<_, i64>(1)?,
                "currency": row.get::<_, String>(2)?,
                "livemode": false,
                "created_at": crate::clock::rfc3339(row.get(3)?),
            }))
        })?;
    Ok(value)
}
