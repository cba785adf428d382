use std::collections::BTreeMap;

use serde_json::json;
use soxara::config::{FileConfig, PluginSettings};
use soxara_tests::fakes::FakeRates;
use soxara_tests::{new_key, spawn_app, spawn_app_with};

const ALICE: &str = "+231770001234";

fn quote_path(from: &str, to: &str, amount: i64) -> String {
    format!("/v1/fx/quote?from={from}&to={to}&amount={amount}")
}

/// Settings with the HTTP rates plugin pointed at `fake` (and allowed to reach it).
fn with_http_rates(fake: &FakeRates, spread_bps: u32) -> FileConfig {
    let mut config = FileConfig::default();
    config.fx.spread_bps = spread_bps;
    config.plugins.insert(
        "fx-http".into(),
        PluginSettings {
            config: BTreeMap::from([("url".to_string(), fake.url())]),
            allowed_hosts: vec!["127.0.0.1".into()],
            ..PluginSettings::default()
        },
    );
    config
}

#[tokio::test]
async fn the_seed_swap_example_through_the_api() {
    let app = spawn_app().await;
    app.top_up(ALICE, 1_234, "USD").await;
    let quote = app.get(&app.key, &quote_path("USD", "LRD", 1_234)).await;
    assert_eq!(quote.status, 200, "{:?}", quote.body);
    let q = &quote.body;
    assert_eq!(q["object"], "fx_quote");
    assert_eq!(q["from"], json!({"currency": "USD", "amount": 1234}));
    assert_eq!(q["to"], json!({"currency": "LRD", "amount": 223300}), "rounded down to LRD 1.00");
    assert_eq!(q["platform_amount"], json!({"currency": "LRD", "amount": 54}));
    assert_eq!(q["rounding_amount"], json!({"currency": "LRD", "amount": 54}), "all of it rounding: no spread here");
    assert_eq!(q["rate"]["decimal"], "181.000000");
    let created =
        time::OffsetDateTime::parse(q["created_at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .unwrap();
    let expires =
        time::OffsetDateTime::parse(q["expires_at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert_eq!((expires - created).whole_seconds(), 60, "the rate is locked for 60 s");

    let body = json!({"quote_id": q["id"], "customer": {"phone": ALICE}});
    let swap = app.post(&app.key, "/v1/fx/swaps", &new_key(), &body).await;
    assert_eq!(swap.status, 201, "{:?}", swap.body);
    assert_eq!((swap.body["status"].as_str(), swap.body["to"]["amount"].as_i64()), (Some("processing"), Some(223_300)));
    assert_eq!(app.wallet_balance(ALICE, "USD").await, 1_234, "nothing moves before the customer approves");
    let swapped = app.approve_and_get(&app.key, &swap, "/v1/transactions").await;
    assert_eq!(swapped.body["status"], "completed", "{:?}", swapped.body);
    assert_eq!(app.wallet_balance(ALICE, "USD").await, 0);
    assert_eq!(app.wallet_balance(ALICE, "LRD").await, 223_300);
    let fx_revenue = app
        .count("SELECT -SUM(p.amount) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id WHERE a.kind = 'fx_revenue' AND a.currency = 'LRD'")
        .await;
    assert_eq!(fx_revenue, 54, "the remainder stays with the platform");
    app.verify().expect("the ledger holds");
}

#[tokio::test]
async fn an_expired_quote_is_refused() {
    let app = spawn_app().await;
    app.top_up(ALICE, 5_000, "USD").await;
    let quote = app.get(&app.key, &quote_path("USD", "LRD", 1_000)).await;
    let id = quote.body["id"].as_str().unwrap().to_string();
    // Sixty seconds pass: move the expiry into the past rather than sleep.
    let moved = id.clone();
    app.state()
        .ops
        .store
        .write(move |c| Ok(c.execute("UPDATE fx_quotes SET expires_at = expires_at - 60001 WHERE id = ?1", [&moved])?))
        .await
        .unwrap();
    let entries = app.count("SELECT COUNT(*) FROM journal_entries").await;
    let swap =
        app.post(&app.key, "/v1/fx/swaps", &new_key(), &json!({"quote_id": id, "customer": {"phone": ALICE}})).await;
    assert_eq!((swap.status.as_u16(), swap.code()), (422, "QUOTE_EXPIRED"));
    assert_eq!(app.count("SELECT COUNT(*) FROM journal_entries").await, entries, "nothing posted");
    assert_eq!(app.wallet_balance(ALICE, "USD").await, 5_000);
}

#[tokio::test]
async fn a_quote_executes_at_most_once() {
    let app = spawn_app().await;
    app.top_up(ALICE, 5_000, "USD").await;
    let quote = app.get(&app.key, &quote_path("USD", "LRD", 1_000)).await;
    let body = json!({"quote_id": quote.body["id"], "customer": {"phone": ALICE}});
    let idem = new_key();
    let first = app.post(&app.key, "/v1/fx/swaps", &idem, &body).await;
    assert_eq!(first.status, 201);
    let replay = app.post(&app.key, "/v1/fx/swaps", &idem, &body).await;
    assert_eq!(replay.headers["idempotency-replayed"], "true");
    assert_eq!(replay.body, first.body, "a replay returns the same swap");
    let again = app.post(&app.key, "/v1/fx/swaps", &new_key(), &body).await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "QUOTE_ALREADY_USED"), "the waiting swap holds it");
    app.approve_and_get(&app.key, &first, "/v1/transactions").await;
    assert_eq!(app.wallet_balance(ALICE, "USD").await, 4_000);
    assert_eq!(app.wallet_balance(ALICE, "LRD").await, 181_000);
    let found = app.get(&app.key, &format!("/v1/transactions/{idem}")).await;
    assert_eq!(found.status, 200, "a swap is found by its idempotency key");
    assert_eq!((&found.body["id"], found.body["status"].as_str()), (&first.body["id"], Some("completed")));

    let unknown = json!({"quote_id": "quote_nope", "customer": {"phone": ALICE}});
    assert_eq!(app.post(&app.key, "/v1/fx/swaps", &new_key(), &unknown).await.code(), "RESOURCE_NOT_FOUND");
    let (_, other) = app.create_merchant("Other").await;
    let fresh = app.get(&app.key, &quote_path("USD", "LRD", 1_000)).await;
    let theirs = json!({"quote_id": fresh.body["id"], "customer": {"phone": ALICE}});
    assert_eq!(app.post(&other, "/v1/fx/swaps", &new_key(), &theirs).await.code(), "RESOURCE_NOT_FOUND");
}

#[tokio::test]
async fn a_swap_the_wallet_cannot_cover_fails_when_approved_with_nothing_moved_and_no_balance_told() {
    let app = spawn_app().await;
    app.top_up(ALICE, 999, "USD").await;
    let entries = app.count("SELECT COUNT(*) FROM journal_entries").await;
    let quote = app.get(&app.key, &quote_path("USD", "LRD", 1_000)).await;
    let body = json!({"quote_id": quote.body["id"], "customer": {"phone": ALICE}});
    let swap = app.post(&app.key, "/v1/fx/swaps", &new_key(), &body).await;
    assert_eq!(swap.status, 201, "the merchant learns nothing of the wallet before the customer approves");
    let failed = app.approve_and_get(&app.key, &swap, "/v1/transactions").await;
    assert_eq!(
        (failed.body["status"].as_str(), failed.body["failure"]["code"].as_str()),
        (Some("failed"), Some("INSUFFICIENT_FUNDS")),
        "{:?}",
        failed.body
    );
    assert!(!failed.body.to_string().contains("999"), "no balance in the answer: {:?}", failed.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM journal_entries").await, entries, "nothing posted");
    assert_eq!(app.wallet_balance(ALICE, "USD").await, 999);
    assert_eq!(app.wallet_balance(ALICE, "LRD").await, 0);
}

#[tokio::test]
async fn a_tiny_swap_that_rounding_would_eat_is_refused_with_the_smallest_fair_amount() {
    let app = spawn_app().await;
    // 1 cent is LRD 1.81; paid out in whole LRD it would lose 45% to rounding.
    let cent = app.get(&app.key, &quote_path("USD", "LRD", 1)).await;
    assert_eq!((cent.status.as_u16(), cent.code()), (422, "NOT_OFFERED"), "{:?}", cent.body);
    let why = cent.body["error"]["fields"][0]["message"].as_str().unwrap();
    assert!(why.contains("more than 1%") && why.contains("USD 0.56"), "{why}");
    let fair = app.get(&app.key, &quote_path("USD", "LRD", 56)).await;
    assert_eq!(fair.status, 200, "{:?}", fair.body);
    let (to, rounding) =
        (fair.body["to"]["amount"].as_i64().unwrap(), fair.body["rounding_amount"]["amount"].as_i64().unwrap());
    assert!(rounding * 100 <= to, "rounding keeps at most 1% of what the customer gets: {:?}", fair.body);
}

#[tokio::test]
async fn quotes_validate_their_parameters() {
    let app = spawn_app().await;
    for (query, field) in [
        ("from=USD&to=LRD", "amount"),
        ("from=USD&to=LRD&amount=12.5", "amount"),
        ("from=USD&to=LRD&amount=-1", "amount"),
        ("to=LRD&amount=100", "from"),
        ("from=NGN&to=LRD&amount=100", "from"),
        ("from=USD&to=LRD&amount=100&side=buy", "side"),
    ] {
        let answer = app.get(&app.key, &format!("/v1/fx/quote?{query}")).await;
        assert_eq!((answer.status.as_u16(), answer.code()), (400, "VALIDATION_ERROR"), "{query}");
        let fields = answer.body["error"]["fields"].as_array().unwrap();
        assert!(fields.iter().any(|f| f["field"] == field), "{query}: {fields:?}");
    }
    // Well-formed, but LRD 1.00 is less than a cent at today's rate.
    let small = app.get(&app.key, "/v1/fx/quote?from=LRD&to=USD&amount=100").await;
    assert_eq!((small.status.as_u16(), small.code()), (422, "NOT_OFFERED"));
    assert_eq!(small.body["error"]["fields"][0]["field"], "amount");
    // Well-formed, but there is nothing to convert.
    let same = app.get(&app.key, "/v1/fx/quote?from=USD&to=USD&amount=100").await;
    assert_eq!((same.status.as_u16(), same.code()), (422, "CURRENCY_PAIR_UNSUPPORTED"));
}

#[tokio::test]
async fn the_mid_rate_spans_healthy_providers_and_the_spread_applies() {
    let fake = FakeRates::start().await;
    fake.set_rate("USD", "LRD", "183");
    let app = spawn_app_with(with_http_rates(&fake, 100)).await;
    let quote = app.get(&app.key, &quote_path("USD", "LRD", 1_000)).await;
    assert_eq!(quote.status, 200, "{:?}", quote.body);
    assert!(fake.requests() >= 1, "the HTTP provider was asked");
    assert_eq!(quote.body["mid_rate"]["decimal"], "182.000000", "median of 181 (fixed) and 183 (http)");
    assert_eq!(quote.body["rate"]["decimal"], "180.180000", "less the 1% spread");
    // 1000 cents at 180.18 = 180180 minor → 180100; the mid value 182000.
    assert_eq!(quote.body["to"]["amount"], 180_100);
    assert_eq!(quote.body["platform_amount"]["amount"], 1_900);
    assert_eq!(quote.body["providers"], json!(["fixed", "http"]));

    // Rates are reused for a moment: a flood of quotes (public keys may ask)
    // is not a flood of plugin calls and provider requests.
    let asked = fake.requests();
    for _ in 0..5 {
        assert_eq!(
            app.get(&app.key, &quote_path("USD", "LRD", 1_000)).await.body["providers"],
            json!(["fixed", "http"])
        );
    }
    assert_eq!(fake.requests(), asked, "the recent rates were reused");

    // A provider that fails is left out; the others still quote.
    fake.fail_with(503);
    app.advance_clock(soxara::domain::fx::RATES_FRESH_MS as u64);
    let degraded = app.get(&app.key, &quote_path("USD", "LRD", 1_000)).await;
    assert_eq!(degraded.status, 200);
    assert_eq!(degraded.body["providers"], json!(["fixed"]));
    assert_eq!(degraded.body["mid_rate"]["decimal"], "181.000000");
}

#[tokio::test]
async fn rates_come_only_from_allowed_hosts() {
    let fake = FakeRates::start().await;
    fake.set_rate("USD", "LRD", "183");
    let mut config = with_http_rates(&fake, 0);
    config.plugins.get_mut("fx-http").unwrap().allowed_hosts = vec!["rates.example.com".into()];
    let app = spawn_app_with(config).await;
    let quote = app.get(&app.key, &quote_path("USD", "LRD", 1_000)).await;
    assert_eq!(quote.body["providers"], json!(["fixed"]));
    assert_eq!(fake.requests(), 0, "the host refused the request before it left");
}

#[tokio::test]
async fn no_healthy_provider_means_no_quote() {
    let mut config = FileConfig::default();
    config.plugins.clear();
    let app = spawn_app_with(config).await;
    let quote = app.get(&app.key, &quote_path("USD", "LRD", 1_000)).await;
    assert_eq!((quote.status.as_u16(), quote.code()), (503, "FX_RATE_UNAVAILABLE"));
}
