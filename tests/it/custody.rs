//! Live crypto sales through the real server and the real `custody` trader
//! component, bound for live crypto sales and talking to a fake custody
//! provider on a loopback port (`docs/custody-protocol.md`): addresses made
//! by the provider and stable per merchant, asset and network; deposits
//! reported by signed notifications to `/v1/callbacks/custody` and followed
//! by status checks, credited once to the merchant's live balance at
//! confirmation; forged and stale notifications refused with nothing
//! changed.

use std::collections::BTreeMap;

use rusqlite::OptionalExtension;
use serde_json::{Value, json};
use soxara::config::{FileConfig, PluginLimitOverrides, PluginSettings, TradeRoute};
use soxara_tests::fakes::custody::{self, FakeCustody};
use soxara_tests::{Answer, TestApp, spawn_app_with_live_key};

/// Status checks of pending deposits wait this long: longer than any test
/// runs in real time, so they happen only when a test moves the clock.
const CHECK_MS: u64 = 60_000;
/// 25.5 USDT, in base units (6 decimals).
const DEPOSIT: u64 = 25_500_000;
/// 25.5 USDT at USD 0.99: USD 25.24, less the 1% fee (0.25).
const PRICE: i64 = 2_524;
const FEE: i64 = 25;
const NET: i64 = PRICE - FEE;

/// A gateway whose live crypto sales are carried by the `custody` trader,
/// configured for `fake`; and a live key of its merchant.
async fn gateway(fake: &FakeCustody) -> (TestApp, String) {
    let mut file = FileConfig::default();
    file.trades.routes.push(TradeRoute { mode: "live".into(), trade: "crypto_sale".into(), trader: "custody".into() });
    let config = BTreeMap::from([
        ("base_url".to_string(), fake.url()),
        ("api_key".to_string(), custody::API_KEY.to_string()),
        ("webhook_secret".to_string(), custody::WEBHOOK_SECRET.to_string()),
    ]);
    let settings = PluginSettings {
        mode: Some("live".into()),
        config,
        allowed_hosts: vec!["127.0.0.1".into()],
        limits: PluginLimitOverrides { call_ms_max: Some(10_000), ..Default::default() },
        ..Default::default()
    };
    file.plugins.insert("custody".into(), settings);
    file.status_checks.delays_ms = vec![CHECK_MS];
    file.status_checks.poll_interval_ms = 20;
    spawn_app_with_live_key(file).await
}

fn callback_url(app: &TestApp) -> String {
    format!("{}/v1/callbacks/custody", app.base)
}

async fn post_plain(app: &TestApp, key: &str, path: &str, body: &Value) -> Answer {
    let request = app.client.post(format!("{}{path}", app.base)).bearer_auth(key).json(body);
    soxara_tests::answer(request.send().await.expect("the request is sent")).await
}

/// The merchant's live address for USDT on Tron, credited in USD.
async fn usdt_address(app: &TestApp, live_key: &str) -> String {
    let body = json!({ "asset": "USDT", "network": "tron", "payout_currency": "USD" });
    let made = post_plain(app, live_key, "/v1/crypto/addresses", &body).await;
    assert!(made.status == 201 || made.status == 200, "{:?}", made.body);
    made.body["address"].as_str().expect("an address").to_string()
}

/// The sale recorded for the provider's deposit `deposit_id`, if any.
async fn sale_of(app: &TestApp, deposit_id: &str) -> Option<String> {
    let deposit_id = deposit_id.to_string();
    app.state()
        .ops
        .store
        .read(move |conn| {
            Ok(conn
                .query_row("SELECT id FROM crypto_sales WHERE deposit_id = ?1", [&deposit_id], |row| row.get(0))
                .optional()?)
        })
        .await
        .expect("the query runs")
}

/// The merchant's transaction for deposit `deposit_id`, as its live key reads it.
async fn sale(app: &TestApp, live_key: &str, deposit_id: &str) -> Value {
    let id = sale_of(app, deposit_id).await.unwrap_or_else(|| panic!("no sale recorded for deposit {deposit_id}"));
    let found = app.get(live_key, &format!("/v1/transactions/{id}")).await;
    assert_eq!(found.status, 200, "{:?}", found.body);
    found.body
}

async fn credits(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM journal_entries WHERE kind = 'crypto_credit'").await
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

fn assert_accepted(notified: &custody::Notified, what: &str) {
    assert!((200..300).contains(&notified.status), "{what}: the gateway answered {notified:?}");
}

fn assert_credited(sale: &Value) {
    assert_eq!((&sale["status"], &sale["crypto"]["state"]), (&json!("completed"), &json!("confirmed")), "{sale}");
    assert_eq!(
        (sale["amount"].as_i64(), sale["fee"].as_i64(), sale["net_amount"].as_i64(), sale["currency"].as_str()),
        (Some(PRICE), Some(FEE), Some(NET), Some("USD")),
        "{sale}"
    );
    assert_eq!(sale["crypto"]["amount"], DEPOSIT.to_string(), "{sale}");
    assert_eq!(sale["livemode"], true, "{sale}");
}

#[tokio::test]
async fn custody_addresses_are_made_by_the_provider_and_stable() {
    let fake = FakeCustody::start().await;
    let (app, live_key) = gateway(&fake).await;

    let assets = app.get(&live_key, "/v1/crypto/assets").await;
    assert_eq!(assets.status, 200, "{:?}", assets.body);
    let symbols: Vec<&str> =
        assets.body["data"].as_array().expect("a list").iter().map(|a| a["asset"].as_str().unwrap()).collect();
    assert_eq!(symbols, ["USDT", "BTC"], "the provider's listing");

    let body = json!({ "asset": "USDT", "network": "tron", "payout_currency": "USD" });
    let first = post_plain(&app, &live_key, "/v1/crypto/addresses", &body).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let expected = FakeCustody::address_for(&app.merchant_id, "USDT", "tron");
    assert_eq!((&first.body["address"], &first.body["livemode"]), (&json!(expected), &json!(true)));
    assert_eq!(fake.address_posts(), 1);
    let again = post_plain(&app, &live_key, "/v1/crypto/addresses", &body).await;
    assert_eq!((again.status.as_u16(), &again.body["address"]), (200, &first.body["address"]));
    assert_eq!(fake.address_posts(), 1, "the stored address is reused");

    let btc = json!({ "asset": "BTC", "network": "bitcoin", "payout_currency": "LRD" });
    let other = post_plain(&app, &live_key, "/v1/crypto/addresses", &btc).await;
    assert_eq!(other.status, 201, "{:?}", other.body);
    assert_eq!(other.body["address"], FakeCustody::address_for(&app.merchant_id, "BTC", "bitcoin"));
    assert_eq!((fake.address_posts(), fake.addresses_given()), (2, 2));

    // The provider down: the merchant is told to retry, nothing is stored.
    fake.fail_with(Some(503));
    let eth = json!({ "asset": "USDT", "network": "ethereum", "payout_currency": "USD" });
    let refused = post_plain(&app, &live_key, "/v1/crypto/addresses", &eth).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (503, "PROVIDER_UNAVAILABLE"), "{:?}", refused.body);
    fake.fail_with(None);
    assert_eq!(app.count("SELECT COUNT(*) FROM crypto_addresses").await, 2);
    let made = post_plain(&app, &live_key, "/v1/crypto/addresses", &eth).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    assert_eq!(fake.unauthorized(), 0, "every call carried the API key");
}

#[tokio::test]
async fn a_deposit_confirming_then_confirmed_is_credited_once_at_confirmation() {
    let fake = FakeCustody::start().await;
    let (app, live_key) = gateway(&fake).await;
    let address = usdt_address(&app, &live_key).await;

    let deposit = fake.deposit(&address, DEPOSIT, 3, "confirming");
    assert_accepted(&fake.notify(&deposit, &callback_url(&app)).await, "confirming");
    let pending = sale(&app, &live_key, &deposit).await;
    assert_eq!((&pending["status"], &pending["crypto"]["state"]), (&json!("pending"), &json!("confirming")));
    assert_eq!((&pending["crypto"]["deposit_id"], &pending["crypto"]["address"]), (&json!(deposit), &json!(address)));
    assert_eq!((pending["amount"].as_i64(), pending["livemode"].as_bool()), (Some(0), Some(true)), "{pending}");
    assert_eq!((credits(&app).await, live_balance(&app, "USD").await), (0, 0), "nothing credited while confirming");

    fake.confirm(&deposit);
    assert_accepted(&fake.notify(&deposit, &callback_url(&app)).await, "confirmed");
    assert_credited(&sale(&app, &live_key, &deposit).await);
    assert_eq!(app.count("SELECT COUNT(*) FROM crypto_sales").await, 1, "one deposit, one sale");
    assert_eq!(credits(&app).await, 1);
    assert_eq!(live_balance(&app, "USD").await, NET);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_confirmed_notification_delivered_twice_credits_once() {
    let fake = FakeCustody::start().await;
    let (app, live_key) = gateway(&fake).await;
    let address = usdt_address(&app, &live_key).await;

    let deposit = fake.deposit(&address, DEPOSIT, 20, "confirmed");
    for delivery in ["first", "repeated"] {
        assert_accepted(&fake.notify(&deposit, &callback_url(&app)).await, delivery);
        assert_credited(&sale(&app, &live_key, &deposit).await);
        assert_eq!(app.count("SELECT COUNT(*) FROM crypto_sales").await, 1, "{delivery}");
        assert_eq!(credits(&app).await, 1, "{delivery}");
        assert_eq!(live_balance(&app, "USD").await, NET, "{delivery}");
    }
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_held_deposit_stays_pending_until_a_status_check_finds_it_confirmed() {
    let fake = FakeCustody::start().await;
    let (app, live_key) = gateway(&fake).await;
    let address = usdt_address(&app, &live_key).await;

    let deposit = fake.deposit(&address, DEPOSIT, 20, "held");
    assert_accepted(&fake.notify(&deposit, &callback_url(&app)).await, "held");
    let held = sale(&app, &live_key, &deposit).await;
    assert_eq!((&held["status"], &held["crypto"]["state"]), (&json!("pending"), &json!("held")), "{held}");
    assert_eq!(held["next_action"]["type"], "wait", "{held}");

    // A check while it is still held changes nothing.
    app.advance_past_worker("status_checks", CHECK_MS + 1_000).await;
    let reads = fake.status_reads();
    assert!(reads >= 1, "the status check asked the provider");
    assert_eq!(sale(&app, &live_key, &deposit).await["crypto"]["state"], "held");
    assert_eq!((credits(&app).await, live_balance(&app, "USD").await), (0, 0));

    // Compliance clears it, and says so to no one: the next check finds it.
    fake.confirm(&deposit);
    // A round already running when the clock moved may have read it held:
    // the checks go on (backing off) until one reads it confirmed.
    let mut credited = sale(&app, &live_key, &deposit).await;
    for _ in 0..10 {
        if credited["status"] == "completed" {
            break;
        }
        app.advance_past_worker("status_checks", 3_600_000).await;
        credited = sale(&app, &live_key, &deposit).await;
    }
    assert!(fake.status_reads() > reads, "checked again");
    assert_credited(&credited);
    assert_eq!(credits(&app).await, 1);
    assert_eq!(live_balance(&app, "USD").await, NET);

    // A late notification of the confirmation credits nothing more.
    let late = fake.notify_signed_at(&deposit, &callback_url(&app), gateway_now_s(&app)).await;
    assert!(late.status < 500, "a final deposit's notification is not to be sent again: {late:?}");
    assert_eq!((credits(&app).await, live_balance(&app, "USD").await), (1, NET));
    app.verify().expect("the ledger balances");
}

/// The gateway's clock (moved by the test), in Unix seconds.
fn gateway_now_s(app: &TestApp) -> u64 {
    u64::try_from(app.clock.now_ms() / 1_000).expect("after 1970")
}

#[tokio::test]
async fn forged_and_stale_notifications_are_refused_and_change_nothing() {
    let fake = FakeCustody::start().await;
    let (app, live_key) = gateway(&fake).await;
    let address = usdt_address(&app, &live_key).await;
    let deposit = fake.deposit(&address, DEPOSIT, 20, "confirmed");

    let forged = fake.notify_forged(&deposit, &callback_url(&app)).await;
    assert_eq!((forged.status, forged.code()), (400, "CALLBACK_REJECTED"), "{forged:?}");
    let stale = fake.notify_signed_at(&deposit, &callback_url(&app), custody::unix_now_s() - 600).await;
    assert_eq!((stale.status, stale.code()), (400, "CALLBACK_REJECTED"), "{stale:?}");
    // Nor is a body changed after signing taken.
    let t = custody::unix_now_s();
    let body = fake.notification(&deposit);
    let signature = format!("t={t},v1={}", custody::sign(custody::WEBHOOK_SECRET, t, &body));
    let inflated = String::from_utf8(body).unwrap().replace(&DEPOSIT.to_string(), "25500000000");
    let tampered = app
        .client
        .post(callback_url(&app))
        .header("content-type", "application/json")
        .header(custody::SIGNATURE_HEADER, signature)
        .body(inflated)
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(tampered.status(), 400);

    assert_eq!(sale_of(&app, &deposit).await, None, "no sale recorded");
    assert_eq!(app.count("SELECT COUNT(*) FROM crypto_sales").await, 0);
    assert_eq!((credits(&app).await, live_balance(&app, "USD").await), (0, 0));
    assert_eq!(fake.status_reads(), 0, "a refused notification asks the provider nothing");

    // The genuine one, after all that, is credited.
    assert_accepted(&fake.notify(&deposit, &callback_url(&app)).await, "genuine");
    assert_credited(&sale(&app, &live_key, &deposit).await);
    assert_eq!((credits(&app).await, live_balance(&app, "USD").await), (1, NET));
    app.verify().expect("the ledger balances");
}
