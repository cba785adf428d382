//! Live Orange Money payments: the real `orange-money` component, bound for
//! live `orange_money`, talking to a fake Orange Web Payment API. The
//! customer pays on Orange's page (a `next_action` redirect); Orange's
//! notification prompts a status check that settles the payment.

use std::time::Duration;

use serde_json::{Value, json};
use soxara_tests::fakes::orange::{self, FakeOrange, Fault};
use soxara_tests::{Answer, TestApp, live_rail_config, new_key, spawn_app_with_live_key, wait_for};

async fn gateway(fake: &FakeOrange, check_ms: u64) -> (TestApp, String) {
    gateway_with(fake, check_ms, &[orange::PAYMENT_PAGE_HOST], orange::CLIENT_SECRET).await
}

/// `redirect_hosts`: where the operator lets the rail send customers.
async fn gateway_with(
    fake: &FakeOrange,
    check_ms: u64,
    redirect_hosts: &[&str],
    client_secret: &str,
) -> (TestApp, String) {
    let url = fake.url();
    let settings = [
        ("base_url", url.as_str()),
        ("country_path", orange::COUNTRY_PATH),
        ("client_id", orange::CLIENT_ID),
        ("client_secret", client_secret),
        ("merchant_key", orange::MERCHANT_KEY),
        ("return_url", "https://shop.example/paid"),
        ("cancel_url", "https://shop.example/cancelled"),
    ];
    let mut config = live_rail_config("orange_money", "orange-money", &settings, check_ms);
    let plugin = config.plugins.get_mut("orange-money").expect("just added");
    plugin.redirect_hosts = redirect_hosts.iter().map(|h| h.to_string()).collect();
    spawn_app_with_live_key(config).await
}

fn orange_money(amount: u64, currency: &str) -> String {
    json!({ "amount": amount, "currency": currency, "method": "orange_money", "customer": { "phone": "+231880001234" } })
        .to_string()
}

fn id(answer: &Answer) -> String {
    answer.body["id"].as_str().unwrap_or_else(|| panic!("no id in {:?}", answer.body)).to_string()
}

async fn settled(app: &TestApp, key: &str, id: &str) -> Value {
    wait_for(&format!("payment {id} to settle"), || async {
        let body = app.get(key, &format!("/v1/payments/{id}")).await.body;
        (body["status"] != "processing").then_some(body)
    })
    .await
}

#[tokio::test]
async fn the_customer_pays_on_oranges_page_and_the_notification_settles_it() {
    let fake = FakeOrange::start().await;
    let (app, live_key) = gateway(&fake, 3_600_000).await;
    let paid = app.pay(&live_key, Some(&new_key()), &orange_money(50_000, "LRD")).await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    assert_eq!(paid.body["status"], "processing");
    assert_eq!(paid.body["entity"], "Phoenix Hub Liberia, Inc.");
    assert_eq!(paid.body["next_action"]["type"], "redirect");
    let url = paid.body["next_action"]["url"].as_str().unwrap();
    let pay_token = paid.body["provider_reference"].as_str().unwrap().to_string();
    assert!(url.ends_with(&pay_token), "{url}");
    let payment_id = id(&paid);

    assert_eq!(fake.customer_pays(&pay_token).await, 200);
    let done = settled(&app, &live_key, &payment_id).await;
    assert_eq!(done["status"], "completed");
    assert!(done.get("next_action").is_none(), "no action once final: {done:?}");
    assert_eq!(fake.payments_for(&payment_id), 1);
    let entries = app
        .count(&format!(
            "SELECT count(*) FROM journal_entries WHERE transaction_id = '{payment_id}' AND kind = 'payment'"
        ))
        .await;
    assert_eq!(entries, 1);
    let events = app
        .count(&format!("SELECT count(*) FROM events WHERE object_id = '{payment_id}' AND type = 'payment.succeeded'"))
        .await;
    assert_eq!(events, 1);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_cancelled_payment_fails_and_a_forged_notification_settles_nothing() {
    let fake = FakeOrange::start().await;
    let (app, live_key) = gateway(&fake, 3_600_000).await;
    let paid = app.pay(&live_key, Some(&new_key()), &orange_money(1_200, "USD")).await;
    let payment_id = id(&paid);
    let pay_token = paid.body["provider_reference"].as_str().unwrap().to_string();

    // Someone posts a "SUCCESS" notification: it only prompts a status check,
    // and Orange still says INITIATED.
    // A notification to a URL the rail never gave out (no signature, or
    // another payment's) is refused.
    let forged = json!({ "status": "SUCCESS", "notif_token": "guessed", "txnid": "MP-forged" });
    for query in [format!("payment_id={payment_id}"), format!("payment_id={payment_id}&sig=00ff"), String::new()] {
        let url = format!("{}/v1/callbacks/orange-money?{query}", app.base);
        let answer = soxara_tests::answer(app.client.post(&url).json(&forged).send().await.unwrap()).await;
        assert_eq!(answer.code(), "CALLBACK_REJECTED", "{query}: {:?}", answer.body);
    }
    // Posted to the real notif_url, a "SUCCESS" body only prompts a status
    // check, and Orange still says INITIATED.
    let checks_before = fake.status_posts();
    assert_eq!(fake.notify(&pay_token, &forged).await, 200);
    wait_for("the prompted status check", || async { (fake.status_posts() > checks_before).then_some(()) }).await;
    let now = app.get(&live_key, &format!("/v1/payments/{payment_id}")).await.body;
    assert_eq!(now["status"], "processing");

    assert_eq!(fake.customer_cancels(&pay_token).await, 200);
    let done = settled(&app, &live_key, &payment_id).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["failure"]["code"], "PAYMENT_FAILED");
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM journal_entries WHERE transaction_id = '{payment_id}'")).await,
        0
    );
}

#[tokio::test]
async fn a_lost_first_answer_is_recovered_under_the_same_order_id() {
    let fake = FakeOrange::start().await;
    // Orange creates the web payment but answers after the 4 s HTTP deadline.
    fake.push_fault(Fault::SlowAnswer(Duration::from_millis(8_000)));
    let (app, live_key) = gateway(&fake, 200).await;
    let paid = app.pay(&live_key, Some(&new_key()), &orange_money(2_000, "USD")).await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    assert_eq!(paid.body["status"], "processing");
    assert!(paid.body.get("next_action").is_none(), "no page yet: {:?}", paid.body);
    let payment_id = id(&paid);

    let with_page = wait_for("the status check to recover the payment page", || async {
        let body = app.get(&live_key, &format!("/v1/payments/{payment_id}")).await.body;
        body.get("next_action").is_some().then_some(body)
    })
    .await;
    assert_eq!(fake.web_payment_posts(), 2, "asked for twice");
    assert_eq!(fake.payments_for(&payment_id), 1, "one web payment");
    let pay_token = with_page["provider_reference"].as_str().unwrap().to_string();
    assert_eq!(fake.customer_pays(&pay_token).await, 200);
    assert_eq!(settled(&app, &live_key, &payment_id).await["status"], "completed");
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn amounts_orange_cannot_take_fail_clearly_before_anything_is_asked() {
    let fake = FakeOrange::start().await;
    let (app, live_key) = gateway(&fake, 3_600_000).await;
    let paid = app.pay(&live_key, Some(&new_key()), &orange_money(1_250, "USD")).await;
    assert_eq!(paid.body["status"], "failed", "{:?}", paid.body);
    assert_eq!(paid.body["failure"]["code"], "INVALID_AMOUNT");
    assert_eq!(fake.web_payment_posts(), 0);
}

#[tokio::test]
async fn a_page_that_never_reached_the_customer_ends_the_payment_as_not_started() {
    let fake = FakeOrange::start().await;
    fake.push_fault(Fault::SlowAnswer(Duration::from_millis(8_000)));
    // Orange refuses the repeat (as it may: reusing an order_id is not documented).
    fake.refuse_repeated_order_ids();
    let (app, live_key) = gateway(&fake, 200).await;
    let paid = app.pay(&live_key, Some(&new_key()), &orange_money(2_000, "USD")).await;
    assert_eq!(paid.body["status"], "processing");
    let done = settled(&app, &live_key, &id(&paid)).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["failure"]["code"], "PAYMENT_NOT_STARTED");
}

#[tokio::test]
async fn redirects_go_only_to_hosts_the_operator_allowed() {
    let fake = FakeOrange::start().await;
    let (app, live_key) = gateway_with(&fake, 3_600_000, &[], orange::CLIENT_SECRET).await;
    let paid = app.pay(&live_key, Some(&new_key()), &orange_money(1_200, "USD")).await;
    assert_eq!(paid.status, 502, "the plugin's redirect is refused as malformed output: {:?}", paid.body);
    assert_eq!(paid.code(), "RAIL_ERROR");
    let payment_id = paid.body["error"]["payment_id"].as_str().unwrap().to_string();
    let now = app.get(&live_key, &format!("/v1/payments/{payment_id}")).await.body;
    assert!(now.get("next_action").is_none(), "{now:?}");
}

#[tokio::test]
async fn wrong_credentials_fail_the_payment_without_revealing_them() {
    let fake = FakeOrange::start().await;
    let wrong = "wrong-orange-client-secret-9f9f";
    let (app, live_key) = gateway_with(&fake, 3_600_000, &[orange::PAYMENT_PAGE_HOST], wrong).await;
    let paid = app.pay(&live_key, Some(&new_key()), &orange_money(1_200, "USD")).await;
    assert_eq!(paid.body["status"], "failed", "{:?}", paid.body);
    assert_eq!(paid.body["failure"]["code"], "PROVIDER_AUTH_FAILED");
    assert_eq!(fake.web_payment_posts(), 0, "nothing was asked of the customer");
    for secret in [wrong, orange::CLIENT_ID, orange::MERCHANT_KEY] {
        assert!(!paid.body.to_string().contains(secret), "{secret} leaked: {:?}", paid.body);
    }
}

#[tokio::test]
async fn the_access_token_is_reused_and_replaced_when_orange_revokes_it() {
    let fake = FakeOrange::start().await;
    let (app, live_key) = gateway(&fake, 3_600_000).await;
    for _ in 0..2 {
        let paid = app.pay(&live_key, Some(&new_key()), &orange_money(1_200, "USD")).await;
        assert_eq!(paid.body["status"], "processing", "{:?}", paid.body);
    }
    assert_eq!(fake.tokens_issued(), 1);
    fake.revoke_tokens();
    let paid = app.pay(&live_key, Some(&new_key()), &orange_money(1_200, "USD")).await;
    assert!(paid.body.get("next_action").is_some(), "a revoked cached token is replaced: {:?}", paid.body);
    assert_eq!(fake.tokens_issued(), 2);
    assert_eq!(fake.payments_for(&id(&paid)), 1);
}

#[tokio::test]
async fn a_refund_orange_cannot_make_fails_clearly_and_moves_no_money() {
    let fake = FakeOrange::start().await;
    let (app, live_key) = gateway(&fake, 3_600_000).await;
    let paid = app.pay(&live_key, Some(&new_key()), &orange_money(50_000, "LRD")).await;
    let payment_id = id(&paid);
    let pay_token = paid.body["provider_reference"].as_str().unwrap().to_string();
    assert_eq!(fake.customer_pays(&pay_token).await, 200);
    assert_eq!(settled(&app, &live_key, &payment_id).await["status"], "completed");

    let refunded = app.post(&live_key, "/v1/refunds", &new_key(), &json!({ "payment_id": payment_id })).await;
    assert_eq!(refunded.status, 201, "{:?}", refunded.body);
    assert_eq!(refunded.body["status"], "failed");
    assert_eq!(refunded.body["failure"]["code"], "NOT_SUPPORTED");
    let message = refunded.body["failure"]["message"].as_str().unwrap();
    assert!(message.contains("merchant portal"), "{message}");
    let refund_id = id(&refunded);
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM journal_entries WHERE transaction_id = '{refund_id}'")).await,
        0
    );
    let after = app.get(&live_key, &format!("/v1/payments/{payment_id}")).await;
    assert_eq!(after.body["amount_refunded"], 0);
    assert_eq!(after.body["status"], "completed");
    app.verify().expect("the ledger balances");
}
