//! Photos of physical gift cards, stored outside the database as files
//! named by their SHA-256 (the database records the hash, the name the
//! merchant gave and the type). A photo is written and synced before the
//! sale that names it is committed, so a crash never leaves a sale whose
//! photos are missing; a photo sent twice is stored once.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Where card photos are kept.
#[derive(Debug, Clone)]
pub struct CardImages {
    dir: PathBuf,
}

/// The image types accepted, by their first bytes: what a desk can open.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// The hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl CardImages {
    pub fn new(dir: PathBuf) -> CardImages {
        CardImages { dir }
    }

    /// Beside the database file: `data/soxara.db` keeps its photos in
    /// `data/soxara.cards/`.
    pub fn for_database(database: &Path) -> CardImages {
        CardImages::new(database.with_extension("cards"))
    }

    /// Those of the database `conn` is open on (rows loaded in a write find
    /// their photos without the application's context). An in-memory
    /// database has none: every read fails.
    pub fn of_connection(conn: &rusqlite::Connection) -> CardImages {
        match conn.path().filter(|p| !p.is_empty()) {
            Some(path) => CardImages::for_database(Path::new(path)),
            None => CardImages::new(PathBuf::new()),
        }
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(sha256)
    }

    /// Stores `bytes` durably under their hash and returns it.
    pub fn store(&self, bytes: &[u8]) -> std::io::Result<String> {
        let sha256 = sha256_hex(bytes);
        let path = self.path(&sha256);
        if path.exists() {
            return Ok(sha256);
        }
        std::fs::create_dir_all(&self.dir)?;
        // Written aside and renamed, so that a crash never leaves a partial
        // file under a hash it does not have.
        // Named uniquely: two sales with the same photo at once (a retry
        // racing the original) never write one temporary file.
        let partial = self.dir.join(format!("{sha256}.{}.partial", crate::values::ids::new_id("tmp")));
        let mut file = std::fs::File::create_new(&partial)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&partial, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(sha256)
    }

    /// The photo stored under `sha256`, checked against it.
    pub fn read(&self, sha256: &str) -> std::io::Result<Vec<u8>> {
        let bytes = std::fs::read(self.path(sha256))?;
        if sha256_hex(&bytes) != sha256 {
            return Err(std::io::Error::other(format!("card photo {sha256} does not match its hash")));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photos_are_stored_once_under_their_hash_and_read_back_checked() {
        let dir = tempfile::tempdir().unwrap();
        let images = CardImages::new(dir.path().join("cards"));
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3];
        let hash = images.store(&jpeg).unwrap();
        assert_eq!(hash, sha256_hex(&jpeg));
        assert_eq!(images.store(&jpeg).unwrap(), hash, "stored once");
        assert_eq!(images.read(&hash).unwrap(), jpeg);
        std::fs::write(dir.path().join("cards").join(&hash), b"tampered").unwrap();
        assert!(images.read(&hash).is_err(), "a changed file is refused");
        assert_eq!(sniff(&jpeg), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
    }
}
