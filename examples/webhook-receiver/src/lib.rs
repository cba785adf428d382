//! Verifying a Soxara webhook delivery.
//!
//! ```
//! use webhook_receiver::Verifier;
//! let verifier = Verifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
//! let headers = axum::http::HeaderMap::new();
//! assert!(verifier.verify(&headers, b"{}", 1_700_000_000).is_err()); // no signature headers
//! ```
//!
//! A delivery is accepted only if **both** signatures check out with the
//! endpoint's secret, compared in constant time, and its timestamp is within
//! five minutes of now:
//!
//! - `X-Soxara-Signature-256: sha256=<hex HMAC-SHA256(secret as text, raw body)>`
//! - `webhook-signature: v1,<base64 HMAC-SHA256(base64-decoded secret after
//!   "whsec_", "{webhook-id}.{webhook-timestamp}.{raw body}")>` (Standard Webhooks)
//!
//! During a secret rotation each header lists one signature per secret; one
//! match is enough.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a delivery's timestamp may be from now, either way.
pub const TIMESTAMP_TOLERANCE_S: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The secret is not `whsec_<base64>`.
    BadSecret,
    MissingHeader(&'static str),
    /// The two timestamp headers disagree or are not numbers.
    BadTimestamp,
    /// Older or newer than the tolerance: a replay, or a clock far off.
    StaleTimestamp {
        age_s: i64,
    },
    BadSignature(&'static str),
}

/// Checks deliveries for one endpoint secret.
pub struct Verifier {
    secret: String,
    key: Vec<u8>,
}

impl Verifier {
    pub fn new(secret: &str) -> Result<Verifier, Rejection> {
        let encoded = secret.strip_prefix("whsec_").ok_or(Rejection::BadSecret)?;
        let key = BASE64.decode(encoded).map_err(|_| Rejection::BadSecret)?;
        Ok(Verifier { secret: secret.to_string(), key })
    }

    /// Verifies a delivery's headers and raw body at time `now_s` (Unix seconds).
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now_s: i64) -> Result<(), Rejection> {
        let header =
            |name: &'static str| headers.get(name).and_then(|v| v.to_str().ok()).ok_or(Rejection::MissingHeader(name));
        let id = header("webhook-id")?;
        let timestamp = header("webhook-timestamp")?;
        if header("x-soxara-timestamp")? != timestamp {
            return Err(Rejection::BadTimestamp);
        }
        let timestamp_s: i64 = timestamp.parse().map_err(|_| Rejection::BadTimestamp)?;
        let age_s = now_s - timestamp_s;
        if age_s.abs() > TIMESTAMP_TOLERANCE_S {
            return Err(Rejection::StaleTimestamp { age_s });
        }

        let body_ok = header("x-soxara-signature-256")?
            .split(',')
            .filter_map(|s| s.trim().strip_prefix("sha256="))
            .filter_map(|hex_sig| hex::decode(hex_sig).ok())
            .any(|sig| {
                let mut mac = HmacSha256::new_from_slice(self.secret.as_bytes()).expect("any key length");
                mac.update(body);
                mac.verify_slice(&sig).is_ok() // constant-time comparison
            });
        if !body_ok {
            return Err(Rejection::BadSignature("x-soxara-signature-256"));
        }

        let standard_ok = header("webhook-signature")?
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|b64| BASE64.decode(b64).ok())
            .any(|sig| {
                let mut mac = HmacSha256::new_from_slice(&self.key).expect("any key length");
                mac.update(format!("{id}.{timestamp}.").as_bytes());
                mac.update(body);
                mac.verify_slice(&sig).is_ok() // constant-time comparison
            });
        if !standard_ok {
            return Err(Rejection::BadSignature("webhook-signature"));
        }
        Ok(())
    }
}

/// Now, in Unix seconds.
pub fn now_s() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn signed(body: &[u8], timestamp: i64, secret: &str) -> HeaderMap {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        let soxara = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let key = BASE64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
        let mut mac = HmacSha256::new_from_slice(&key).unwrap();
        mac.update(format!("evt_1.{timestamp}.").as_bytes());
        mac.update(body);
        let standard = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("webhook-id", "evt_1".to_string()),
            ("webhook-timestamp", timestamp.to_string()),
            ("x-soxara-timestamp", timestamp.to_string()),
            ("x-soxara-signature-256", soxara),
            ("webhook-signature", standard),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn accepts_good_and_refuses_forged_stale_or_tampered() {
        let verifier = Verifier::new(SECRET).unwrap();
        let now = 1_700_000_000;
        assert_eq!(verifier.verify(&signed(b"{}", now, SECRET), b"{}", now), Ok(()));
        assert_eq!(
            verifier.verify(&signed(b"{}", now, SECRET), b"{\"x\":1}", now),
            Err(Rejection::BadSignature("x-soxara-signature-256"))
        );
        let other = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCE=";
        assert!(verifier.verify(&signed(b"{}", now, other), b"{}", now).is_err());
        assert_eq!(
            verifier.verify(&signed(b"{}", now - 301, SECRET), b"{}", now),
            Err(Rejection::StaleTimestamp { age_s: 301 })
        );
        let mut replayed = signed(b"{}", now - 400, SECRET);
        replayed.insert("webhook-timestamp", now.to_string().parse().unwrap());
        replayed.insert("x-soxara-timestamp", now.to_string().parse().unwrap());
        assert_eq!(verifier.verify(&replayed, b"{}", now), Err(Rejection::BadSignature("webhook-signature")));
    }
}
