//! Building plugins: guest cargo build for wasm32, then core module → component.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// Guest link flags. A 64 KiB shadow stack instead of rustc's 1 MiB keeps
/// what a call touches within a few pages of memory, which the host's
/// instance pool keeps warm between calls (see docs/performance.md).
const GUEST_RUSTFLAGS: &str = "-C link-arg=-zstack-size=65536";

/// How the guest is compiled on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// rustup's installed wasm32 target.
    Rustup,
    /// Debian's rustc-web, rebuilding std for wasm32.
    Debian,
}

/// Builds every plugin and returns the component paths. Does nothing (beyond
/// hashing the sources) when no guest input changed since the last build.
pub fn build_plugins(root: &Path) -> Result<Vec<PathBuf>> {
    let plugins_dir = root.join("plugins");
    let out_dir = root.join("target/plugins");
    // Plugins for the gateway, and misbehaving ones for its tests only.
    let test_out_dir = root.join("target/test-plugins");
    let mut names = plugin_names(&plugins_dir)?;
    let test_names = plugin_names(&plugins_dir.join("testing"))?;
    names.extend(test_names.iter().cloned());
    let fingerprint = source_fingerprint(root)?;
    let stamp = out_dir.join(".fingerprint");
    let outputs: Vec<PathBuf> = names
        .iter()
        .map(|n| if test_names.contains(n) { &test_out_dir } else { &out_dir }.join(format!("{n}.wasm")))
        .collect();

    let unchanged = fs::read_to_string(&stamp).is_ok_and(|s| s == fingerprint) && outputs.iter().all(|p| p.exists());
    if unchanged {
        eprintln!("plugins: up to date ({} in target/plugins)", outputs.len());
        return Ok(outputs);
    }

    let route = ensure_route(root)?;
    eprintln!("plugins: building {names:?} for {WASM_TARGET} ({route:?} route)");
    let guest_target = root.join("target/wasm-guest");
    let mut cmd = guest_cargo(route);
    cmd.current_dir(&plugins_dir)
        .args(["build", "--release", "--target", WASM_TARGET])
        .env("CARGO_TARGET_DIR", &guest_target)
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS", GUEST_RUSTFLAGS);
    let status = cmd.status().context("starting the guest cargo build")?;
    if !status.success() {
        bail!("guest build failed: {status}");
    }

    fs::create_dir_all(&out_dir)?;
    fs::create_dir_all(&test_out_dir)?;
    for (name, output) in names.iter().zip(&outputs) {
        let module_path =
            guest_target.join(WASM_TARGET).join("release").join(format!("{}.wasm", name.replace('-', "_")));
        let module = fs::read(&module_path).with_context(|| format!("reading {}", module_path.display()))?;
        let component = wit_component::ComponentEncoder::default()
            .module(&module)
            .with_context(|| format!("{name}: reading the module's component type"))?
            .validate(true)
            .encode()
            .with_context(|| format!("{name}: encoding the component"))?;
        fs::write(output, &component)?;
        eprintln!("plugins: {} ({} KiB)", output.display(), component.len() / 1024);
    }
    fs::write(&stamp, fingerprint)?;
    Ok(outputs)
}

/// Plugin crates: each directory under `dir` with a Cargo.toml.
fn plugin_names(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    if !dir.is_dir() {
        return Ok(names);
    }
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.join("Cargo.toml").is_file() {
            names.push(path.file_name().expect("a directory entry has a name").to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// A hash over every guest input: WIT, the SDK and the plugins' sources.
fn source_fingerprint(root: &Path) -> Result<String> {
    let mut files = Vec::new();
    for dir in ["wit", "sdk", "plugins"] {
        collect_files(&root.join(dir), &mut files)?;
    }
    files.sort();
    let mut hasher = Sha256::new();
    hasher.update(GUEST_RUSTFLAGS.as_bytes());
    for file in files {
        hasher.update(file.strip_prefix(root).unwrap_or(&file).to_string_lossy().as_bytes());
        hasher.update(fs::read(&file)?);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name == "target" || name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

/// Picks the rustup target if present, else the Debian route, installing it
/// through the project's script when neither exists.
fn ensure_route(root: &Path) -> Result<Route> {
    if let Some(route) = detect_route() {
        return Ok(route);
    }
    eprintln!("plugins: no wasm32 toolchain found; running scripts/install-toolchain.sh");
    let status = Command::new("bash")
        .arg(root.join("scripts/install-toolchain.sh"))
        .status()
        .context("running scripts/install-toolchain.sh")?;
    if !status.success() {
        bail!("scripts/install-toolchain.sh failed: {status}");
    }
    detect_route().context("the toolchain script finished but no wasm32 route works")
}

fn detect_route() -> Option<Route> {
    let rustup_has_target = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == WASM_TARGET));
    if rustup_has_target {
        return Some(Route::Rustup);
    }
    let debian = ["/usr/bin/rustc", "/usr/bin/cargo", "/usr/bin/rust-lld"].iter().all(|p| Path::new(p).exists())
        && Path::new("/usr/lib/rustlib/src/rust/library").is_dir();
    debian.then_some(Route::Debian)
}

/// A cargo command for the guest build, cleared of the outer cargo's settings
/// (this task runs under `cargo run`, whose variables must not leak in).
fn guest_cargo(route: Route) -> Command {
    let mut cmd = match route {
        Route::Rustup => Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())),
        Route::Debian => Command::new("/usr/bin/cargo"),
    };
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let leaks = key.starts_with("CARGO_BUILD_")
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_CFG_")
            || key.starts_with("CARGO_ENCODED_")
            || matches!(
                key.as_ref(),
                "RUSTC"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "RUSTFLAGS"
                    | "RUSTDOCFLAGS"
                    | "CARGO_TARGET_DIR"
                    | "CARGO_MAKEFLAGS"
                    | "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_PRIMARY_PACKAGE"
            );
        if leaks {
            cmd.env_remove(key.as_ref());
        }
    }
    if route == Route::Debian {
        cmd.env_remove("RUSTUP_TOOLCHAIN")
            .env("RUSTC", "/usr/bin/rustc")
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", "/usr/bin/rust-lld")
            .args(["-Zbuild-std=std,panic_abort"]);
    }
    cmd
}
