//! `kill -9` at random moments under load, repeated: no acknowledged payment
//! is lost, no idempotency key ever gets two payments, and every ledger
//! invariant holds after the restarts (the gateway finishes what a crash
//! interrupted). Both commit protocols are under load at once: `mtn_momo`
//! goes to the sandbox simulator, which imports no way to act on the world
//! (its call, claim and answer are one write), and `orange_money` to the
//! hostile test rail, which imports outbound HTTP (claimed before the call,
//! answered in a second write, resumed after a crash).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ROUNDS: usize = 3;
const CLIENTS: usize = 8;
/// One payment body per commit protocol; client `c` sends `BODIES[c % 2]`.
const BODIES: [&str; 2] = [
    r#"{"amount":1250,"currency":"USD","method":"mtn_momo","customer":{"phone":"+231770001234"}}"#,
    r#"{"amount":1250,"currency":"USD","method":"orange_money","customer":{"phone":"+231770001234"}}"#,
];

/// What the clients saw: keys answered 201 (with the payment id), and keys
/// whose request was cut off by the kill (outcome unknown).
#[derive(Default)]
struct Seen {
    acknowledged: Vec<(String, String)>,
    unknown: Vec<(String, &'static str)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("crash.db");
    let config = dir.path().join("gateway.toml");
    // No per-key limit: the load below is many requests with one test key.
    // Test-mode Orange Money goes to the hostile rail (which completes
    // payments from phones it has no misbehaviour for).
    let settings = "[admin]\nlisten = \"127.0.0.1:0\"\n\n[rate_limits]\ntest_per_minute = 0\n\n\
                    [[routes]]\nmode = \"test\"\nmethod = \"orange_money\"\nplugin = \"hostile\"\n";
    std::fs::write(&config, settings).unwrap();
    let plugin_dir = plugins_with_hostile_rail(dir.path());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let client = reqwest::Client::new();
    let mut key = None;

    for round in 0..ROUNDS {
        let (mut gateway, base, printed) = start_gateway(&database, &config, &plugin_dir);
        let secret = key.get_or_insert_with(|| printed.expect("the first start prints the test key")).clone();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (client, base, secret, seen) = (client.clone(), base.clone(), secret.clone(), Arc::clone(&seen));
                tokio::spawn(async move {
                    for n in 0.. {
                        let idempotency_key = format!("crash-{round}-{c}-{n}");
                        let sent = pay(&client, &base, &secret, &idempotency_key, BODIES[c % 2]).await;
                        let mut seen = seen.lock().unwrap();
                        match sent {
                            Some((201, id)) => seen.acknowledged.push((idempotency_key, id)),
                            Some((status, _)) => panic!("status {status} before the kill"),
                            None => {
                                seen.unknown.push((idempotency_key, BODIES[c % 2]));
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rand::random_range(300..900))).await;
        gateway.kill();
        for c in clients {
            c.await.unwrap();
        }
    }

    // A last start finishes interrupted payments; then every cut-off key is
    // retried with the same body, as a merchant would.
    let (mut gateway, base, _) = start_gateway(&database, &config, &plugin_dir);
    let secret = key.unwrap();
    let unknown = std::mem::take(&mut seen.lock().unwrap().unknown);
    for (idempotency_key, body) in &unknown {
        let (status, _) = pay(&client, &base, &secret, idempotency_key, body).await.expect("the gateway answers");
        assert_eq!(status, 201, "a retried key after the crash");
    }
    gateway.kill();

    let seen = seen.lock().unwrap();
    assert!(seen.acknowledged.len() > 10, "the load made payments before each kill");
    let conn = rusqlite::Connection::open(&database).unwrap();
    for (idempotency_key, id) in &seen.acknowledged {
        let (bound, status): (String, String) = conn
            .query_row(
                "SELECT k.transaction_id, p.status FROM idempotency_keys k JOIN payments p ON p.id = k.transaction_id
                 WHERE k.key = ?1",
                [idempotency_key],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap_or_else(|e| panic!("acknowledged {idempotency_key} ({id}) is not on disk: {e}"));
        assert_eq!((&bound, status.as_str()), (id, "completed"), "{idempotency_key}");
    }
    let (payments, keys): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM payments), (SELECT COUNT(DISTINCT transaction_id) FROM idempotency_keys)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(payments, keys, "every payment has exactly one key, and no key two payments");
    for rail in ["simulator", "hostile"] {
        let made: i64 = conn.query_row("SELECT COUNT(*) FROM payments WHERE rail = ?1", [rail], |r| r.get(0)).unwrap();
        assert!(made > 10, "the load made payments through {rail}: {made}");
    }
    let stuck: i64 =
        conn.query_row("SELECT COUNT(*) FROM payments WHERE status = 'processing'", [], |r| r.get(0)).unwrap();
    assert_eq!(stuck, 0, "every interrupted payment was finished on restart");
    drop(conn);

    let verify =
        Command::new(env!("CARGO_BIN_EXE_soxara")).arg("verify").arg("--database").arg(&database).output().unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// Sends one payment; `None` when the connection failed (the gateway died).
async fn pay(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    idempotency_key: &str,
    body: &'static str,
) -> Option<(u16, String)> {
    let response = client
        .post(format!("{base}/v1/payments"))
        .bearer_auth(key)
        .header("X-Idempotency-Key", idempotency_key)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.ok()?;
    Some((status, body["id"].as_str().unwrap_or_default().to_string()))
}

/// A gateway process that is killed when dropped, so a failing assertion
/// does not leave it running.
struct Gateway(Child);

impl Gateway {
    fn kill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A plugin directory in `dir`: the bundled plugins and the hostile test
/// rail (both built by `cargo xtask build-plugins`).
fn plugins_with_hostile_rail(dir: &Path) -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let plugin_dir = dir.join("plugins");
    std::fs::create_dir(&plugin_dir).unwrap();
    let bundled = std::fs::read_dir(built.join("plugins")).unwrap().map(|entry| entry.unwrap().path());
    for path in bundled.chain([built.join("test-plugins/hostile.wasm")]) {
        if path.extension().is_some_and(|ext| ext == "wasm") {
            std::os::unix::fs::symlink(&path, plugin_dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    plugin_dir
}

/// Starts the real binary on the database; returns it, its base URL and the
/// test key it printed (first start only).
fn start_gateway(database: &Path, config: &Path, plugin_dir: &Path) -> (Gateway, String, Option<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_soxara"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--database")
        .arg(database)
        .arg("--plugin-dir")
        .arg(plugin_dir)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut key = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        let line = line.trim();
        if line.starts_with("sxm_test_sk_") {
            key = Some(line.to_string());
        }
        if let Some(rest) = line.strip_prefix("Soxara gateway listening on ") {
            let base = rest.split_whitespace().next().unwrap().to_string();
            std::thread::spawn(move || lines.for_each(drop));
            return (Gateway(child), base, key);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the gateway exited before it listened (run `cargo xtask build-plugins` first)");
}
