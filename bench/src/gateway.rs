//! A gateway under test: the real `soxara serve` binary in its own process,
//! with a fresh database in a temporary directory.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

pub struct Gateway {
    child: KillOnDrop,
    pub addr: SocketAddr,
    /// The sandbox merchant's test secret key, printed on first start.
    pub key: String,
    pub database: PathBuf,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts `binary` on a loopback port (on the cores in `cpus`, a
    /// `taskset` list, if given) and waits until it listens.
    pub fn start(binary: &Path, plugin_dir: &Path, cpus: Option<&str>) -> Result<Gateway> {
        let dir = tempfile::tempdir()?;
        let database = dir.path().join("soxara.db");
        let config = dir.path().join("bench.toml");
        // Port 0 for the admin API too, so a gateway already running here does not collide.
        // No per-key limit: the bench sends thousands of requests with one key.
        std::fs::write(
            &config,
            "[admin]\nlisten = \"127.0.0.1:0\"\n\n[rate_limits]\nlive_per_minute = 0\ntest_per_minute = 0\n",
        )?;
        // Pinned from its first instruction: `taskset` executes the binary.
        let mut command = match cpus {
            Some(cpus) => {
                let mut taskset = Command::new("taskset");
                taskset.args(["--cpu-list", cpus]).arg(binary);
                taskset
            }
            None => Command::new(binary),
        };
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .arg("--database")
            .arg(&database)
            .arg("--plugin-dir")
            .arg(plugin_dir)
            .arg("--config")
            .arg(&config)
            // Per-request logs at info would measure the terminal, not the gateway.
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let (mut key, mut addr) = (None, None);
        for line in lines.by_ref() {
            let line = line?;
            let trimmed = line.trim();
            if trimmed.starts_with("sxm_test_sk_") {
                key = Some(trimmed.to_string());
            }
            if let Some(rest) = trimmed.strip_prefix("Soxara gateway listening on http://") {
                let text = rest.split_whitespace().next().unwrap_or_default();
                addr = Some(text.parse().with_context(|| format!("parsing the address in {trimmed:?}"))?);
                break;
            }
        }
        // Keep draining stdout so the gateway never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let (Some(key), Some(addr)) = (key, addr) else {
            let _ = child.kill();
            bail!("{} exited before it printed its address and key", binary.display());
        };
        Ok(Gateway { child: KillOnDrop(child), addr, key, database, _dir: dir })
    }

    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// The most resident memory the process has used (`VmHWM`), in bytes.
    pub fn peak_rss_bytes(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.0.id()))?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM in /proc status")?;
        let kib: u64 = line.split_whitespace().nth(1).context("VmHWM has no value")?.parse()?;
        Ok(kib * 1024)
    }

    /// Kills the process without warning (`SIGKILL`): what it acknowledged
    /// must already be on disk.
    pub fn kill(mut self) -> Result<KilledGateway> {
        self.child.0.kill()?;
        self.child.0.wait()?;
        Ok(KilledGateway { database: self.database, _dir: self._dir })
    }
}

/// A child process that does not outlive the harness, even on an error.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What is left of a gateway after `kill`: its database.
pub struct KilledGateway {
    pub database: PathBuf,
    _dir: tempfile::TempDir,
}

impl KilledGateway {
    /// The size of the write-ahead log the gateway left (a WAL that is
    /// never checkpointed grows without bound).
    pub fn wal_bytes(&self) -> u64 {
        let mut wal = self.database.clone().into_os_string();
        wal.push("-wal");
        std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
    }

    /// Payments on disk with the given status.
    pub fn payments_with_status(&self, status: &str) -> Result<u64> {
        let conn = rusqlite::Connection::open(&self.database)?;
        let count: i64 =
            conn.query_row("SELECT COUNT(*) FROM payments WHERE status = ?1", [status], |row| row.get(0))?;
        Ok(u64::try_from(count)?)
    }
}
