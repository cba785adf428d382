//! Orange Money Web Payment as pure functions: amounts, request bodies,
//! answers, notification URLs. No host import here, so it is tested natively.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

/// The query parameters that name the payment on the notification URL, and
/// prove the URL is one this rail made.
pub const PAYMENT_QUERY_KEY: &str = "payment_id";
pub const SIGNATURE_QUERY_KEY: &str = "sig";

/// Orange's `amount`: whole units of the currency. Minor units that are not
/// whole units are refused rather than rounded.
pub fn whole_units(minor: u64, currency: &str) -> Result<u64, String> {
    let scale = match currency {
        "USD" | "LRD" => 100,
        // Orange's sandbox test currency, and franc zones without minor units.
        "OUV" | "XOF" | "XAF" | "GNF" => 1,
        other => return Err(format!("currency {other} is not supported by this rail")),
    };
    if !minor.is_multiple_of(scale) {
        return Err(format!("Orange Money takes whole {currency} amounts; {minor} minor units is not one"));
    }
    Ok(minor / scale)
}

/// HMAC-SHA256 of the payment id under `secret`, hex (first 16 bytes).
fn url_signature(secret: &str, payment_id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(b"orange-money/notif_url/");
    mac.update(payment_id.as_bytes());
    mac.finalize().into_bytes()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The notification URL for one payment: the host's callback URL with the
/// payment id (Orange's notification does not carry it) and a signature
/// under `secret`, so only URLs this rail gave out are acted on.
pub fn notification_url(callback_url: &str, payment_id: &str, secret: &str) -> String {
    let separator = if callback_url.contains('?') { '&' } else { '?' };
    let signature = url_signature(secret, payment_id);
    format!("{callback_url}{separator}{PAYMENT_QUERY_KEY}={payment_id}&{SIGNATURE_QUERY_KEY}={signature}")
}

/// The payment id of a notification's query string, if the signature is ours.
pub fn payment_id_from_query(query: &str, secret: &str) -> Option<String> {
    let value = |wanted: &str| {
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == wanted).then_some(value)
        })
    };
    let payment_id = value(PAYMENT_QUERY_KEY)?;
    let signature = value(SIGNATURE_QUERY_KEY)?;
    let valid = !payment_id.is_empty() && payment_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let expected = url_signature(secret, payment_id);
    let matches = signature.len() == expected.len()
        && signature.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    (valid && matches).then(|| payment_id.to_string())
}

/// The `webpayment` body.
#[allow(clippy::too_many_arguments)]
pub fn web_payment_body(
    merchant_key: &str,
    currency: &str,
    payment_id: &str,
    amount: u64,
    return_url: &str,
    cancel_url: &str,
    notif_url: &str,
) -> Vec<u8> {
    json!({
        "merchant_key": merchant_key,
        "currency": currency,
        "order_id": payment_id,
        "amount": amount,
        "return_url": return_url,
        "cancel_url": cancel_url,
        "notif_url": notif_url,
        "lang": "en",
        // Shown to the customer on Orange's page: only ever Soxara.
        "reference": "Soxara",
    })
    .to_string()
    .into_bytes()
}

/// What `webpayment` answers: the token to ask about it, and the page the
/// customer pays on.
#[derive(Debug, PartialEq, Eq, Deserialize)]
pub struct WebPayment {
    pub pay_token: String,
    pub payment_url: String,
}

pub fn parse_web_payment(body: &[u8]) -> Result<WebPayment, String> {
    serde_json::from_slice(body).map_err(|_| "Orange's answer has no pay_token and payment_url".to_string())
}

/// The `transactionstatus` body.
pub fn status_body(payment_id: &str, amount: u64, pay_token: &str) -> Vec<u8> {
    json!({ "order_id": payment_id, "amount": amount, "pay_token": pay_token }).to_string().into_bytes()
}

/// Where Orange says a web payment stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Standing {
    Pending,
    Succeeded,
    Failed { code: &'static str, message: &'static str },
}

/// Reads a `transactionstatus` answer.
pub fn parse_status(body: &[u8]) -> Result<Standing, String> {
    #[derive(Deserialize)]
    struct Status {
        status: String,
    }
    let status: Status =
        serde_json::from_slice(body).map_err(|_| "Orange's status answer has no status".to_string())?;
    match status.status.as_str() {
        "INITIATED" | "PENDING" => Ok(Standing::Pending),
        "SUCCESS" => Ok(Standing::Succeeded),
        "FAILED" => {
            Ok(Standing::Failed { code: "PAYMENT_FAILED", message: "Orange Money reported the payment failed" })
        }
        "EXPIRED" => Ok(Standing::Failed {
            code: "APPROVAL_EXPIRED",
            message: "the customer did not complete the payment on Orange's page in time",
        }),
        other => Err(format!("Orange answered an unknown status {:?}", other.chars().take(40).collect::<String>())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_whole_units_or_refused() {
        assert_eq!(whole_units(50_000, "LRD"), Ok(500));
        assert_eq!(whole_units(1_200, "USD"), Ok(12));
        assert!(whole_units(1_250, "USD").is_err());
        assert_eq!(whole_units(700, "OUV"), Ok(700));
        assert!(whole_units(100, "EUR").is_err());
    }

    #[test]
    fn notification_urls_carry_the_payment_and_a_signature() {
        let url = notification_url("https://pay.example/v1/callbacks/orange-money", "pay_1", "s3cret");
        let query = url.split_once('?').unwrap().1;
        assert!(query.starts_with("payment_id=pay_1&sig="), "{url}");
        assert_eq!(payment_id_from_query(query, "s3cret").as_deref(), Some("pay_1"));
        assert_eq!(payment_id_from_query(query, "other"), None, "another secret's URL");
        let forged = query.replace("pay_1", "pay_2");
        assert_eq!(payment_id_from_query(&forged, "s3cret"), None, "the signature covers the payment");
        assert_eq!(payment_id_from_query("payment_id=pay_1", "s3cret"), None, "unsigned");
        assert!(notification_url("http://x/cb?a=1", "pay_2", "k").starts_with("http://x/cb?a=1&payment_id=pay_2&sig="));
        assert_eq!(payment_id_from_query("", "k"), None);
    }

    #[test]
    fn answers_are_read() {
        let web = parse_web_payment(
            br#"{"status":201,"message":"OK","pay_token":"t1","payment_url":"https://o/p","notif_token":"n"}"#,
        );
        assert_eq!(web.unwrap(), WebPayment { pay_token: "t1".into(), payment_url: "https://o/p".into() });
        assert_eq!(parse_status(br#"{"status":"SUCCESS","txnid":"MP1"}"#), Ok(Standing::Succeeded));
        assert_eq!(parse_status(br#"{"status":"INITIATED"}"#), Ok(Standing::Pending));
        assert!(matches!(
            parse_status(br#"{"status":"EXPIRED"}"#),
            Ok(Standing::Failed { code: "APPROVAL_EXPIRED", .. })
        ));
        assert!(parse_status(br#"{"status":"WHAT"}"#).is_err());
        let body: serde_json::Value =
            serde_json::from_slice(&web_payment_body("k", "LRD", "pay_1", 500, "r", "c", "n")).unwrap();
        assert_eq!(body["order_id"], "pay_1");
        assert_eq!(body["amount"], 500);
        assert_eq!(body["reference"], "Soxara");
    }
}
