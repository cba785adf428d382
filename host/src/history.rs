//! Transactions as merchants look them up: one by key, reference or id, a
//! customer's history with one merchant (payments, refunds, top-ups and
//! swaps, newest first, in cursor pages: `limit`, `starting_after`,
//! `has_more`), and verification of a payment a customer says they made.

use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::mode::Mode;
use crate::store::StoreError;
use crate::validate::fail;

/// The longest reference `POST /v1/transactions/verify` looks up.
pub const REFERENCE_CHARS_MAX: usize = 255;

/// `GET /v1/transactions/{idempotency key, reference or id}`: any
/// transaction (payment, refund, top-up, swap) of the caller's merchant and mode.
pub async fn find(state: &AppState, caller: &Caller, lookup: String) -> Result<Value, ApiError> {
    lookup_object(state, caller, lookup).await?.ok_or(ApiError::NotFound { what: "transaction" })
}

/// `POST /v1/transactions/verify`: whether the transaction `reference`
/// (a reference, id or idempotency key of the caller's) completed for
/// exactly `amount` of `currency`. Gate fulfilment on `verified: true`;
/// otherwise `reason` says which check failed first.
pub async fn verify(state: &AppState, caller: &Caller, body: &[u8]) -> Result<Value, ApiError> {
    let fields = crate::validate::Fields::parse(body, &["reference", "amount", "currency"])?;
    let mut errors = fields.errors();
    let reference = fields.string("reference", REFERENCE_CHARS_MAX, true, &mut errors);
    let amount = fields.amount(&mut errors);
    let currency = fields.currency("currency", &mut errors);
    let (Some(reference), Some(amount), Some(currency), true) = (reference, amount, currency, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    // Only payments prove that a customer paid: a refund or a top-up with
    // the same fields must not pass.
    let object = lookup_object(state, caller, reference).await?.filter(|o| o["object"] == "payment");
    let reason = match &object {
        None => Some("not_found"),
        Some(found) if found["status"] != "completed" => Some("not_completed"),
        Some(found) if found["currency"] != currency.code => Some("currency_mismatch"),
        Some(found) if found["amount"].as_u64() != Some(amount) => Some("amount_mismatch"),
        Some(_) => None,
    };
    Ok(json!({ "verified": reason.is_none(), "reason": reason, "transaction": object }))
}

/// The transaction an idempotency key, reference or id names, if the
/// caller's merchant and mode own it.
async fn lookup_object(state: &AppState, caller: &Caller, lookup: String) -> Result<Option<Value>, ApiError> {
    let (merchant, mode) = (caller.merchant_id.clone(), caller.mode);
    let object = state
        .store
        .read(move |conn| {
            let by_reference = || -> Result<Option<String>, StoreError> {
                Ok(conn
                    .prepare_cached("SELECT id FROM payments WHERE merchant_id = ?1 AND mode = ?2 AND reference = ?3")?
                    .query_row(params![merchant, mode.as_str(), lookup], |r| r.get(0))
                    .optional()?)
            };
            let id = match crate::idempotency::transaction_for_key(conn, &merchant, mode, &lookup)? {
                Some(id) => id,
                None => by_reference()?.unwrap_or_else(|| lookup.clone()),
            };
            transaction_json(conn, &merchant, mode, &id)
        })
        .await?;
    Ok(object)
}

/// Renders one kind of transaction by id.
type Render = fn(&rusqlite::Connection, &str) -> Result<Option<Value>, StoreError>;

/// A transaction of this merchant and mode, as its own object; None if it
/// does not exist or belongs to someone else.
pub fn transaction_json(
    conn: &rusqlite::Connection,
    merchant: &str,
    mode: Mode,
    id: &str,
) -> Result<Option<Value>, StoreError> {
    let (table, render): (&str, Render) = match id.split('_').next() {
        Some("pay") => ("payments", crate::payments::json_by_id),
        Some("tup") => ("top_ups", |c, id| crate::wallets::top_up_json(c, id).map(Some)),
        Some("swap") => ("fx_swaps", crate::fx::swap_json),
        Some("ref") => ("refunds", crate::refunds::json_by_id),
        Some("trf") => ("transfers", crate::transfers::json_by_id),
        _ => return Ok(None),
    };
    let owned = conn
        .prepare_cached(&format!("SELECT 1 FROM {table} WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3"))?
        .query_row(params![id, merchant, mode.as_str()], |_| Ok(()))
        .optional()?
        .is_some();
    if owned { render(conn, id) } else { Ok(None) }
}

/// `GET /v1/customers/{phone}/transactions`.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    phone: String,
    query: &[(String, String)],
) -> Result<Value, ApiError> {
    let mut errors = Vec::new();
    let phone = crate::phone::parse_e164(&phone).map_err(|m| fail(&mut errors, "phone", m)).ok();
    let mut limit = crate::validate::PAGE_LIMIT_DEFAULT;
    let mut starting_after = None;
    for (name, value) in query {
        match name.as_str() {
            "limit" => limit = crate::validate::page_limit(value, &mut errors).unwrap_or(limit),
            "starting_after" => starting_after = Some(value.clone()),
            other => fail(&mut errors, other, "is not a known parameter; expected limit, starting_after"),
        }
    }
    let Some(phone) = phone.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let (merchant, mode) = (caller.merchant_id.clone(), caller.mode);
    let page = state
        .store
        .read(move |conn| {
            // The cursor is the last id of the previous page; it must be one
            // of this customer's transactions with this merchant.
            let cursor: Option<i64> = match &starting_after {
                None => None,
                Some(id) => Some(
                    conn.prepare_cached(
                        "SELECT seq FROM customer_transactions
                         WHERE id = ?1 AND merchant_id = ?2 AND mode = ?3 AND customer_phone = ?4",
                    )?
                    .query_row(params![id, merchant, mode.as_str(), phone], |r| r.get(0))
                    .optional()?
                    .ok_or_else(|| {
                        StoreError::rejected(ApiError::invalid(
                            "starting_after",
                            "is not a transaction of this customer; use the id of the last item of the previous page",
                        ))
                    })?,
                ),
            };
            let mut stmt = conn.prepare_cached(
                "SELECT id, type FROM customer_transactions
                 WHERE merchant_id = ?1 AND mode = ?2 AND customer_phone = ?3 AND seq < ?4
                 ORDER BY seq DESC LIMIT ?5",
            )?;
            let rows: Vec<(String, String)> = stmt
                .query_map(
                    params![merchant, mode.as_str(), phone, cursor.unwrap_or(i64::MAX), limit as i64 + 1],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?
                .collect::<Result<_, _>>()?;
            let has_more = rows.len() > limit;
            let mut data = Vec::with_capacity(limit);
            for (id, kind) in rows.into_iter().take(limit) {
                let object = transaction_json(conn, &merchant, mode, &id)?;
                data.push(object.ok_or_else(|| StoreError::Invariant(format!("{kind} {id} is indexed but missing")))?);
            }
            Ok(json!({ "object": "list", "data": data, "has_more": has_more }))
        })
        .await?;
    Ok(page)
}
