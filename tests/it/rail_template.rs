//! The partner path end to end: the rail template, built from
//! `examples/rail-template` the way docs/plugins.md builds a partner's rail,
//! and the same rail written in Python (`examples/rail-python`, built with
//! componentize-py), are each loaded into a running gateway through the
//! admin API, bound to test mode, and take payments through the fake
//! Example Pay provider.

use reqwest::Method;
use serde_json::json;
use soxara::config::FileConfig;
use soxara_tests::fakes::example_pay::{self, FakeExamplePay};
use soxara_tests::{TestApp, momo, new_key, spawn_app_with, wait_for};

const TEMPLATE: &str = "rail-template";
const PYTHON: &str = "rail-python";

/// Where `cargo xtask build-plugins` puts the example rails.
fn component(rail: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../target/rails/{rail}.wasm"));
    assert!(path.is_file(), "{} is not built: run `cargo xtask build-plugins`", path.display());
    path.display().to_string()
}

/// A gateway whose operator config has the rail's settings (as
/// docs/plugins.md shows), with the rail loaded and bound for test-mode
/// MTN MoMo payments.
async fn gateway_with(rail: &str, fake: &FakeExamplePay) -> TestApp {
    let mut config = FileConfig::default();
    let settings = soxara::config::PluginSettings {
        config: [("base_url", fake.url()), ("api_key", example_pay::API_KEY.to_string())]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        allowed_hosts: vec!["127.0.0.1".into()],
        ..Default::default()
    };
    config.plugins.insert(rail.into(), settings);
    config.plugin_cache_dir = Some(soxara_tests::shared_plugin_cache());
    config.status_checks.delays_ms = vec![50];
    config.status_checks.poll_interval_ms = 20;
    let app = spawn_app_with(config).await;

    // The admin API compiles off its async threads; a Python component
    // (18 MB, CPython inside) takes seconds.
    let loaded = app.admin(Method::POST, "/admin/plugins", Some(json!({"path": component(rail)}))).await;
    assert_eq!(loaded.status, 201, "{:?}", loaded.body);
    assert_eq!(loaded.body["name"], rail);
    let bind = json!({"mode": "test", "method": "mtn_momo", "plugin": rail});
    let bound = app.admin(Method::POST, "/admin/routes", Some(bind)).await;
    assert_eq!(bound.status, 200, "{:?}", bound.body);
    app
}

#[tokio::test]
async fn a_payment_goes_through_the_template_rail() {
    payments_go_through(TEMPLATE).await;
}

#[tokio::test]
async fn a_payment_goes_through_the_python_rail() {
    payments_go_through(PYTHON).await;
}

#[tokio::test]
async fn a_pending_charge_is_settled_by_a_status_check_without_a_second_charge() {
    pending_is_settled_once(TEMPLATE).await;
}

#[tokio::test]
async fn a_pending_python_charge_is_settled_by_a_status_check_without_a_second_charge() {
    pending_is_settled_once(PYTHON).await;
}

async fn payments_go_through(rail: &str) {
    let fake = FakeExamplePay::start().await;
    let app = gateway_with(rail, &fake).await;

    let paid = app.pay(&app.key, Some(&new_key()), &momo(1250, "USD", "+231770004321")).await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    assert_eq!(paid.body["status"], "completed", "{:?}", paid.body);
    assert_eq!(paid.body["entity"], "Phoenix Hub Liberia, Inc.");
    let id = paid.body["id"].as_str().unwrap();
    assert_eq!(fake.charges_for(id), 1, "Example Pay charged the payment once");
    assert!(paid.body["provider_reference"].as_str().unwrap().starts_with("ch_"), "{:?}", paid.body);

    let declined = app.pay(&app.key, Some(&new_key()), &momo(500, "LRD", "+231770000001")).await;
    assert_eq!(declined.body["status"], "failed", "{:?}", declined.body);
    assert_eq!(declined.body["failure"]["code"], "INSUFFICIENT_FUNDS", "{:?}", declined.body);
    app.verify().expect("the ledger holds");
}

async fn pending_is_settled_once(rail: &str) {
    let fake = FakeExamplePay::start().await;
    let app = gateway_with(rail, &fake).await;

    let paid = app.pay(&app.key, Some(&new_key()), &momo(2000, "USD", "+231770000002")).await;
    assert_eq!(paid.body["status"], "processing", "{:?}", paid.body);
    let id = paid.body["id"].as_str().unwrap().to_string();
    let settled = wait_for("the status check to settle the payment", || async {
        let body = app.get(&app.key, &format!("/v1/payments/{id}")).await.body;
        (body["status"] != "processing").then_some(body)
    })
    .await;
    assert_eq!(settled["status"], "completed", "{settled:?}");
    assert_eq!((fake.charges_for(&id), fake.posts()), (1, 1), "asked once, charged once");
    app.verify().expect("the ledger holds");
}
