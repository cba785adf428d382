use soxara_tests::{momo, new_key, spawn_app};

/// Sums of postings per (mode, currency) across the whole ledger.
const UNBALANCED_CURRENCIES: &str = "SELECT COUNT(*) FROM (
    SELECT a.mode, a.currency, SUM(p.amount) AS total FROM postings p
    JOIN ledger_accounts a ON a.id = p.account_id GROUP BY a.mode, a.currency HAVING total <> 0)";
const UNBALANCED_ENTRIES: &str = "SELECT COUNT(*) FROM (
    SELECT p.entry_id, a.currency, SUM(p.amount) AS total FROM postings p
    JOIN ledger_accounts a ON a.id = p.account_id GROUP BY p.entry_id, a.currency HAVING total <> 0)";

#[tokio::test]
async fn a_completed_payment_posts_one_balanced_entry() {
    let app = spawn_app().await;
    let paid = app.pay(&app.key, Some(&new_key()), &momo(10_000, "LRD", "+231770001234")).await;
    let id = paid.body["id"].as_str().unwrap();
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM journal_entries WHERE transaction_id = '{id}' AND kind = 'payment'"))
            .await,
        1
    );
    assert_eq!(app.count(UNBALANCED_ENTRIES).await, 0);
    assert_eq!(app.count(UNBALANCED_CURRENCIES).await, 0);

    let merchant = app.merchant_id.clone();
    let app = &app;
    let balance = |kind: &'static str, owner: String| {
        let sql = format!(
            "SELECT SUM(p.amount) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
             WHERE a.kind = '{kind}' AND a.owner = '{owner}' AND a.currency = 'LRD' AND a.mode = 'test'"
        );
        async move { app.count(&sql).await }
    };
    assert_eq!(balance("merchant_pending", merchant).await, -9_900, "the merchant is owed the net amount");
    assert_eq!(balance("fee_revenue", "platform".into()).await, -100, "the platform earned 1%");
    assert_eq!(balance("rail_clearing", "rail:simulator".into()).await, 10_000, "the rail owes the gross amount");
}

#[tokio::test]
async fn refunded_nets_to_zero_and_processing_posts_nothing() {
    let app = spawn_app().await;
    let refunded = app.pay(&app.key, Some(&new_key()), &momo(5_000, "USD", "+231770000000")).await;
    let processing = app.pay(&app.key, Some(&new_key()), &momo(5_000, "USD", "+231779999999")).await;
    let entries = |id: &str| format!("SELECT COUNT(*) FROM journal_entries WHERE transaction_id = '{id}'");
    assert_eq!(app.count(&entries(refunded.body["id"].as_str().unwrap())).await, 2, "payment and its refund");
    assert_eq!(app.count(&entries(processing.body["id"].as_str().unwrap())).await, 0);
    let net = app.count("SELECT SUM(p.amount) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id WHERE a.kind = 'merchant_pending'").await;
    assert_eq!(net, 0);
    assert_eq!(app.count(UNBALANCED_ENTRIES).await, 0);
}

#[tokio::test]
async fn the_journal_is_append_only() {
    let app = spawn_app().await;
    app.pay(&app.key, Some(&new_key()), &momo(1_000, "USD", "+231770001234")).await;
    let tamper =
        app.state().ops.store.write(|conn| Ok(conn.execute("UPDATE postings SET amount = amount + 1", [])?)).await;
    assert!(tamper.is_err(), "postings cannot be changed");
    // An entry without postings, so that only the trigger (not a foreign key) can refuse its deletion.
    let delete = app
        .state()
        .ops
        .store
        .write(|conn| {
            conn.execute(
                "INSERT INTO journal_entries (mode, kind, transaction_id, created_at) VALUES ('test', 'x', 'tx', 0)",
                [],
            )?;
            Ok(conn.execute("DELETE FROM journal_entries WHERE transaction_id = 'tx'", [])?)
        })
        .await;
    let error = delete.expect_err("entries cannot be deleted").to_string();
    assert!(error.contains("append-only"), "{error}");
    let tamper_error =
        app.state().ops.store.write(|conn| Ok(conn.execute("UPDATE postings SET amount = amount + 1", [])?)).await;
    assert!(tamper_error.expect_err("postings cannot change").to_string().contains("append-only"));
}
