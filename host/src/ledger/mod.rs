//! Ledger: the only module that reads or writes journal entries, postings
//! and ledger accounts. Every entry balances per currency before it is
//! inserted; entries are append-only (the schema refuses updates and
//! deletes). Balances, what is settleable and settlement report lines are
//! read here, from the postings.
//!
//! May call: `store`, `values`.

mod verify;

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};

pub use verify::{LedgerSummary, verify};

use crate::store::StoreError;
use crate::values::entity::Entity;
use crate::values::mode::{Mode, Tenant};
use crate::values::money::Currency;
use crate::values::text::text_enum;

/// The platform's own accounts are owned by this name.
pub const PLATFORM_OWNER: &str = "platform";

/// The owner of a rail's clearing account.
pub fn rail_owner(rail: &str) -> String {
    format!("rail:{rail}")
}

/// The owner of what we owe a trader's desk.
pub fn trader_owner(trader: &str) -> String {
    format!("trader:{trader}")
}

/// The owner of what we owe a biller's provider.
pub fn biller_owner(biller: &str) -> String {
    format!("biller:{biller}")
}

text_enum! {
    /// What an account holds. Assets are debit-normal (a positive sum means
    /// we hold or are owed money); liabilities and revenue are credit-normal
    /// (a negative sum means we owe it or earned it).
    pub enum AccountKind {
        /// Money a rail has collected for us and owes us (asset).
        RailClearing => "rail_clearing",
        /// Money owed to a merchant, not yet paid out (liability).
        MerchantPending => "merchant_pending",
        /// Fees the platform earned (revenue).
        FeeRevenue => "fee_revenue",
        /// A customer's wallet in one currency, owned by their E.164 phone
        /// (liability: the customer's balance is minus the sum, never below zero).
        CustomerWallet => "customer_wallet",
        /// Wallet money reserved for a payment still processing (liability).
        WalletHold => "wallet_hold",
        /// Where sandbox top-ups come from: test mode only (asset).
        SandboxFunding => "sandbox_funding",
        /// Currency the platform bought or sold in swaps (asset or liability).
        FxPosition => "fx_position",
        /// The platform's share of swaps: spread and rounding (revenue).
        FxRevenue => "fx_revenue",
        /// A merchant's money held while a dispute on their payment is open (liability).
        DisputeReserve => "dispute_reserve",
        /// A merchant's settlement sent to a rail's payout, not yet confirmed (liability).
        SettlementInTransit => "settlement_in_transit",
        /// Money sent to a phone number not yet on Soxara, waiting for its
        /// owner to claim it, owned by that phone (liability).
        ClaimEscrow => "claim_escrow",
        /// A merchant's money taken for bill purchases still processing,
        /// owned by the merchant (liability).
        BillClearing => "bill_clearing",
        /// What we owe a biller's provider for bills it delivered, owned
        /// by `biller:{plugin}` (liability).
        BillerPayable => "biller_payable",
        /// A test merchant's simulated balance for bill purchases, granted
        /// once per currency from sandbox funding: test mode only, never
        /// settled (liability).
        SandboxBalance => "sandbox_balance",
        /// A merchant's money taken for trades still processing (RMB
        /// purchases), owned by the merchant (liability).
        TradeClearing => "trade_clearing",
        /// What we owe a trader's desk for trades it carried out (RMB paid
        /// out), less what it owes us (gift cards it bought), owned by
        /// `trader:{plugin}` (liability; a debit balance is owed to us).
        TraderPayable => "trader_payable",
    }
}

text_enum! {
    /// What an entry records. A transaction has at most one entry of each
    /// kind, so a retry can never post twice.
    pub enum EntryKind {
        /// A payment collected: the source gives, the merchant is owed the net.
        Payment => "payment",
        /// Money back to a customer.
        Refund => "refund",
        /// Wallet money reserved for a payment still processing.
        Hold => "hold",
        /// A reserve released when its payment did not complete.
        Release => "release",
        /// Sandbox money into a test wallet.
        TopUp => "top_up",
        /// A currency swap between a customer's wallets.
        Swap => "swap",
        /// A disputed amount held from the merchant.
        DisputeReserve => "dispute_reserve",
        /// A settlement claimed: pending money on its way to the merchant.
        Settlement => "settlement",
        /// The settlement's payout arrived.
        SettlementPaid => "settlement_paid",
        /// The settlement's payout failed: the money is owed again.
        SettlementReturn => "settlement_return",
        /// A merchant's transfer to a phone.
        Transfer => "transfer",
        /// A waiting transfer claimed by its recipient.
        TransferClaim => "transfer_claim",
        /// A waiting transfer returned to its merchant.
        TransferReturn => "transfer_return",
        /// A bill purchase made: the merchant's money into bill clearing.
        BillHold => "bill_hold",
        /// A bill delivered: clearing to the biller's provider and the fee.
        BillPaid => "bill_paid",
        /// A bill refunded or failed: clearing back to the merchant.
        BillReturn => "bill_return",
        /// An RMB purchase accepted: the merchant's money into trade clearing.
        RmbHold => "rmb_hold",
        /// An RMB purchase paid out: clearing to the trader and the fee.
        RmbPaid => "rmb_paid",
        /// An RMB purchase refunded or failed: clearing back to the merchant.
        RmbReturn => "rmb_return",
        /// A gift card sale verified: the trader owes its price, the
        /// merchant is credited it less the fee.
        GiftCardCredit => "gift_card_credit",
        /// A crypto deposit confirmed: the trader owes its price, the
        /// merchant is credited it less the fee.
        CryptoCredit => "crypto_credit",
        /// A test merchant's simulated bills balance (sandbox funding).
        SandboxGrant => "sandbox_grant",
    }
}

impl EntryKind {
    /// Kinds that move settled money; they always count as settled,
    /// whenever they were made.
    pub const SETTLEMENT: [EntryKind; 3] =
        [EntryKind::Settlement, EntryKind::SettlementPaid, EntryKind::SettlementReturn];
}

/// Identifies one account; it is created on first use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub mode: Mode,
    pub entity: Entity,
    pub owner: String,
    pub kind: AccountKind,
    pub currency: Currency,
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
    kind: EntryKind,
    transaction_id: &str,
    postings: &[Posting],
    now_ms: i64,
) -> Result<i64, StoreError> {
    check_balanced(mode, postings).map_err(StoreError::Invariant)?;
    conn.prepare_cached(
        "INSERT INTO journal_entries (mode, kind, transaction_id, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![mode, kind, transaction_id, now_ms])?;
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
        *sums.entry(posting.account.currency.code).or_default() += i128::from(posting.amount_minor);
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

/// The account's id, opening it on first use. Looked up before it is
/// inserted: an upsert would rewrite the account's row (and journal its page
/// in the job's savepoint) for every posting, while nearly every posting
/// goes to an account that already exists.
fn account_id(conn: &Connection, account: &Account) -> Result<i64, StoreError> {
    let keys = params![account.mode, account.entity, account.owner, account.kind, account.currency];
    let existing = conn
        .prepare_cached(
            "SELECT id FROM ledger_accounts
             WHERE mode = ?1 AND entity = ?2 AND owner = ?3 AND kind = ?4 AND currency = ?5",
        )?
        .query_row(keys, |row| row.get(0))
        .optional()?;
    if let Some(id) = existing {
        return Ok(id);
    }
    conn.prepare_cached(
        "INSERT INTO ledger_accounts (mode, entity, owner, kind, currency) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(keys)?;
    Ok(conn.last_insert_rowid())
}

/// The balance of one account: the sum of its postings.
pub fn balance(conn: &Connection, account: &Account) -> Result<i64, StoreError> {
    let sum: Option<i64> = conn
        .prepare_cached(
            "SELECT SUM(p.amount) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
             WHERE a.mode = ?1 AND a.entity = ?2 AND a.owner = ?3 AND a.kind = ?4 AND a.currency = ?5",
        )?
        .query_row(params![account.mode, account.entity, account.owner, account.kind, account.currency], |row| {
            row.get(0)
        })?;
    Ok(sum.unwrap_or(0))
}

/// A merchant's credit-normal balances in one currency and entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantBalances {
    pub currency: Currency,
    pub entity: Entity,
    /// What the platform owes them (`merchant_pending`).
    pub pending: i64,
    /// Held for open disputes (`dispute_reserve`).
    pub reserved: i64,
    /// On its way to them (`settlement_in_transit`).
    pub in_transit: i64,
}

/// Every currency and entity in which `tenant` has a balance.
pub fn merchant_balances(conn: &Connection, tenant: &Tenant) -> Result<Vec<MerchantBalances>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT a.currency, a.entity,
                    -COALESCE(SUM(CASE WHEN a.kind = ?3 THEN p.amount END), 0),
                    -COALESCE(SUM(CASE WHEN a.kind = ?4 THEN p.amount END), 0),
                    -COALESCE(SUM(CASE WHEN a.kind = ?5 THEN p.amount END), 0)
             FROM ledger_accounts a JOIN postings p ON p.account_id = a.id
             WHERE a.mode = ?1 AND a.owner = ?2 AND a.kind IN (?3, ?4, ?5)
             GROUP BY a.currency, a.entity ORDER BY a.currency, a.entity",
        )?
        .query_map(
            params![
                tenant.mode,
                tenant.merchant_id,
                AccountKind::MerchantPending,
                AccountKind::DisputeReserve,
                AccountKind::SettlementInTransit
            ],
            |row| {
                Ok(MerchantBalances {
                    currency: row.get(0)?,
                    entity: row.get(1)?,
                    pending: row.get(2)?,
                    reserved: row.get(3)?,
                    in_transit: row.get(4)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// One merchant balance that may be settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settleable {
    pub tenant: Tenant,
    pub entity: Entity,
    pub currency: Currency,
    pub amount_minor: i64,
}

/// Every merchant pending balance with money settleable at `cutoff_ms`
/// (optionally of one tenant): the `merchant_pending` postings of entries
/// made before the cutoff plus every settlement entry (so what was settled
/// is never settled again), capped at the pending balance now (a refund
/// after the cutoff comes out first), never below zero.
pub fn settleable(conn: &Connection, cutoff_ms: i64, only: Option<&Tenant>) -> Result<Vec<Settleable>, StoreError> {
    let (merchant, mode) = (only.map(|t| t.merchant_id.as_str()), only.map(|t| t.mode));
    let [settlement, paid, returned] = EntryKind::SETTLEMENT;
    let rows = conn
        .prepare_cached(
            "SELECT a.owner, a.mode, a.entity, a.currency, -SUM(p.amount),
                    -SUM(CASE WHEN e.created_at <= ?1 OR e.kind IN (?5, ?6, ?7) THEN p.amount ELSE 0 END)
             FROM postings p JOIN ledger_accounts a ON a.id = p.account_id JOIN journal_entries e ON e.id = p.entry_id
             WHERE a.kind = ?4 AND (?2 IS NULL OR a.owner = ?2) AND (?3 IS NULL OR a.mode = ?3)
             GROUP BY a.id ORDER BY a.owner, a.mode, a.currency, a.entity",
        )?
        .query_map(
            params![cutoff_ms, merchant, mode, AccountKind::MerchantPending, settlement, paid, returned],
            |row| {
                let (pending, before_cutoff): (i64, i64) = (row.get(4)?, row.get(5)?);
                Ok(Settleable {
                    tenant: Tenant { merchant_id: row.get(0)?, mode: row.get(1)? },
                    entity: row.get(2)?,
                    currency: row.get(3)?,
                    amount_minor: pending.min(before_cutoff).max(0),
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// One movement of a merchant's pending balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMovement {
    pub transaction_id: String,
    pub kind: EntryKind,
    /// Credit-normal: what the merchant gained (negative: lost).
    pub amount_minor: i64,
    pub created_at_ms: i64,
}

/// The movements of `tenant`'s pending balance in one entity and currency
/// made after `after_ms` up to `until_ms`, settlement entries aside, oldest
/// first: what a settlement with that window covered.
pub fn pending_movements(
    conn: &Connection,
    tenant: &Tenant,
    entity: &Entity,
    currency: Currency,
    after_ms: i64,
    until_ms: i64,
) -> Result<Vec<PendingMovement>, StoreError> {
    let [settlement, paid, returned] = EntryKind::SETTLEMENT;
    let rows = conn
        .prepare_cached(
            "SELECT e.transaction_id, e.kind, -p.amount, e.created_at
             FROM postings p JOIN ledger_accounts a ON a.id = p.account_id JOIN journal_entries e ON e.id = p.entry_id
             WHERE a.kind = ?1 AND a.owner = ?2 AND a.mode = ?3 AND a.entity = ?4 AND a.currency = ?5
               AND e.created_at > ?6 AND e.created_at <= ?7 AND e.kind NOT IN (?8, ?9, ?10)
             ORDER BY e.created_at, e.id",
        )?
        .query_map(
            params![
                AccountKind::MerchantPending,
                tenant.merchant_id,
                tenant.mode,
                entity,
                currency,
                after_ms,
                until_ms,
                settlement,
                paid,
                returned
            ],
            |row| {
                Ok(PendingMovement {
                    transaction_id: row.get(0)?,
                    kind: row.get(1)?,
                    amount_minor: row.get(2)?,
                    created_at_ms: row.get(3)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(kind: AccountKind, currency: &str) -> Account {
        Account {
            mode: Mode::Test,
            entity: crate::testing::entity(),
            owner: "o".into(),
            kind,
            currency: Currency::from_code(currency).unwrap(),
        }
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

    #[test]
    fn an_entry_posts_once_per_transaction_and_kind() {
        let conn = crate::testing::database();
        let postings = [
            Posting { account: account(AccountKind::RailClearing, "USD"), amount_minor: 100 },
            Posting { account: account(AccountKind::MerchantPending, "USD"), amount_minor: -100 },
        ];
        post(&conn, Mode::Test, EntryKind::Payment, "pay_1", &postings, 1).unwrap();
        assert!(post(&conn, Mode::Test, EntryKind::Payment, "pay_1", &postings, 2).is_err());
        assert_eq!(balance(&conn, &postings[1].account).unwrap(), -100);
        assert!(verify(&conn).is_ok());
    }
}
