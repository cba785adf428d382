//! One-time codes sent to a customer's phone: the claim code for money
//! waiting for them, and the code that approves something a merchant asks
//! of their money. A code is 6 digits from the CSPRNG; only its HMAC under
//! a key kept outside the database is stored, so a copy of the database
//! alone does not give codes away. Wrong codes count against the phone,
//! whoever sends them: too many lock every code of that phone for a while,
//! and only the right code clears the count (a new code does not, so no
//! one can reset a guesser's budget by making us send one). This module
//! owns `one_time_codes` and `code_failures`.

use std::path::Path;

use anyhow::{Context as _, Result};
use hmac::{Hmac, Mac};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::Sha256;

use crate::config::CodeSettings;
use crate::store::StoreError;
use crate::values::mode::Mode;

/// Digits in a code.
pub const CODE_DIGITS: u32 = 6;
/// The purpose of a phone's claim code (approval codes use the approval id).
pub const CLAIM: &str = "claim";
/// The environment variable that may hold the key (64 hex digits) instead
/// of a file: several gateway nodes must share it.
pub const KEY_ENV: &str = "SOXARA_CODE_KEY";

/// The secret codes are hashed under.
#[derive(Clone)]
pub struct CodeKey([u8; 32]);

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey(…)")
    }
}

impl CodeKey {
    /// A fresh key (for a database that lives in memory).
    pub fn random() -> CodeKey {
        CodeKey(rand::random())
    }

    /// From `SOXARA_CODE_KEY` if set; else from `path`, which is created
    /// (readable by the owner only) with a fresh key if missing.
    pub fn load_or_create(path: &Path) -> Result<CodeKey> {
        if let Ok(hex_key) = std::env::var(KEY_ENV) {
            return CodeKey::from_hex(hex_key.trim()).context(KEY_ENV);
        }
        let text = crate::secrets::read_or_create(path, || hex::encode(CodeKey::random().0))?;
        CodeKey::from_hex(&text).with_context(|| format!("reading {}", path.display()))
    }

    fn from_hex(text: &str) -> Result<CodeKey> {
        let bytes = hex::decode(text).context("the code key must be 64 hex digits")?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| anyhow::anyhow!("the code key must be 64 hex digits"))?;
        Ok(CodeKey(key))
    }

    fn hmac(&self, mode: Mode, phone: &str, purpose: &str, code: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        for part in [mode.as_str(), phone, purpose, code] {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The key and the rules for wrong codes.
#[derive(Debug, Clone)]
pub struct Codes {
    pub key: CodeKey,
    pub settings: CodeSettings,
}

/// What a code sent for a phone turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Right,
    /// Wrong, expired, or no code outstanding (all answered alike).
    Wrong {
        attempts_left: u32,
    },
    /// Too many wrong codes for this phone: none is checked until the
    /// lockout ends.
    Locked,
}

impl Codes {
    /// Makes a new code for (`phone`, `purpose`), replacing any earlier one,
    /// valid until `expires_at_ms`, and returns it to be sent.
    pub fn issue(
        &self,
        conn: &Connection,
        mode: Mode,
        phone: &str,
        purpose: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<String, StoreError> {
        let code = format!("{:0width$}", rand::random_range(0..10u32.pow(CODE_DIGITS)), width = CODE_DIGITS as usize);
        conn.prepare_cached(
            "INSERT INTO one_time_codes (mode, phone, purpose, code_hmac, expires_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (mode, phone, purpose) DO UPDATE SET code_hmac = ?4, expires_at = ?5, created_at = ?6",
        )?
        .execute(params![
            mode,
            phone,
            purpose,
            self.key.hmac(mode, phone, purpose, &code),
            expires_at_ms,
            now_ms
        ])?;
        Ok(code)
    }

    /// Checks `code` for (`phone`, `purpose`), counting it against the
    /// phone when it is wrong. The right code is used up.
    pub fn check(
        &self,
        conn: &Connection,
        mode: Mode,
        phone: &str,
        purpose: &str,
        code: &str,
        now_ms: i64,
    ) -> Result<Verdict, StoreError> {
        let max = self.settings.attempts_max;
        let lockout_ms = i64::try_from(self.settings.lockout_ms).unwrap_or(i64::MAX);
        let (failures, last_at_ms) = conn
            .prepare_cached("SELECT failures, last_at FROM code_failures WHERE mode = ?1 AND phone = ?2")?
            .query_row(params![mode, phone], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .optional()?
            .unwrap_or((0, 0));
        let lockout_over = now_ms >= last_at_ms.saturating_add(lockout_ms);
        let failures = if lockout_over { 0 } else { failures };
        if failures >= i64::from(max) {
            return Ok(Verdict::Locked);
        }
        let stored: Option<(String, i64)> = conn
            .prepare_cached(
                "SELECT code_hmac, expires_at FROM one_time_codes WHERE mode = ?1 AND phone = ?2 AND purpose = ?3",
            )?
            .query_row(params![mode, phone, purpose], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let right = stored.is_some_and(|(hmac, expires_at_ms)| {
            now_ms < expires_at_ms && constant_time_eq(&hmac, &self.key.hmac(mode, phone, purpose, code))
        });
        if right {
            self.forget(conn, mode, phone, purpose)?;
            conn.prepare_cached("DELETE FROM code_failures WHERE mode = ?1 AND phone = ?2")?
                .execute(params![mode, phone])?;
            return Ok(Verdict::Right);
        }
        let failures = failures + 1;
        conn.prepare_cached(
            "INSERT INTO code_failures (mode, phone, failures, last_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (mode, phone) DO UPDATE SET failures = ?3, last_at = ?4",
        )?
        .execute(params![mode, phone, failures, now_ms])?;
        let attempts_left = u32::try_from(i64::from(max) - failures).unwrap_or(0);
        Ok(Verdict::Wrong { attempts_left })
    }

    /// Drops the code for (`phone`, `purpose`), if any.
    pub fn forget(&self, conn: &Connection, mode: Mode, phone: &str, purpose: &str) -> Result<(), StoreError> {
        conn.prepare_cached("DELETE FROM one_time_codes WHERE mode = ?1 AND phone = ?2 AND purpose = ?3")?
            .execute(params![mode, phone, purpose])?;
        Ok(())
    }
}

/// Compares two hex digests without stopping at the first difference.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: &str = "+231770001111";

    fn codes(attempts_max: u32) -> Codes {
        Codes {
            key: CodeKey::random(),
            settings: CodeSettings { attempts_max, lockout_ms: 60_000, ..Default::default() },
        }
    }

    #[test]
    fn the_right_code_works_once_and_only_for_its_phone_and_purpose() {
        let conn = crate::testing::database();
        let codes = codes(5);
        let code = codes.issue(&conn, Mode::Test, PHONE, CLAIM, 10_000, 1_000).unwrap();
        assert_eq!(
            codes.check(&conn, Mode::Test, "+231770002222", CLAIM, &code, 2_000).unwrap(),
            Verdict::Wrong { attempts_left: 4 }
        );
        assert_eq!(
            codes.check(&conn, Mode::Live, PHONE, CLAIM, &code, 2_000).unwrap(),
            Verdict::Wrong { attempts_left: 4 }
        );
        assert_eq!(
            codes.check(&conn, Mode::Test, PHONE, "apv_x", &code, 2_000).unwrap(),
            Verdict::Wrong { attempts_left: 4 }
        );
        assert_eq!(codes.check(&conn, Mode::Test, PHONE, CLAIM, &code, 2_000).unwrap(), Verdict::Right);
        assert_eq!(
            codes.check(&conn, Mode::Test, PHONE, CLAIM, &code, 2_000).unwrap(),
            Verdict::Wrong { attempts_left: 4 }
        );
    }

    #[test]
    fn an_expired_code_is_wrong() {
        let conn = crate::testing::database();
        let codes = codes(5);
        let code = codes.issue(&conn, Mode::Test, PHONE, CLAIM, 10_000, 1_000).unwrap();
        assert!(matches!(codes.check(&conn, Mode::Test, PHONE, CLAIM, &code, 10_000).unwrap(), Verdict::Wrong { .. }));
    }

    #[test]
    fn wrong_codes_lock_the_phone_and_a_new_code_does_not_unlock_it() {
        let conn = crate::testing::database();
        let codes = codes(3);
        codes.issue(&conn, Mode::Test, PHONE, CLAIM, 1_000_000, 1_000).unwrap();
        for left in [2, 1, 0] {
            let verdict = codes.check(&conn, Mode::Test, PHONE, CLAIM, "not-it", 2_000).unwrap();
            assert_eq!(verdict, Verdict::Wrong { attempts_left: left });
        }
        let fresh = codes.issue(&conn, Mode::Test, PHONE, CLAIM, 1_000_000, 3_000).unwrap();
        assert_eq!(codes.check(&conn, Mode::Test, PHONE, CLAIM, &fresh, 3_000).unwrap(), Verdict::Locked);
        assert_eq!(
            codes.check(&conn, Mode::Test, PHONE, CLAIM, &fresh, 2_000 + 60_000).unwrap(),
            Verdict::Right,
            "after the lockout"
        );
    }

    #[test]
    fn the_database_holds_no_code() {
        let conn = crate::testing::database();
        let codes = codes(5);
        let code = codes.issue(&conn, Mode::Test, PHONE, CLAIM, 10_000, 1_000).unwrap();
        let stored: String = conn.query_row("SELECT code_hmac FROM one_time_codes", [], |r| r.get(0)).unwrap();
        assert!(!stored.contains(&code));
        let other_key = Codes { key: CodeKey::random(), ..codes.clone() };
        assert_ne!(stored, other_key.key.hmac(Mode::Test, PHONE, CLAIM, &code), "the key is part of the hash");
    }

    #[test]
    fn a_key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/code.key");
        let first = CodeKey::load_or_create(&path).unwrap();
        let second = CodeKey::load_or_create(&path).unwrap();
        assert_eq!(first.0, second.0);
        std::fs::write(&path, "not hex").unwrap();
        assert!(CodeKey::load_or_create(&path).is_err(), "a damaged key file stops the start");
    }
}
