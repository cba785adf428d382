//! What money movements need from the application: the store, the clock,
//! the rails and billers, where customers' money is held, and the settings of status
//! checks and transfers. Workers and the HTTP layer hold one; the flows
//! below them take the connection.

use std::sync::Arc;

use crate::config::{StatusCheckSettings, TransferSettings};
use crate::domain::billers::Billers;
use crate::domain::card_images::CardImages;
use crate::domain::codes::Codes;
use crate::domain::messaging::Messengers;
use crate::domain::traders::Traders;
use crate::domain::wallets::Wallets;
use crate::plugins::registry::Registry;
use crate::store::Store;
use crate::values::clock::Clock;

#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub clock: Clock,
    /// Loaded rails and the routing table, changed live by operators.
    pub rails: Arc<Registry>,
    pub wallets: Wallets,
    /// The biller bound to each mode and bill type.
    pub billers: Arc<Billers>,
    /// The trader bound to each mode and trade kind.
    pub traders: Arc<Traders>,
    /// Photos of physical gift cards, beside the database.
    pub card_images: CardImages,
    /// The messenger bound to each mode (claim codes).
    pub messengers: Arc<Messengers>,
    /// One-time codes for claims and approvals.
    pub codes: Arc<Codes>,
    pub checks: StatusCheckSettings,
    pub transfers: TransferSettings,
    /// Wakes the transfer sweep (`workers::transfers`): a new transfer
    /// waits for its first claim code.
    pub claim_codes_due: Arc<tokio::sync::Notify>,
    /// Callbacks in flight, per plugin.
    pub callback_slots: Arc<super::callbacks::CallbackSlots>,
}
