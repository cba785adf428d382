//! Per-key rate limits: `429 RATE_LIMIT_EXCEEDED` with `Retry-After` past a
//! key's requests a minute, counted for each key on its own.

use soxara::config::{FileConfig, RateLimitSettings};
use soxara::domain::keys::KeyKind;
use soxara::values::mode::Mode;
use soxara_tests::{Answer, TestApp, momo, new_key, spawn_app_rate_limited};

async fn limited(live_per_minute: u32, test_per_minute: u32) -> TestApp {
    let config =
        FileConfig { rate_limits: RateLimitSettings { live_per_minute, test_per_minute }, ..Default::default() };
    spawn_app_rate_limited(config).await
}

/// A read any valid key may make (the payment does not exist: 404).
async fn read(app: &TestApp, key: &str) -> Answer {
    app.get(key, "/v1/payments/pay_0000000000000000000000").await
}

fn retry_after(answer: &Answer) -> u64 {
    let header = answer.headers.get("retry-after").expect("a 429 says when to retry");
    header.to_str().unwrap().parse().expect("Retry-After in whole seconds")
}

#[tokio::test]
async fn a_key_past_its_limit_gets_429_with_retry_after_and_other_keys_are_not_affected() {
    let app = limited(7, 5).await;
    for _ in 0..5 {
        assert_eq!(read(&app, &app.key).await.status, 404);
    }
    let refused = read(&app, &app.key).await;
    assert_eq!(refused.status, 429, "{:?}", refused.body);
    assert_eq!(refused.code(), "RATE_LIMIT_EXCEEDED");
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("5 requests a minute"), "{:?}", refused.body);
    // 5 a minute: the next request is 12 s away at most.
    assert!((1..=12).contains(&retry_after(&refused)), "{:?}", refused.headers);

    // A refused write does nothing, and its idempotency key stays unused.
    let idempotency_key = new_key();
    let payment = app.pay(&app.key, Some(&idempotency_key), &momo(1_000, "USD", "+231770001234")).await;
    assert_eq!(payment.status, 429);
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM idempotency_keys").await, 0);

    // Another key of the same merchant, and the same merchant's live key,
    // are counted on their own; so is the health check (no key).
    let second = app.create_key(&app.merchant_id, Mode::Test, KeyKind::Secret).await;
    assert_eq!(read(&app, &second).await.status, 404);
    let live = app.create_key(&app.merchant_id, Mode::Live, KeyKind::Secret).await;
    for _ in 0..7 {
        assert_eq!(read(&app, &live).await.status, 404);
    }
    assert_eq!(read(&app, &live).await.status, 429);
    assert_eq!(app.get("", "/health").await.status, 200);
}

#[tokio::test]
async fn a_key_that_waits_retry_after_is_served_again() {
    // 60 a minute: one more each second once the burst of 60 is spent.
    let app = limited(300, 60).await;
    let mut served = 0;
    let refused = loop {
        let answer = read(&app, &app.key).await;
        if answer.status == 429 {
            break answer;
        }
        served += 1;
        assert!(served <= 200, "no 429 after {served} requests at 60 a minute");
    };
    assert!(served >= 60, "the whole burst is served first, got {served}");
    let wait = retry_after(&refused);
    assert_eq!(wait, 1);
    app.advance_clock(wait * 1_000);
    assert_eq!(read(&app, &app.key).await.status, 404, "served again after Retry-After");
}

#[tokio::test]
async fn the_default_limits_are_the_published_ones() {
    assert_eq!(RateLimitSettings::default(), RateLimitSettings { live_per_minute: 300, test_per_minute: 10 });
    let app = spawn_app_rate_limited(FileConfig::default()).await;
    for _ in 0..10 {
        assert_eq!(read(&app, &app.key).await.status, 404);
    }
    assert_eq!(read(&app, &app.key).await.status, 429);
}
