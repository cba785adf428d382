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
