//! A plugin that loops, exhausts memory, traps, returns garbage or reaches
//! for the network fails only its own request, with a clear 502; the gateway
//! and the other rails keep serving during and after.

use std::collections::BTreeMap;

use serde_json::json;
use soxara::config::{BillRoute, FileConfig, PluginLimitOverrides, PluginSettings, RouteSetting};
use soxara_tests::fakes::FakeRates;
use soxara_tests::{TestApp, momo, new_key, spawn_app_with_plugins, test_plugin};

/// Test-mode Orange Money goes to the hostile rail; everything else to the simulator.
async fn gateway_with_hostile_rail(target_url: &str) -> TestApp {
    // The defaults stay generous; the hostile rail gets tighter limits of its own.
    let mut config = FileConfig::default();
    config.routes.push(RouteSetting { mode: "test".into(), method: "orange_money".into(), plugin: "hostile".into() });
    let limits =
        PluginLimitOverrides { call_ms_max: Some(300), memory_bytes_max: Some(16 << 20), output_chars_max: None };
    config.plugins.insert(
        "hostile".into(),
        PluginSettings {
            config: BTreeMap::from([("target_url".into(), target_url.into())]),
            allowed_hosts: vec![],
            limits,
            ..PluginSettings::default()
        },
    );
    spawn_app_with_plugins(config, &[test_plugin("hostile")]).await
}

fn orange(phone_last4: &str) -> String {
    json!({"amount": 1000, "currency": "USD", "method": "orange_money", "customer": {"phone": format!("+23177000{phone_last4}")}})
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_misbehaviour_fails_only_its_own_request() {
    let fake = FakeRates::start().await;
    let app = gateway_with_hostile_rail(&format!("{}/latest?from=USD&to=LRD", fake.url())).await;
    let well_behaved = app.pay(&app.key, Some(&new_key()), &orange("1234")).await;
    assert_eq!(well_behaved.body["status"], "completed", "the hostile rail is bound: {:?}", well_behaved.body);

    // What went wrong is counted by outcome, and logged; the merchant sees
    // only the stable code, never the plugin's detail.
    let cases = [("0001", "timeout"), ("0002", "memory"), ("0003", "trap"), ("0004", "malformed"), ("0005", "trap")];
    for (last4, outcome) in cases {
        let calls = |text: &str| -> u64 {
            let line =
                format!(r#"soxara_plugin_calls_total{{plugin="hostile",export="collect",outcome="{outcome}"}} "#);
            text.lines().find_map(|l| l.strip_prefix(&line)).map_or(0, |n| n.parse().unwrap())
        };
        let before =
            calls(&app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap());
        let idem = new_key();
        // Good payments on the simulator run alongside the bad one.
        let bad_body = orange(last4);
        let good_body = momo(500, "USD", "+231770001234");
        let good_keys: Vec<String> = (0..5).map(|_| new_key()).collect();
        let bad = app.pay(&app.key, Some(&idem), &bad_body);
        let goods = futures::future::join_all(good_keys.iter().map(|k| app.pay(&app.key, Some(k), &good_body)));
        let (bad, goods) = tokio::join!(bad, goods);

        assert_eq!((bad.status.as_u16(), bad.code()), (502, "RAIL_ERROR"), "{last4}: {:?}", bad.body);
        let message = bad.body["error"]["message"].as_str().unwrap();
        for detail in ["deadline", "memory", "trap", "malformed", "panicked"] {
            assert!(!message.contains(detail), "{last4}: the plugin's detail reached the merchant: {message}");
        }
        let after = calls(&app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap());
        assert_eq!(after, before + 1, "{last4}: the call ended as {outcome}");
        for good in goods {
            assert_eq!(good.status, 201, "{last4}: a good payment failed alongside: {:?}", good.body);
            assert_eq!(good.body["status"], "completed");
        }
        // The bad payment is left processing, bound to its key: a retry replays the error.
        let payment_id = bad.body["error"]["payment_id"].as_str().unwrap();
        assert_eq!(app.get(&app.key, &format!("/v1/payments/{payment_id}")).await.body["status"], "processing");
        let retry = app.pay(&app.key, Some(&idem), &orange(last4)).await;
        assert_eq!(retry.headers["idempotency-replayed"], "true");
        assert_eq!(retry.code(), "RAIL_ERROR");
    }
    assert_eq!(fake.requests(), 0, "the host refused the request to a host off the allow-list");

    // Afterwards the hostile rail still serves honest requests and the gateway is healthy.
    assert_eq!(app.pay(&app.key, Some(&new_key()), &orange("5678")).await.body["status"], "completed");
    assert_eq!(app.get("", "/health").await.status, 200);
    app.verify().expect("nothing half-posted");
}

#[tokio::test]
async fn a_route_to_a_missing_plugin_stops_the_start_with_a_clear_error() {
    let mut config = FileConfig::default();
    config.routes.push(RouteSetting { mode: "live".into(), method: "card".into(), plugin: "rail-stripe".into() });
    let dir = tempfile::tempdir().unwrap();
    let started = soxara::app::start(soxara::app::Config {
        database: dir.path().join("g.db"),
        listen: "127.0.0.1:0".parse().unwrap(),
        plugin_dir: soxara_tests::plugin_dir(),
        file: config,
        clock: Default::default(),
    })
    .await;
    let error = format!("{:#}", started.err().expect("the start is refused"));
    assert!(error.contains("rail-stripe") && error.contains("no such rail plugin"), "{error}");

    let mut live_simulator = FileConfig::default();
    live_simulator.routes.push(RouteSetting { mode: "live".into(), method: "card".into(), plugin: "simulator".into() });
    let started = soxara::app::start(soxara::app::Config {
        database: dir.path().join("h.db"),
        listen: "127.0.0.1:0".parse().unwrap(),
        plugin_dir: soxara_tests::plugin_dir(),
        file: live_simulator,
        clock: Default::default(),
    })
    .await;
    let error = format!("{:#}", started.err().expect("the start is refused"));
    assert!(error.contains("never serve live"), "{error}");
}

#[tokio::test]
async fn a_client_that_hangs_up_does_not_leave_the_payment_unrecorded() {
    let app = gateway_with_hostile_rail("http://127.0.0.1:9/").await;
    let idem = new_key();
    // The client gives up long before the rail's 300 ms deadline.
    let impatient = app
        .client
        .post(format!("{}/v1/payments", app.base))
        .bearer_auth(&app.key)
        .header("X-Idempotency-Key", &idem)
        .body(orange("0001"))
        .timeout(std::time::Duration::from_millis(50))
        .send()
        .await;
    assert!(impatient.is_err(), "the client timed out");
    // The gateway finishes the work anyway: the key ends bound to the rail's answer, not stuck in flight.
    let replay = soxara_tests::wait_for("the payment to be recorded", || async {
        let replay = app.pay(&app.key, Some(&idem), &orange("0001")).await;
        (replay.code() != "IDEMPOTENCY_REQUEST_IN_PROGRESS").then_some(replay)
    })
    .await;
    assert_eq!(replay.headers["idempotency-replayed"], "true");
    assert_eq!(replay.code(), "RAIL_ERROR");
}

#[tokio::test]
async fn a_replay_answers_from_its_record_even_after_the_route_is_gone() {
    let mut app = gateway_with_hostile_rail("http://127.0.0.1:9/").await;
    app.stop_gateway().await;
    // The operator turns the rail into a live one (a rail serves one mode).
    app.config.routes.retain(|r| r.mode != "test");
    app.config.plugins.get_mut("hostile").unwrap().mode = Some("live".into());
    app.config.routes.push(RouteSetting {
        mode: "live".into(),
        method: "orange_money".into(),
        plugin: "hostile".into(),
    });
    app.start_gateway().await;
    let live =
        app.create_key(&app.merchant_id, soxara::values::mode::Mode::Live, soxara::domain::keys::KeyKind::Secret).await;
    let idem = new_key();
    let paid = app.pay(&live, Some(&idem), &orange("1234")).await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);

    app.stop_gateway().await;
    app.config.routes.retain(|r| r.mode != "live");
    app.start_gateway().await;
    let fresh = app.pay(&live, Some(&new_key()), &orange("1234")).await;
    assert_eq!(fresh.code(), "PAYMENT_METHOD_UNAVAILABLE", "no live route any more");
    let replay = app.pay(&live, Some(&idem), &orange("1234")).await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.body, paid.body);
}

#[tokio::test]
async fn metrics_count_plugin_calls_by_outcome_and_requests_by_route() {
    let app = gateway_with_hostile_rail("http://127.0.0.1:9/").await;
    app.pay(&app.key, Some(&new_key()), &orange("1234")).await;
    app.pay(&app.key, Some(&new_key()), &orange("0001")).await;
    app.pay(&app.key, Some(&new_key()), &orange("0003")).await;
    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = metrics.text().await.unwrap();
    for line in [
        r#"soxara_plugin_calls_total{plugin="hostile",export="collect",outcome="ok"} 1"#,
        r#"soxara_plugin_calls_total{plugin="hostile",export="collect",outcome="timeout"} 1"#,
        r#"soxara_plugin_calls_total{plugin="hostile",export="collect",outcome="trap"} 1"#,
        r#"soxara_http_requests_total{route="/v1/payments",method="POST",status="201"} 1"#,
        r#"soxara_http_requests_total{route="/v1/payments",method="POST",status="502"} 2"#,
        r#"soxara_plugin_call_duration_seconds_count{plugin="hostile",export="collect"} 3"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

#[tokio::test]
async fn a_plugin_that_misbehaves_on_a_callback_fails_only_that_callback() {
    let app = gateway_with_hostile_rail("http://127.0.0.1:9/").await;
    let url = format!("{}/v1/callbacks/hostile", app.base);
    for body in ["loop", "garbage", "panic"] {
        let answer = soxara_tests::answer(app.client.post(&url).body(body).send().await.unwrap()).await;
        assert_eq!(answer.status, 503, "{body}: {:?}", answer.body);
        assert_eq!(answer.code(), "CALLBACK_FAILED", "{body}");
    }
    let paid = app.pay(&app.key, Some(&new_key()), &momo(100, "USD", "+231770001234")).await;
    assert_eq!(paid.body["status"], "completed", "the gateway still serves: {:?}", paid.body);
}

/// A Python rail (built with componentize-py) that waits through WASI or
/// raises fails only its own call, promptly; the host keeps serving it.
#[tokio::test]
async fn a_python_rail_that_sleeps_or_raises_fails_only_its_own_request() {
    let config = FileConfig { plugin_cache_dir: Some(soxara_tests::shared_plugin_cache()), ..FileConfig::default() };
    let app = soxara_tests::spawn_app_with(config).await;
    let path = test_plugin("python-sleeper").display().to_string();
    let loaded = app.admin(reqwest::Method::POST, "/admin/plugins", Some(json!({"path": path}))).await;
    assert_eq!(loaded.status, 201, "{:?}", loaded.body);
    let bind = json!({"mode": "test", "method": "mtn_momo", "plugin": "python-sleeper"});
    assert_eq!(app.admin(reqwest::Method::POST, "/admin/routes", Some(bind)).await.status, 200);

    // time.sleep(3600) waits in host code, out of the deadline's reach,
    // unless the host refuses the wait: the payment must come back at once.
    for (phone, what) in [("+231770000001", "sleeps"), ("+231770000002", "raises")] {
        let paid = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            app.pay(&app.key, Some(&new_key()), &momo(100, "USD", phone)),
        )
        .await
        .unwrap_or_else(|_| panic!("a rail that {what} held its request past a minute"));
        assert_eq!((paid.status.as_u16(), paid.code()), (502, "RAIL_ERROR"), "{what}: {:?}", paid.body);
    }
    let fine = app.pay(&app.key, Some(&new_key()), &momo(100, "USD", "+231770004321")).await;
    assert_eq!(fine.body["status"], "completed", "{:?}", fine.body);
    assert!(fine.body["provider_reference"].as_str().unwrap().starts_with("py_"));
    app.verify().expect("the ledger holds");
}

/// A biller is as untrusted as a rail: one that loops, exhausts memory,
/// traps or answers garbage leaves only its own purchase processing (for
/// reconciliation, the merchant's money held, never lost), while other
/// bills and payments keep completing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_biller_fails_only_its_own_purchases() {
    let mut config = FileConfig::default();
    config.bills.routes.push(BillRoute {
        mode: "test".into(),
        bill_type: "airtime".into(),
        biller: "hostile-biller".into(),
    });
    let limits =
        PluginLimitOverrides { call_ms_max: Some(300), memory_bytes_max: Some(16 << 20), output_chars_max: None };
    config.plugins.insert("hostile-biller".into(), PluginSettings { limits, ..PluginSettings::default() });
    let app = spawn_app_with_plugins(config, &[test_plugin("hostile-biller")]).await;
    let airtime = |last4: &str| json!({ "network": "mtn", "phone": format!("0901234{last4}"), "amount": 5_000, "currency": "LRD" });
    let fine = app.post(&app.key, "/v1/bills/airtime", &new_key(), &airtime("1234")).await;
    assert_eq!(fine.body["status"], "completed", "the hostile biller is bound: {:?}", fine.body);
    assert!(fine.body["provider_reference"].as_str().unwrap().starts_with("hostile_"), "{:?}", fine.body);

    let data = json!({ "network": "mtn", "phone": "09012341234", "plan": "mtn-1gb-7d" });
    for (last4, outcome) in [("0001", "timeout"), ("0002", "memory"), ("0003", "trap"), ("0004", "malformed")] {
        let calls = |text: &str| -> u64 {
            let line = format!(
                r#"soxara_plugin_calls_total{{plugin="hostile-biller",export="purchase",outcome="{outcome}"}} "#
            );
            text.lines().find_map(|l| l.strip_prefix(&line)).map_or(0, |n| n.parse().unwrap())
        };
        let metrics =
            || async { app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap() };
        let before = calls(&metrics().await);
        // Good purchases (data, from the sandbox biller) and payments run alongside.
        let (bad_key, bill_key, payment_key) = (new_key(), new_key(), new_key());
        let (bad_body, payment_body) = (airtime(last4), momo(500, "USD", "+231770001234"));
        let bad = app.post(&app.key, "/v1/bills/airtime", &bad_key, &bad_body);
        let good_bill = app.post(&app.key, "/v1/bills/data", &bill_key, &data);
        let good_payment = app.pay(&app.key, Some(&payment_key), &payment_body);
        let (bad, good_bill, good_payment) = tokio::join!(bad, good_bill, good_payment);

        assert_eq!(bad.status, 201, "{last4}: {:?}", bad.body);
        assert_eq!(bad.body["status"], "processing", "{last4}: left for status checks, not failed: {:?}", bad.body);
        let shown = bad.body.to_string();
        for detail in ["deadline", "memory", "trap", "malformed", "panicked", "999999999"] {
            assert!(!shown.contains(detail), "{last4}: the plugin's detail reached the merchant: {shown}");
        }
        assert_eq!(calls(&metrics().await), before + 1, "{last4}: the call ended as {outcome}");
        assert_eq!(
            good_bill.body["status"], "completed",
            "{last4}: a good bill failed alongside: {:?}",
            good_bill.body
        );
        assert_eq!(good_payment.body["status"], "completed", "{last4}: {:?}", good_payment.body);
    }
    let after = app.post(&app.key, "/v1/bills/airtime", &new_key(), &airtime("5678")).await;
    assert_eq!(after.body["status"], "completed", "the biller serves again after each: {:?}", after.body);
    app.verify().expect("the ledger holds");
}
