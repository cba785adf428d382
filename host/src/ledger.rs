//! Ledger: the only module that writes journal entries and postings. Every
//! entry balances per currency before it is inserted; entries are
//! append-only (the schema refuses updates and deletes).

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};

use crate::mode::Mode;
use crate::store::StoreError;

/// The platform's own accounts are owned by this name.
pub const PLATFORM_OWNER: &str = "platform";

/// What an account holds. Assets are debit-normal (a positive sum means we
/// hold or are owed money); liabilities and revenue are credit-normal (a
/// negative sum means we owe it or earned it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// Money a rail has collected for us and owes us (asset).
    RailClearing,
    /// Money owed to a merchant, not yet available for settlement (liability).
    MerchantPending,
    /// Fees the platform earned (revenue).
    FeeRevenue,
    /// A customer's wallet in one currency, owned by their E.164 phone
    /// (liability: the customer's balance is minus the sum, never below zero).
    CustomerWallet,
    /// Wallet money reserved for a payment still processing (liability).
    WalletHold,
    /// Where sandbox top-ups come from: test mode only (asset).
    SandboxFunding,
    /// Currency the platform bought or sold in swaps (asset or liability).
    FxPosition,
    /// The platform's share of swaps: spread and rounding (revenue).
    FxRevenue,
    /// A merchant's money held while a dispute on their payment is open (liability).
    DisputeReserve,
    /// A merchant's settlement sent to a rail's payout, not yet confirmed (liability).
    SettlementInTransit,
    /// Money sent to a phone number not yet on Soxara, waiting for its
    /// owner to claim it, owned by that phone (liability).
    ClaimEscrow,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::RailClearing => "rail_clearing",
            AccountKind::MerchantPending => "merchant_pending",
            AccountKind::FeeRevenue => "fee_revenue",
            AccountKind::CustomerWallet => "customer_wallet",
            AccountKind::WalletHold => "wallet_hold",
            AccountKind::SandboxFunding => "sandbox_funding",
            AccountKind::FxPosition => "fx_position",
            AccountKind::FxRevenue => "fx_revenue",
            AccountKind::DisputeReserve => "dispute_reserve",
            AccountKind::SettlementInTransit => "settlement_in_transit",
            AccountKind::ClaimEscrow => "claim_escrow",
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
        conn.prepare_cached("INSERT INTO postings (entry_id, account_id, amount) VALUES (?1, ?2, ?3)")?
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
        *sums.entry(posting.account.currency.as_str()).or_default() += i128::from(posting.amount_minor);
    }
    match sums.iter().find(|(_, sum)| **sum != 0) {
        Some((currency, sum)) => Err(format!("entry does not balance in {currency}: off by {sum}")),
        None => Ok(()),
    }
}

/// Opens an account before its first posting (a new customer's wallets).
pub fn open_account(conn: &Connection, account: &Account) -> Result<(), StoreError> {
    account_id(conn, account).map(drop)
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

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSummary {
    pub entries: i64,
    pub postings: i64,
    pub accounts: i64,
}

/// Checks every ledger invariant and returns the first violation found:
/// each entry has at least two postings, stays in its mode and balances per
/// currency; all balances per mode and currency sum to zero; no customer
/// wallet is below zero; no transaction is bound to two idempotency keys.
pub fn verify(conn: &Connection) -> Result<LedgerSummary, String> {
    let first = |sql: &str| -> Result<Option<String>, String> {
        conn.query_row(sql, [], |row| row.get::<_, String>(0)).optional().map_err(|e| e.to_string())
    };
    // In this order, so that each corruption is named by its own check.
    let checks: [&str; 6] = [
        // entry has fewer than two postings
        "SELECT 'entry ' || e.id || ' (' || e.kind || ' of ' || e.transaction_id || ') has ' ||
                    (SELECT COUNT(*) FROM postings p WHERE p.entry_id = e.id) || ' postings'
             FROM journal_entries e WHERE (SELECT COUNT(*) FROM postings p WHERE p.entry_id = e.id) < 2 LIMIT 1",
        // entry does not balance
        "SELECT 'entry ' || p.entry_id || ' does not balance in ' || a.currency || ': off by ' || SUM(p.amount)
             FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
             GROUP BY p.entry_id, a.currency HAVING SUM(p.amount) <> 0 LIMIT 1",
        // ledger does not sum to zero
        "SELECT 'all ' || a.mode || ' ' || a.currency || ' balances sum to ' || SUM(p.amount) || ', not 0'
             FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
             GROUP BY a.mode, a.currency HAVING SUM(p.amount) <> 0 LIMIT 1",
        // entry mixes modes
        "SELECT 'entry ' || e.id || ' (' || e.mode || ') posts to ' || a.mode || ' account ' || a.id
             FROM journal_entries e JOIN postings p ON p.entry_id = e.id JOIN ledger_accounts a ON a.id = p.account_id
             WHERE a.mode <> e.mode LIMIT 1",
        // customer wallet below zero
        "SELECT a.mode || ' ' || a.currency || ' wallet of ' || a.owner || ' is below zero: ' || -SUM(p.amount)
             FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
             WHERE a.kind = 'customer_wallet' GROUP BY a.id HAVING SUM(p.amount) > 0 LIMIT 1",
        // transaction bound to several idempotency keys
        "SELECT 'transaction ' || transaction_id || ' is bound to ' || COUNT(*) || ' idempotency keys'
             FROM idempotency_keys GROUP BY transaction_id HAVING COUNT(*) > 1 LIMIT 1",
    ];
    for sql in checks {
        if let Some(violation) = first(sql)? {
            return Err(violation);
        }
    }
    let count = |table: &str| -> Result<i64, String> {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).map_err(|e| e.to_string())
    };
    Ok(LedgerSummary {
        entries: count("journal_entries")?,
        postings: count("postings")?,
        accounts: count("ledger_accounts")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(kind: AccountKind, currency: &str) -> Account {
        Account { mode: Mode::Test, entity: "E".into(), owner: "o".into(), kind, currency: currency.into() }
    }

    #[test]
    fn unbalanced_entries_are_refused() {
        let ok = [
            Posting { account: account(AccountKind::RailClearing, "USD"), amount_minor: 100 },
            Posting { account: account(AccountKind::MerchantPending, "USD"), amount_minor: -100 },
        ];
        assert!(check_balanced(Mode::Test, &ok).is_ok());
        let off = [
            Posting { account: account(AccountKind::RailClearing, "USD"), amount_minor: 100 },
            Posting { account: account(AccountKind::MerchantPending, "USD"), amount_minor: -99 },
        ];
        assert!(check_balanced(Mode::Test, &off).is_err());
        let mixed_currency = [
            Posting { account: account(AccountKind::RailClearing, "USD"), amount_minor: 100 },
            Posting { account: account(AccountKind::MerchantPending, "LRD"), amount_minor: -100 },
        ];
        assert!(check_balanced(Mode::Test, &mixed_currency).is_err());
        assert!(check_balanced(Mode::Live, &ok).is_err(), "test accounts in a live entry");
    }
}
