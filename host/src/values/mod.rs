//! Typed values every layer shares, with no I/O of their own: time, ids,
//! modes and tenants, money and currencies, phones, legal entities,
//! statuses and kinds (each word written once: `text`), payment methods,
//! pages, failures, and the API's error catalogue.
//!
//! May call: nothing else in the crate.

pub mod clock;
pub mod entity;
pub mod error;
pub mod failure;
pub mod ids;
pub mod method;
pub mod mode;
pub mod money;
pub mod page;
pub mod phone;
pub mod status;
pub mod text;
