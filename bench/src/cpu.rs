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

/// The CPUs the harness may run on, as it found them at its start (later,
/// pinning the harness to one core would make it see one): their ids,
/// from `Cpus_allowed_list` (a cpuset may allow `4-7`, not `0-3`).
pub fn allowed() -> &'static [usize] {
    static ALLOWED: OnceLock<Vec<usize>> = OnceLock::new();
    ALLOWED.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap_or("0").trim();
        let mut cpus = Vec::new();
        for part in list.split(',') {
            let (from, to) = part.split_once('-').unwrap_or((part, part));
            if let (Ok(from), Ok(to)) = (from.trim().parse::<usize>(), to.trim().parse::<usize>()) {
                cpus.extend(from..=to);
            }
        }
        if cpus.is_empty() { vec![0] } else { cpus }
    })
}

/// How many cores the harness may use.
pub fn cores() -> usize {
    allowed().len()
}

/// A `taskset` list of `cpus`.
fn list(cpus: &[usize]) -> String {
    cpus.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

/// Pins every thread of `pid` to `cpus` (a `taskset` list such as `0` or `1,2,3`).
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
    /// Both anywhere the harness may run, as the operating system chooses.
    Shared,
    /// The client on the first allowed core, the gateway on the others.
    Pinned,
}

impl Placement {
    /// The client's `taskset` list.
    pub fn client_cpus(self) -> String {
        match self {
            Placement::Shared => list(allowed()),
            Placement::Pinned => list(&allowed()[..1]),
        }
    }

    /// The gateway's `taskset` list; `None`: it is not pinned.
    pub fn gateway_cpus(self) -> Option<String> {
        match self {
            Placement::Shared => None,
            Placement::Pinned => Some(list(&allowed()[1..])),
        }
    }
}
