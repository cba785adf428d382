//! A merchant's balances, read from the ledger (`GET /v1/balance`): per
//! currency and operating entity, what the platform owes them (`pending`:
//! collected, net of fees and refunds, not yet paid out), how much of it the
//! next settlement would pay (`available`: collected before the cutoff,
//! `settlements`), what is on its way to them (`in_transit`) and what is
//! held back for open disputes (`reserved`). All are credit-normal accounts,
//! so a balance is minus the sum of its postings; `pending` can go below zero
//! (a dispute reserves the gross amount while the fee stays earned).

use rusqlite::{Connection, params};
use serde_json::{Value, json};

use crate::ledger::AccountKind;
use crate::mode::Mode;
use crate::store::StoreError;

/// The balances at a settlement cutoff of `cutoff_ms`.
pub fn json(conn: &Connection, mode: Mode, merchant_id: &str, cutoff_ms: i64) -> Result<Value, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT a.currency, a.entity,
                -COALESCE(SUM(CASE WHEN a.kind = ?3 THEN p.amount END), 0),
                -COALESCE(SUM(CASE WHEN a.kind = ?4 THEN p.amount END), 0),
                -COALESCE(SUM(CASE WHEN a.kind = ?5 THEN p.amount END), 0)
         FROM ledger_accounts a JOIN postings p ON p.account_id = a.id
         WHERE a.mode = ?1 AND a.owner = ?2 AND a.kind IN (?3, ?4, ?5)
         GROUP BY a.currency, a.entity ORDER BY a.currency, a.entity",
    )?;
    let rows = statement.query_map(
        params![
            mode.as_str(),
            merchant_id,
            AccountKind::MerchantPending.as_str(),
            AccountKind::DisputeReserve.as_str(),
            AccountKind::SettlementInTransit.as_str()
        ],
        |row| {
            Ok(json!({
                "currency": row.get::<_, String>(0)?,
                "entity": row.get::<_, String>(1)?,
                "pending": row.get::<_, i64>(2)?,
                "available": 0,
                "in_transit": row.get::<_, i64>(4)?,
                "reserved": row.get::<_, i64>(3)?,
            }))
        },
    )?;
    let mut balances = rows.collect::<Result<Vec<_>, _>>()?;
    for owed in crate::settlements::settleable(conn, cutoff_ms, Some((merchant_id, mode)))? {
        let line = balances.iter_mut().find(|b| b["currency"] == owed.currency && b["entity"] == owed.entity);
        if let Some(line) = line {
            line["available"] = json!(owed.amount);
        }
    }
    Ok(json!({ "object": "balance", "livemode": mode == Mode::Live, "balances": balances }))
}
