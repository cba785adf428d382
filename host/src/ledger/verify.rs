//! The ledger's invariants, checked offline (`soxara verify`) and by tests.

use rusqlite::{Connection, OptionalExtension, params};

use super::AccountKind;

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
/// wallet (nor a test merchant's simulated bills balance) is below zero.
pub fn verify(conn: &Connection) -> Result<LedgerSummary, String> {
    let first = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> Result<Option<String>, String> {
        conn.query_row(sql, params, |row| row.get::<_, String>(0)).optional().map_err(|e| e.to_string())
    };
    // In this order, so that each corruption is named by its own check.
    let checks: [(&str, &[&dyn rusqlite::ToSql]); 5] = [
        // entry has fewer than two postings
        (
            "SELECT 'entry ' || e.id || ' (' || e.kind || ' of ' || e.transaction_id || ') has ' ||
                    (SELECT COUNT(*) FROM postings p WHERE p.entry_id = e.id) || ' postings'
             FROM journal_entries e WHERE (SELECT COUNT(*) FROM postings p WHERE p.entry_id = e.id) < 2 LIMIT 1",
            &[],
        ),
        // entry does not balance
        (
            "SELECT 'entry ' || p.entry_id || ' does not balance in ' || a.currency || ': off by ' || SUM(p.amount)
             FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
             GROUP BY p.entry_id, a.currency HAVING SUM(p.amount) <> 0 LIMIT 1",
            &[],
        ),
        // ledger does not sum to zero
        (
            "SELECT 'all ' || a.mode || ' ' || a.currency || ' balances sum to ' || SUM(p.amount) || ', not 0'
             FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
             GROUP BY a.mode, a.currency HAVING SUM(p.amount) <> 0 LIMIT 1",
            &[],
        ),
        // entry mixes modes
        (
            "SELECT 'entry ' || e.id || ' (' || e.mode || ') posts to ' || a.mode || ' account ' || a.id
             FROM journal_entries e JOIN postings p ON p.entry_id = e.id JOIN ledger_accounts a ON a.id = p.account_id
             WHERE a.mode <> e.mode LIMIT 1",
            &[],
        ),
        // customer wallet below zero
        (
            "SELECT a.mode || ' ' || a.currency || ' ' || a.kind || ' of ' || a.owner || ' is below zero: ' ||
                    -SUM(p.amount)
             FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
             WHERE a.kind IN (?1, ?2) GROUP BY a.id HAVING SUM(p.amount) > 0 LIMIT 1",
            &[&AccountKind::CustomerWallet, &AccountKind::SandboxBalance],
        ),
    ];
    for (sql, params) in checks {
        if let Some(violation) = first(sql, params)? {
            return Err(violation);
        }
    }
    let count =
        |sql: &str| -> Result<i64, String> { conn.query_row(sql, params![], |r| r.get(0)).map_err(|e| e.to_string()) };
    Ok(LedgerSummary {
        entries: count("SELECT COUNT(*) FROM journal_entries")?,
        postings: count("SELECT COUNT(*) FROM postings")?,
        accounts: count("SELECT COUNT(*) FROM ledger_accounts")?,
    })
}
