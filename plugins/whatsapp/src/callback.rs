//! WhatsApp's webhooks: the subscription check (`GET` with `hub.mode`,
//! `hub.verify_token`, `hub.challenge`: echo the challenge when the token is
//! ours) and signed notifications (`POST`, `X-Hub-Signature-256:
//! sha256=<HMAC-SHA256 of the raw body with the app secret>`), whose
//! `statuses` say what became of messages we sent. Inbound messages and
//! other fields are acknowledged and ignored.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::exports::soxara::messaging::messenger::{Callback, CallbackAnswer, Delivery, DeliveryReport};
use crate::protocol::{UNDELIVERABLE, failure};
use crate::soxara::gateway::types::Failure;

/// Answers Meta's subscription check.
pub fn verify_subscription(query: &str, verify_token: Option<&str>) -> Result<CallbackAnswer, Failure> {
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| decode(k) == name)
            .map(|(_, v)| decode(v))
    };
    let Some(expected) = verify_token.filter(|t| !t.is_empty()) else {
        return Err(failure("MESSENGER_NOT_CONFIGURED", "config key `verify_token` is not set", false));
    };
    match (param("hub.mode").as_deref(), param("hub.verify_token"), param("hub.challenge")) {
        (Some("subscribe"), Some(token), Some(challenge)) if token == expected => {
            Ok(CallbackAnswer { status: 200, body: challenge, reports: Vec::new() })
        }
        (Some("subscribe"), Some(_), Some(_)) => {
            Ok(CallbackAnswer { status: 403, body: "verify token mismatch".to_string(), reports: Vec::new() })
        }
        _ => Err(failure("BAD_CALLBACK", "not a WhatsApp subscription check", false)),
    }
}

/// Checks the body was signed with the app secret.
pub fn check_signature(callback: &Callback, app_secret: Option<&str>) -> Result<(), Failure> {
    let Some(secret) = app_secret.filter(|s| !s.is_empty()) else {
        return Err(failure("MESSENGER_NOT_CONFIGURED", "config key `app_secret` is not set", false));
    };
    let signature = callback
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("x-hub-signature-256"))
        .and_then(|(_, value)| value.strip_prefix("sha256="))
        .and_then(decode_hex)
        .ok_or_else(|| failure("BAD_SIGNATURE", "no X-Hub-Signature-256 header", false))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(&callback.body);
    mac.verify_slice(&signature).map_err(|_| failure("BAD_SIGNATURE", "the signature does not match the body", false))
}

/// The delivery reports in a notification: `delivered` and `read` reached
/// the phone; `failed` did not (only "undeliverable" is final); `sent` says
/// nothing new.
pub fn read_statuses(body: &[u8]) -> Result<Vec<DeliveryReport>, Failure> {
    let notification: Value =
        serde_json::from_slice(body).map_err(|_| failure("BAD_CALLBACK", "the notification is not JSON", false))?;
    let mut reports = Vec::new();
    let changes = notification["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["changes"].as_array().into_iter().flatten());
    for status in changes.flat_map(|c| c["value"]["statuses"].as_array().into_iter().flatten()) {
        let Some(reference) = status["id"].as_str() else { continue };
        let delivery = match status["status"].as_str() {
            Some("delivered" | "read") => Delivery::Delivered,
            Some("failed") => {
                let error = &status["errors"][0];
                let title = error["title"].as_str().or(error["message"].as_str()).unwrap_or("no reason given");
                let title: String = title.chars().take(200).collect();
                match error["code"].as_i64() {
                    Some(UNDELIVERABLE) => Delivery::Failed(failure(
                        "RECIPIENT_UNREACHABLE",
                        &format!("WhatsApp cannot deliver to this number: {title}"),
                        false,
                    )),
                    code => Delivery::Failed(failure(
                        "MESSENGER_UNAVAILABLE",
                        &format!("WhatsApp did not deliver the message (code {}): {title}", code.unwrap_or(0)),
                        true,
                    )),
                }
            }
            _ => continue,
        };
        reports.push(DeliveryReport { provider_reference: reference.to_string(), delivery });
    }
    Ok(reports)
}

/// `%XX` and `+` decoding for query parameters.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', high, low]) => hex(*high).zip(hex(*low)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, byte) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(body: &[u8], secret: &str) -> Callback {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        Callback {
            method: "POST".into(),
            query: String::new(),
            headers: vec![("X-Hub-Signature-256".into(), format!("sha256={hex}"))],
            body: body.to_vec(),
        }
    }

    #[test]
    fn the_subscription_check_echoes_the_challenge_for_our_token_only() {
        let ok =
            verify_subscription("hub.mode=subscribe&hub.verify_token=t%20ok&hub.challenge=1158201444", Some("t ok"));
        assert_eq!((ok.as_ref().unwrap().status, ok.unwrap().body.as_str()), (200, "1158201444"));
        let wrong = verify_subscription("hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1", Some("t ok"));
        assert_eq!(wrong.unwrap().status, 403);
        assert!(verify_subscription("hub.mode=subscribe&hub.verify_token=x&hub.challenge=1", None).is_err());
    }

    #[test]
    fn only_bodies_signed_with_the_app_secret_are_read() {
        let body = br#"{"entry":[]}"#;
        assert!(check_signature(&signed(body, "secret"), Some("secret")).is_ok());
        assert_eq!(check_signature(&signed(body, "other"), Some("secret")).unwrap_err().code, "BAD_SIGNATURE");
        let mut tampered = signed(body, "secret");
        tampered.body = br#"{"entry":[1]}"#.to_vec();
        assert!(check_signature(&tampered, Some("secret")).is_err());
        assert_eq!(check_signature(&signed(body, "secret"), None).unwrap_err().code, "MESSENGER_NOT_CONFIGURED");
    }

    #[test]
    fn statuses_become_delivery_reports() {
        let body =
            br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
            "statuses":[
              {"id":"wamid.A","status":"sent"},
              {"id":"wamid.B","status":"delivered"},
              {"id":"wamid.C","status":"failed","errors":[{"code":131026,"title":"Message undeliverable"}]},
              {"id":"wamid.D","status":"failed","errors":[{"code":131049,"title":"ecosystem"}]}]}}]}]}"#;
        let reports = read_statuses(body).unwrap();
        assert_eq!(reports.len(), 3);
        assert!(matches!(reports[0].delivery, Delivery::Delivered));
        assert!(
            matches!(&reports[1].delivery, Delivery::Failed(f) if f.code == "RECIPIENT_UNREACHABLE" && !f.retryable)
        );
        assert!(matches!(&reports[2].delivery, Delivery::Failed(f) if f.retryable));
    }
}
