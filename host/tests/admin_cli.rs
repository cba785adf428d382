//! `soxara admin …` against a running gateway, as docs/operations.md shows it.

use std::process::Command;

use soxara::app::{Config, start};
use soxara::config::FileConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_binds_and_reports_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = FileConfig::default();
    file.admin.listen = "127.0.0.1:0".parse().unwrap();
    let plugin_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins");
    let app = start(Config {
        database: dir.path().join("g.db"),
        listen: "127.0.0.1:0".parse().unwrap(),
        plugin_dir,
        file,
        clock: Default::default(),
    })
    .await
    .expect("the gateway starts (run `cargo xtask build-plugins` first)");
    let url = format!("http://{}", app.admin_addr);
    let token = app.admin_token.clone();
    let cli = move |args: &[&str]| {
        let (url, token) = (url.clone(), token.clone());
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        async move {
            tokio::task::spawn_blocking(move || {
                Command::new(env!("CARGO_BIN_EXE_soxara"))
                    .args(["admin", "--url", &url, "--token", &token])
                    .args(&args)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };

    let plugins = cli(&["plugins"]).await;
    assert!(plugins.status.success(), "{}", String::from_utf8_lossy(&plugins.stderr));
    assert!(String::from_utf8_lossy(&plugins.stdout).contains("\"simulator@0.1.0\""));

    let bound = cli(&["bind", "--mode", "test", "--method", "card", "--plugin", "simulator"]).await;
    assert!(bound.status.success(), "{}", String::from_utf8_lossy(&bound.stderr));
    let routes = cli(&["routes"]).await;
    assert!(String::from_utf8_lossy(&routes.stdout).contains("\"method\": \"card\""));

    let refused = cli(&["bind", "--mode", "live", "--method", "card", "--plugin", "simulator"]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stdout).contains("never serve live"));

    let rolled = cli(&["rollback", "--mode", "test", "--method", "card"]).await;
    assert!(rolled.status.success());

    // Accounts and keys, as an operator onboards a merchant.
    let json = |output: &std::process::Output| -> serde_json::Value {
        serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stdout)))
    };
    let made = cli(&["merchant-create", "--name", "Ama's shop", "--kyc-tier", "1"]).await;
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let merchant = json(&made)["id"].as_str().unwrap().to_string();
    let gated = cli(&["key-create", &merchant, "--mode", "test"]).await;
    assert_eq!(gated.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gated.stdout).contains("KYC_TIER_INSUFFICIENT"));
    assert!(cli(&["merchant-set", &merchant, "--kyc-tier", "2"]).await.status.success());
    let listed = json(&cli(&["merchants"]).await);
    assert_eq!(listed["data"][0]["id"], merchant.as_str(), "newest first");
    assert_eq!(listed["data"][1]["name"], "Sandbox merchant");
    let next = json(&cli(&["merchants", "--starting-after", &merchant]).await);
    assert_eq!(next["data"][0]["name"], "Sandbox merchant", "the page after the newest");
    let pair =
        cli(&["key-create", &merchant, "--mode", "test", "--scope", "payments:read", "--allow-ip", "10.0.0.0/8"]).await;
    assert!(pair.status.success(), "{}", String::from_utf8_lossy(&pair.stdout));
    let pair = json(&pair);
    assert!(pair["secret_key"].as_str().unwrap().starts_with("sxm_test_sk_"));
    assert_eq!(pair["scopes"], serde_json::json!(["payments:read"]));
    assert_eq!(pair["ip_allowlist"], serde_json::json!(["10.0.0.0/8"]));
    let pair_id = pair["id"].as_str().unwrap();
    let rotated = json(&cli(&["key-rotate", pair_id]).await);
    assert_ne!(rotated["secret_key"], pair["secret_key"]);
    assert!(cli(&["key-revoke", pair_id]).await.status.success());
    let shown = json(&cli(&["merchant", &merchant]).await);
    assert_eq!(shown["kyc_tier"], 2);
    assert_eq!(shown["key_pairs"][0]["id"], pair_id);
    assert!(shown["key_pairs"][0]["revoked_at"].is_string());
    let payout = cli(&[
        "payout-account-set",
        &merchant,
        "--mode",
        "test",
        "--currency",
        "USD",
        "--method",
        "mtn_momo",
        "--destination",
        "+231770009876",
    ])
    .await;
    assert!(payout.status.success(), "{}", String::from_utf8_lossy(&payout.stdout));
    assert_eq!(json(&cli(&["merchant", &merchant]).await)["payout_accounts"][0]["destination"], "+231770009876");
    let batch = cli(&["settle"]).await;
    assert!(batch.status.success(), "{}", String::from_utf8_lossy(&batch.stdout));
    assert!(json(&batch)["settlements"].is_array());
    assert!(cli(&["merchant-set", &merchant, "--status", "suspended"]).await.status.success());
    app.stop().await.unwrap();
}
