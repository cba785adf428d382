//! Live MTN Mobile Money payments: the real `mtn-momo` component, bound for
//! live `mtn_momo`, talking to a fake MTN MoMo API on a loopback port.
//! Request → plugin → provider → callback or status check → final status,
//! with ledger entries and webhooks; and never a second charge.

use std::time::Duration;

use serde_json::{Value, json};
use soxara_tests::fakes::WebhookSink;
use soxara_tests::fakes::mtn::{self, FakeMtn, Fault};
use soxara_tests::{Answer, TestApp, live_rail_config, momo, new_key, spawn_app_with_live_key, wait_for};

/// A gateway whose live `mtn_momo` payments (and their refunds) go to
/// `fake`. Status checks come every `check_ms` (make it long to see
/// callbacks do the work).
async fn gateway(fake: &FakeMtn, api_key: &str, check_ms: u64) -> (TestApp, String) {
    gateway_with(fake, api_key, check_ms, true).await
}

/// As [`gateway`]; `disbursement`: whether the operator configured MTN's
/// disbursement product (which refunds need).
async fn gateway_with(fake: &FakeMtn, api_key: &str, check_ms: u64, disbursement: bool) -> (TestApp, String) {
    let settings = rail_settings(fake, api_key, disbursement);
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut config = live_rail_config("mtn_momo", "mtn-momo", &settings, check_ms);
    config.webhooks.allow_private_targets = true;
    config.webhooks.allow_plain_http_live = true;
    config.webhooks.poll_interval_ms = 20;
    spawn_app_with_live_key(config).await
}

fn rail_settings(fake: &FakeMtn, api_key: &str, disbursement: bool) -> Vec<(&'static str, String)> {
    let mut settings = vec![
        ("base_url", fake.url()),
        ("subscription_key", mtn::SUBSCRIPTION_KEY.to_string()),
        ("api_user", mtn::API_USER.to_string()),
        ("api_key", api_key.to_string()),
        ("target_environment", mtn::TARGET_ENVIRONMENT.to_string()),
    ];
    if disbursement {
        settings.push(("disbursement_subscription_key", mtn::DISBURSEMENT_SUBSCRIPTION_KEY.to_string()));
    }
    settings
}

/// The object at `path` (`/v1/payments/{id}`, `/v1/refunds/{id}`).
async fn read(app: &TestApp, key: &str, path: &str) -> Value {
    let answer = app.get(key, path).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body
}

/// Waits until the object at `path` leaves `processing`, and returns it.
async fn settled_at(app: &TestApp, key: &str, path: &str) -> Value {
    wait_for(&format!("{path} to settle"), || async {
        let body = read(app, key, path).await;
        (body["status"] != "processing").then_some(body)
    })
    .await
}

async fn payment(app: &TestApp, key: &str, id: &str) -> Value {
    read(app, key, &format!("/v1/payments/{id}")).await
}

async fn settled(app: &TestApp, key: &str, id: &str) -> Value {
    settled_at(app, key, &format!("/v1/payments/{id}")).await
}

fn id(answer: &Answer) -> String {
    answer.body["id"].as_str().unwrap_or_else(|| panic!("no payment id in {:?}", answer.body)).to_string()
}

#[tokio::test]
async fn a_live_payment_completes_through_the_callback_with_ledger_and_webhooks() {
    let fake = FakeMtn::start().await;
    // Status checks an hour away: only the callback can settle it in time.
    let (app, live_key) = gateway(&fake, mtn::API_KEY, 3_600_000).await;
    let sink = WebhookSink::start().await;
    let endpoint = app
        .client
        .post(format!("{}/v1/webhook_endpoints", app.base))
        .bearer_auth(&live_key)
        .json(&json!({ "url": sink.url(), "events": ["payment.succeeded"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(endpoint.status(), 201);

    let paid = app.pay(&live_key, Some(&new_key()), &momo(1_250, "USD", "+231770001234")).await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    // A request to pay waits for the customer (the callback normally comes
    // after this answer; if it wins, the answer is already the final one).
    assert!(matches!(paid.body["status"].as_str(), Some("processing" | "completed")), "{:?}", paid.body);
    assert_eq!(paid.body["livemode"], true);
    assert_eq!(paid.body["entity"], "Phoenix Hub Liberia, Inc.");
    let payment_id = id(&paid);

    let done = settled(&app, &live_key, &payment_id).await;
    assert_eq!(done["status"], "completed", "{done:?}");
    assert_eq!(done["provider_reference"], paid.body["provider_reference"]);
    assert_eq!(fake.callbacks_sent(), 1);
    assert_eq!(fake.charges_for(&payment_id), 1);
    let sent = fake.request_body(&payment_id).unwrap();
    assert_eq!(sent["amount"], "12.50");
    assert_eq!(sent["payer"]["partyId"], "231770001234");

    let entries = app
        .count(&format!("SELECT count(*) FROM journal_entries WHERE transaction_id = '{payment_id}' AND kind = 'payment' AND mode = 'live'"))
        .await;
    assert_eq!(entries, 1);
    app.verify().expect("the ledger balances");
    let delivered = wait_for("payment.succeeded delivered", || async {
        sink.accepted().into_iter().find(|r| r.json()["data"]["object"]["id"] == payment_id.as_str())
    })
    .await;
    assert_eq!(delivered.json()["event"], "payment.succeeded");
    assert_eq!(delivered.json()["livemode"], true);
}

#[tokio::test]
async fn a_declined_request_fails_with_a_clear_code_and_posts_nothing() {
    let fake = FakeMtn::start().await;
    fake.set_callbacks(false);
    let (app, live_key) = gateway(&fake, mtn::API_KEY, 100).await;
    // MTN's sandbox number for "the payer rejected the request".
    let paid = app.pay(&live_key, Some(&new_key()), &momo(500, "LRD", "+46733123451")).await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    let payment_id = id(&paid);
    let done = settled(&app, &live_key, &payment_id).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["failure"]["code"], "CUSTOMER_DECLINED", "{done:?}");
    assert!(done["failure"]["message"].as_str().unwrap().contains("rejected"));
    let entries =
        app.count(&format!("SELECT count(*) FROM journal_entries WHERE transaction_id = '{payment_id}'")).await;
    assert_eq!(entries, 0, "a failed collection moves no money");
    let failed_events = app
        .count(&format!("SELECT count(*) FROM events WHERE object_id = '{payment_id}' AND type = 'payment.failed'"))
        .await;
    assert_eq!(failed_events, 1);
}

#[tokio::test]
async fn a_provider_timeout_leaves_it_processing_and_a_status_check_settles_it_without_a_second_charge() {
    let fake = FakeMtn::start().await;
    fake.set_callbacks(false);
    // MTN stores the request but answers after the host's 4 s HTTP deadline.
    fake.push_fault(Fault::SlowAccept(Duration::from_millis(8_000)));
    let (app, live_key) = gateway(&fake, mtn::API_KEY, 200).await;
    let key = new_key();
    let body = momo(2_000, "USD", "+231770004321");
    let paid = app.pay(&live_key, Some(&key), &body).await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    assert_eq!(paid.body["status"], "processing");
    let payment_id = id(&paid);

    let done = settled(&app, &live_key, &payment_id).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(fake.request_to_pay_posts(), 1, "the status check asked; it did not request again");
    assert_eq!(fake.charges_for(&payment_id), 1);
    // The merchant's retry answers from the key: no new payment.
    let again = app.pay(&live_key, Some(&key), &body).await;
    assert_eq!(again.headers.get("idempotency-replayed").unwrap(), "true");
    assert_eq!(id(&again), payment_id);
    assert_eq!(app.count("SELECT count(*) FROM payments WHERE mode = 'live'").await, 1);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_5xx_is_sent_again_under_the_same_reference_and_charges_once() {
    let fake = FakeMtn::start().await;
    fake.set_callbacks(false);
    fake.push_fault(Fault::ServerError);
    let (app, live_key) = gateway(&fake, mtn::API_KEY, 100).await;
    let paid = app.pay(&live_key, Some(&new_key()), &momo(700, "USD", "+231770005555")).await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    assert_eq!(paid.body["status"], "processing", "a 5xx may hide an accepted request");
    let payment_id = id(&paid);
    let done = settled(&app, &live_key, &payment_id).await;
    assert_eq!(done["status"], "completed");
    // First POST got the 500; the status check found nothing (404) and sent
    // it again under the same X-Reference-Id.
    assert_eq!(fake.request_to_pay_posts(), 2);
    assert_eq!(fake.charges_for(&payment_id), 1);
}

#[tokio::test]
async fn a_slow_approval_is_settled_by_repeated_status_checks() {
    let fake = FakeMtn::start().await;
    fake.set_callbacks(false);
    let (app, live_key) = gateway(&fake, mtn::API_KEY, 50).await;
    // MTN's sandbox "delayed" payer: pending for three status reads.
    let paid = app.pay(&live_key, Some(&new_key()), &momo(900, "USD", "+46733123454")).await;
    let payment_id = id(&paid);
    let done = settled(&app, &live_key, &payment_id).await;
    assert_eq!(done["status"], "completed");
    let checks = app.count(&format!("SELECT checks FROM status_checks WHERE operation_id = '{payment_id}'")).await;
    assert!(checks >= 4, "three pending answers, then the final one: {checks}");
    assert_eq!(fake.charges_for(&payment_id), 1);
}

#[tokio::test]
async fn a_forged_callback_cannot_settle_a_payment() {
    let fake = FakeMtn::start().await;
    fake.set_callbacks(false);
    let (app, live_key) = gateway(&fake, mtn::API_KEY, 3_600_000).await;
    // MTN's sandbox "ongoing" payer: pending for ever.
    let paid = app.pay(&live_key, Some(&new_key()), &momo(900, "USD", "+46733123453")).await;
    let payment_id = id(&paid);
    let callback_url = format!("{}/v1/callbacks/mtn-momo", app.base);

    // The body claims success, but MTN (asked by the plugin) says pending.
    let forged = json!({ "status": "SUCCESSFUL", "externalId": payment_id, "amount": "9.00", "currency": "USD" });
    let answer = soxara_tests::answer(app.client.put(&callback_url).json(&forged).send().await.unwrap()).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "processing");
    assert_eq!(payment(&app, &live_key, &payment_id).await["status"], "processing");

    // A callback naming a payment MTN never saw is refused.
    let sandbox = app.pay(&app.key, Some(&new_key()), &momo(100, "USD", "+231779999999")).await;
    assert_eq!(sandbox.body["status"], "processing");
    let other = json!({ "status": "SUCCESSFUL", "externalId": id(&sandbox) });
    let answer = soxara_tests::answer(app.client.post(&callback_url).json(&other).send().await.unwrap()).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.code(), "CALLBACK_REJECTED");
    assert!(!answer.body.to_string().contains("MTN"), "callers learn a code, not the plugin's message");

    // Even if the provider (or the plugin) claims success for it, the host
    // never lets the MTN rail settle the simulator's payment.
    fake.claim_unknown_references_successful();
    let answer = soxara_tests::answer(app.client.post(&callback_url).json(&other).send().await.unwrap()).await;
    assert_eq!(answer.code(), "CALLBACK_REJECTED", "{:?}", answer.body);
    assert_eq!(payment(&app, &app.key, &id(&sandbox)).await["status"], "processing");
    let garbage = soxara_tests::answer(app.client.post(&callback_url).body("not json").send().await.unwrap()).await;
    assert_eq!(garbage.code(), "CALLBACK_REJECTED");
    let unknown = soxara_tests::answer(
        app.client.post(format!("{}/v1/callbacks/no-such-rail", app.base)).json(&forged).send().await.unwrap(),
    )
    .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn wrong_credentials_fail_the_payment_without_revealing_them() {
    let fake = FakeMtn::start().await;
    let wrong_key = "wrong-secret-api-key-7c1e";
    let (app, live_key) = gateway(&fake, wrong_key, 100).await;
    let paid = app.pay(&live_key, Some(&new_key()), &momo(1_000, "USD", "+231770001234")).await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    assert_eq!(paid.body["status"], "failed");
    assert_eq!(paid.body["failure"]["code"], "PROVIDER_AUTH_FAILED");
    assert_eq!(fake.request_to_pay_posts(), 0, "nothing was asked of the customer");
    let text = paid.body.to_string();
    for secret in [wrong_key, mtn::SUBSCRIPTION_KEY, mtn::API_USER] {
        assert!(!text.contains(secret), "{secret} leaked into {text}");
    }
}

#[tokio::test]
async fn test_keys_never_reach_the_live_rail() {
    let fake = FakeMtn::start().await;
    let (app, _live_key) = gateway(&fake, mtn::API_KEY, 100).await;
    let paid = app.pay(&app.key, Some(&new_key()), &momo(1_000, "USD", "+231770001234")).await;
    assert_eq!(paid.body["status"], "completed", "the sandbox simulator answered");
    assert_eq!(paid.body["livemode"], false);
    assert_eq!(fake.request_to_pay_posts(), 0);
}

#[tokio::test]
async fn a_callback_that_beats_the_first_answer_settles_it_once() {
    let fake = FakeMtn::start().await;
    // MTN stores the request and calls back (after 300 ms) before its own
    // 202 arrives (after 1.5 s).
    fake.push_fault(Fault::SlowAccept(Duration::from_millis(1_500)));
    let (app, live_key) = gateway(&fake, mtn::API_KEY, 3_600_000).await;
    let key = new_key();
    let body = momo(1_500, "USD", "+231770002222");
    let paid = app.pay(&live_key, Some(&key), &body).await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    assert_eq!(paid.body["status"], "completed", "the callback settled it while the rail was still waiting");
    let payment_id = id(&paid);
    let again = app.pay(&live_key, Some(&key), &body).await;
    assert_eq!(again.body["status"], "completed", "the key stores the final payment");
    let entries =
        app.count(&format!("SELECT count(*) FROM journal_entries WHERE transaction_id = '{payment_id}'")).await;
    assert_eq!(entries, 1, "posted once");
    let events = app.count(&format!("SELECT count(*) FROM events WHERE object_id = '{payment_id}'")).await;
    assert_eq!(events, 2, "payment.succeeded and transaction.completed, once each");
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_second_plugin_file_cannot_take_a_loaded_rails_name() {
    let fake = FakeMtn::start().await;
    let settings = rail_settings(&fake, mtn::API_KEY, true);
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut config = live_rail_config("mtn_momo", "mtn-momo", &settings, 100);
    // The copy is configured for the same (live) mode: the name is taken.
    let copy = config.plugins["mtn-momo"].clone();
    config.plugins.insert("impostor".into(), copy);
    let (app, _live_key) = spawn_app_with_live_key(config).await;
    let dir = tempfile::tempdir().unwrap();
    let impostor = dir.path().join("impostor.wasm");
    std::fs::copy(soxara_tests::plugin_dir().join("mtn-momo.wasm"), &impostor).unwrap();
    let loaded =
        app.admin(reqwest::Method::POST, "/admin/plugins", Some(json!({ "path": impostor.to_str().unwrap() }))).await;
    assert_ne!(loaded.status, 200, "{:?}", loaded.body);
    assert!(loaded.body.to_string().contains("unique"), "{:?}", loaded.body);
}

#[tokio::test]
async fn without_the_disbursement_product_a_refund_fails_clearly_and_moves_no_money() {
    let fake = FakeMtn::start().await;
    let (app, live_key) = gateway_with(&fake, mtn::API_KEY, 100, false).await;
    let paid = app.pay(&live_key, Some(&new_key()), &momo(1_000, "USD", "+231770001234")).await;
    let payment_id = id(&paid);
    assert_eq!(settled(&app, &live_key, &payment_id).await["status"], "completed");
    let refunded = app.post(&live_key, "/v1/refunds", &new_key(), &json!({ "payment_id": payment_id })).await;
    assert_eq!(refunded.status, 201, "{:?}", refunded.body);
    assert_eq!(refunded.body["status"], "failed");
    assert_eq!(refunded.body["failure"]["code"], "NOT_SUPPORTED");
    assert!(refunded.body["failure"]["message"].as_str().unwrap().contains("disbursement"), "{:?}", refunded.body);
    let refund_id = id(&refunded);
    assert_moved_no_money(&app, &live_key, &refund_id, &payment_id).await;
}

#[tokio::test]
async fn the_access_token_is_reused_and_replaced_when_mtn_revokes_it() {
    let fake = FakeMtn::start().await;
    let (app, live_key) = gateway(&fake, mtn::API_KEY, 100).await;
    for _ in 0..2 {
        let paid = app.pay(&live_key, Some(&new_key()), &momo(1_000, "USD", "+231770001234")).await;
        assert_eq!(settled(&app, &live_key, &id(&paid)).await["status"], "completed");
    }
    // A late callback checks status with the token too: let both finish, or
    // it may meet the revoked token alongside the next payment and fetch a
    // second replacement.
    fake.callbacks_settled().await;
    assert_eq!(fake.callbacks_sent(), 2);
    assert_eq!(fake.tokens_issued(), 1, "one token for two payments and their callbacks");

    fake.revoke_tokens();
    let paid = app.pay(&live_key, Some(&new_key()), &momo(1_000, "USD", "+231770001234")).await;
    assert_eq!(paid.body["status"], "processing", "a revoked cached token is replaced, not a failure: {:?}", paid.body);
    let payment_id = id(&paid);
    assert_eq!(settled(&app, &live_key, &payment_id).await["status"], "completed");
    assert_eq!(fake.tokens_issued(), 2);
    assert_eq!(fake.charges_for(&payment_id), 1);
}

/// A failed refund: no ledger entry, one `refund.failed`, nothing refunded.
async fn assert_moved_no_money(app: &TestApp, key: &str, refund_id: &str, payment_id: &str) {
    let entries = format!("SELECT count(*) FROM journal_entries WHERE transaction_id = '{refund_id}'");
    assert_eq!(app.count(&entries).await, 0);
    let events = format!("SELECT count(*) FROM events WHERE type = 'refund.failed' AND object_id = '{refund_id}'");
    assert_eq!(app.count(&events).await, 1);
    assert_eq!(payment(app, key, payment_id).await["amount_refunded"], 0);
}

async fn settled_refund(app: &TestApp, key: &str, id: &str) -> Value {
    settled_at(app, key, &format!("/v1/refunds/{id}")).await
}

/// A completed live MTN payment of `amount` USD, and its id.
async fn paid(app: &TestApp, key: &str, amount: u64) -> String {
    let paid = app.pay(key, Some(&new_key()), &momo(amount, "USD", "+231770001234")).await;
    let payment_id = id(&paid);
    assert_eq!(settled(app, key, &payment_id).await["status"], "completed");
    payment_id
}

#[tokio::test]
async fn a_refund_goes_back_through_mtn_disbursement_with_ledger_and_webhooks() {
    let fake = FakeMtn::start().await;
    let (app, live_key) = gateway(&fake, mtn::API_KEY, 100).await;
    let payment_id = paid(&app, &live_key, 1_000).await;
    let balance = fake.disbursement_balance();

    let refunded =
        app.post(&live_key, "/v1/refunds", &new_key(), &json!({ "payment_id": payment_id, "amount": 400 })).await;
    assert_eq!(refunded.status, 201, "{:?}", refunded.body);
    // MTN answers 202: the refund waits for a status check.
    assert_eq!(refunded.body["status"], "processing", "{:?}", refunded.body);
    let refund_id = id(&refunded);
    let done = settled_refund(&app, &live_key, &refund_id).await;
    assert_eq!(done["status"], "completed", "{done:?}");

    assert_eq!(fake.disbursements_for("refund", &refund_id), 1);
    assert_eq!(fake.disbursement_balance(), balance - 400);
    let body = fake.disbursement_body("refund", &refund_id).expect("MTN has the refund");
    assert_eq!(body["amount"], "4.00");
    assert_eq!(body["currency"], "USD");
    assert_eq!(body["referenceIdToRefund"], fake.request_reference(&payment_id).expect("MTN has the payment"));
    let entries = app
        .count(&format!(
            "SELECT count(*) FROM journal_entries WHERE transaction_id = '{refund_id}' AND kind = 'refund'"
        ))
        .await;
    assert_eq!(entries, 1);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM events WHERE type = 'refund.succeeded' AND object_id = '{refund_id}'"
        ))
        .await,
        1
    );
    let after = payment(&app, &live_key, &payment_id).await;
    assert_eq!(after["amount_refunded"], 400);
    assert_eq!(after["status"], "completed", "a partial refund leaves the payment completed");

    // The rest, then nothing is left: MTN is never asked for more.
    let rest = app.post(&live_key, "/v1/refunds", &new_key(), &json!({ "payment_id": payment_id })).await;
    assert_eq!(rest.status, 201, "{:?}", rest.body);
    assert_eq!(settled_refund(&app, &live_key, &id(&rest)).await["status"], "completed");
    assert_eq!(payment(&app, &live_key, &payment_id).await["status"], "refunded");
    let more = app.post(&live_key, "/v1/refunds", &new_key(), &json!({ "payment_id": payment_id })).await;
    assert_eq!(more.status, 422, "{:?}", more.body);
    assert_eq!(more.body["error"]["code"], "REFUND_NOT_ALLOWED");
    assert_eq!(fake.disbursement_balance(), balance - 1_000);
}

#[tokio::test]
async fn a_refund_mtn_cannot_fund_fails_with_a_clear_code_and_moves_no_money() {
    let fake = FakeMtn::start().await;
    let (app, live_key) = gateway(&fake, mtn::API_KEY, 100).await;
    let payment_id = paid(&app, &live_key, 1_000).await;
    fake.set_disbursement_balance(500);

    let refunded = app.post(&live_key, "/v1/refunds", &new_key(), &json!({ "payment_id": payment_id })).await;
    assert_eq!(refunded.status, 201, "{:?}", refunded.body);
    let refund_id = id(&refunded);
    let done = settled_refund(&app, &live_key, &refund_id).await;
    assert_eq!(done["status"], "failed", "{done:?}");
    assert_eq!(done["failure"]["code"], "PROVIDER_FUNDS_LOW", "{done:?}");
    assert_eq!(fake.disbursement_balance(), 500);
    assert_moved_no_money(&app, &live_key, &refund_id, &payment_id).await;
    // Once the operator funds the account, a new refund goes through.
    fake.set_disbursement_balance(10_000);
    let again = app.post(&live_key, "/v1/refunds", &new_key(), &json!({ "payment_id": payment_id })).await;
    assert_eq!(settled_refund(&app, &live_key, &id(&again)).await["status"], "completed");
}

#[tokio::test]
async fn a_refund_mtn_lost_is_sent_again_under_the_same_reference_and_refunds_once() {
    let fake = FakeMtn::start().await;
    let (app, live_key) = gateway(&fake, mtn::API_KEY, 100).await;
    let payment_id = paid(&app, &live_key, 1_000).await;
    let balance = fake.disbursement_balance();
    // MTN's 5xx stores nothing; the refund stays processing, the status
    // check finds nothing (404) and sends it again under the same reference.
    fake.push_fault(Fault::ServerError);
    let refunded = app.post(&live_key, "/v1/refunds", &new_key(), &json!({ "payment_id": payment_id })).await;
    assert_eq!(refunded.body["status"], "processing", "{:?}", refunded.body);
    let refund_id = id(&refunded);
    assert_eq!(settled_refund(&app, &live_key, &refund_id).await["status"], "completed");
    assert_eq!(fake.disbursements_for("refund", &refund_id), 1);
    assert_eq!(fake.disbursement_balance(), balance - 1_000);
    assert_eq!(payment(&app, &live_key, &payment_id).await["amount_refunded"], 1_000);
}

#[tokio::test]
async fn a_refund_callback_is_acknowledged_and_status_checks_settle_it() {
    let fake = FakeMtn::start().await;
    let (app, live_key) = gateway(&fake, mtn::API_KEY, 100).await;
    let payment_id = paid(&app, &live_key, 1_000).await;
    fake.callbacks_settled().await;
    let sent = fake.callbacks_sent();
    let refunded = app.post(&live_key, "/v1/refunds", &new_key(), &json!({ "payment_id": payment_id })).await;
    assert_eq!(settled_refund(&app, &live_key, &id(&refunded)).await["status"], "completed");
    fake.callbacks_settled().await;
    assert_eq!(fake.callbacks_sent(), sent + 1, "MTN called back about the refund");
    // The gateway acknowledged it (a refused callback would make MTN retry).
    let refund_id = id(&refunded);
    let callback = fake.disbursement_body("refund", &refund_id).expect("MTN has the refund");
    let answer =
        app.client.put(format!("{}/v1/callbacks/mtn-momo?for=refund", app.base)).json(&callback).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.json::<Value>().await.unwrap()["status"], "ignored");
}

/// The `mtn-momo` component loaded on its own (as the gateway loads it),
/// talking to `fake`: payouts have no merchant API yet (settlement will
/// use them), so the rail is exercised directly.
fn loaded_rail(fake: &FakeMtn) -> (soxara::plugins::Runtime, std::sync::Arc<soxara::plugins::LoadedRail>) {
    use soxara::plugins::{PluginContext, PluginLimits, Runtime};
    let limits = PluginLimits::default();
    let runtime = Runtime::new(limits, limits.memory_bytes_max, Default::default(), None).expect("a runtime");
    let settings = soxara::config::PluginSettings {
        config: rail_settings(fake, mtn::API_KEY, true).into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        allowed_hosts: vec!["127.0.0.1".into()],
        ..Default::default()
    };
    let path = soxara_tests::plugin_dir().join("mtn-momo.wasm");
    let rail = runtime.load_rail(&path, PluginContext::new("mtn-momo".into(), settings)).expect("the rail loads");
    (runtime, rail)
}

fn payout(id: &str, amount: u64, destination: &str) -> soxara::plugins::PayoutRequest {
    soxara::plugins::PayoutRequest {
        payout_id: id.to_string(),
        money: soxara::plugins::Money { amount, currency: "USD".into() },
        destination: destination.to_string(),
        created_at_ms: u64::try_from(soxara::values::clock::system_now_ms()).unwrap(),
    }
}

#[tokio::test]
async fn a_payout_goes_out_as_one_mtn_transfer() {
    let fake = FakeMtn::start().await;
    let balance = fake.disbursement_balance();
    let (_runtime, rail) = loaded_rail(&fake);
    let request = payout("po_test_1", 2_500, "+231770001234");
    let work = {
        let (rail, request) = (rail.clone(), request.clone());
        tokio::task::spawn_blocking(move || {
            let first = rail.payout(&request).unwrap().unwrap();
            let again = rail.payout(&request).unwrap().unwrap();
            let status = rail.payout_status(&request, first.provider_reference.as_deref()).unwrap().unwrap();
            (first, again, status)
        })
    };
    let (first, again, status) = work.await.unwrap();
    assert_eq!(first.status, soxara::plugins::TransactionStatus::Processing);
    assert_eq!(again.status, soxara::plugins::TransactionStatus::Processing, "a repeat is MTN's 409, not a failure");
    assert_eq!(status.status, soxara::plugins::TransactionStatus::Completed, "{status:?}");
    assert_eq!(fake.disbursements_for("transfer", "po_test_1"), 1);
    assert_eq!(fake.disbursement_balance(), balance - 2_500);
    let body = fake.disbursement_body("transfer", "po_test_1").unwrap();
    assert_eq!(body["payee"]["partyId"], "231770001234");
    assert_eq!(body["amount"], "25.00");
}

#[tokio::test]
async fn a_payout_to_an_unknown_number_fails_with_a_clear_code() {
    let fake = FakeMtn::start().await;
    let (_runtime, rail) = loaded_rail(&fake);
    // MTN's sandbox payee-not-found number.
    let request = payout("po_test_2", 1_000, "+46733123457");
    let status = tokio::task::spawn_blocking(move || {
        let first = rail.payout(&request).unwrap().unwrap();
        rail.payout_status(&request, first.provider_reference.as_deref()).unwrap().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(status.status, soxara::plugins::TransactionStatus::Failed);
    assert_eq!(status.failure.unwrap().code, "CUSTOMER_NOT_FOUND");
}

#[tokio::test]
async fn a_settlement_is_paid_out_as_an_mtn_transfer_and_settled_by_status_checks() {
    let fake = FakeMtn::start().await;
    let settings = rail_settings(&fake, mtn::API_KEY, true);
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut config = live_rail_config("mtn_momo", "mtn-momo", &settings, 100);
    // Everything collected so far is settleable; the batch runs when asked.
    config.settlement = soxara::config::SettlementSettings { interval_ms: 0, hold_ms: 0 };
    let (app, live_key) = spawn_app_with_live_key(config).await;
    let payment_id = paid(&app, &live_key, 10_000).await;
    let net = payment(&app, &live_key, &payment_id).await["net_amount"].as_i64().unwrap();
    let balance = fake.disbursement_balance();

    let account = json!({ "mode": "live", "currency": "USD", "method": "mtn_momo", "destination": "+231770005555" });
    let path = format!("/admin/merchants/{}/payout_accounts", app.merchant_id);
    assert_eq!(app.admin(reqwest::Method::PUT, &path, Some(account)).await.status, 200);
    let batch = app.admin(reqwest::Method::POST, "/admin/settlements/run", None).await;
    let settlement = &batch.body["settlements"][0];
    assert_eq!(settlement["status"], "processing", "MTN answers 202: {:?}", batch.body);
    assert_eq!(settlement["amount"], net);
    let id = settlement["id"].as_str().unwrap().to_string();

    let done = settled_at(&app, &live_key, &format!("/v1/settlements/{id}")).await;
    assert_eq!(done["status"], "paid", "{done}");
    assert_eq!(fake.disbursements_for("transfer", &id), 1, "one transfer for one settlement");
    assert_eq!(fake.disbursement_balance(), balance - u64::try_from(net).unwrap());
    let transfer = fake.disbursement_body("transfer", &id).unwrap();
    assert_eq!(transfer["payee"]["partyId"], "231770005555");
    let after = app.get(&live_key, "/v1/balance").await.body;
    assert_eq!(
        (after["balances"][0]["pending"].as_i64(), after["balances"][0]["in_transit"].as_i64()),
        (Some(0), Some(0))
    );
    let events = format!("SELECT count(*) FROM events WHERE type = 'settlement.paid' AND object_id = '{id}'");
    assert_eq!(app.count(&events).await, 1);
    app.verify().expect("the ledger balances");
}
