//! A customer's transaction history with one merchant: payments, top-ups and
//! swaps, newest first, in cursor pages (`limit`, `starting_after`, `has_more`).

use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::store::StoreError;
use crate::validate::fail;

pub const PAGE_LIMIT_DEFAULT: usize = 10;
pub const PAGE_LIMIT_MAX: usize = 100;

/// `GET /v1/customers/{phone}/transactions`.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    phone: String,
    query: &[(String, String)],
) -> Result<Value, ApiError> {
    let mut errors = Vec::new();
    let phone = crate::phone::parse_e164(&phone).map_err(|m| fail(&mut errors, "phone", m)).ok();
    let mut limit = PAGE_LIMIT_DEFAULT;
    let mut starting_after = None;
    for (name, value) in query {
        match name.as_str() {
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=PAGE_LIMIT_MAX).contains(&n) => limit = n,
                _ => fail(&mut errors, "limit", format!("must be an integer from 1 to {PAGE_LIMIT_MAX}")),
            },
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
                let object = match kind.as_str() {
                    "payment" => crate::payments::json_by_id(conn, &id)?,
                    "top_up" => Some(crate::wallets::top_up_json(conn, &id)?),
                    "swap" => crate::fx::swap_json(conn, &id)?,
                    _ => None,
                };
                data.push(object.ok_or_else(|| StoreError::Invariant(format!("{kind} {id} is indexed but missing")))?);
            }
            Ok(json!({ "object": "list", "data": data, "has_more": has_more }))
        })
        .await?;
    Ok(page)
}
