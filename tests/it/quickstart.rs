//! The quickstart as a merchant follows it: `examples/quickstart/quickstart.sh`
//! (bash and curl) against a real gateway; it stops at the first answer that
//! is not what the docs promise.

use std::process::{Command, Output};

use soxara::config::{FileConfig, RateLimitSettings};
use soxara_tests::{TestApp, spawn_app, spawn_app_rate_limited};

/// Runs the script with `base` and `key`, off the async threads (the gateway
/// answers it on them).
async fn run_quickstart(base: &str, key: &str) -> Output {
    run_script("quickstart.sh", base, key).await
}

/// Runs `examples/quickstart/{name}` with `base` and `key`.
async fn run_script(name: &str, base: &str, key: &str) -> Output {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart").join(name);
    let (base, key) = (base.to_string(), key.to_string());
    tokio::task::spawn_blocking(move || {
        Command::new("bash").arg(&script).env("SOXARA_BASE", base).env("SOXARA_KEY", key).output()
    })
    .await
    .expect("the script's thread")
    .expect("bash runs")
}

#[tokio::test]
async fn the_quickstart_script_runs_as_documented() {
    let app = spawn_app().await;
    let output = run_quickstart(&app.base, &app.key).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the quickstart failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all steps behaved as documented"), "{stdout}");
    // It really made the payments it says it did.
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 3);
    assert_eq!(app.count("SELECT COUNT(*) FROM refunds WHERE amount = 250 AND status = 'completed'").await, 1);
    app.verify().expect("the ledger holds");
}

#[tokio::test]
async fn the_transfer_script_sends_money_to_a_new_number_that_claims_it() {
    let app = spawn_app().await;
    let output = run_script("transfer.sh", &app.base, &app.key).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the transfer walk-through failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all steps behaved as documented"), "{stdout}");
    assert_eq!(app.count("SELECT COUNT(*) FROM transfers WHERE status = 'completed' AND amount = 2500").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM customers WHERE joined_by = 'transfer_claim'").await, 1);
    app.verify().expect("the ledger holds");
}

#[tokio::test]
async fn the_quickstart_script_refuses_a_wrong_key_and_says_why() {
    let app = spawn_app().await;
    let output = run_quickstart(&app.base, "sxm_test_sk_not_a_real_key_0000000000").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("expected HTTP 201, got 401"), "{stderr}");
}

#[tokio::test]
async fn the_rust_merchant_client_pays_replays_and_refunds() {
    use merchant_client::{Client, Error, NewPayment};
    let app = spawn_app().await;
    let (base, key) = (app.base.clone(), app.key.clone());
    tokio::task::spawn_blocking(move || {
        let client = Client::new(&base, &key);
        let order = NewPayment::mobile_money(1250, "USD", "mtn_momo", "+231770001234").description("Order 42");
        let paid = client.create_payment_with_key("order-42", &order).expect("paid");
        assert_eq!((paid.status.as_str(), paid.fee, paid.net_amount, paid.livemode), ("completed", 12, 1238, false));
        let again = client.create_payment_with_key("order-42", &order).expect("replayed");
        assert_eq!(again.id, paid.id, "the same key is the same payment");

        let declined = client.create_payment(&NewPayment::card(2000, "USD", "4000000000009995")).expect("answered");
        assert_eq!(declined.failure.expect("a failure").code, "INSUFFICIENT_FUNDS");

        let refund = client.refund(&paid.id, Some(250)).expect("refunded");
        assert_eq!((refund.status.as_str(), refund.amount), ("completed", 250));
        assert_eq!(client.payment(&paid.id).expect("read").amount_refunded, 250);

        let too_much = client.refund(&paid.id, Some(5_000)).expect_err("more than is left");
        assert!(matches!(too_much, Error::Api { status: 400..=422, .. }), "{too_much}");
        let wrong_key = Client::new(&base, "sxm_test_sk_wrong_key_000000000000000000");
        let refused = wrong_key.payment(&paid.id).expect_err("unauthorized");
        assert!(matches!(&refused, Error::Api { status: 401, .. }), "{refused}");
        let nobody = Client::new("http://127.0.0.1:9", &key);
        let lost = nobody.create_payment_with_key("order-43", &order).expect_err("nothing listens there");
        assert!(lost.to_string().contains("/v1/transactions/order-43"), "{lost}");
    })
    .await
    .expect("the client's thread");
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 2);
    app.verify().expect("the ledger holds");
}

/// A gateway whose test keys may make `per_minute` requests a minute, with
/// the sandbox key's burst already spent.
async fn rate_limited_and_spent(per_minute: u32) -> TestApp {
    let rate_limits = RateLimitSettings { live_per_minute: 300, test_per_minute: per_minute };
    let app = spawn_app_rate_limited(FileConfig { rate_limits, ..Default::default() }).await;
    for _ in 0..=per_minute {
        if app.get(&app.key, "/v1/payments/pay_0000000000000000000000").await.status == 429 {
            return app;
        }
    }
    panic!("no 429 after {per_minute} + 1 requests");
}

#[tokio::test]
async fn the_quickstart_script_waits_out_the_rate_limit() {
    // 60 a minute: a request a second once the burst is spent, so the
    // script's calls (far quicker than that) meet 429s.
    let app = rate_limited_and_spent(60).await;
    let output = run_quickstart(&app.base, &app.key).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the quickstart failed:\n{stdout}\n{stderr}");
    assert!(stderr.contains("rate limited: waiting 1 s"), "{stderr}");
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 3, "each payment made once");
}

#[tokio::test]
async fn the_rust_merchant_client_waits_out_the_rate_limit() {
    use merchant_client::{Client, NewPayment};
    let app = rate_limited_and_spent(120).await;
    let (base, key) = (app.base.clone(), app.key.clone());
    let paid = tokio::task::spawn_blocking(move || {
        let order = NewPayment::mobile_money(1250, "USD", "mtn_momo", "+231770001234");
        Client::new(&base, &key).create_payment_with_key("order-7", &order).expect("paid after the wait")
    })
    .await
    .expect("the client's thread");
    assert_eq!(paid.status, "completed");
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 1);
}

#[tokio::test]
async fn the_bills_script_buys_as_documented() {
    let app = spawn_app().await;
    let output = run_script("bills.sh", &app.base, &app.key).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the bills walk-through failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all steps behaved as documented"), "{stdout}");
    assert_eq!(app.count("SELECT COUNT(*) FROM bill_payments WHERE status = 'completed' AND amount = 250000").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM bill_payments WHERE status = 'processing'").await, 1);
    app.verify().expect("the ledger holds");
}

#[tokio::test]
async fn the_trades_script_trades_as_documented() {
    let app = spawn_app().await;
    let output = run_script("trades.sh", &app.base, &app.key).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the trades walk-through failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all steps behaved as documented"), "{stdout}");
    for table in ["rmb_purchases", "gift_card_sales", "crypto_sales"] {
        let completed = app.count(&format!("SELECT COUNT(*) FROM {table} WHERE status = 'completed'")).await;
        assert_eq!(completed, 1, "{table}");
    }
    app.verify().expect("the ledger holds");
}
