//! The Soxara payment gateway host.
//!
//! The host owns everything that must be trusted — HTTP, API keys,
//! idempotency, the ledger — and runs payment rails and other providers as
//! sandboxed WebAssembly components (`plugins`). Start it with
//! [`app::start`]. Its layers, each allowed to call only those below it:
//!
//! ```text
//! app            builds the state, starts workers and servers
//! http, workers  the API (and admin API); background loops
//! operations     every money movement: payments, refunds, settlements,
//!                transfers, swaps…, one rail-operation lifecycle
//! domain         accounts, keys, customers, wallets, FX, webhooks, messages
//! ledger         double-entry journal and balances
//! store          SQLite: writer, readers, migrations
//! plugins        the wasmtime runtime and the rails' registry
//! values         typed values: time, money, modes, statuses, errors
//! ```

pub mod app;
pub mod config;
pub mod domain;
pub mod http;
pub mod ledger;
pub mod metrics;
pub mod operations;
pub mod plugins;
pub mod secrets;
pub mod store;
pub mod values;
pub mod workers;

#[cfg(test)]
mod testing;
