//! `verify` passes on a healthy ledger and names each kind of corruption.

use serde_json::json;
use soxara_tests::{TestApp, new_key, spawn_app};

const ALICE: &str = "+231770001234";

/// A gateway with a bit of everything in its ledger.
async fn busy_app() -> TestApp {
    let app = spawn_app().await;
    app.top_up(ALICE, 10_000, "USD").await;
    let wallet = json!({"amount": 1_000, "currency": "USD", "method": "wallet", "customer": {"phone": ALICE}});
    let paid = app.pay(&app.key, Some(&new_key()), &wallet.to_string()).await;
    assert_eq!(app.approve_and_get(&app.key, &paid, "/v1/payments").await.body["status"], "completed");
    let momo = soxara_tests::momo(5_000, "LRD", "+231770000000");
    assert_eq!(app.pay(&app.key, Some(&new_key()), &momo).await.status, 201);
    let quote = app.get(&app.key, "/v1/fx/quote?from=USD&to=LRD&amount=1234").await;
    let swap = json!({"quote_id": quote.body["id"], "customer": {"phone": ALICE}});
    let swapped = app.post(&app.key, "/v1/fx/swaps", &new_key(), &swap).await;
    assert_eq!(app.approve_and_get(&app.key, &swapped, "/v1/transactions").await.body["status"], "completed");
    app
}

/// Runs SQL straight on the file, past the append-only triggers.
fn tamper(app: &TestApp, sql: &str) {
    let conn = rusqlite::Connection::open(&app.database).unwrap();
    conn.execute_batch(
        "DROP TRIGGER IF EXISTS postings_append_only_update; DROP TRIGGER IF EXISTS postings_append_only_delete;
         DROP TRIGGER IF EXISTS journal_entries_append_only_update;",
    )
    .unwrap();
    conn.execute_batch(sql).unwrap();
}

#[tokio::test]
async fn a_healthy_ledger_verifies() {
    let app = busy_app().await;
    let summary = app.verify().expect("every invariant holds");
    assert!(summary.entries >= 5 && summary.postings >= 12, "{summary:?}");
}

#[tokio::test]
async fn each_kind_of_corruption_is_named() {
    let cases = [
        (
            "DELETE FROM postings WHERE id = (SELECT MIN(p.id) FROM postings p JOIN journal_entries e ON e.id = p.entry_id WHERE e.kind = 'top_up')",
            "postings",
        ),
        ("UPDATE postings SET amount = amount + 1 WHERE id = (SELECT MIN(id) FROM postings)", "does not balance"),
        ("UPDATE ledger_accounts SET mode = 'live' WHERE kind = 'sandbox_funding'", "balances sum to"),
        ("UPDATE journal_entries SET mode = 'live' WHERE kind = 'swap'", "posts to test account"),
        (
            "INSERT INTO journal_entries (mode, kind, transaction_id, created_at) VALUES ('test', 'forged', 'tx_forged', 0);
             INSERT INTO postings (entry_id, account_id, amount) VALUES
               ((SELECT MAX(id) FROM journal_entries), (SELECT id FROM ledger_accounts WHERE kind = 'customer_wallet' AND currency = 'USD'), 100000),
               ((SELECT MAX(id) FROM journal_entries), (SELECT id FROM ledger_accounts WHERE kind = 'fee_revenue' AND currency = 'USD'), -100000);",
            "below zero",
        ),
        (
            "INSERT INTO idempotency_keys (merchant_id, mode, key, fingerprint, transaction_id, created_at)
             SELECT merchant_id, mode, key || '-copy', fingerprint, transaction_id, created_at FROM idempotency_keys LIMIT 1",
            "idempotency keys",
        ),
    ];
    for (sql, expected) in cases {
        let app = busy_app().await;
        app.verify().expect("healthy before tampering");
        tamper(&app, sql);
        let violation = app.verify().expect_err(sql);
        assert!(violation.contains(expected), "{sql}\n→ {violation}");
    }
}
