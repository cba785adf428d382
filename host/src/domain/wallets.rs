//! Wallets: one per customer (E.164 phone), mode and currency — a USD wallet
//! and an LRD wallet, never one wallet with two currencies — held by the
//! wallet entity. A wallet is a ledger account; its balance is always
//! derived from postings.

use rusqlite::Connection;
use serde::Serialize;

use super::customers::CustomerPhone;
use crate::ledger::{self, Account, AccountKind, EntryKind, Posting};
use crate::store::StoreError;
use crate::values::entity::Entity;
use crate::values::mode::Mode;
use crate::values::money::{CURRENCIES, Currency};
use crate::values::status::ObjectType;

/// The accounts customers' money lives in, held by one entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallets {
    entity: Entity,
}

impl Wallets {
    pub fn new(entity: Entity) -> Wallets {
        Wallets { entity }
    }

    /// The entity that holds customer wallets (and transfers' escrow).
    pub fn entity(&self) -> &Entity {
        &self.entity
    }

    /// An account of this entity: a customer's (`owner` a phone), a
    /// merchant's, or the platform's.
    pub fn account(&self, mode: Mode, owner: &str, kind: AccountKind, currency: Currency) -> Account {
        Account { mode, entity: self.entity.clone(), owner: owner.to_string(), kind, currency }
    }

    /// A customer's wallet in one currency.
    pub fn wallet(&self, mode: Mode, phone: &str, currency: Currency) -> Account {
        self.account(mode, phone, AccountKind::CustomerWallet, currency)
    }

    /// A customer's wallets, one per enabled currency.
    pub fn list(&self, conn: &Connection, mode: Mode, phone: &str) -> Result<Vec<Wallet>, StoreError> {
        CURRENCIES
            .iter()
            .map(|currency| {
                Ok(Wallet {
                    object: ObjectType::Wallet,
                    customer: CustomerPhone { phone: phone.to_string() },
                    currency: *currency,
                    balance: balance_minor(conn, &self.wallet(mode, phone, *currency))?,
                    livemode: mode.is_live(),
                })
            })
            .collect()
    }
}

/// What the customer can spend from `wallet`: minus the sum of its
/// postings (a wallet is money the platform owes the customer).
pub fn balance_minor(conn: &Connection, wallet: &Account) -> Result<i64, StoreError> {
    let sum = ledger::balance(conn, wallet)?;
    sum.checked_neg().ok_or_else(|| StoreError::Invariant(format!("wallet of {} overflows", wallet.owner)))
}

/// Whether `wallet` holds at least `needed`. Only the customer's approved
/// operations ask, and the answer goes no further than their own failure:
/// no merchant learns what a wallet holds.
pub fn holds_at_least(conn: &Connection, wallet: &Account, needed: u64) -> Result<bool, StoreError> {
    Ok(u64::try_from(balance_minor(conn, wallet)?).is_ok_and(|available| available >= needed))
}

/// Moves `amount_minor` of `wallet` into its hold for `transaction_id`;
/// `false`, with nothing moved, when the wallet holds too little. The held
/// money stays the customer's until what it was held for completes (it is
/// spent from the hold) or ends otherwise ([`release`]).
#[must_use = "a wallet that holds too little is not an error"]
pub fn hold(
    conn: &Connection,
    wallet: &Account,
    amount_minor: u64,
    transaction_id: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    if !holds_at_least(conn, wallet, amount_minor)? {
        return Ok(false);
    }
    move_between(conn, wallet, &hold_of(wallet), amount_minor, EntryKind::Hold, transaction_id, now_ms)?;
    Ok(true)
}

/// Gives money held for `transaction_id` back to `wallet`.
pub fn release(
    conn: &Connection,
    wallet: &Account,
    amount_minor: u64,
    transaction_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    move_between(conn, &hold_of(wallet), wallet, amount_minor, EntryKind::Release, transaction_id, now_ms)
}

/// Where money held from `wallet` waits.
pub fn hold_of(wallet: &Account) -> Account {
    Account { kind: AccountKind::WalletHold, ..wallet.clone() }
}

fn move_between(
    conn: &Connection,
    from: &Account,
    to: &Account,
    amount_minor: u64,
    kind: EntryKind,
    transaction_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    let amount = i64::try_from(amount_minor)
        .map_err(|_| StoreError::Invariant(format!("{amount_minor} does not fit a ledger amount")))?;
    let postings = [
        Posting { account: from.clone(), amount_minor: amount },
        Posting { account: to.clone(), amount_minor: -amount },
    ];
    ledger::post(conn, from.mode, kind, transaction_id, &postings, now_ms).map(drop)
}

/// The wallet object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Wallet {
    object: ObjectType,
    pub customer: CustomerPhone<String>,
    pub currency: Currency,
    pub balance: i64,
    pub livemode: bool,
}
