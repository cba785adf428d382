//! CPU time and placement: how much processor each side of a phase used
//! (from `/proc/<pid>/stat`), and pinning processes to cores with `taskset`
//! so the gateway's own capacity can be seen apart from the client's.

use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, ensure};

/// User + system CPU seconds a process has used so far, all its threads.
pub fn seconds(pid: u32) -> Result<f64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after it are
    // counted from its closing parenthesis. utime and stime are fields 14
    // and 15, so the 12th and 13th after it.
    let after_name = stat.rsplit_once(')').context("no command name in /proc stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> { Ok(fields.get(i).context("a short /proc stat line")?.parse()?) };
    Ok((ticks(11)? + ticks(12)?) as f64 / ticks_per_second())
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`, almost always 100).
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The cores this machine has, as the harness found them at its start
/// (later, pinning the harness to one core would make it see one).
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

/// Pins every thread of `pid` to `cpus` (a `taskset` list such as `0` or `1-3`).
pub fn pin(pid: u32, cpus: &str) -> Result<()> {
    let status = Command::new("taskset")
        .args(["--all-tasks", "--cpu-list", "--pid", cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .context("running taskset (util-linux)")?;
    ensure!(status.success(), "taskset could not pin {pid} to {cpus}");
    Ok(())
}

/// Where the client and the gateway run during a drive.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Both anywhere on the machine's cores, as the operating system chooses.
    Shared,
    /// The client on core 0, the gateway on every other core.
    Pinned,
}

impl Placement {
    /// The `taskset` core lists for the client and the gateway.
    pub fn cpu_lists(self) -> (String, String) {
        let last = cores().saturating_sub(1);
        match self {
            Placement::Shared => (format!("0-{last}"), format!("0-{last}")),
            Placement::Pinned => ("0".to_string(), if last == 1 { "1".to_string() } else { format!("1-{last}") }),
        }
    }
}
