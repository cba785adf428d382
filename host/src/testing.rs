//! Helpers for unit tests of flows on an in-memory database.

use rusqlite::Connection;

use crate::domain::accounts;
use crate::values::entity::{Entities, Entity};
use crate::values::status::KybStatus;

/// A migrated database in memory.
pub fn database() -> Connection {
    crate::store::open_in_memory().expect("an in-memory database migrates")
}

/// A migrated database with one merchant; returns its id too.
pub fn database_with_merchant() -> (Connection, String) {
    let conn = database();
    let id = accounts::create(&conn, "Test shop", accounts::SANDBOX_KYC_TIER, KybStatus::None, 0).expect("a merchant");
    (conn, id)
}

/// The default entities.
pub fn entities() -> Entities {
    crate::config::EntitySettings::default().entities().expect("the default entities are valid")
}

/// The entity that holds wallets by default.
pub fn entity() -> Entity {
    entities().wallets().clone()
}

/// A test-mode tenant of `merchant_id`.
pub fn tenant(merchant_id: &str) -> crate::values::mode::Tenant {
    crate::values::mode::Tenant::new(merchant_id, crate::values::mode::Mode::Test)
}

/// A rail's answer with this status and nothing else.
pub fn outcome(status: crate::plugins::TransactionStatus) -> crate::plugins::RailOutcome {
    crate::plugins::RailOutcome { status, provider_reference: None, failure: None, redirect_url: None }
}

/// The answer of one SQL query returning one integer.
pub fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |row| row.get::<_, Option<i64>>(0)).expect("the query runs").unwrap_or(0)
}

/// The sum of the postings `transaction_id`'s entries made to accounts of
/// `kind` (debit positive).
pub fn posted(conn: &Connection, transaction_id: &str, kind: crate::ledger::AccountKind) -> i64 {
    conn.query_row(
        "SELECT COALESCE(SUM(p.amount), 0) FROM postings p JOIN journal_entries e ON e.id = p.entry_id
         JOIN ledger_accounts a ON a.id = p.account_id WHERE e.transaction_id = ?1 AND a.kind = ?2",
        rusqlite::params![transaction_id, kind],
        |row| row.get(0),
    )
    .expect("the query runs")
}

/// Events of one type about one object.
pub fn events(conn: &Connection, object_id: &str, event: crate::domain::webhooks::EventType) -> i64 {
    conn.query_row(
        "SELECT COUNT(*) FROM events WHERE object_id = ?1 AND type = ?2",
        rusqlite::params![object_id, event],
        |row| row.get(0),
    )
    .expect("the query runs")
}
