//! Building plugins: guest cargo build for wasm32, then core module → component.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::python::{COMPONENTIZE_PY, ensure_venv};

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
        let component = encode_component(name, &module_path)?;
        fs::write(output, &component)?;
        eprintln!("plugins: {} ({} KiB)", output.display(), component.len() / 1024);
    }
    fs::write(&stamp, fingerprint)?;
    Ok(outputs)
}

/// Rails of the main workspace built like partners build theirs: the
/// template, so that the suite checks the path docs/plugins.md describes.
pub const WORKSPACE_RAILS: &[&str] = &["examples/rail-template"];

/// Builds one rail crate of the main workspace (a partner's rail, or the
/// template) into `target/rails/<crate name>.wasm`, skipping the build when
/// neither it, the SDK nor the WIT changed.
pub fn build_rail(root: &Path, dir: &Path) -> Result<PathBuf> {
    let dir = if dir.is_absolute() { dir.to_path_buf() } else { root.join(dir) };
    let manifest = dir.join("Cargo.toml");
    let name = package_name(&manifest)?;
    let out_dir = root.join("target/rails");
    let output = out_dir.join(format!("{name}.wasm"));
    let stamp = out_dir.join(format!(".{name}.fingerprint"));
    let mut inputs = Vec::new();
    for input in [root.join("wit"), root.join("sdk"), dir.clone()] {
        collect_files(&input, &mut inputs)?;
    }
    // The lock file and the root manifest (its `[profile.guest]`).
    inputs.push(root.join("Cargo.lock"));
    inputs.push(root.join("Cargo.toml"));
    let fingerprint = fingerprint_of(root, inputs)?;
    if output.exists() && fs::read_to_string(&stamp).is_ok_and(|s| s == fingerprint) {
        // Same content: mark it current, so the testkit's staleness check
        // (by modification time) accepts it after a mere `touch`.
        fs::File::options().write(true).open(&output)?.set_modified(std::time::SystemTime::now())?;
        eprintln!("rails: {name} up to date ({})", output.display());
        return Ok(output);
    }

    let route = ensure_route(root)?;
    eprintln!("rails: building {name} from {} ({route:?} route)", dir.display());
    let guest_target = root.join("target/wasm-guest");
    let mut cmd = guest_cargo(route);
    cmd.current_dir(root)
        .args(["build", "--profile", "guest", "--target", WASM_TARGET, "--lib", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &guest_target)
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS", GUEST_RUSTFLAGS);
    let status = cmd.status().context("starting the guest cargo build")?;
    if !status.success() {
        bail!("building {name} for {WASM_TARGET} failed: {status}");
    }
    let module_path = guest_target.join(WASM_TARGET).join("guest").join(format!("{}.wasm", name.replace('-', "_")));
    fs::create_dir_all(&out_dir)?;
    let component = encode_component(&name, &module_path)?;
    fs::write(&output, &component)?;
    fs::write(&stamp, fingerprint)?;
    eprintln!("rails: {} ({} KiB)", output.display(), component.len() / 1024);
    Ok(output)
}

/// Rails written in Python (a directory with `app.py` defining `Rail`), and
/// where each goes: the example beside the template, the misbehaving one
/// with the other test-only plugins.
pub const PYTHON_RAILS: &[(&str, &str)] =
    &[("examples/rail-python", "target/rails"), ("plugins/testing/python-sleeper", "target/test-plugins")];

/// Builds a Python rail with componentize-py into
/// `<out_dir>/<directory name>.wasm`, installing componentize-py from
/// PyPI into `target/python/` on first use.
pub fn build_python_rail(root: &Path, dir: &Path, out_dir: &Path) -> Result<PathBuf> {
    let dir = if dir.is_absolute() { dir.to_path_buf() } else { root.join(dir) };
    let name = dir.file_name().context("a rail directory has a name")?.to_string_lossy().into_owned();
    let out_dir = root.join(out_dir);
    let output = out_dir.join(format!("{name}.wasm"));
    let stamp = out_dir.join(format!(".{name}.fingerprint"));
    let mut inputs = Vec::new();
    for input in [root.join("wit"), dir.clone()] {
        collect_files(&input, &mut inputs)?;
    }
    inputs.retain(|path| !path.components().any(|c| c.as_os_str() == "__pycache__"));
    let fingerprint = format!("{} {}", COMPONENTIZE_PY.join(" "), fingerprint_of(root, inputs)?);
    if output.exists() && fs::read_to_string(&stamp).is_ok_and(|s| s == fingerprint) {
        eprintln!("rails: {name} up to date ({})", output.display());
        return Ok(output);
    }
    let componentize = ensure_venv(root, "target/python", COMPONENTIZE_PY)?.join("componentize-py");
    eprintln!("rails: building {name} from {} with {}", dir.display(), COMPONENTIZE_PY.join(" "));
    fs::create_dir_all(&out_dir)?;
    let status = Command::new(&componentize)
        .arg("-d")
        .arg(root.join("wit"))
        .args(["-w", "rail-plugin", "componentize", "-p"])
        .arg(&dir)
        .arg("app")
        .arg("-o")
        .arg(&output)
        .status()
        .with_context(|| format!("running {}", componentize.display()))?;
    if !status.success() {
        bail!("componentize-py failed for {name}: {status}");
    }
    fs::write(&stamp, fingerprint)?;
    let size = fs::metadata(&output)?.len();
    eprintln!("rails: {} ({} KiB)", output.display(), size / 1024);
    Ok(output)
}

/// The `[package] name` of a crate manifest.
fn package_name(manifest: &Path) -> Result<String> {
    let text = fs::read_to_string(manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let parsed: toml::Table = text.parse().with_context(|| format!("parsing {}", manifest.display()))?;
    parsed
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .with_context(|| format!("{} has no [package] name", manifest.display()))
}

/// A core module turned into a component (its WIT world is in the module's
/// custom sections, put there by `wit-bindgen`).
fn encode_component(name: &str, module_path: &Path) -> Result<Vec<u8>> {
    let module = fs::read(module_path).with_context(|| format!("reading {}", module_path.display()))?;
    wit_component::ComponentEncoder::default()
        .module(&module)
        .with_context(|| format!("{name}: reading the module's component type"))?
        .validate(true)
        .encode()
        .with_context(|| format!("{name}: encoding the component"))
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
    fingerprint_of(root, files)
}

fn fingerprint_of(root: &Path, mut files: Vec<PathBuf>) -> Result<String> {
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
