//! Live gift card sales and RMB purchases through the real server and the
//! real `desk` trader component, bound for live trades and talking to a
//! fake trading desk on a loopback port (`docs/desk-protocol.md`): a sale
//! stays pending until the desk's people verify it and say so by a signed
//! callback, and is credited once however often the callback comes;
//! forged and stale callbacks are refused with nothing changed; an RMB
//! order the desk refunds gives the merchant its money back; and a trade
//! the desk accepted but did not confirm (a 502) or never stored (a 500)
//! is settled by a status check under the same trade id, with one trade at
//! the desk.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use soxara::config::{FileConfig, PluginLimitOverrides, PluginSettings, TradeRoute};
use soxara_tests::fakes::desk::{self, Delivered, FakeDesk, Fault};
use soxara_tests::{Answer, TestApp, new_key, spawn_app_with_live_key, wait_for};

/// Status checks wait this long: longer than any test runs in real time,
/// so they happen only when a test moves the clock.
const CHECK_MS: u64 = 60_000;
/// An Amazon USD 100.00 card.
const FACE: u64 = 10_000;
/// USD 100.00 at 85/100: USD 85.00, less the 1% fee.
const PRICE: i64 = 8_500;
const NET: i64 = PRICE - 85;

/// A gateway whose live gift card sales and RMB purchases are carried by
/// the `desk` trader, configured for `fake`; and a live key of its merchant.
async fn gateway(fake: &FakeDesk) -> (TestApp, String) {
    let mut file = FileConfig::default();
    for trade in ["gift_card_sale", "rmb_purchase"] {
        file.trades.routes.push(TradeRoute { mode: "live".into(), trade: trade.into(), trader: "desk".into() });
    }
    let config = BTreeMap::from([
        ("base_url".to_string(), fake.url()),
        ("api_key".to_string(), desk::API_KEY.to_string()),
        ("webhook_secret".to_string(), desk::WEBHOOK_SECRET.to_string()),
    ]);
    let settings = PluginSettings {
        mode: Some("live".into()),
        config,
        allowed_hosts: vec!["127.0.0.1".into()],
        // A catalogue and a trade may each take the host's 4 s HTTP deadline.
        limits: PluginLimitOverrides { call_ms_max: Some(10_000), ..Default::default() },
        ..Default::default()
    };
    file.plugins.insert("desk".into(), settings);
    file.status_checks.delays_ms = vec![CHECK_MS];
    file.status_checks.poll_interval_ms = 20;
    spawn_app_with_live_key(file).await
}

fn callback_url(app: &TestApp) -> String {
    format!("{}/v1/callbacks/desk", app.base)
}

fn id(answer: &Answer) -> String {
    answer.body["id"].as_str().unwrap_or_else(|| panic!("no id in {:?}", answer.body)).to_string()
}

/// Sells an Amazon USD 100.00 e-code for USD, live.
async fn sell(app: &TestApp, live_key: &str, code: &str) -> Answer {
    let body = json!({ "brand": "amazon", "country": "US", "form": "ecode", "face_value": FACE,
                       "card_currency": "USD", "payout_currency": "USD", "additional_info": code });
    let sold = app.post(live_key, "/v1/gift-cards/sales", &new_key(), &body).await;
    assert_eq!(sold.status, 201, "{:?}", sold.body);
    sold
}

async fn transaction(app: &TestApp, live_key: &str, id: &str) -> Value {
    let found = app.get(live_key, &format!("/v1/transactions/{id}")).await;
    assert_eq!(found.status, 200, "{:?}", found.body);
    found.body
}

/// What the merchant's live balance (held by the wallet entity) owes it in
/// `currency`.
async fn live_balance(app: &TestApp, currency: &str) -> i64 {
    -app.count(&format!(
        "SELECT COALESCE(SUM(p.amount), 0) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
         WHERE a.kind = 'merchant_pending' AND a.mode = 'live' AND a.owner = '{}' AND a.currency = '{currency}'",
        app.merchant_id
    ))
    .await
}

async fn entries(app: &TestApp, id: &str) -> i64 {
    app.count(&format!("SELECT COUNT(*) FROM journal_entries WHERE transaction_id = '{id}'")).await
}

async fn events(app: &TestApp, object_id: &str, event_type: &str) -> i64 {
    app.count(&format!("SELECT COUNT(*) FROM events WHERE object_id = '{object_id}' AND type = '{event_type}'")).await
}

fn assert_accepted(delivered: &Delivered, what: &str) {
    assert!((200..300).contains(&delivered.status), "{what}: the gateway answered {delivered:?}");
}

fn assert_refused(delivered: &Delivered, what: &str) {
    assert_eq!(
        (delivered.status, delivered.body["error"]["code"].as_str()),
        (400, Some("CALLBACK_REJECTED")),
        "{what}: {delivered:?}"
    );
}

/// The gateway's clock (moved by the test), in Unix seconds.
fn gateway_now_s(app: &TestApp) -> u64 {
    u64::try_from(app.clock.now_ms() / 1_000).expect("after 1970")
}

/// Moves the clock past the next status check of `id` and waits until the
/// check's answer is recorded (a worker round already under way when the
/// clock moved may not have seen it due).
async fn status_check(app: &TestApp, id: &str) {
    let sql = format!("SELECT COALESCE(MAX(checks), 0) FROM status_checks WHERE operation_id = '{id}'");
    let made = app.count(&sql).await;
    app.advance_clock(CHECK_MS + 1_000);
    wait_for(&format!("status check {} of {id}", made + 1), || async { (app.count(&sql).await > made).then_some(()) })
        .await;
}

/// A live gift card sale the desk completed by callback: the merchant's
/// live balance holds `NET` USD.
async fn funded(app: &TestApp, live_key: &str, fake: &FakeDesk) -> String {
    let sale = id(&sell(app, live_key, "AMZN-FUND-4242-PIN-1111").await);
    fake.complete(&sale, None);
    assert_accepted(&fake.send_callback(&callback_url(app), &sale).await, "completed");
    assert_eq!(live_balance(app, "USD").await, NET);
    sale
}

#[tokio::test]
async fn a_live_gift_card_is_pending_until_the_desk_verifies_it_and_is_credited_once() {
    let fake = FakeDesk::start().await;
    let (app, live_key) = gateway(&fake).await;

    let code = "AMZN-8XQ2-77LM-PIN-4321";
    let sold = sell(&app, &live_key, code).await;
    let sale = &sold.body;
    assert_eq!((&sale["status"], &sale["livemode"]), (&json!("pending"), &json!(true)), "{sale}");
    assert_eq!((sale["amount"].as_i64(), sale["credited"].as_i64()), (Some(PRICE), Some(0)), "{sale}");
    assert_eq!(sale["next_action"]["type"], "wait", "{sale}");
    assert!(!sale.to_string().contains(code), "the code is never shown back: {sale}");
    let id = id(&sold);

    // The desk has it, under the sale's id, with the code and where to call back.
    let at_desk = fake.trade(&id).expect("the desk received the sale");
    assert_eq!(sale["provider_reference"], at_desk.id.as_str(), "{sale}");
    assert_eq!(at_desk.request["additional_info"], code);
    assert_eq!(at_desk.request["face_value"], json!({ "amount": FACE, "currency": "USD" }));
    assert_eq!(at_desk.request["payout"], json!({ "amount": PRICE, "currency": "USD" }));
    assert!(at_desk.callback_url().is_some_and(|url| url.ends_with("/v1/callbacks/desk")), "{at_desk:?}");
    assert_eq!((fake.posts_for(&id), fake.requests("catalog")), (1, 1));
    assert_eq!((live_balance(&app, "USD").await, entries(&app, &id).await), (0, 0), "nothing credited yet");

    // Partly used: the desk verifies USD 60.00 of it, at the locked 85/100.
    fake.complete(&id, Some(6_000));
    for delivery in ["first", "repeated"] {
        let delivered = fake.send_callback(&callback_url(&app), &id).await;
        assert_accepted(&delivered, delivery);
        let done = transaction(&app, &live_key, &id).await;
        assert_eq!(done["status"], "completed", "{delivery}: {done}");
        assert_eq!(done["gift_card"]["verified_value"], json!({ "currency": "USD", "amount": 6_000 }), "{done}");
        assert_eq!(
            (done["amount"].as_i64(), done["fee"].as_i64(), done["credited"].as_i64()),
            (Some(5_100), Some(51), Some(5_049)),
            "{delivery}: {done}"
        );
        assert_eq!(live_balance(&app, "USD").await, 5_049, "{delivery}: credited once");
        assert_eq!(entries(&app, &id).await, 1, "{delivery}");
        assert_eq!(events(&app, &id, "transaction.completed").await, 1, "{delivery}");
    }
    assert_eq!(fake.posts_for(&id), 1, "sent once");
    assert_eq!(fake.unauthorized(), 0, "every call carried the API key");
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn forged_and_stale_callbacks_are_refused_and_change_nothing() {
    let fake = FakeDesk::start().await;
    let (app, live_key) = gateway(&fake).await;
    let id = id(&sell(&app, &live_key, "AMZN-FORGE-0001-PIN-2222").await);
    fake.complete(&id, None);
    let url = callback_url(&app);
    let body = fake.event(&id);
    let now = gateway_now_s(&app);

    let wrong_secret = desk::signature("not-the-secret", now, &body);
    assert_refused(&fake.send_raw(&url, body.clone(), Some(wrong_secret)).await, "another secret");
    assert_refused(&fake.send_raw(&url, body.clone(), None).await, "unsigned");
    // A signed body changed afterwards (a cancellation made a completion).
    let mut cancelled = serde_json::from_slice::<Value>(&body).unwrap();
    cancelled["status"] = json!("cancelled");
    let signed = desk::signature(desk::WEBHOOK_SECRET, now, &serde_json::to_vec(&cancelled).unwrap());
    assert_refused(&fake.send_raw(&url, body.clone(), Some(signed)).await, "tampered");
    // Authentic, but signed more than 5 minutes ago (a replay).
    assert_refused(&fake.send_callback_signed_at(&url, &id, now - 301).await, "stale");

    let pending = transaction(&app, &live_key, &id).await;
    assert_eq!((&pending["status"], pending["credited"].as_i64()), (&json!("pending"), Some(0)), "{pending}");
    assert_eq!((entries(&app, &id).await, live_balance(&app, "USD").await), (0, 0));
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM events WHERE object_id = '{id}'")).await, 0);

    // The genuine one is taken.
    assert_accepted(&fake.send_callback(&url, &id).await, "genuine");
    assert_eq!(transaction(&app, &live_key, &id).await["status"], "completed");
    assert_eq!(live_balance(&app, "USD").await, NET);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_card_the_desk_rejects_is_cancelled_with_its_reason_and_credits_nothing() {
    let fake = FakeDesk::start().await;
    let (app, live_key) = gateway(&fake).await;
    let id = id(&sell(&app, &live_key, "AMZN-USED-0000-PIN-3333").await);
    fake.cancel(&id, "CARD_ALREADY_REDEEMED", "The card was redeemed before it reached us");
    assert_accepted(&fake.send_callback(&callback_url(&app), &id).await, "cancelled");
    let sale = transaction(&app, &live_key, &id).await;
    assert_eq!((&sale["status"], sale["credited"].as_i64()), (&json!("cancelled"), Some(0)), "{sale}");
    assert_eq!(sale["failure"]["code"], "CARD_ALREADY_REDEEMED", "{sale}");
    assert_eq!((entries(&app, &id).await, live_balance(&app, "USD").await), (0, 0));
    assert_eq!(events(&app, &id, "transaction.cancelled").await, 1);
}

#[tokio::test]
async fn an_rmb_order_the_desk_refunds_by_callback_returns_the_debit() {
    let fake = FakeDesk::start().await;
    let (app, live_key) = gateway(&fake).await;
    funded(&app, &live_key, &fake).await;

    // CNY 200.00 at CNY 7.10 per USD: USD 28.169… → 28.17, and 1%.
    let quoted = app.get(&live_key, "/v1/rmb/quote?channel=alipay&amount=20000&pay_currency=USD").await;
    assert_eq!(quoted.status, 200, "{:?}", quoted.body);
    assert_eq!(quoted.body["total"]["amount"], 2_845, "{:?}", quoted.body);
    let body =
        json!({ "quote_id": quoted.body["id"], "recipient_identifier": "li.wei.2024", "recipient_name": "Li Wei" });
    let ordered = app.post(&live_key, "/v1/rmb/orders", &new_key(), &body).await;
    assert_eq!(ordered.status, 201, "{:?}", ordered.body);
    assert_eq!((&ordered.body["status"], &ordered.body["livemode"]), (&json!("processing"), &json!(true)));
    let id = id(&ordered);
    assert_eq!(live_balance(&app, "USD").await, NET - 2_845, "debited when accepted");

    let at_desk = fake.trade(&id).expect("the desk received the order");
    assert_eq!(at_desk.request["recipient"], json!({ "identifier": "li.wei.2024", "name": "Li Wei" }));
    assert_eq!(at_desk.request["amount"], json!({ "amount": 20_000, "currency": "CNY" }));
    assert_eq!(at_desk.request["paid"], json!({ "amount": 2_845, "currency": "USD" }));
    assert_eq!(fake.requests("terms"), 1);

    fake.refund(&id, "RECIPIENT_REJECTED", "Alipay refused the recipient's account");
    for delivery in ["first", "repeated"] {
        assert_accepted(&fake.send_callback(&callback_url(&app), &id).await, delivery);
        let refunded = transaction(&app, &live_key, &id).await;
        assert_eq!(refunded["status"], "refunded", "{delivery}: {refunded}");
        assert_eq!(refunded["failure"]["code"], "RECIPIENT_REJECTED", "{refunded}");
        assert_eq!(live_balance(&app, "USD").await, NET, "{delivery}: the debit returned, once");
        assert_eq!(events(&app, &id, "transaction.refunded").await, 1, "{delivery}");
    }
    assert_eq!(fake.posts_for(&id), 1);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_502_after_the_desk_accepted_stays_processing_until_a_status_check_settles_it() {
    let fake = FakeDesk::start().await;
    let (app, live_key) = gateway(&fake).await;

    // The desk stores the sale, then its proxy answers 502.
    fake.push_fault(Fault::AcceptThenBadGateway);
    let sold = sell(&app, &live_key, "AMZN-PROXY-5020-PIN-4444").await;
    assert_eq!((&sold.body["status"], &sold.body["provider_reference"]), (&json!("pending"), &Value::Null));
    let id = id(&sold);
    assert_eq!((fake.trades_for(&id), fake.posts_for(&id)), (1, 1));

    // Still being verified: the check finds it, and does not send it again.
    status_check(&app, &id).await;
    let still = transaction(&app, &live_key, &id).await;
    assert_eq!(still["status"], "pending", "{still}");
    assert_eq!(still["provider_reference"], fake.trade(&id).unwrap().id.as_str(), "learnt from the lookup");
    assert!(fake.requests("gift_card_get") >= 1);

    fake.complete(&id, None);
    status_check(&app, &id).await;
    let done = transaction(&app, &live_key, &id).await;
    assert_eq!((&done["status"], done["credited"].as_i64()), (&json!("completed"), Some(NET)), "{done}");
    assert_eq!((fake.trades_for(&id), fake.posts_for(&id), fake.trade_count()), (1, 1, 1), "one trade at the desk");
    assert_eq!(live_balance(&app, "USD").await, NET);

    // The desk's own callback, late, changes nothing.
    assert_accepted(&fake.send_callback(&callback_url(&app), &id).await, "late");
    assert_eq!((entries(&app, &id).await, live_balance(&app, "USD").await), (1, NET));
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn an_order_the_desk_never_stored_is_sent_again_under_the_same_trade_id() {
    let fake = FakeDesk::start().await;
    let (app, live_key) = gateway(&fake).await;
    funded(&app, &live_key, &fake).await;

    // A 500 before the desk stored anything: the order may exist, so it is processing.
    fake.push_fault(Fault::ServerError);
    let quoted = app.get(&live_key, "/v1/rmb/quote?channel=wechat-pay&amount=10000&pay_currency=USD").await;
    assert_eq!(quoted.status, 200, "{:?}", quoted.body);
    let total = quoted.body["total"]["amount"].as_i64().unwrap();
    let body = json!({ "quote_id": quoted.body["id"], "recipient_identifier": "wx-zhang-88" });
    let ordered = app.post(&live_key, "/v1/rmb/orders", &new_key(), &body).await;
    assert_eq!((ordered.status.as_u16(), &ordered.body["status"]), (201, &json!("processing")), "{:?}", ordered.body);
    let id = id(&ordered);
    assert_eq!((fake.posts_for(&id), fake.trades_for(&id)), (1, 0));

    // The check finds nothing at the desk and sends it again, under the same id.
    status_check(&app, &id).await;
    assert_eq!((fake.posts_for(&id), fake.trades_for(&id)), (2, 1));
    assert_eq!(transaction(&app, &live_key, &id).await["status"], "processing");

    fake.complete(&id, None);
    status_check(&app, &id).await;
    let done = transaction(&app, &live_key, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!((fake.posts_for(&id), fake.trades_for(&id)), (2, 1), "paid once");
    assert_eq!(live_balance(&app, "USD").await, NET - total);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_refused_trade_fails_at_once_with_the_desks_reason() {
    let fake = FakeDesk::start().await;
    let (app, live_key) = gateway(&fake).await;
    fake.push_fault(Fault::Refuse(422, "CARD_BLOCKED_REGION"));
    let sold = sell(&app, &live_key, "AMZN-BLOCK-0002-PIN-5555").await;
    let id = id(&sold);
    assert_eq!(sold.body["status"], "cancelled", "{:?}", sold.body);
    assert_eq!(sold.body["failure"]["code"], "CARD_BLOCKED_REGION", "{:?}", sold.body);
    assert_eq!((fake.trades_for(&id), entries(&app, &id).await), (0, 0));
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM status_checks WHERE operation_id = '{id}' AND next_check_at IS NOT NULL"
        ))
        .await,
        0
    );
}

#[tokio::test]
async fn an_order_answered_after_the_deadline_is_processing_and_settled_by_its_lookup() {
    let fake = FakeDesk::start().await;
    let (app, live_key) = gateway(&fake).await;
    funded(&app, &live_key, &fake).await;

    // The desk stores the order but answers after the host's 4 s HTTP deadline.
    fake.push_fault(Fault::SlowAccept(std::time::Duration::from_millis(6_000)));
    let quoted = app.get(&live_key, "/v1/rmb/quote?channel=bank-transfer&amount=5000&pay_currency=USD").await;
    assert_eq!(quoted.status, 200, "{:?}", quoted.body);
    let body = json!({ "quote_id": quoted.body["id"], "recipient_identifier": "6222020200112233445" });
    let ordered = app.post(&live_key, "/v1/rmb/orders", &new_key(), &body).await;
    assert_eq!((ordered.status.as_u16(), &ordered.body["status"]), (201, &json!("processing")), "{:?}", ordered.body);
    let id = id(&ordered);

    fake.complete(&id, None);
    status_check(&app, &id).await;
    assert_eq!(transaction(&app, &live_key, &id).await["status"], "completed");
    assert_eq!((fake.posts_for(&id), fake.trades_for(&id)), (1, 1), "found by its lookup, not sent again");
    app.verify().expect("the ledger balances");
}
