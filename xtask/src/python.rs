//! Python tools from PyPI, each set in its own virtual environment under
//! `target/`, made on first use (with `scripts/install-python.sh` where
//! python3 or its venv module is missing) and remade when the pinned set
//! changes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

/// componentize-py, for the Python rails (the release verified with the
/// host: docs/design.md, "Plugins").
pub const COMPONENTIZE_PY: &[&str] = &["componentize-py==0.25.1"];

/// What the API tests run against the gateway: schemathesis (property-based
/// tests from the OpenAPI document), a validator for the document, and a
/// client generator (the README's generated client).
pub const API_TOOLS: &[&str] =
    &["schemathesis==4.32.5", "openapi-spec-validator==0.9.0", "openapi-python-client==0.29.1"];

/// The virtual environment `dir` (relative to the workspace root) holding
/// `packages`, installed if it does not yet; returns its `bin/` directory.
pub fn ensure_venv(root: &Path, dir: &str, packages: &[&str]) -> Result<PathBuf> {
    let venv = root.join(dir);
    let installed = venv.join(".installed");
    let wanted = packages.join(" ");
    if fs::read_to_string(&installed).is_ok_and(|s| s == wanted) {
        return Ok(venv.join("bin"));
    }
    let python_ready =
        Command::new("python3").args(["-c", "import venv, ensurepip"]).status().is_ok_and(|s| s.success());
    if !python_ready {
        eprintln!("python: python3 with venv not found; running scripts/install-python.sh");
        let status = Command::new("bash").arg(root.join("scripts/install-python.sh")).status()?;
        if !status.success() {
            bail!("scripts/install-python.sh failed: {status}");
        }
    }
    let status = Command::new("python3").args(["-m", "venv"]).arg(&venv).status()?;
    if !status.success() {
        bail!("python3 -m venv {} failed: {status}", venv.display());
    }
    eprintln!("python: installing {wanted} from PyPI into {}", venv.display());
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(packages)
        .status()?;
    if !status.success() {
        bail!("pip install {wanted} failed: {status}");
    }
    fs::write(&installed, wanted)?;
    Ok(venv.join("bin"))
}
