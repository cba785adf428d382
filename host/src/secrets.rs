//! Secrets the gateway keeps in files of their own, outside the database
//! (the key one-time codes are hashed under, the admin token): made once
//! from the CSPRNG, readable by the owner only, read back on every start.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, Result};

/// The secret in `path`, trimmed; if the file is missing, `make()` is
/// written to a new file (mode 0600, synced) and returned.
pub fn read_or_create(path: &Path, make: impl FnOnce() -> String) -> Result<String> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().to_string()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let secret = make();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
            file.write_all(secret.as_bytes())?;
            file.sync_all()?;
            Ok(secret)
        }
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_file_is_created_once_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/admin.token");
        let first = read_or_create(&path, || "first".into()).unwrap();
        let second = read_or_create(&path, || "second".into()).unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("first", "first"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
