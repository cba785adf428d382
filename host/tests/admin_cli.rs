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
    let app =
        start(Config { database: dir.path().join("g.db"), listen: "127.0.0.1:0".parse().unwrap(), plugin_dir, file })
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
    app.stop().await.unwrap();
}
