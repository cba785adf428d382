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
                    .args(["admin", "--url", &url])
                    .args(&args)
                    .env("SOXARA_ADMIN_TOKEN", &token)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };

    // The token is never taken on the command line (`ps` shows it).
    let argv = Command::new(env!("CARGO_BIN_EXE_soxara"))
        .args(["admin", "--url", &format!("http://{}", app.admin_addr), "--token", &app.admin_token, "plugins"])
        .env_remove("SOXARA_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(!argv.status.success());
    assert!(String::from_utf8_lossy(&argv.stderr).contains("--token"), "{}", String::from_utf8_lossy(&argv.stderr));

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

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tls").join(name)
}

/// An admin API beyond loopback must speak TLS; over TLS the CLI trusts the
/// operator's certificate with `--ca-file`, and the token it made is kept
/// in a file of its own, never printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_needs_tls_beyond_loopback_and_serves_it() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins");
    let config = |file: FileConfig| Config {
        database: dir.path().join("g.db"),
        listen: "127.0.0.1:0".parse().unwrap(),
        plugin_dir: plugin_dir.clone(),
        file,
        clock: Default::default(),
    };
    let mut open = FileConfig::default();
    open.admin.listen = "0.0.0.0:0".parse().unwrap();
    let refused = start(config(open.clone())).await.err().expect("no plain admin API beyond loopback");
    assert!(format!("{refused:#}").contains("[admin.tls]"), "{refused:#}");

    let mut file = FileConfig::default();
    file.admin.listen = "127.0.0.1:0".parse().unwrap();
    file.admin.tls = Some(soxara::config::TlsSettings { cert_file: fixture("cert.pem"), key_file: fixture("key.pem") });
    let app = start(config(file)).await.expect("the gateway starts");
    let token_file = app.admin_token_file.clone().expect("a token the gateway made");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), app.admin_token);
    let url = format!("https://localhost:{}", app.admin_addr.port());
    let cli = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_soxara"))
            .args(["admin", "--url", &url])
            .args(extra)
            .arg("plugins")
            .env_remove("SOXARA_ADMIN_TOKEN")
            .output()
            .unwrap()
    };
    let token_file_arg = token_file.to_str().unwrap();
    let trusted = tokio::task::block_in_place(|| {
        cli(&["--token-file", token_file_arg, "--ca-file", fixture("cert.pem").to_str().unwrap()])
    });
    assert!(trusted.status.success(), "{}", String::from_utf8_lossy(&trusted.stderr));
    let untrusted = tokio::task::block_in_place(|| cli(&["--token-file", token_file_arg]));
    assert!(!untrusted.status.success(), "the fixture certificate is not a public one");
    let plain = reqwest::get(format!("http://{}/admin/plugins", app.admin_addr)).await;
    assert!(!plain.is_ok_and(|r| r.status().is_success()), "no plain HTTP on the TLS admin listener");
    app.stop().await.unwrap();
}
