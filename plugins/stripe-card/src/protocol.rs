//! Stripe's API as pure functions: form bodies, PaymentIntent and error
//! answers, webhook signatures and events. No host import here, so it is
//! tested natively.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

/// Stripe's own default tolerance for a webhook's timestamp.
pub const SIGNATURE_TOLERANCE_S: u64 = 300;
/// The metadata key that carries the gateway's payment id on a PaymentIntent.
pub const PAYMENT_ID_KEY: &str = "soxara_payment_id";

/// `application/x-www-form-urlencoded`, as Stripe's API takes it.
pub use soxara_sdk::http::form_encode as form;

/// The form that creates and confirms a PaymentIntent for one card payment.
/// The same payment always gives the same form, so a retry under the same
/// `Idempotency-Key` is never "a different request" to Stripe.
pub fn create_intent_form(
    payment_id: &str,
    amount_minor: u64,
    currency: &str,
    card_token: &str,
    description: Option<&str>,
) -> Vec<u8> {
    let amount = amount_minor.to_string();
    let currency = currency.to_ascii_lowercase();
    let metadata_key = format!("metadata[{PAYMENT_ID_KEY}]");
    let mut pairs = vec![
        ("amount", amount.as_str()),
        ("currency", currency.as_str()),
        ("confirm", "true"),
        // No 3-D Secure here yet: Stripe answers 402 `authentication_required`
        // instead of leaving an intent open that waits for the customer.
        ("error_on_requires_action", "true"),
        ("payment_method_types[]", "card"),
        (metadata_key.as_str(), payment_id),
    ];
    if card_token.starts_with("tok_") {
        pairs.push(("payment_method_data[type]", "card"));
        pairs.push(("payment_method_data[card][token]", card_token));
    } else {
        pairs.push(("payment_method", card_token));
    }
    if let Some(text) = description {
        pairs.push(("description", text));
    }
    form(&pairs)
}

/// The metadata key that carries the gateway's refund id on a Refund.
pub const REFUND_ID_KEY: &str = "soxara_refund_id";

/// The form that refunds (part of) a PaymentIntent; the same refund always
/// gives the same form.
pub fn create_refund_form(intent_id: &str, amount_minor: u64, refund_id: &str) -> Vec<u8> {
    let amount = amount_minor.to_string();
    let metadata_key = format!("metadata[{REFUND_ID_KEY}]");
    form(&[("payment_intent", intent_id), ("amount", amount.as_str()), (metadata_key.as_str(), refund_id)])
}

/// A Refund: its id, and where it stands.
#[derive(Debug, PartialEq, Eq)]
pub struct RefundReport {
    pub id: String,
    pub standing: Standing,
    pub refund_id: Option<String>,
}

#[derive(Deserialize)]
struct Refund {
    id: String,
    status: String,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, Value>>,
}

fn refund_report(refund: Refund) -> RefundReport {
    let standing = match refund.status.as_str() {
        "succeeded" => Standing::Succeeded,
        "pending" | "requires_action" => Standing::Processing,
        "canceled" => Standing::Canceled,
        "failed" => Standing::Failed { code: "REFUND_FAILED", message: "the card issuer could not take the refund" },
        // A status this rail does not know yet: keep asking, never guess.
        _ => Standing::Processing,
    };
    let refund_id = refund.metadata.and_then(|m| m.get(REFUND_ID_KEY).and_then(Value::as_str).map(str::to_string));
    RefundReport { id: refund.id, standing, refund_id }
}

/// Reads a Refund (a create or retrieve answer).
pub fn parse_refund(body: &[u8]) -> Result<RefundReport, String> {
    let refund: Refund = serde_json::from_slice(body).map_err(|e| format!("not a Refund: {e}"))?;
    Ok(refund_report(refund))
}

/// The refund with our `refund_id` in a list answer (`GET /v1/refunds?payment_intent=…`).
pub fn find_refund_in_list(body: &[u8], refund_id: &str) -> Result<Option<RefundReport>, String> {
    #[derive(Deserialize)]
    struct List {
        data: Vec<Refund>,
    }
    let list: List = serde_json::from_slice(body).map_err(|e| format!("not a list of refunds: {e}"))?;
    Ok(list.data.into_iter().map(refund_report).find(|r| r.refund_id.as_deref() == Some(refund_id)))
}

/// Where a PaymentIntent stands, in the gateway's terms.
#[derive(Debug, PartialEq, Eq)]
pub enum Standing {
    Succeeded,
    Processing,
    Canceled,
    Failed { code: &'static str, message: &'static str },
}

#[derive(Deserialize)]
struct Intent {
    id: String,
    status: String,
    #[serde(default)]
    last_payment_error: Option<StripeError>,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, Value>>,
}

#[derive(Deserialize, Default)]
struct StripeError {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
    #[serde(default)]
    payment_intent: Option<Value>,
}

/// A PaymentIntent: its id, where it stands, and our payment id if set.
#[derive(Debug, PartialEq, Eq)]
pub struct IntentReport {
    pub id: String,
    pub standing: Standing,
    pub payment_id: Option<String>,
}

fn report_of(intent: Intent) -> IntentReport {
    let standing = match intent.status.as_str() {
        "succeeded" => Standing::Succeeded,
        "processing" | "requires_capture" => Standing::Processing,
        "canceled" => Standing::Canceled,
        // This API does not run 3-D Secure; nothing is charged until it is done.
        "requires_action" | "requires_confirmation" => Standing::Failed {
            code: "CARD_AUTHENTICATION_REQUIRED",
            message: "the card needs 3-D Secure authentication, which this API does not run yet",
        },
        _ => {
            let error = intent.last_payment_error.unwrap_or_default();
            let (code, message) = decline(error.code.as_deref(), error.decline_code.as_deref());
            Standing::Failed { code, message }
        }
    };
    let payment_id = intent.metadata.and_then(|m| m.get(PAYMENT_ID_KEY).and_then(Value::as_str).map(str::to_string));
    IntentReport { id: intent.id, standing, payment_id }
}

/// Reads a PaymentIntent (a create or retrieve answer, or an event's object).
pub fn parse_intent(body: &[u8]) -> Result<IntentReport, String> {
    let intent: Intent = serde_json::from_slice(body).map_err(|e| format!("not a PaymentIntent: {e}"))?;
    Ok(report_of(intent))
}

/// Whether a `400` says an earlier request under this key exists (with
/// other parameters): its outcome is unknown, not a refusal.
pub fn is_idempotency_error(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Envelope {
        error: StripeError,
    }
    serde_json::from_slice::<Envelope>(body).is_ok_and(|e| e.error.kind.as_deref() == Some("idempotency_error"))
}

/// The PaymentIntents of a search answer (`{"object":"search_result","data":[…]}`).
pub fn parse_search(body: &[u8]) -> Result<Vec<IntentReport>, String> {
    #[derive(Deserialize)]
    struct Search {
        data: Vec<Intent>,
    }
    let search: Search = serde_json::from_slice(body).map_err(|e| format!("not a search result: {e}"))?;
    Ok(search.data.into_iter().map(report_of).collect())
}

/// The search query that finds the intent made for our payment.
pub fn search_query(payment_id: &str) -> Vec<u8> {
    form(&[("query", &format!("metadata['{PAYMENT_ID_KEY}']:'{payment_id}'"))])
}

/// Reads a `402` card error: the decline, and the PaymentIntent's id if given.
pub fn parse_card_error(body: &[u8]) -> (Standing, Option<String>) {
    #[derive(Deserialize)]
    struct Envelope {
        error: StripeError,
    }
    let error = serde_json::from_slice::<Envelope>(body).map(|e| e.error).unwrap_or_default();
    let (code, message) = decline(error.code.as_deref(), error.decline_code.as_deref());
    let intent_id = error.payment_intent.as_ref().and_then(|pi| pi.get("id")).and_then(Value::as_str);
    (Standing::Failed { code, message }, intent_id.map(str::to_string))
}

/// Our failure code and message for Stripe's error `code` and `decline_code`.
/// Lost, stolen and fraud declines read as a plain decline: the merchant
/// must not learn (or tell the customer) more than the issuer intends.
pub fn decline(code: Option<&str>, decline_code: Option<&str>) -> (&'static str, &'static str) {
    match (code, decline_code) {
        (_, Some("insufficient_funds")) => ("INSUFFICIENT_FUNDS", "the card has insufficient funds"),
        (Some("expired_card"), _) | (_, Some("expired_card")) => ("EXPIRED_CARD", "the card has expired"),
        (Some("incorrect_cvc"), _) | (_, Some("incorrect_cvc")) => {
            ("INCORRECT_CVC", "the card's security code is incorrect")
        }
        (Some("processing_error"), _) | (_, Some("processing_error")) => {
            ("PROCESSING_ERROR", "the card could not be processed; the customer may try again")
        }
        (Some("incorrect_number" | "invalid_number"), _) => ("INVALID_CARD_NUMBER", "the card number is invalid"),
        (Some("authentication_required"), _) | (_, Some("authentication_required")) => (
            "CARD_AUTHENTICATION_REQUIRED",
            "the card needs 3-D Secure authentication, which this API does not run yet",
        ),
        _ => ("CARD_DECLINED", "the card was declined"),
    }
}

/// Checks a `Stripe-Signature` header (`t=…,v1=…[,v1=…]`) over the raw
/// body: HMAC-SHA256 of `"{t}.{body}"` with the endpoint secret, any `v1`
/// may match (secret rotation), and `t` within the tolerance of `now_s`.
pub fn verify_signature(header: &str, body: &[u8], secret: &str, now_s: u64) -> Result<(), &'static str> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                timestamp = Some(value)
            }
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let raw_timestamp = timestamp.ok_or("the Stripe-Signature header has no timestamp")?;
    let timestamp: u64 = raw_timestamp.parse().map_err(|_| "the Stripe-Signature timestamp is too large")?;
    if signatures.is_empty() {
        return Err("the Stripe-Signature header has no v1 signature");
    }
    if now_s.abs_diff(timestamp) > SIGNATURE_TOLERANCE_S {
        return Err("the webhook's timestamp is outside the tolerance");
    }
    let expected = sign_raw(secret, raw_timestamp, body);
    let matches = signatures.iter().any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes()));
    if matches { Ok(()) } else { Err("no v1 signature matches") }
}

/// The hex `v1` signature of a body at a timestamp (also what Stripe sends).
#[cfg(test)]
pub fn sign(secret: &str, timestamp: u64, body: &[u8]) -> String {
    sign_raw(secret, &timestamp.to_string(), body)
}

/// The signature over the timestamp exactly as the header carries it.
fn sign_raw(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a verified Stripe event is about.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A `payment_intent.*` event: the intent as it is now.
    Intent(IntentReport),
    /// `charge.dispute.created`.
    DisputeCreated {
        dispute_id: String,
        intent_id: String,
        amount: u64,
        currency: String,
        reason: String,
    },
    Other,
}

/// Reads a (verified) event body.
pub fn parse_event(body: &[u8]) -> Result<Event, String> {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(rename = "type")]
        kind: String,
        data: Data,
    }
    #[derive(Deserialize)]
    struct Data {
        object: Value,
    }
    #[derive(Deserialize)]
    struct Dispute {
        id: String,
        amount: u64,
        currency: String,
        #[serde(default)]
        reason: Option<String>,
        payment_intent: Option<String>,
    }
    let event: Envelope =
        serde_json::from_value(serde_json::from_slice::<Value>(body).map_err(|_| "the event is not JSON".to_string())?)
            .map_err(|e| format!("not a Stripe event: {e}"))?;
    match event.kind.as_str() {
        // Only events whose snapshot is a settled state: `created` or
        // `requires_action` snapshots, arriving late or out of order, would
        // otherwise read as a decline.
        "payment_intent.succeeded"
        | "payment_intent.payment_failed"
        | "payment_intent.canceled"
        | "payment_intent.processing" => {
            let intent: Intent =
                serde_json::from_value(event.data.object).map_err(|e| format!("not a PaymentIntent: {e}"))?;
            Ok(Event::Intent(report_of(intent)))
        }
        "charge.dispute.created" => {
            let dispute: Dispute =
                serde_json::from_value(event.data.object).map_err(|e| format!("not a Dispute: {e}"))?;
            // A dispute on a charge made outside PaymentIntents is not ours.
            let Some(intent_id) = dispute.payment_intent else {
                return Ok(Event::Other);
            };
            Ok(Event::DisputeCreated {
                dispute_id: dispute.id,
                intent_id,
                amount: dispute.amount,
                currency: dispute.currency.to_ascii_uppercase(),
                reason: dispute.reason.unwrap_or_else(|| "unknown".to_string()),
            })
        }
        _ => Ok(Event::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_encoded_and_stable() {
        assert_eq!(form(&[("a b", "x&y=z"), ("metadata[k]", "ü")]), b"a+b=x%26y%3Dz&metadata%5Bk%5D=%C3%BC".to_vec());
        let one = create_intent_form("pay_1", 1250, "USD", "pm_card_visa", Some("Order 42"));
        assert_eq!(one, create_intent_form("pay_1", 1250, "USD", "pm_card_visa", Some("Order 42")));
        let text = String::from_utf8(one).unwrap();
        assert!(text.contains("amount=1250&currency=usd&confirm=true"));
        assert!(text.contains("payment_method=pm_card_visa"));
        assert!(text.contains("metadata%5Bsoxara_payment_id%5D=pay_1"));
        let token = String::from_utf8(create_intent_form("pay_1", 1, "USD", "tok_visa", None)).unwrap();
        assert!(token.contains("payment_method_data%5Bcard%5D%5Btoken%5D=tok_visa"));
    }

    #[test]
    fn intents_map_to_outcomes() {
        let ok = parse_intent(br#"{"id":"pi_1","status":"succeeded","metadata":{"soxara_payment_id":"pay_1"}}"#);
        let ok = ok.unwrap();
        assert_eq!((ok.standing, ok.payment_id.as_deref()), (Standing::Succeeded, Some("pay_1")));
        assert_eq!(parse_intent(br#"{"id":"pi_1","status":"processing"}"#).unwrap().standing, Standing::Processing);
        let declined = parse_intent(
            br#"{"id":"pi_1","status":"requires_payment_method","last_payment_error":{"code":"card_declined","decline_code":"insufficient_funds"}}"#,
        )
        .unwrap();
        assert!(matches!(declined.standing, Standing::Failed { code: "INSUFFICIENT_FUNDS", .. }));
        let three_ds = parse_intent(br#"{"id":"pi_1","status":"requires_action"}"#).unwrap();
        assert!(matches!(three_ds.standing, Standing::Failed { code: "CARD_AUTHENTICATION_REQUIRED", .. }));
        assert!(parse_intent(b"[]").is_err());
    }

    #[test]
    fn card_errors_name_the_decline_and_the_intent() {
        let body = br#"{"error":{"type":"card_error","code":"card_declined","decline_code":"stolen_card","payment_intent":{"id":"pi_9"}}}"#;
        let (standing, intent) = parse_card_error(body);
        assert!(matches!(standing, Standing::Failed { code: "CARD_DECLINED", .. }), "stolen reads as declined");
        assert_eq!(intent.as_deref(), Some("pi_9"));
        let (standing, _) = parse_card_error(br#"{"error":{"code":"expired_card"}}"#);
        assert!(matches!(standing, Standing::Failed { code: "EXPIRED_CARD", .. }));
        assert!(is_idempotency_error(br#"{"error":{"type":"idempotency_error","message":"x"}}"#));
        assert!(!is_idempotency_error(br#"{"error":{"type":"invalid_request_error"}}"#));
    }

    #[test]
    fn refunds_are_formed_and_read() {
        let form = String::from_utf8(create_refund_form("pi_1", 500, "ref_1")).unwrap();
        assert_eq!(form, "payment_intent=pi_1&amount=500&metadata%5Bsoxara_refund_id%5D=ref_1");
        let ok = parse_refund(br#"{"id":"re_1","status":"succeeded","metadata":{"soxara_refund_id":"ref_1"}}"#);
        assert_eq!(
            ok.unwrap(),
            RefundReport { id: "re_1".into(), standing: Standing::Succeeded, refund_id: Some("ref_1".into()) }
        );
        assert_eq!(parse_refund(br#"{"id":"re_1","status":"pending"}"#).unwrap().standing, Standing::Processing);
        assert!(matches!(
            parse_refund(br#"{"id":"re_1","status":"failed"}"#).unwrap().standing,
            Standing::Failed { .. }
        ));
        assert_eq!(parse_refund(br#"{"id":"re_1","status":"brand_new"}"#).unwrap().standing, Standing::Processing);
        let list = br#"{"object":"list","data":[{"id":"re_0","status":"succeeded"},{"id":"re_1","status":"pending","metadata":{"soxara_refund_id":"ref_1"}}]}"#;
        assert_eq!(find_refund_in_list(list, "ref_1").unwrap().unwrap().id, "re_1");
        assert_eq!(find_refund_in_list(list, "ref_2").unwrap(), None);
    }

    #[test]
    fn search_finds_the_intent_by_our_payment_id() {
        let query = String::from_utf8(search_query("pay_1")).unwrap();
        assert_eq!(query, "query=metadata%5B%27soxara_payment_id%27%5D%3A%27pay_1%27");
        let found = parse_search(br#"{"object":"search_result","data":[{"id":"pi_7","status":"succeeded"}]}"#).unwrap();
        assert_eq!(found[0].id, "pi_7");
    }

    #[test]
    fn signatures_are_checked_over_the_raw_body_with_tolerance() {
        let body = br#"{"id":"evt_1"}"#;
        let signature = sign("whsec_test", 1_000, body);
        let header = format!("t=1000,v1=deadbeef,v1={signature}");
        assert_eq!(verify_signature(&header, body, "whsec_test", 1_100), Ok(()));
        assert!(verify_signature(&header, body, "whsec_other", 1_100).is_err());
        assert!(verify_signature(&header, br#"{"id":"evt_2"}"#, "whsec_test", 1_100).is_err());
        assert!(verify_signature(&header, body, "whsec_test", 1_000 + SIGNATURE_TOLERANCE_S + 1).is_err());
        assert!(verify_signature("v1=abc", body, "whsec_test", 1_000).is_err());
        assert!(verify_signature("t=1000", body, "whsec_test", 1_000).is_err());
        let padded = format!("t=01000,v1={signature}");
        assert!(verify_signature(&padded, body, "whsec_test", 1_000).is_err(), "the raw timestamp is signed");
    }

    #[test]
    fn events_are_read_by_type() {
        let intent = br#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","status":"succeeded","metadata":{"soxara_payment_id":"pay_1"}}}}"#;
        assert!(matches!(
            parse_event(intent).unwrap(),
            Event::Intent(IntentReport { standing: Standing::Succeeded, .. })
        ));
        let dispute = br#"{"id":"evt_2","type":"charge.dispute.created","data":{"object":{"id":"dp_1","amount":500,"currency":"usd","reason":"fraudulent","payment_intent":"pi_1"}}}"#;
        assert_eq!(
            parse_event(dispute).unwrap(),
            Event::DisputeCreated {
                dispute_id: "dp_1".into(),
                intent_id: "pi_1".into(),
                amount: 500,
                currency: "USD".into(),
                reason: "fraudulent".into()
            }
        );
        assert_eq!(parse_event(br#"{"type":"customer.created","data":{"object":{}}}"#).unwrap(), Event::Other);
        let snapshot =
            br#"{"type":"payment_intent.created","data":{"object":{"id":"pi_1","status":"requires_payment_method"}}}"#;
        assert_eq!(parse_event(snapshot).unwrap(), Event::Other, "a created snapshot is no decline");
        let no_intent =
            br#"{"type":"charge.dispute.created","data":{"object":{"id":"dp_2","amount":1,"currency":"usd"}}}"#;
        assert_eq!(parse_event(no_intent).unwrap(), Event::Other);
        assert!(parse_event(b"nope").is_err());
    }
}
