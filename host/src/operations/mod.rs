//! Operations: every money movement the gateway makes, each in its own
//! module that owns its table, its object and what it means for the ledger.
//! Those a plugin carries out (payments, refunds, settlements through a
//! rail; bill purchases through a biller; RMB purchases through a trader)
//! share one
//! lifecycle (`lifecycle`, `checks`, `rail_operations`); those that take a
//! customer's money wait for their approval (`approvals`, `consent`);
//! every write under
//! an idempotency key goes through `idempotency`. Flows take a
//! [`Context`] (or just the connection, inside a write), never the whole
//! application: they are tested on an in-memory database.
//!
//! May call: `domain`, `ledger`, `store`, `plugins`, `values`, `config`.

pub mod approvals;
pub mod bills;
pub mod callbacks;
pub mod checks;
pub mod claims;
pub mod consent;
mod context;
pub mod crypto;
pub mod disputes;
pub mod gift_cards;
pub mod idempotency;
pub mod lifecycle;
pub mod merchant_funds;
pub mod objects;
pub mod payments;
pub mod rail_operations;
pub mod refunds;
pub mod rmb;
pub mod settlement_batches;
pub mod settlements;
pub mod swaps;
pub mod top_ups;
pub mod transactions;
pub mod transfers;

pub use context::Context;

use rusqlite::Connection;

use crate::ledger::{self, LedgerSummary};

/// Checks every invariant of a database (`soxara verify`): the ledger's
/// (`ledger::verify`), then that no transaction is bound to two
/// idempotency keys. The first violation found is the error.
pub fn verify(conn: &Connection) -> Result<LedgerSummary, String> {
    let summary = ledger::verify(conn)?;
    match idempotency::transaction_with_several_keys(conn) {
        Ok(Some(violation)) => Err(violation),
        Ok(None) => Ok(summary),
        Err(err) => Err(err.to_string()),
    }
}
