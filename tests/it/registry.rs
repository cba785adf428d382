//! Operators change rails while payments flow: load, bind, swap, canary,
//! roll back, unload — through the admin API.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::Method;
use serde_json::json;
use soxara::config::FileConfig;
use soxara_tests::{TestApp, new_key, spawn_app_with_plugins, test_plugin};

/// The simulator and the hostile rail both complete a phone ending 1234,
/// and their provider references say which one served.
fn orange_1234() -> String {
    json!({"amount": 700, "currency": "USD", "method": "orange_money", "customer": {"phone": "+231770001234"}})
        .to_string()
}

fn served_by(payment: &serde_json::Value) -> &'static str {
    match payment["provider_reference"].as_str().unwrap_or("") {
        r if r.starts_with("sim_") => "simulator",
        r if r.starts_with("hostile_") => "hostile",
        other => panic!("unexpected provider reference {other:?}"),
    }
}

async fn gateway() -> TestApp {
    spawn_app_with_plugins(FileConfig::default(), &[test_plugin("hostile")]).await
}

async fn bind(app: &TestApp, plugin: &str) {
    let body = json!({"mode": "test", "method": "orange_money", "plugin": plugin});
    let answer = app.admin(Method::POST, "/admin/routes", Some(body)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_swaps_under_load_fail_nothing() {
    let app = gateway().await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (client, base, key, stop) = (app.client.clone(), app.base.clone(), app.key.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let response = client
                    .post(format!("{base}/v1/payments"))
                    .bearer_auth(&key)
                    .header("X-Idempotency-Key", new_key())
                    .body(orange_1234())
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == 201 => ok += 1,
                    Ok(r) => failed.push(format!("{} {}", r.status(), r.text().await.unwrap_or_default())),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        })
    };
    for swap in 0..100 {
        let rail = if swap % 2 == 0 { "hostile" } else { "simulator" };
        bind(&app, rail).await;
        let paid = app.pay(&app.key, Some(&new_key()), &orange_1234()).await;
        assert_eq!(paid.status, 201, "swap {swap}: {:?}", paid.body);
        assert_eq!(served_by(&paid.body), rail, "swap {swap}: the call after the swap reaches the rail just bound");
    }
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = load.await.unwrap();
    assert!(failed.is_empty(), "{} failed requests during the swaps: {failed:?}", failed.len());
    assert!(ok > 0, "the load ran");
    app.verify().expect("the ledger holds");
}

#[tokio::test]
async fn load_bind_canary_roll_back_and_unload() {
    let app = gateway().await;
    let listed = app.admin(Method::GET, "/admin/plugins", None).await;
    let ids: Vec<&str> = listed.body["rails"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"simulator@0.1.0") && ids.contains(&"hostile@0.1.0"), "{ids:?}");
    // Read from each component's imports: the simulator imports no
    // outbound HTTP, the hostile rail and the live rails do.
    let acts_outside = |id: &str| {
        listed.body["rails"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap()["acts_outside"].clone()
    };
    assert_eq!(acts_outside("simulator@0.1.0"), false);
    for id in ["hostile@0.1.0", "mtn-momo@0.1.0", "stripe-card@0.1.0", "orange-money@0.1.0"] {
        assert_eq!(acts_outside(id), true, "{id}");
    }

    // Loading checks the component against the rail world and refuses duplicates.
    let hostile_path = test_plugin("hostile").display().to_string();
    let again = app.admin(Method::POST, "/admin/plugins", Some(json!({"path": hostile_path}))).await;
    assert_eq!((again.status.as_u16(), again.code()), (422, "PLUGIN_REJECTED"));
    assert!(again.body["error"]["message"].as_str().unwrap().contains("already loaded"));
    let fx = soxara_tests::plugin_dir().join("fx-fixed.wasm").display().to_string();
    let wrong_world = app.admin(Method::POST, "/admin/plugins", Some(json!({"path": fx}))).await;
    assert_eq!(wrong_world.code(), "PLUGIN_REJECTED");
    assert!(wrong_world.body["error"]["message"].as_str().unwrap().contains("rail world"), "{:?}", wrong_world.body);

    // A 100% canary takes every call; rollback restores the binding before it.
    bind(&app, "simulator").await;
    let canary = json!({"mode": "test", "method": "orange_money", "plugin": "simulator", "canary": {"plugin": "hostile", "percent": 100}});
    assert_eq!(app.admin(Method::POST, "/admin/routes", Some(canary)).await.status, 200);
    for _ in 0..5 {
        assert_eq!(served_by(&app.pay(&app.key, Some(&new_key()), &orange_1234()).await.body), "hostile");
    }
    let rolled = app
        .admin(Method::POST, "/admin/routes/rollback", Some(json!({"mode": "test", "method": "orange_money"})))
        .await;
    assert_eq!(rolled.status, 200);
    assert_eq!(rolled.body["routes"][0]["canary"], serde_json::Value::Null);
    assert_eq!(served_by(&app.pay(&app.key, Some(&new_key()), &orange_1234()).await.body), "simulator");

    // A rail in use cannot be unloaded; an unused one can.
    let in_use = app.admin(Method::DELETE, "/admin/plugins/simulator@0.1.0", None).await;
    assert_eq!(in_use.code(), "PLUGIN_REJECTED");
    let unloaded = app.admin(Method::DELETE, "/admin/plugins/hostile@0.1.0", None).await;
    assert_eq!(unloaded.status, 200, "{:?}", unloaded.body);
    let bind_gone = app
        .admin(
            Method::POST,
            "/admin/routes",
            Some(json!({"mode": "test", "method": "orange_money", "plugin": "hostile"})),
        )
        .await;
    assert_eq!(bind_gone.code(), "PLUGIN_REJECTED");
    let live_simulator = app
        .admin(Method::POST, "/admin/routes", Some(json!({"mode": "live", "method": "card", "plugin": "simulator"})))
        .await;
    assert!(live_simulator.body["error"]["message"].as_str().unwrap().contains("never serve live"));
}

/// A rail's name stays with the file that first registered it once payments
/// are recorded under it: after that file is unloaded, the same rail under
/// another file name (whose callbacks could otherwise settle its payments)
/// is refused; the owner's file loads again.
#[tokio::test]
async fn after_an_unload_another_file_cannot_take_a_rail_name_with_payments() {
    let app = gateway().await;
    bind(&app, "hostile").await;
    let paid = app.pay(&app.key, Some(&new_key()), &orange_1234()).await;
    assert_eq!(served_by(&paid.body), "hostile");
    bind(&app, "simulator").await;
    let unloaded = app.admin(Method::DELETE, "/admin/plugins/hostile@0.1.0", None).await;
    assert_eq!(unloaded.status, 200, "{:?}", unloaded.body);

    let dir = tempfile::tempdir().unwrap();
    let impostor = dir.path().join("impostor.wasm");
    std::fs::copy(test_plugin("hostile"), &impostor).unwrap();
    let refused =
        app.admin(Method::POST, "/admin/plugins", Some(json!({"path": impostor.display().to_string()}))).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (422, "PLUGIN_REJECTED"), "{:?}", refused.body);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("\"hostile\""), "{:?}", refused.body);
    let listed = app.admin(Method::GET, "/admin/plugins", None).await;
    assert!(!listed.body.to_string().contains("impostor"), "not loaded: {}", listed.body);
    let callback = app.client.post(format!("{}/v1/callbacks/impostor", app.base)).body("{}").send().await.unwrap();
    assert_eq!(callback.status(), 404);

    let path = test_plugin("hostile").display().to_string();
    let owner = app.admin(Method::POST, "/admin/plugins", Some(json!({"path": path}))).await;
    assert_eq!(owner.status, 201, "the owner's file loads again: {:?}", owner.body);
}

/// Test and live never meet: a rail serves only the mode its operator
/// configured it for (`plugins.X.mode`, test unless said), whatever an
/// operator tries to bind, at start or while serving.
#[tokio::test]
async fn a_rail_serves_only_the_mode_it_is_configured_for() {
    // Undeclared (a sandbox configuration): never live.
    let app = gateway().await;
    let live = json!({"mode": "live", "method": "orange_money", "plugin": "hostile"});
    let refused = app.admin(Method::POST, "/admin/routes", Some(live.clone())).await;
    assert_eq!(refused.code(), "PLUGIN_REJECTED");
    assert!(
        refused.body["error"]["message"].as_str().unwrap().contains("configured for test mode"),
        "{:?}",
        refused.body
    );

    // Declared live (production credentials): never test, not even the simulator's slot.
    let mut config = FileConfig::default();
    config
        .plugins
        .insert("hostile".into(), soxara::config::PluginSettings { mode: Some("live".into()), ..Default::default() });
    let app = spawn_app_with_plugins(config.clone(), &[test_plugin("hostile")]).await;
    let test = json!({"mode": "test", "method": "orange_money", "plugin": "hostile"});
    let refused = app.admin(Method::POST, "/admin/routes", Some(test)).await;
    assert_eq!(refused.code(), "PLUGIN_REJECTED");
    assert!(
        refused.body["error"]["message"].as_str().unwrap().contains("configured for live mode"),
        "{:?}",
        refused.body
    );
    assert_eq!(app.admin(Method::POST, "/admin/routes", Some(live)).await.status, 200);
    let paid = app.pay(&app.key, Some(&new_key()), &orange_1234()).await;
    assert_eq!(served_by(&paid.body), "simulator", "test keys still reach the simulator");

    // The same refusal stops a start whose config binds it for test.
    config.routes.push(soxara::config::RouteSetting {
        mode: "test".into(),
        method: "orange_money".into(),
        plugin: "hostile".into(),
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(test_plugin("hostile"), dir.path().join("hostile.wasm")).unwrap();
    std::fs::copy(soxara_tests::plugin_dir().join("simulator.wasm"), dir.path().join("simulator.wasm")).unwrap();
    config.admin.listen = "127.0.0.1:0".parse().unwrap();
    let started = soxara::app::start(soxara::app::Config {
        database: dir.path().join("g.db"),
        listen: "127.0.0.1:0".parse().unwrap(),
        plugin_dir: dir.path().to_path_buf(),
        file: config,
        clock: Default::default(),
    })
    .await;
    let err = started.err().expect("no start with a live-configured rail bound for test");
    assert!(format!("{err:#}").contains("configured for live mode"), "{err:#}");
}

#[tokio::test]
async fn the_admin_api_needs_its_token() {
    let app = gateway().await;
    assert_eq!(app.admin(Method::GET, "/admin/plugins", None).await.status, 200);
    for token in [None, Some(app.key.as_str()), Some("sxa_wrongwrongwrongwrongwrongwrong")] {
        let mut request = app.client.get(format!("{}/admin/plugins", app.admin_url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let refused = soxara_tests::answer(request.send().await.unwrap()).await;
        assert_eq!((refused.status.as_u16(), refused.code()), (401, "ADMIN_AUTHENTICATION_FAILED"), "{token:?}");
    }
    // The merchant's key is not the admin token, and the merchant listener has no admin routes.
    let listed = app.get(&app.key, "/admin/plugins").await;
    assert_eq!(listed.code(), "ROUTE_NOT_FOUND");
}

/// Legal entities are a closed set the operator configures: a rail that
/// names another one (here Cinrique, left out of the set, which the card
/// rail and the simulator name for cards) is not loaded at start, and
/// refused when an operator loads it, saying why.
#[tokio::test]
async fn a_rail_naming_an_entity_the_operator_did_not_configure_is_refused() {
    let mut config = FileConfig::default();
    config.entities.names = vec!["Phoenix Hub Liberia, Inc.".into()];
    let app = soxara_tests::spawn_app_with(config).await;
    let listed = app.admin(Method::GET, "/admin/plugins", None).await;
    let ids: Vec<&str> = listed.body["rails"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    let named = |plugin: &str| ids.iter().any(|id| id.starts_with(&format!("{plugin}@")));
    assert!(named("mtn-momo") && !named("stripe-card") && !named("simulator"), "{ids:?}");
    let path = soxara_tests::plugin_dir().join("stripe-card.wasm").display().to_string();
    let loaded = app.admin(Method::POST, "/admin/plugins", Some(json!({ "path": path }))).await;
    assert_eq!((loaded.status.as_u16(), loaded.code()), (422, "PLUGIN_REJECTED"), "{:?}", loaded.body);
    let message = loaded.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"Cinrique Inc.\"") && message.contains("not configured"), "{message}");
}
