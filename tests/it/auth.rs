use soxara::domain::keys::KeyKind;
use soxara::values::mode::Mode;
use soxara_tests::{momo, new_key, spawn_app};

#[tokio::test]
async fn health_needs_no_key_and_lists_the_simulator() {
    let app = spawn_app().await;
    let answer = app.get("", "/health").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["status"], "ok");
    assert!(answer.body["rails"].as_array().unwrap().contains(&serde_json::json!("simulator")));
}

#[tokio::test]
async fn compiled_plugins_are_cached_for_the_next_start() {
    let mut app = spawn_app().await;
    let cache = app.database.parent().unwrap().join("plugin-cache");
    let cached_files = || walk(&cache);
    assert!(cached_files() > 0, "compiling the bundled plugins filled {}", cache.display());
    app.restart().await;
    assert_eq!(app.get("", "/health").await.status, 200, "a start from the cache serves");
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(Result::ok).map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn missing_and_bad_keys_are_refused_with_the_envelope() {
    let app = spawn_app().await;
    let url = format!("{}/v1/payments/pay_x", app.base);
    let missing = soxara_tests::answer(app.client.get(&url).send().await.unwrap()).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.code(), "AUTHENTICATION_REQUIRED");
    let error = &missing.body["error"];
    assert!(error["message"].as_str().unwrap().contains("Authorization: Bearer"));
    assert_eq!(error["doc_url"], "/docs/errors#authentication_required");
    // The page it points at is served, with that code's entry.
    let page = app.client.get(format!("{}/docs/errors", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<a id=\"authentication_required\"></a>"));
    assert!(error["request_id"].as_str().unwrap().starts_with("req_"));
    assert_eq!(missing.headers["x-request-id"], error["request_id"].as_str().unwrap());

    let unknown = format!("sxm_test_sk_{}", "a".repeat(32));
    for bad in [unknown.as_str(), "sxm_test_sk_short", "not-a-key", "sogo_sk_test_abc"] {
        let answer = app.get(bad, "/v1/payments/pay_x").await;
        assert_eq!(answer.status, 401, "{bad}");
        assert_eq!(answer.code(), "AUTHENTICATION_FAILED", "{bad}");
    }
}

#[tokio::test]
async fn the_key_may_come_as_bearer_or_x_api_key() {
    let app = spawn_app().await;
    let created = app.pay(&app.key, Some(&new_key()), &momo(500, "USD", "+231770001234")).await;
    assert_eq!(created.status, 201);
    let path = format!("{}/v1/payments/{}", app.base, created.body["id"].as_str().unwrap());
    let via_header =
        soxara_tests::answer(app.client.get(&path).header("X-API-Key", &app.key).send().await.unwrap()).await;
    assert_eq!(via_header.status, 200);
    assert_eq!(via_header.body, created.body);
}

#[tokio::test]
async fn public_keys_cannot_create_payments() {
    let app = spawn_app().await;
    let public = app.create_key(&app.merchant_id, Mode::Test, KeyKind::Public).await;
    let answer = app.pay(&public, Some(&new_key()), &momo(500, "USD", "+231770001234")).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.code(), "SECRET_KEY_REQUIRED");
}

#[tokio::test]
async fn a_live_key_never_reaches_the_simulator() {
    let app = spawn_app().await;
    let live = app.create_key(&app.merchant_id, Mode::Live, KeyKind::Secret).await;
    let idem = new_key();
    let answer = app.pay(&live, Some(&idem), &momo(500, "USD", "+231770001234")).await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.code(), "PAYMENT_METHOD_UNAVAILABLE");
    assert!(answer.body["error"]["message"].as_str().unwrap().contains("no live rail"));
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 0, "nothing was created");
    // Nothing exists under the key, so the merchant may safely retry it later.
    assert_eq!(app.get(&live, &format!("/v1/transactions/{idem}")).await.status, 404);
}

#[tokio::test]
async fn test_and_live_objects_and_merchants_are_kept_apart() {
    let app = spawn_app().await;
    let created = app.pay(&app.key, Some(&new_key()), &momo(500, "USD", "+231770001234")).await;
    let path = format!("/v1/payments/{}", created.body["id"].as_str().unwrap());
    let live = app.create_key(&app.merchant_id, Mode::Live, KeyKind::Secret).await;
    assert_eq!(app.get(&live, &path).await.code(), "RESOURCE_NOT_FOUND");
    let (_, other) = app.create_merchant("Other merchant").await;
    assert_eq!(app.get(&other, &path).await.code(), "RESOURCE_NOT_FOUND");
    assert_eq!(app.get(&app.key, &path).await.status, 200);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_envelope() {
    let app = spawn_app().await;
    let answer = app.get(&app.key, "/v1/nothing-here").await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.code(), "ROUTE_NOT_FOUND");
    let wrong =
        soxara_tests::answer(app.client.delete(format!("{}/v1/payments", app.base)).send().await.unwrap()).await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.code(), "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn a_revoked_key_is_refused_once_the_cache_forgets_it() {
    let app = spawn_app().await;
    let payment = app.pay(&app.key, Some(&new_key()), &momo(500, "USD", "+231770001234")).await;
    assert_eq!(payment.status, 201, "the key works, and is now cached");
    let path = format!("/v1/payments/{}", payment.body["id"].as_str().unwrap());
    let hash = soxara::domain::keys::hash_key(&app.key);
    app.state()
        .ops
        .store
        .write(move |conn| {
            conn.execute("UPDATE api_keys SET revoked_at = 1 WHERE key_hash = ?1", [hash])?;
            Ok(())
        })
        .await
        .unwrap();
    app.state().keys.forget(&app.merchant_id);
    let refused = app.get(&app.key, &path).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.code(), "AUTHENTICATION_FAILED");
}
