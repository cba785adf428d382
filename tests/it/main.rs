//! Integration tests: each one boots the real gateway (port 0, temporary
//! SQLite file, the real simulator component) and talks to it over HTTP.

mod accounts;
mod auth;
mod balance;
mod biller_registry;
mod bills;
mod consent;
mod crypto;
mod fx;
mod gift_cards;
mod idempotency;
mod isolation;
mod ledger;
mod limits;
mod mtn;
mod orange;
mod payments;
mod properties;
mod quickstart;
mod rail_template;
mod rate_limits;
mod refunds;
mod registry;
mod reloadly;
mod rmb;
mod settlements;
mod stripe;
mod tenancy;
mod transfers;
mod transport;
mod validation;
mod verify;
mod wallets;
mod webhooks;
mod whatsapp;
mod wit_compat;
