//! The Soxara payment gateway host.
//!
//! The host owns everything that must be trusted — HTTP, API keys,
//! idempotency, the ledger — and runs payment rails as sandboxed WebAssembly
//! components (see `plugins`). Start it with [`app::start`].

pub mod accounts;
pub mod admin;
pub mod admin_accounts;
pub mod app;
pub mod auth;
pub mod balances;
pub mod clock;
pub mod config;
pub mod disputes;
pub mod error;
pub mod fx;
pub mod history;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod keys;
pub mod ledger;
pub mod messaging;
pub mod metrics;
pub mod mode;
pub mod money;
pub mod payments;
pub mod phone;
pub mod plugins;
pub mod rail_updates;
pub mod rate_limit;
pub mod refunds;
pub mod scopes;
pub mod settlements;
pub mod store;
pub mod transfers;
pub mod transport;
pub mod validate;
pub mod wallets;
pub mod webhooks;
