//! RMB purchases through the real server and the real sandbox trader
//! component: every published test recipient of the partner API's sandbox
//! table (`recipient1234` paid, `recipient0000` processing then refunded by
//! its status check, `recipient9999` stays processing); quotes locked for
//! 60 seconds and used once; the merchant's simulated balance debited when
//! an order is accepted and returned when it is refunded; and clear
//! refusals of bad input with nothing moved.

use serde_json::{Value, json};
use soxara_tests::{TestApp, new_key, spawn_app};

/// Events of `event_type` recorded for `object_id`.
async fn events(app: &TestApp, object_id: &str, event_type: &str) -> i64 {
    app.count(&format!("SELECT COUNT(*) FROM events WHERE object_id = '{object_id}' AND type = '{event_type}'")).await
}

/// The merchant's simulated balance in `currency`, in minor units.
async fn sandbox_balance(app: &TestApp, currency: &str) -> i64 {
    -app.count(&format!(
        "SELECT COALESCE(SUM(p.amount), 0) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
         WHERE a.kind = 'sandbox_balance' AND a.currency = '{currency}'"
    ))
    .await
}

/// A quote for `fen` by Alipay, paid in `pay`.
async fn quote(app: &TestApp, fen: u64, pay: &str) -> Value {
    let got = app.get(&app.key, &format!("/v1/rmb/quote?channel=alipay&amount={fen}&pay_currency={pay}")).await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    got.body
}

async fn order(app: &TestApp, key: &str, quote_id: &str, recipient: &str) -> soxara_tests::Answer {
    let body = json!({ "quote_id": quote_id, "recipient_identifier": recipient, "recipient_name": "Li Wei" });
    app.post(&app.key, "/v1/rmb/orders", key, &body).await
}

#[tokio::test]
async fn every_published_test_recipient_behaves_as_published() {
    let app = spawn_app().await;
    // (recipient, status at once, status after its check, the event it fires)
    let table = [
        ("recipient1234", "completed", "completed", Some("transaction.completed")),
        ("recipient0000", "processing", "refunded", Some("transaction.refunded")),
        ("recipient9999", "processing", "processing", None),
    ];
    let mut made = Vec::new();
    for (recipient, first, _, _) in table {
        let quoted = quote(&app, 100_000, "USD").await;
        assert_eq!(quoted["object"], "rmb_quote");
        // CNY 1,000.00 at CNY 7.10 per USD: USD 140.845… → 140.85, and 1%.
        assert_eq!(quoted["cost"], json!({ "currency": "USD", "amount": 14_085 }), "{quoted}");
        assert_eq!(quoted["fee"]["amount"], 140);
        assert_eq!(quoted["total"]["amount"], 14_225);
        let key = new_key();
        let ordered = order(&app, &key, quoted["id"].as_str().unwrap(), recipient).await;
        assert_eq!(ordered.status, 201, "{recipient}: {:?}", ordered.body);
        let rmb = &ordered.body;
        assert_eq!((rmb["object"].as_str(), rmb["type"].as_str()), (Some("transaction"), Some("rmb_purchase")));
        assert_eq!(rmb["status"], first, "{recipient}: {rmb}");
        assert_eq!(rmb["amount"], 14_225, "{rmb}");
        assert_eq!(rmb["rmb"]["amount"], json!({ "currency": "CNY", "amount": 100_000 }));
        assert_eq!(rmb["rmb"]["recipient_identifier"], recipient);
        assert!(rmb["reference"].as_str().unwrap().starts_with("RMB"), "{rmb}");
        let debited = 14_225 * (made.len() as i64 + 1);
        assert_eq!(sandbox_balance(&app, "USD").await, 1_000_000 - debited, "{recipient}: debited when accepted");
        // A replay is only a replay.
        let replayed = order(&app, &key, quoted["id"].as_str().unwrap(), recipient).await;
        assert_eq!((replayed.status.as_u16(), &replayed.body), (201, &ordered.body));
        assert_eq!(replayed.headers.get("idempotency-replayed").unwrap(), "true");
        made.push((rmb["id"].as_str().unwrap().to_string(), key));
    }

    // The status checks follow the processing ones.
    let first_check_ms = u64::try_from(app.state().ops.checks.delay_ms(0)).unwrap();
    app.advance_past_worker("status_checks", first_check_ms + 1_000).await;
    app.advance_past_worker("status_checks", 1_000).await;
    for ((recipient, _, last, event), (id, key)) in table.iter().zip(&made) {
        let found = app.get(&app.key, &format!("/v1/transactions/{key}?type=rmb_purchase")).await;
        assert_eq!(
            (found.status.as_u16(), &found.body["status"]),
            (200, &json!(last)),
            "{recipient}: {:?}",
            found.body
        );
        for kind in ["transaction.completed", "transaction.refunded", "transaction.failed"] {
            assert_eq!(events(&app, id, kind).await, i64::from(*event == Some(kind)), "{recipient}: {kind}");
        }
        if *last == "refunded" {
            assert_eq!(found.body["failure"]["code"], "RECIPIENT_REJECTED", "{:?}", found.body);
        }
    }
    // Paid: 14,225 for recipient1234; held: 14,225 for recipient9999; the
    // refund gave recipient0000's back.
    assert_eq!(sandbox_balance(&app, "USD").await, 1_000_000 - 2 * 14_225);
    let fee_revenue = app
        .count(
            "SELECT -COALESCE(SUM(p.amount), 0) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
             WHERE a.kind = 'fee_revenue' AND a.mode = 'test'",
        )
        .await;
    assert_eq!(fee_revenue, 140, "the fee of the one order paid out");
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn a_quote_is_used_once_and_expires_after_60_seconds() {
    let app = spawn_app().await;
    let quoted = quote(&app, 50_000, "LRD").await;
    // CNY 500.00 at 71/1900 CNY per LRD: LRD 13,380.2816… → 13,380.29.
    assert_eq!(quoted["cost"], json!({ "currency": "LRD", "amount": 1_338_029 }), "{quoted}");
    let id = quoted["id"].as_str().unwrap();
    let first = order(&app, &new_key(), id, "recipient1234").await;
    assert_eq!(first.body["status"], "completed", "{:?}", first.body);
    let again = order(&app, &new_key(), id, "recipient1234").await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "QUOTE_ALREADY_USED"), "{:?}", again.body);

    let late = quote(&app, 50_000, "USD").await;
    app.advance_clock(60_001);
    let (purchases, entries) = (
        app.count("SELECT COUNT(*) FROM rmb_purchases").await,
        app.count("SELECT COUNT(*) FROM journal_entries").await,
    );
    let key = new_key();
    let expired = order(&app, &key, late["id"].as_str().unwrap(), "recipient1234").await;
    assert_eq!((expired.status.as_u16(), expired.code()), (422, "QUOTE_EXPIRED"), "{:?}", expired.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM rmb_purchases").await, purchases, "nothing ordered");
    assert_eq!(app.count("SELECT COUNT(*) FROM journal_entries").await, entries, "nothing moved");
    let never = app.get(&app.key, &format!("/v1/transactions/{key}")).await;
    assert_eq!(never.status, 404, "the key was not used: safe to retry with a new quote");

    // Another merchant's quote is not found.
    let (_, other_key) = app.create_merchant("Other Shop").await;
    let body = json!({ "quote_id": quoted["id"], "recipient_identifier": "recipient1234" });
    let stranger = app.post(&other_key, "/v1/rmb/orders", &new_key(), &body).await;
    assert_eq!((stranger.status.as_u16(), stranger.code()), (404, "RESOURCE_NOT_FOUND"), "{:?}", stranger.body);
    app.verify().expect("the ledger balances");
}

#[tokio::test]
async fn an_order_the_balance_cannot_cover_moves_nothing() {
    let app = spawn_app().await;
    // CNY 50,000.00 costs USD 7,112.68: one fits USD 10,000.00, two do not.
    let first = quote(&app, 5_000_000, "USD").await;
    assert_eq!(order(&app, &new_key(), first["id"].as_str().unwrap(), "recipient1234").await.status, 201);
    let second = quote(&app, 5_000_000, "USD").await;
    let entries = app.count("SELECT COUNT(*) FROM journal_entries").await;
    let short = order(&app, &new_key(), second["id"].as_str().unwrap(), "recipient1234").await;
    assert_eq!((short.status.as_u16(), short.code()), (402, "INSUFFICIENT_FUNDS"), "{:?}", short.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM journal_entries").await, entries, "nothing moved");
    assert_eq!(app.count("SELECT COUNT(*) FROM rmb_purchases").await, 1);
}

#[tokio::test]
async fn channels_rates_and_bad_input() {
    let app = spawn_app().await;
    let channels = app.get(&app.key, "/v1/rmb/channels").await;
    assert_eq!(channels.status, 200, "{:?}", channels.body);
    let slugs: Vec<&str> =
        channels.body["data"].as_array().unwrap().iter().map(|c| c["channel"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["alipay", "wechat-pay", "bank-transfer"]);
    assert_eq!(channels.body["data"][0]["min"], json!({ "currency": "CNY", "amount": 1_000 }));
    let rates = app.get(&app.key, "/v1/rmb/rates").await;
    assert_eq!(rates.status, 200, "{:?}", rates.body);
    let usd = rates.body["data"].as_array().unwrap().iter().find(|r| r["pay_currency"] == "USD").unwrap();
    assert_eq!(usd["rate"]["decimal"], "7.100000");

    let (not_offered, invalid) = ((422, "NOT_OFFERED"), (400, "VALIDATION_ERROR"));
    for (query, field, refusal) in [
        ("channel=paypal&amount=100000&pay_currency=USD", "channel", not_offered),
        ("channel=&amount=100000&pay_currency=USD", "channel", invalid),
        ("channel=alipay&amount=999&pay_currency=USD", "amount", not_offered),
        ("channel=alipay&amount=5000001&pay_currency=USD", "amount", not_offered),
        ("channel=alipay&amount=12.5&pay_currency=USD", "amount", invalid),
        ("channel=alipay&amount=100000&pay_currency=EUR", "pay_currency", invalid),
        ("channel=alipay&amount=100000", "pay_currency", invalid),
        ("channel=alipay&amount=100000&pay_currency=USD&extra=1", "extra", invalid),
    ] {
        let refused = app.get(&app.key, &format!("/v1/rmb/quote?{query}")).await;
        assert_eq!((refused.status.as_u16(), refused.code()), refusal, "{query}: {:?}", refused.body);
        assert!(refused.body.to_string().contains(field), "{query} names {field}: {:?}", refused.body);
    }
    let quoted = quote(&app, 100_000, "USD").await;
    for (body, field) in [
        (json!({ "quote_id": quoted["id"] }), "recipient_identifier"),
        (json!({ "quote_id": quoted["id"], "recipient_identifier": "" }), "recipient_identifier"),
        (json!({ "quote_id": quoted["id"], "recipient_identifier": " recipient1234" }), "recipient_identifier"),
        (json!({ "recipient_identifier": "recipient1234" }), "quote_id"),
        (json!({ "quote_id": quoted["id"], "recipient_identifier": "recipient1234", "amount": 1 }), "amount"),
    ] {
        let refused = app.post(&app.key, "/v1/rmb/orders", &new_key(), &body).await;
        assert_eq!((refused.status.as_u16(), refused.code()), (400, "VALIDATION_ERROR"), "{body}: {:?}", refused.body);
        assert!(refused.body.to_string().contains(field), "{body} names {field}: {:?}", refused.body);
    }
    let missing = app
        .post(&app.key, "/v1/rmb/orders", &new_key(), &json!({ "quote_id": "rmbq_nope", "recipient_identifier": "x1" }))
        .await;
    assert_eq!(missing.status, 404, "{:?}", missing.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM rmb_purchases").await, 0, "nothing ordered");
}

/// Starts a gateway on a fresh database with `file`, and says why not.
async fn start_with(file: soxara::config::FileConfig) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let config = soxara::app::Config {
        database: dir.path().join("gateway.db"),
        listen: "127.0.0.1:0".parse().unwrap(),
        plugin_dir: soxara_tests::plugin_dir(),
        file,
        clock: soxara::values::clock::Clock::adjustable(),
    };
    soxara::app::start(config).await.map(drop).map_err(|e| format!("{e:#}"))
}

#[tokio::test]
async fn trade_routes_are_checked_at_start() {
    let route = |mode: &str, trade: &str, trader: &str| {
        let mut file = soxara::config::FileConfig::default();
        file.admin.listen = "127.0.0.1:0".parse().unwrap();
        file.trades.routes.push(soxara::config::TradeRoute {
            mode: mode.into(),
            trade: trade.into(),
            trader: trader.into(),
        });
        file
    };
    for (file, why) in [
        (route("live", "rmb_purchase", "trader-sandbox"), "configured for test mode"),
        (route("test", "rmb_purchase", "no-such-desk"), "no trader plugin \"no-such-desk\" is loaded"),
        (route("test", "bonds", "trader-sandbox"), "trade must be one of"),
        (route("staging", "rmb_purchase", "trader-sandbox"), "mode must be test or live"),
    ] {
        let refused = start_with(file).await.expect_err(why);
        assert!(refused.contains(why), "{why}: {refused}");
    }
    start_with(route("test", "rmb_purchase", "trader-sandbox")).await.expect("a test route to the sandbox trader");
}
