//! Webhook signatures. Two schemes in every delivery:
//!
//! - `X-Soxara-Signature-256: sha256=<hex>`: HMAC-SHA256 of the raw body, keyed
//!   with the endpoint secret as a string (`whsec_…`), as the seed documents.
//! - Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature:
//!   v1,<base64>`): HMAC-SHA256 of `{id}.{timestamp}.{body}`, keyed with the
//!   base64-decoded part of the secret after `whsec_`. It covers the
//!   timestamp, so receivers can refuse replays, and off-the-shelf verifiers
//!   accept it.
//!
//! During a secret rotation each header carries one signature per secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Random bytes in a new secret.
const SECRET_BYTES: usize = 24;
pub const SECRET_PREFIX: &str = "whsec_";

type HmacSha256 = Hmac<Sha256>;

/// A new endpoint secret: `whsec_` and 24 random bytes in base64.
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    format!("{SECRET_PREFIX}{}", BASE64.encode(bytes))
}

/// What identifies one delivery attempt.
pub struct Delivery<'a> {
    pub event_id: &'a str,
    pub delivery_id: &'a str,
    pub event_type: &'a str,
    pub timestamp_s: i64,
    pub body: &'a [u8],
}

/// The headers of a delivery, signed with every secret in `secrets`.
pub fn headers(delivery: &Delivery, secrets: &[&str]) -> Vec<(&'static str, String)> {
    let soxara: Vec<String> =
        secrets.iter().map(|s| format!("sha256={}", body_signature_hex(s, delivery.body))).collect();
    let standard: Vec<String> = secrets
        .iter()
        .filter_map(|s| standard_signature(s, delivery.event_id, delivery.timestamp_s, delivery.body))
        .map(|sig| format!("v1,{sig}"))
        .collect();
    vec![
        ("content-type", "application/json".to_string()),
        ("user-agent", concat!("Soxara-Webhooks/", env!("CARGO_PKG_VERSION")).to_string()),
        ("x-soxara-event", delivery.event_type.to_string()),
        ("x-soxara-delivery", delivery.delivery_id.to_string()),
        ("x-soxara-timestamp", delivery.timestamp_s.to_string()),
        ("x-soxara-signature-256", soxara.join(", ")),
        ("webhook-id", delivery.event_id.to_string()),
        ("webhook-timestamp", delivery.timestamp_s.to_string()),
        ("webhook-signature", standard.join(" ")),
    ]
}

/// Hex HMAC-SHA256 of the body, keyed with the secret string.
pub fn body_signature_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` (Standard Webhooks), or
/// None for a secret that is not `whsec_<base64>`.
pub fn standard_signature(secret: &str, id: &str, timestamp_s: i64, body: &[u8]) -> Option<String> {
    let key = BASE64.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp_s}.").as_bytes());
    mac.update(body);
    Some(BASE64.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_test_vector() {
        // From the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let signature = standard_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(signature, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn rotation_signs_with_both_secrets() {
        let delivery =
            Delivery { event_id: "evt_1", delivery_id: "whd_1", event_type: "ping", timestamp_s: 1, body: b"{}" };
        let (old, new) = (new_secret(), new_secret());
        let headers = headers(&delivery, &[&new, &old]);
        let get = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(get("x-soxara-signature-256").matches("sha256=").count(), 2);
        assert_eq!(get("webhook-signature").matches("v1,").count(), 2);
    }
}
