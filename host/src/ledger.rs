//! Ledger: the only module that writes journal entries and postings. Every
//! entry balances per currency before it is inserted; entries are
//! append-only (the schema refuses updates and deletes).

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use crate::mode::Mode;
use crate::store::StoreError;

/// The platform's own accounts are owned by this name.
pub const PLATFORM_OWNER: &str = "platform";

/// What an account holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// Money a rail has collected for us and owes us (an asset).
    RailClearing,
    /// Money owed to a merchant, not yet available for settlement.
    MerchantPending,
    /// Fees the platform earned.
    FeeRevenue,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::RailClearing => "rail_clearing",
            AccountKind::MerchantPending => "merchant_pending",
            AccountKind::FeeRevenue => "fee_revenue",
        }
    }
}

/// Identifies one account; it is created on first use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub mode: Mode,
    pub entity: String,
    pub owner: String,
    pub kind: AccountKind,
    pub currency: String,
}

/// One line of an entry: debit positive, credit negative, minor units.
#[derive(Debug, Clone)]
pub struct Posting {
    pub account: Account,
    pub amount_minor: i64,
}

/// Inserts a balanced entry of `kind` for `transaction_id`. Fails, writing
/// nothing, if the postings do not sum to zero per currency, mix modes, or an
/// entry of that kind already exists for the transaction.
pub fn post(
    conn: &Connection,
    mode: Mode,
    kind: &str,
    transaction_id: &str,
    postings: &[Posting],
    now_ms: i64,
) -> Result<i64, StoreError> {
    check_balanced(mode, postings).map_err(StoreError::Invariant)?;
    conn.prepare_cached(
        "INSERT INTO journal_entries (mode, kind, transaction_id, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![mode.as_str(), kind, transaction_id, now_ms])?;
    let entry_id = conn.last_insert_rowid();
    for posting in postings {
        let account_id = account_id(conn, &posting.account)?;
        conn.prepare_cached(
            "INSERT INTO postings (entry_id, account_id, amount) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![entry_id, account_id, posting.amount_minor])?;
    }
    Ok(entry_id)
}

fn check_balanced(mode: Mode, postings: &[Posting]) -> Result<(), String> {
    if postings.len() < 2 {
        return Err("an entry needs at least two postings".into());
    }
    let mut sums: BTreeMap<&str, i128> = BTreeMap::new();
    for posting in postings {
        if posting.account.mode != mode {
            return Err("an entry cannot mix test and live accounts".into());
        }
        if posting.amount_minor == 0 {
            return Err("a posting of zero is meaningless".into());
        }
        *sums.entry(posting.account.currency.as_str()).or_default() +=
            i128::from(posting.amount_minor);
    }
    match sums.iter().find(|(_, sum)| **sum != 0) {
        Some((currency, sum)) => Err(format!(
            "entry does not balance in {currency}: off by {sum}"
        )),
        None => Ok(()),
    }
}

fn account_id(conn: &Connection, account: &Account) -> Result<i64, StoreError> {
    let id = conn
        .prepare_cached(
            "INSERT INTO ledger_accounts (mode, entity, owner, kind, currency) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (mode, entity, owner, kind, currency) DO UPDATE SET mode = excluded.mode
             RETURNING id",
        )?
        .query_row(
            params![account.mode.as_str(), account.entity, account.owner, account.kind.as_str(), account.currency],
            |row| row.get(0),
        )?;
    Ok(id)
}

/// The balance of one account: the sum of its postings.
pub fn balance(conn: &Connection, account: &Account) -> Result<i64, StoreError> {
    let sum: Option<i64> = conn
        .prepare_cached(
            "SELECT SUM(p.amount) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
             WHERE a.mode = ?1 AND a.entity = ?2 AND a.owner = ?3 AND a.kind = ?4 AND a.currency = ?5",
        )?
        .query_row(
            params![account.mode.as_str(), account.entity, account.owner, account.kind.as_str(), account.currency],
            |row| row.get(0),
        )?;
    Ok(sum.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(kind: AccountKind, currency: &str) -> Account {
        Account {
            mode: Mode::Test,
            entity: "E".into(),
            owner: "o".into(),
            kind,
            currency: currency.into(),
        }
    }

    #[test]
    fn unbalanced_entries_are_refused() {
        let ok = [
            Posting {
                account: account(AccountKind::RailClearing, "USD"),
                amount_minor: 100,
            },
            Posting {
                account: account(AccountKind::MerchantPending, "USD"),
                amount_minor: -100,
            },
        ];
        assert!(check_balanced(Mode::Test, &ok).is_ok());
        let off = [
            Posting {
                account: account(AccountKind::RailClearing, "USD"),
                amount_minor: 100,
            },
            Posting {
                account: account(AccountKind::MerchantPending, "USD"),
                amount_minor: -99,
            },
        ];
        assert!(check_balanced(Mode::Test, &off).is_err());
        let mixed_currency = [
            Posting {
                account: account(AccountKind::RailClearing, "USD"),
                amount_minor: 100,
            },
            Posting {
                account: account(AccountKind::MerchantPending, "LRD"),
                amount_minor: -100,
            },
        ];
        assert!(check_balanced(Mode::Test, &mixed_currency).is_err());
        assert!(
            check_balanced(Mode::Live, &ok).is_err(),
            "test accounts in a live entry"
        );
    }
}
