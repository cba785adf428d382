//! Live card payments: the real `stripe-card` component, bound for live
//! `card`, talking to a fake Stripe API on a loopback port; Stripe's signed
//! webhooks settle payments and open disputes.

use std::time::Duration;

use serde_json::{Value, json};
use soxara_tests::fakes::stripe::{self, FakeStripe, Fault};
use soxara_tests::{Answer, TestApp, live_rail_config, new_key, spawn_app_with_live_key, wait_for};

/// A gateway whose live card payments go to `fake`, with status checks
/// every `check_ms`, and the fake's webhooks pointed at the gateway.
async fn gateway(fake: &FakeStripe, check_ms: u64) -> (TestApp, String) {
    gateway_keyed(fake, check_ms, stripe::SECRET_KEY).await
}

async fn gateway_keyed(fake: &FakeStripe, check_ms: u64, secret_key: &str) -> (TestApp, String) {
    let url = fake.url();
    let settings = [("base_url", url.as_str()), ("secret_key", secret_key), ("webhook_secret", stripe::WEBHOOK_SECRET)];
    let (app, live_key) = spawn_app_with_live_key(live_rail_config("card", "stripe-card", &settings, check_ms)).await;
    fake.send_webhooks_to(&format!("{}/v1/callbacks/stripe-card", app.base));
    (app, live_key)
}

fn card(token: &str, amount: u64) -> String {
    json!({ "amount": amount, "currency": "USD", "method": "card", "card": { "token": token } }).to_string()
}

fn id(answer: &Answer) -> String {
    answer.body["id"].as_str().unwrap_or_else(|| panic!("no id in {:?}", answer.body)).to_string()
}

async fn payment(app: &TestApp, key: &str, id: &str) -> Value {
    app.get(key, &format!("/v1/payments/{id}")).await.body
}

#[tokio::test]
async fn a_live_card_payment_completes_at_once_with_stripes_idempotency_key() {
    let fake = FakeStripe::start().await;
    let (app, live_key) = gateway(&fake, 3_600_000).await;
    let paid = app.pay(&live_key, Some(&new_key()), &card("pm_card_visa", 2_500)).await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    assert_eq!(paid.body["status"], "completed");
    assert_eq!(paid.body["entity"], "Cinrique Inc.");
    assert_eq!(paid.body["livemode"], true);
    let payment_id = id(&paid);
    let intents = fake.intents_for(&payment_id);
    assert_eq!(intents.len(), 1);
    assert_eq!(paid.body["provider_reference"], intents[0]["id"]);
    assert_eq!(intents[0]["amount"], 2_500);
    assert_eq!(intents[0]["currency"], "usd");
    assert_eq!(fake.idempotency_keys(), vec![payment_id.clone()], "Stripe's Idempotency-Key is the payment id");
    let entries = app
        .count(&format!(
            "SELECT count(*) FROM journal_entries WHERE transaction_id = '{payment_id}' AND kind = 'payment'"
        ))
        .await;
    assert_eq!(entries, 1);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn declines_come_back_failed_with_clear_codes() {
    let fake = FakeStripe::start().await;
    let (app, live_key) = gateway(&fake, 3_600_000).await;
    for (token, code) in [
        ("pm_card_chargeDeclined", "CARD_DECLINED"),
        ("pm_card_chargeDeclinedInsufficientFunds", "INSUFFICIENT_FUNDS"),
        ("pm_card_chargeDeclinedExpiredCard", "EXPIRED_CARD"),
        ("pm_card_authenticationRequired", "CARD_AUTHENTICATION_REQUIRED"),
    ] {
        // (3-D Secure: the rail asks Stripe to refuse rather than wait.)
        let paid = app.pay(&live_key, Some(&new_key()), &card(token, 1_000)).await;
        assert_eq!(paid.status, 201, "{token}: {:?}", paid.body);
        assert_eq!(paid.body["status"], "failed", "{token}");
        assert_eq!(paid.body["failure"]["code"], code, "{token}");
    }
    assert_eq!(app.count("SELECT count(*) FROM journal_entries WHERE mode = 'live'").await, 0);
}

#[tokio::test]
async fn live_keys_must_send_a_token_not_a_card_number() {
    let fake = FakeStripe::start().await;
    let (app, live_key) = gateway(&fake, 3_600_000).await;
    let body = json!({ "amount": 1000, "currency": "USD", "method": "card", "card": { "number": "4242424242424242" } });
    let refused = app.pay(&live_key, Some(&new_key()), &body.to_string()).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.code(), "VALIDATION_ERROR");
    assert_eq!(refused.body["error"]["fields"][0]["field"], "card.number");
    assert_eq!(fake.create_posts(), 0);
    let bad_token = app.pay(&live_key, Some(&new_key()), &card("visa'; drop", 1_000)).await;
    assert_eq!(bad_token.body["error"]["fields"][0]["field"], "card.token");
}

#[tokio::test]
async fn a_timeout_leaves_it_processing_and_the_same_key_settles_it_without_a_second_charge() {
    let fake = FakeStripe::start().await;
    // Stripe creates the intent but answers after the host's 4 s HTTP deadline.
    fake.push_fault(Fault::SlowAnswer(Duration::from_millis(8_000)));
    let (app, live_key) = gateway(&fake, 200).await;
    let paid = app.pay(&live_key, Some(&new_key()), &card("pm_card_visa", 3_000)).await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    assert_eq!(paid.body["status"], "processing");
    let payment_id = id(&paid);
    let done = wait_for("the status check to settle it", || async {
        let body = payment(&app, &live_key, &payment_id).await;
        (body["status"] != "processing").then_some(body)
    })
    .await;
    assert_eq!(done["status"], "completed");
    assert_eq!(fake.intents_for(&payment_id).len(), 1, "one charge: Stripe replayed the first answer");
    assert!(fake.idempotency_keys().iter().all(|k| *k == payment_id));
    assert_eq!(done["provider_reference"], fake.intents_for(&payment_id)[0]["id"]);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_500_before_execution_is_retried_under_the_same_key() {
    let fake = FakeStripe::start().await;
    fake.push_fault(Fault::ServerErrorBeforeExecution);
    let (app, live_key) = gateway(&fake, 100).await;
    let paid = app.pay(&live_key, Some(&new_key()), &card("pm_card_visa", 3_000)).await;
    assert_eq!(paid.body["status"], "processing");
    let payment_id = id(&paid);
    wait_for("completion", || async {
        (payment(&app, &live_key, &payment_id).await["status"] == "completed").then_some(())
    })
    .await;
    assert_eq!(fake.create_posts(), 2);
    assert_eq!(fake.intents_for(&payment_id).len(), 1);
}

#[tokio::test]
async fn a_signed_webhook_settles_a_processing_payment() {
    let fake = FakeStripe::start().await;
    let (app, live_key) = gateway(&fake, 3_600_000).await;
    let paid = app.pay(&live_key, Some(&new_key()), &card("pm_card_processing", 4_000)).await;
    assert_eq!(paid.body["status"], "processing");
    let payment_id = id(&paid);
    let intent_id = paid.body["provider_reference"].as_str().unwrap().to_string();

    // A forged event (wrong secret) and a stale one change nothing.
    let mut forged = fake.intents_for(&payment_id)[0].clone();
    forged["status"] = json!("succeeded");
    let body =
        json!({ "id": "evt_forged", "type": "payment_intent.succeeded", "data": { "object": forged } }).to_string();
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let url = format!("{}/v1/callbacks/stripe-card", app.base);
    let wrong = format!("t={now_s},v1={}", stripe::sign("whsec_not_the_secret", now_s, body.as_bytes()));
    assert_eq!(stripe::signed_post(&url, &wrong, body.clone()).await, 400);
    let stale_s = now_s - 3_600;
    let stale = format!("t={stale_s},v1={}", stripe::sign(stripe::WEBHOOK_SECRET, stale_s, body.as_bytes()));
    assert_eq!(stripe::signed_post(&url, &stale, body.clone()).await, 400);
    assert_eq!(stripe::signed_post(&url, "", body).await, 400);
    assert_eq!(payment(&app, &live_key, &payment_id).await["status"], "processing");

    assert_eq!(fake.complete(&intent_id).await, 200);
    let done = payment(&app, &live_key, &payment_id).await;
    assert_eq!(done["status"], "completed", "settled when the webhook was answered");
    // Stripe may send it again: acknowledged, posted once.
    assert_eq!(fake.complete(&intent_id).await, 200);
    let entries =
        app.count(&format!("SELECT count(*) FROM journal_entries WHERE transaction_id = '{payment_id}'")).await;
    assert_eq!(entries, 1);
    // Events about things the gateway does not track are acknowledged.
    assert_eq!(fake.send_event("customer.created", json!({ "id": "cus_1" })).await, 200);
}

#[tokio::test]
async fn a_dispute_moves_the_funds_to_a_reserve_and_emits_dispute_opened() {
    let fake = FakeStripe::start().await;
    let (app, live_key) = gateway(&fake, 3_600_000).await;
    let paid = app.pay(&live_key, Some(&new_key()), &card("pm_card_visa", 5_000)).await;
    assert_eq!(paid.body["status"], "completed");
    let payment_id = id(&paid);
    let intent_id = paid.body["provider_reference"].as_str().unwrap().to_string();

    assert_eq!(fake.open_dispute("dp_fake_1", &intent_id, 5_000, "fraudulent").await, 200);
    let dispute_id: String = app
        .state()
        .ops
        .store
        .read({
            let payment_id = payment_id.clone();
            move |conn| {
                Ok(conn.query_row("SELECT id FROM disputes WHERE payment_id = ?1", [payment_id], |row| row.get(0))?)
            }
        })
        .await
        .expect("a dispute row");
    let dispute = app.get(&live_key, &format!("/v1/disputes/{dispute_id}")).await;
    assert_eq!(dispute.status, 200, "{:?}", dispute.body);
    assert_eq!(dispute.body["payment_id"], payment_id.as_str());
    assert_eq!(dispute.body["amount"], 5_000);
    assert_eq!(dispute.body["currency"], "USD");
    assert_eq!(dispute.body["reason"], "fraudulent");
    assert_eq!(dispute.body["status"], "open");
    assert_eq!(dispute.body["entity"], "Cinrique Inc.");
    // A test key of the same merchant cannot see a live dispute.
    assert_eq!(app.get(&app.key, &format!("/v1/disputes/{dispute_id}")).await.status, 404);

    // Stripe may send the event again: one dispute, one reserve entry.
    assert_eq!(fake.open_dispute("dp_fake_1", &intent_id, 5_000, "fraudulent").await, 200);
    assert_eq!(app.count(&format!("SELECT count(*) FROM disputes WHERE payment_id = '{payment_id}'")).await, 1);
    let reserve = app
        .count(&format!(
            "SELECT count(*) FROM journal_entries WHERE transaction_id = '{dispute_id}' AND kind = 'dispute_reserve'"
        ))
        .await;
    assert_eq!(reserve, 1);
    let reserved = app
        .count(
            "SELECT -COALESCE(SUM(p.amount), 0) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
             WHERE a.kind = 'dispute_reserve' AND a.mode = 'live'",
        )
        .await;
    assert_eq!(reserved, 5_000, "the disputed amount is held");
    let balance = app.get(&live_key, "/v1/balance").await;
    let net = paid.body["net_amount"].as_i64().unwrap();
    assert_eq!(
        balance.body["balances"],
        serde_json::json!([{
            "currency": "USD", "entity": "Cinrique Inc.", "pending": net - 5_000, "available": 0, "in_transit": 0,
            "reserved": 5_000
        }]),
        "the merchant sees the reserve; pending bears the gross amount, the fee stays earned"
    );
    let events = app
        .count(&format!("SELECT count(*) FROM events WHERE type = 'dispute.opened' AND object_id = '{dispute_id}'"))
        .await;
    assert_eq!(events, 1);

    // Another dispute on the same payment may not take more than it.
    assert_eq!(fake.open_dispute("dp_fake_2", &intent_id, 1, "duplicate").await, 400);
    // Nor can a payment that never completed be disputed.
    let declined = app.pay(&live_key, Some(&new_key()), &card("pm_card_chargeDeclined", 700)).await;
    let declined_intent = declined.body["provider_reference"].as_str().unwrap().to_string();
    assert_eq!(fake.open_dispute("dp_fake_3", &declined_intent, 700, "fraudulent").await, 400);
    assert_eq!(app.count("SELECT count(*) FROM disputes").await, 1);
    // Money held for the dispute cannot also be refunded.
    let refund =
        app.post(&live_key, "/v1/refunds", &new_key(), &json!({ "payment_id": payment_id, "amount": 1 })).await;
    assert_eq!(refund.code(), "REFUND_EXCEEDS_PAYMENT", "{:?}", refund.body);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_saved_500_is_resolved_by_searching_for_the_intent() {
    let fake = FakeStripe::start().await;
    // Stripe ran the request, then failed: the 500 is what the key replays.
    fake.push_fault(Fault::ServerErrorAfterExecution);
    let (app, live_key) = gateway(&fake, 100).await;
    let paid = app.pay(&live_key, Some(&new_key()), &card("pm_card_visa", 1_200)).await;
    assert_eq!(paid.body["status"], "processing", "a 5xx may hide a charge");
    let payment_id = id(&paid);
    let done = wait_for("the search to find the intent", || async {
        let body = payment(&app, &live_key, &payment_id).await;
        (body["status"] != "processing").then_some(body)
    })
    .await;
    assert_eq!(done["status"], "completed");
    assert_eq!(fake.intents_for(&payment_id).len(), 1, "found, not created again");
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_wrong_secret_key_fails_the_payment_without_revealing_it() {
    let fake = FakeStripe::start().await;
    let wrong = "sk_live_wrong_but_secret_0123456789";
    let (app, live_key) = gateway_keyed(&fake, 3_600_000, wrong).await;
    let paid = app.pay(&live_key, Some(&new_key()), &card("pm_card_visa", 1_000)).await;
    assert_eq!(paid.body["status"], "failed", "{:?}", paid.body);
    assert_eq!(paid.body["failure"]["code"], "PROVIDER_AUTH_FAILED");
    for secret in [wrong, stripe::WEBHOOK_SECRET] {
        assert!(!paid.body.to_string().contains(secret), "{secret} leaked: {:?}", paid.body);
    }
}

/// Test and live never meet: the gateway tells the rail which mode it is
/// configured for, and a live rail holding a Stripe test key (or the
/// reverse) refuses to call Stripe at all.
#[tokio::test]
async fn a_live_rail_with_a_test_key_refuses_before_reaching_stripe() {
    let fake = FakeStripe::start().await;
    let (app, live_key) = gateway_keyed(&fake, 3_600_000, "sk_test_fake_51SoxaraSecretKey").await;
    let paid = app.pay(&live_key, Some(&new_key()), &card("pm_card_visa", 1_000)).await;
    assert_eq!(paid.body["status"], "failed", "{:?}", paid.body);
    assert_eq!(paid.body["failure"]["code"], "MODE_MISMATCH", "{:?}", paid.body);
    assert_eq!(fake.create_posts(), 0, "Stripe was never asked to charge");
}

#[tokio::test]
async fn a_refund_goes_to_stripe_under_its_own_idempotency_key() {
    let fake = FakeStripe::start().await;
    let (app, live_key) = gateway(&fake, 3_600_000).await;
    let paid = app.pay(&live_key, Some(&new_key()), &card("pm_card_visa", 5_000)).await;
    let payment_id = id(&paid);
    let intent_id = paid.body["provider_reference"].as_str().unwrap().to_string();
    let refunded =
        app.post(&live_key, "/v1/refunds", &new_key(), &json!({ "payment_id": payment_id, "amount": 2_000 })).await;
    assert_eq!(refunded.status, 201, "{:?}", refunded.body);
    assert_eq!(refunded.body["status"], "completed");
    assert_eq!(refunded.body["entity"], "Cinrique Inc.");
    let refund_id = id(&refunded);
    let at_stripe = fake.refunds_for(&intent_id);
    assert_eq!(at_stripe.len(), 1);
    assert_eq!(at_stripe[0]["amount"], 2_000);
    assert_eq!(refunded.body["provider_reference"], at_stripe[0]["id"]);
    assert_eq!(fake.idempotency_keys().last(), Some(&refund_id), "Stripe's key is the refund id");
    let payment = payment(&app, &live_key, &payment_id).await;
    assert_eq!(payment["amount_refunded"], 2_000);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_pending_refund_is_settled_by_status_checks() {
    let fake = FakeStripe::start().await;
    let (app, live_key) = gateway(&fake, 50).await;
    let paid = app.pay(&live_key, Some(&new_key()), &card("pm_card_visa", 3_000)).await;
    let payment_id = id(&paid);
    fake.make_refunds_pending(2);
    let refunded = app.post(&live_key, "/v1/refunds", &new_key(), &json!({ "payment_id": payment_id })).await;
    assert_eq!(refunded.body["status"], "processing", "{:?}", refunded.body);
    let refund_id = id(&refunded);
    wait_for("the refund to complete", || async {
        let now = app.get(&live_key, &format!("/v1/refunds/{refund_id}")).await.body;
        (now["status"] == "completed").then_some(())
    })
    .await;
    assert_eq!(payment(&app, &live_key, &payment_id).await["status"], "refunded");
    let entries =
        app.count(&format!("SELECT count(*) FROM journal_entries WHERE transaction_id = '{refund_id}'")).await;
    assert_eq!(entries, 1);
    assert_eq!(fake.refunds_for(paid.body["provider_reference"].as_str().unwrap()).len(), 1);
    app.verify().expect("the ledger balances");
}
