//! Settlement: merchants are paid what they are owed through the rail bound
//! to their payout account (the sandbox simulator for test mode), with a
//! report, events and the ledger moving pending → in transit → paid out.

use reqwest::Method;
use serde_json::{Value, json};
use soxara::config::{FileConfig, SettlementSettings};
use soxara_tests::{TestApp, momo, new_key, spawn_app_with};

/// Money collected this long ago is settled (a day, as by default: the
/// tests move the gateway's clock past it).
const HOLD_MS: u64 = 86_400_000;

async fn gateway() -> TestApp {
    // The batch only when the test runs it.
    let settlement = SettlementSettings { interval_ms: 0, hold_ms: HOLD_MS };
    spawn_app_with(FileConfig { settlement, ..FileConfig::default() }).await
}

async fn payout_account(app: &TestApp, destination: &str) {
    let body = json!({ "mode": "test", "currency": "USD", "method": "mtn_momo", "destination": destination });
    let set =
        app.admin(Method::PUT, &format!("/admin/merchants/{}/payout_accounts", app.merchant_id), Some(body)).await;
    assert_eq!(set.status, 200, "{:?}", set.body);
}

async fn run(app: &TestApp) -> Value {
    let batch = app.admin(Method::POST, "/admin/settlements/run", None).await;
    assert_eq!(batch.status, 200, "{:?}", batch.body);
    batch.body
}

async fn usd_balance(app: &TestApp) -> Value {
    let answer = app.get(&app.key, "/v1/balance").await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["balances"].as_array().unwrap().iter().find(|b| b["currency"] == "USD").cloned().unwrap_or(Value::Null)
}

async fn pay(app: &TestApp, amount: u64) -> Value {
    let paid = app.pay(&app.key, Some(&new_key()), &momo(amount, "USD", "+231770001234")).await;
    assert_eq!(paid.body["status"], "completed", "{:?}", paid.body);
    paid.body
}

#[tokio::test]
async fn a_settlement_pays_out_what_was_collected_before_the_cutoff() {
    let app = gateway().await;
    payout_account(&app, "+231770009876").await;
    let early = pay(&app, 2_000).await;
    app.advance_clock(HOLD_MS + 300);
    let late = pay(&app, 5_000).await;
    let (early_net, late_net) = (early["net_amount"].as_i64().unwrap(), late["net_amount"].as_i64().unwrap());

    let before = usd_balance(&app).await;
    assert_eq!(before["pending"], early_net + late_net);
    assert_eq!(before["available"], early_net, "only money held long enough is available: {before}");

    let batch = run(&app).await;
    let settlements = batch["settlements"].as_array().unwrap();
    assert_eq!(settlements.len(), 1, "{batch}");
    let settlement = &settlements[0];
    assert_eq!(settlement["amount"], early_net);
    assert_eq!(settlement["status"], "paid", "{settlement}");
    assert_eq!(settlement["payout"], json!({ "method": "mtn_momo", "destination": "+231770009876" }));
    assert_eq!(settlement["entity"], early["entity"]);

    let after = usd_balance(&app).await;
    assert_eq!((after["pending"].as_i64(), after["available"].as_i64()), (Some(late_net), Some(0)), "{after}");
    assert_eq!(after["in_transit"], 0);
    app.verify().expect("the ledger balances");

    // The report: what the settlement covered, and nothing after the cutoff.
    let id = settlement["id"].as_str().unwrap();
    let report = app.get(&app.key, &format!("/v1/settlements/{id}")).await;
    assert_eq!(report.status, 200, "{:?}", report.body);
    let lines = report.body["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        (lines[0]["transaction_id"].as_str(), lines[0]["amount"].as_i64()),
        (early["id"].as_str(), Some(early_net))
    );
    let listed = app.get(&app.key, "/v1/settlements").await;
    assert_eq!(listed.body["data"][0]["id"], id);
    // Also a transaction like any other, by id and `?type=settlement`.
    let found = app.get(&app.key, &format!("/v1/transactions/{id}?type=settlement")).await;
    assert_eq!((found.status.as_u16(), found.body["id"].as_str()), (200, Some(id)), "{:?}", found.body);
    assert_eq!(found.body["status"], "paid");
    assert_eq!(app.get(&app.key, &format!("/v1/transactions/{id}?type=payment")).await.status, 404);
    let events = format!("SELECT count(*) FROM events WHERE type = 'settlement.paid' AND object_id = '{id}'");
    assert_eq!(app.count(&events).await, 1);

    // Run again at once: nothing more is settleable, nothing is paid twice.
    assert_eq!(run(&app).await["settlements"], json!([]));
    assert_eq!(app.count("SELECT count(*) FROM settlements").await, 1);
    // Other merchants never see it.
    let (_, other) = app.create_merchant("Other shop").await;
    assert_eq!(app.get(&other, &format!("/v1/settlements/{id}")).await.status, 404);
    assert_eq!(app.get(&other, &format!("/v1/transactions/{id}")).await.status, 404);
    assert_eq!(app.get(&other, "/v1/settlements").await.body["data"], json!([]));
}

#[tokio::test]
async fn a_failed_payout_returns_the_money_to_pending_for_the_next_batch() {
    let app = gateway().await;
    // The sandbox fails payouts to numbers ending 0000.
    payout_account(&app, "+231770000000").await;
    let paid = pay(&app, 3_000).await;
    let net = paid["net_amount"].as_i64().unwrap();
    app.advance_clock(HOLD_MS + 300);

    let batch = run(&app).await;
    let settlement = &batch["settlements"][0];
    assert_eq!(settlement["status"], "failed", "{batch}");
    assert_eq!(settlement["failure"]["code"], "PAYOUT_FAILED");
    let balance = usd_balance(&app).await;
    assert_eq!((balance["pending"].as_i64(), balance["available"].as_i64()), (Some(net), Some(net)), "{balance}");
    assert_eq!(balance["in_transit"], 0);
    let id = settlement["id"].as_str().unwrap();
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM events WHERE type = 'settlement.failed' AND object_id = '{id}'"))
            .await,
        1
    );

    // The merchant fixes their payout account; the next batch pays it.
    payout_account(&app, "+231770009876").await;
    let batch = run(&app).await;
    assert_eq!(
        (batch["settlements"][0]["status"].as_str(), batch["settlements"][0]["amount"].as_i64()),
        (Some("paid"), Some(net))
    );
    assert_eq!(usd_balance(&app).await["pending"], 0);
    // Its report lists the payment the failed one could not pay.
    let retry = batch["settlements"][0]["id"].as_str().unwrap();
    let report = app.get(&app.key, &format!("/v1/settlements/{retry}")).await;
    assert_eq!(report.body["lines"][0]["transaction_id"], paid["id"], "{:?}", report.body);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_payout_still_processing_keeps_the_money_in_transit() {
    let app = gateway().await;
    // The sandbox leaves payouts to numbers ending 9999 processing.
    payout_account(&app, "+231779999999").await;
    let paid = pay(&app, 1_500).await;
    let net = paid["net_amount"].as_i64().unwrap();
    app.advance_clock(HOLD_MS + 300);
    let batch = run(&app).await;
    assert_eq!(batch["settlements"][0]["status"], "processing", "{batch}");
    let balance = usd_balance(&app).await;
    assert_eq!((balance["pending"].as_i64(), balance["in_transit"].as_i64()), (Some(0), Some(net)), "{balance}");
    // A second batch does not pay it again while it is on its way.
    assert_eq!(run(&app).await["settlements"], json!([]));
    let due = "SELECT count(*) FROM settlements s JOIN status_checks c ON c.operation_id = s.id
               WHERE s.status = 'processing' AND c.next_check_at IS NOT NULL";
    assert_eq!(app.count(due).await, 1, "status checks will follow it");
}

#[tokio::test]
async fn merchants_without_a_payout_account_are_skipped_with_a_reason() {
    let app = gateway().await;
    pay(&app, 1_000).await;
    app.advance_clock(HOLD_MS + 300);
    let batch = run(&app).await;
    assert_eq!(batch["settlements"], json!([]));
    assert_eq!(batch["skipped"][0]["merchant_id"], app.merchant_id.as_str());
    assert!(batch["skipped"][0]["reason"].as_str().unwrap().contains("no payout account"), "{batch}");

    let bad = app
        .admin(
            Method::PUT,
            &format!("/admin/merchants/{}/payout_accounts", app.merchant_id),
            Some(json!({ "mode": "test", "currency": "EUR", "method": "pigeon", "destination": "12" })),
        )
        .await;
    assert_eq!(bad.status, 400);
    let fields: Vec<&str> =
        bad.body["error"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["currency", "method", "destination"]);
}

#[tokio::test]
async fn the_batch_runs_on_its_own_by_the_clock_and_a_restart_does_not_repeat_it() {
    // A batch every hour, money settleable at once.
    let settlement = SettlementSettings { interval_ms: 3_600_000, hold_ms: 0 };
    let mut app = spawn_app_with(FileConfig { settlement, ..FileConfig::default() }).await;
    payout_account(&app, "+231770009876").await;
    let paid = pay(&app, 2_000).await;
    // No batch has ever run, so one is due: the worker's first look, a
    // second after the start, makes it.
    let batch = "SELECT count(*) FROM settlement_batches";
    app.advance_past_worker("settlements", 1_000).await;
    assert_eq!(app.count(batch).await, 1);
    let settled = app.get(&app.key, "/v1/settlements").await.body["data"][0].clone();
    assert_eq!((settled["status"].as_str(), settled["amount"].as_i64()), (Some("paid"), paid["net_amount"].as_i64()));

    // A restart within the hour does not run another batch: the restarted
    // worker looks (a second after the start) and finds the last batch too
    // recent.
    pay(&app, 1_000).await;
    app.restart().await;
    app.advance_past_worker("settlements", 1_000).await;
    assert_eq!(app.count(batch).await, 1);
    assert_eq!(app.count("SELECT count(*) FROM settlements").await, 1);
    // An hour after the first, the next batch runs and pays what came since.
    app.advance_past_worker("settlements", 3_600_000).await;
    assert_eq!(app.count(batch).await, 2);
    assert_eq!(app.count("SELECT count(*) FROM settlements").await, 2);
}
