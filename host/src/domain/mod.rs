//! The records money movements use and the HTTP layer shows: merchant
//! accounts, keys and scopes, customers and their wallets, FX quotes,
//! balances, webhook endpoints and events, messages to customers, which
//! plugin file owns each rail name. Each
//! module owns its tables.
//!
//! May call: `ledger`, `store`, `plugins` (FX providers, messengers),
//! `values`, `config`; never `operations` or anything above.

pub mod accounts;
pub mod balances;
pub mod billers;
pub mod card_images;
pub mod codes;
pub mod customers;
pub mod fx;
pub mod keys;
pub mod messaging;
pub mod rail_owners;
pub mod scopes;
pub mod traders;
pub mod wallet_access;
pub mod wallets;
pub mod webhooks;
