//! Project tasks, run as `cargo xtask <task>`:
//!
//! - `build-plugins`: build every plugin under `plugins/` from source into a
//!   WebAssembly component in `target/plugins/`, and the example rails (the
//!   template, and the Python rail with componentize-py) into
//!   `target/rails/`, skipping builds whose sources did not change.
//! - `build-plugin DIR`: build the rail crate in DIR (a member of this
//!   workspace, e.g. a copy of `examples/rail-template`) into
//!   `target/rails/<crate name>.wasm`.
//! - `run [ARGS]`: build the plugins, then start the gateway (`soxara serve
//!   ARGS`) from the test build's own `soxara` binary, so that `run` and
//!   `test` share one build in either order.
//! - `test`: build the plugins, install the API tests' Python tools
//!   (schemathesis, an OpenAPI validator) into `target/api-tools/` on first
//!   use, then run every test suite (host, plugins),
//!   then check that `run` would start without building anything.
//! - `bench [ARGS]`: build the gateway (and its compiled-in-simulator
//!   baseline) in release mode, then run the benchmark harness
//!   (`soxara-bench ARGS`); see docs/performance.md.
//!
//! The guest build uses rustup's `wasm32-unknown-unknown` target where it is
//! installed, and Debian's `rustc-web` with `-Zbuild-std` where it is not
//! (installed by `scripts/install-toolchain.sh` on first use).

mod guest;
mod python;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    match run_task() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The bundled plugins and the workspace's example rails.
fn build_all(root: &Path) -> Result<()> {
    guest::build_plugins(root)?;
    for dir in guest::WORKSPACE_RAILS {
        guest::build_rail(root, Path::new(dir))?;
    }
    for (dir, out_dir) in guest::PYTHON_RAILS {
        guest::build_python_rail(root, Path::new(dir), Path::new(out_dir))?;
    }
    Ok(())
}

fn run_task() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    // `cargo xtask run -- --listen …` passes the `--` through; drop it.
    let rest: Vec<String> = args.skip_while(|a| a == "--").collect();
    let root = workspace_root();
    match task.as_str() {
        "build-plugins" => build_all(&root),
        "build-plugin" => {
            let Some(dir) = rest.first() else { bail!("usage: cargo xtask build-plugin <crate directory>") };
            guest::build_rail(&root, Path::new(dir)).map(|_| ())
        }
        "run" => {
            guest::build_plugins(&root)?;
            run(gateway_build(&root))?;
            let mut cmd = Command::new(target_dir(&root).join("debug/soxara"));
            cmd.current_dir(&root).arg("serve").args(["--plugin-dir", "target/plugins"]).args(&rest);
            run(cmd)
        }
        "test" => {
            build_all(&root)?;
            // The plugins' and the SDK's own logic, natively (no WebAssembly
            // needed for it).
            for dir in ["plugins", "sdk"] {
                let mut guest_tests = cargo();
                guest_tests
                    .current_dir(root.join(dir))
                    .args(["test", "--quiet", "--lib"])
                    .env("CARGO_TARGET_DIR", root.join("target/plugins-native"));
                run(guest_tests)?;
            }
            // The API tests' schemathesis and OpenAPI validator (tests/it/openapi.rs).
            python::ensure_venv(&root, "target/api-tools", python::API_TOOLS)?;
            let mut host_tests = cargo();
            host_tests.current_dir(&root).args(["test", "--workspace"]).args(&rest);
            run(host_tests)?;
            // Arguments may change the build (`--release`): only the plain
            // command is the README's.
            if rest.is_empty() { check_run_shares_the_build(&root) } else { Ok(()) }
        }
        "bench" => {
            guest::build_plugins(&root)?;
            let target = target_dir(&root);
            let bench_dir = target.join("bench");
            std::fs::create_dir_all(&bench_dir)?;
            // Both builds write target/release/soxara: keep each under its own
            // name, and build the shipped one last so that is what stays there.
            for (features, name) in [(Some("compiled-in-simulator"), "soxara-compiled-in"), (None, "soxara")] {
                let mut build = cargo();
                build.current_dir(&root).args(["build", "--release", "-p", "soxara-host", "--bin", "soxara"]);
                if let Some(features) = features {
                    build.args(["--features", features]);
                }
                run(build)?;
                let built = target.join("release/soxara");
                std::fs::copy(&built, bench_dir.join(name)).with_context(|| format!("copying {}", built.display()))?;
            }
            let mut bench = cargo();
            bench
                .current_dir(&root)
                .args(["run", "--release", "--quiet", "-p", "soxara-bench", "--"])
                .arg("--gateway")
                .arg(bench_dir.join("soxara"))
                .arg("--compiled-in-gateway")
                .arg(bench_dir.join("soxara-compiled-in"))
                .arg("--plugin-dir")
                .arg(root.join("target/plugins"))
                .args(&rest);
            run(bench)
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <build-plugins | build-plugin DIR | run [ARGS] | test [ARGS] | bench [ARGS]>"
            );
            bail!("unknown task {task:?}")
        }
    }
}

/// The build `run` starts the gateway from: the test build itself (the
/// host's integration tests make cargo build the `soxara` binary), so that
/// every crate, wasmtime first, is compiled once with one feature set
/// whichever of `run` and `test` comes first. A separate `cargo run -p
/// soxara-host` resolves features for the host alone and compiled wasmtime
/// again (12 minutes on a fresh machine).
fn gateway_build(root: &Path) -> Command {
    let mut build = cargo();
    build.current_dir(root).args(["test", "--workspace", "--no-run", "--quiet"]);
    build
}

/// Fails if `run`'s build would compile anything after the tests' build:
/// the two have drifted apart (another cargo command or feature set), and
/// a newcomer running the README's commands would wait for a second build.
fn check_run_shares_the_build(root: &Path) -> Result<()> {
    let mut check = gateway_build(root);
    check.args(["--message-format", "json"]).stderr(std::process::Stdio::inherit());
    let output = check.output().with_context(|| format!("starting {check:?}"))?;
    anyhow::ensure!(output.status.success(), "{check:?} failed: {}", output.status);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rebuilt: Vec<&str> = stdout
        .lines()
        .filter(|line| line.contains("\"reason\":\"compiler-artifact\"") && line.contains("\"fresh\":false"))
        .filter_map(|line| line.split("\"package_id\":\"").nth(1)?.split('"').next())
        .collect();
    anyhow::ensure!(
        rebuilt.is_empty(),
        "`cargo xtask run` would build again what the tests built: {}",
        rebuilt.join(", ")
    );
    println!(
        "xtask: `cargo xtask run` starts from this build ({} up to date)",
        target_dir(root).join("debug/soxara").display()
    );
    Ok(())
}

/// Where cargo builds (`CARGO_TARGET_DIR`, else `target/`).
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// The cargo that runs this task (rustup's, normally).
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run(mut cmd: Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}
