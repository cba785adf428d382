//! `soxara serve` as the README's first command runs it: relative paths,
//! from the directory it was started in.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn serve_starts_with_a_relative_database_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.toml"), "[admin]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let plugin_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins");
    let mut child = Command::new(env!("CARGO_BIN_EXE_soxara"))
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--database", "data/soxara.db", "--config", "gateway.toml"])
        .arg("--plugin-dir")
        .arg(&plugin_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let listening = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .any(|line| line.starts_with("Soxara gateway listening on "));
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    assert!(listening, "the gateway did not start: {}", String::from_utf8_lossy(&output.stderr));
    assert!(dir.path().join("data/soxara.db").is_file());
    assert!(dir.path().join("data/plugin-cache").is_dir(), "compiled plugins are cached beside the database");
}
