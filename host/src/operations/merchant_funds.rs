//! Where a merchant's purchases (bills, RMB) are paid from: in live mode
//! the merchant's balance held by the wallet entity (what transfers spend
//! and settlements pay out), in test mode a simulated balance granted once
//! per currency ([`SANDBOX_BALANCE`]), never settled.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::wallets::Wallets;
use crate::ledger::{self, Account, AccountKind, EntryKind, PLATFORM_OWNER, Posting};
use crate::store::StoreError;
use crate::values::mode::{Mode, Tenant};
use crate::values::money::Currency;

/// A test merchant's simulated balance for purchases (bills, RMB), per currency, in minor units:
/// USD 10,000.00 and LRD 2,000,000.00. Purchases spend it and refunds give
/// it back; it is never paid out.
pub const SANDBOX_BALANCE: [(&str, i64); 2] = [("USD", 1_000_000), ("LRD", 200_000_000)];

/// Where a tenant's purchases are paid from: in live mode its balance held
/// by the wallet entity; in test mode its simulated balance, granted on
/// first use.
pub fn spending_account(
    conn: &Connection,
    wallets: &Wallets,
    tenant: &Tenant,
    currency: Currency,
    now_ms: i64,
) -> Result<Account, StoreError> {
    if tenant.mode == Mode::Live {
        return Ok(wallets.account(Mode::Live, &tenant.merchant_id, AccountKind::MerchantPending, currency));
    }
    let balance = wallets.account(Mode::Test, &tenant.merchant_id, AccountKind::SandboxBalance, currency);
    let grant_id = format!("sandbox_bills:{}:{currency}", tenant.merchant_id);
    let granted: Option<i64> = conn
        .prepare_cached("SELECT id FROM journal_entries WHERE kind = ?1 AND transaction_id = ?2")?
        .query_row(params![EntryKind::SandboxGrant, grant_id], |row| row.get(0))
        .optional()?;
    if granted.is_none() {
        let amount_minor = SANDBOX_BALANCE.iter().find(|(code, _)| *code == currency.code).map_or(0, |(_, a)| *a);
        if amount_minor > 0 {
            let funding = wallets.account(Mode::Test, PLATFORM_OWNER, AccountKind::SandboxFunding, currency);
            let postings = [
                Posting { account: funding, amount_minor },
                Posting { account: balance.clone(), amount_minor: -amount_minor },
            ];
            ledger::post(conn, Mode::Test, EntryKind::SandboxGrant, &grant_id, &postings, now_ms)?;
        }
    }
    Ok(balance)
}
