//! The MTN MoMo Open API (collection and disbursement products) as pure
//! functions: operations, references, request bodies, status bodies and
//! failure codes. Nothing here touches a host import, so it is tested
//! natively.

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// MTN limits `payerMessage` and `payeeNote` to this many characters.
pub const NOTE_CHARS_MAX: usize = 160;

/// An operation: a kind of request MTN stores under a reference.
#[derive(Clone, Copy)]
pub enum Operation {
    /// A payment: the customer is asked to approve.
    RequestToPay,
    /// Money back to the payer of a request to pay.
    Refund,
    /// Money out to any MTN Mobile Money number (a payout).
    Transfer,
}

impl Operation {
    /// The path segment after `/{product}/v1_0/`.
    pub fn path(self) -> &'static str {
        match self {
            Operation::RequestToPay => "requesttopay",
            Operation::Refund => "refund",
            Operation::Transfer => "transfer",
        }
    }

    /// How it is named in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Operation::RequestToPay => "request to pay",
            Operation::Refund => "refund",
            Operation::Transfer => "transfer",
        }
    }
}

/// MTN's `X-Reference-Id` for an operation: a UUID in version-4 layout
/// derived from the gateway's id (payment, refund or payout). Every attempt
/// for one operation carries the same reference, so MTN refuses a repeat
/// (`409 RESOURCE_ALREADY_EXIST`) instead of moving money twice.
pub fn reference_id(operation: Operation, id: &str) -> String {
    // Payments' references predate the other operations: their namespace
    // must not change, or stored payments would lose their reference.
    let namespace = match operation {
        Operation::RequestToPay => "request-to-pay",
        Operation::Refund => "refund",
        Operation::Transfer => "transfer",
    };
    let digest = Sha256::digest(format!("soxara/mtn-momo/{namespace}/{id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// A note MTN accepts: no apostrophes, at most 160 characters.
fn note(text: &str) -> String {
    text.chars().filter(|c| *c != '\'' && !c.is_control()).take(NOTE_CHARS_MAX).collect()
}

/// The `requesttopay` body. The customer sees `payerMessage`, which only
/// ever names Soxara; `externalId` carries the gateway's payment id back in
/// status answers and callbacks.
pub fn request_to_pay_body(
    payment_id: &str,
    amount: &str,
    currency: &str,
    msisdn: &str,
    description: Option<&str>,
) -> Vec<u8> {
    let message = match description {
        Some(text) => format!("Soxara: {text}"),
        None => "Soxara payment".to_string(),
    };
    json!({
        "amount": amount,
        "currency": currency,
        "externalId": payment_id,
        "payer": { "partyIdType": "MSISDN", "partyId": msisdn },
        "payerMessage": note(&message),
        "payeeNote": note(payment_id),
    })
    .to_string()
    .into_bytes()
}

/// The disbursement `refund` body: `referenceIdToRefund` names the request
/// to pay whose payer gets the money back.
pub fn refund_body(
    refund_id: &str,
    payment_id: &str,
    amount: &str,
    currency: &str,
    payment_reference: &str,
) -> Vec<u8> {
    json!({
        "amount": amount,
        "currency": currency,
        "externalId": refund_id,
        "payerMessage": note(&format!("Soxara refund of {payment_id}")),
        "payeeNote": note(&format!("Soxara refund of {payment_id}")),
        "referenceIdToRefund": payment_reference,
    })
    .to_string()
    .into_bytes()
}

/// The disbursement `transfer` body: money out to `msisdn`.
pub fn transfer_body(payout_id: &str, amount: &str, currency: &str, msisdn: &str) -> Vec<u8> {
    json!({
        "amount": amount,
        "currency": currency,
        "externalId": payout_id,
        "payee": { "partyIdType": "MSISDN", "partyId": msisdn },
        "payerMessage": note(&format!("Soxara payout {payout_id}")),
        "payeeNote": note(&format!("Soxara payout {payout_id}")),
    })
    .to_string()
    .into_bytes()
}

/// Where MTN says an operation stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Standing {
    Pending,
    Successful,
    Failed { code: &'static str, message: String },
}

#[derive(Deserialize)]
struct StatusBody {
    status: String,
    #[serde(default)]
    reason: Option<Value>,
}

/// Reads a status answer (`GET /{product}/v1_0/{operation}/{reference}`).
pub fn parse_status(body: &[u8], operation: Operation) -> Result<Standing, String> {
    let parsed: StatusBody =
        serde_json::from_slice(body).map_err(|e| format!("MTN's status answer is not the documented JSON: {e}"))?;
    let standing = match parsed.status.as_str() {
        "PENDING" => Standing::Pending,
        "SUCCESSFUL" => Standing::Successful,
        "FAILED" => {
            // Older API versions send the reason as a string, newer ones as
            // `{"code": …, "message": …}`.
            let reason = match &parsed.reason {
                Some(Value::String(code)) => code.clone(),
                Some(Value::Object(object)) => object.get("code").and_then(Value::as_str).unwrap_or("").to_string(),
                _ => String::new(),
            };
            let (code, message) = match operation {
                Operation::RequestToPay => failure_for_reason(&reason),
                Operation::Refund | Operation::Transfer => money_out_failure_for_reason(&reason, operation),
            };
            Standing::Failed { code, message }
        }
        other => return Err(format!("MTN answered an unknown status {:?}", truncate(other))),
    };
    Ok(standing)
}

/// Our failure code and a merchant-safe message for an MTN reason.
pub fn failure_for_reason(reason: &str) -> (&'static str, String) {
    let (code, what) = match reason {
        "APPROVAL_REJECTED" => ("CUSTOMER_DECLINED", "the customer rejected the payment request"),
        "EXPIRED" | "COULD_NOT_PERFORM_TRANSACTION" => {
            ("APPROVAL_EXPIRED", "the customer did not approve the payment in time")
        }
        "PAYER_NOT_FOUND" => ("CUSTOMER_NOT_FOUND", "no MTN Mobile Money account has this phone number"),
        "NOT_ENOUGH_FUNDS" => ("INSUFFICIENT_FUNDS", "the customer's MTN Mobile Money balance is too low"),
        "INTERNAL_PROCESSING_ERROR" => {
            ("PROVIDER_PROCESSING_ERROR", "MTN could not process the payment (most often: the balance is too low)")
        }
        "SERVICE_UNAVAILABLE" => ("PROVIDER_UNAVAILABLE", "MTN Mobile Money was unavailable"),
        "PAYEE_NOT_ALLOWED_TO_RECEIVE"
        | "NOT_ALLOWED"
        | "NOT_ALLOWED_TARGET_ENVIRONMENT"
        | "INVALID_CALLBACK_URL_HOST"
        | "INVALID_CURRENCY" => ("PROVIDER_REFUSED", "MTN refused the request for this merchant account"),
        _ => ("PAYMENT_FAILED", "MTN reported the payment failed"),
    };
    let message = if reason.is_empty() { what.to_string() } else { format!("{what} (MTN: {})", truncate(reason)) };
    (code, message)
}

/// Our failure code and a merchant-safe message for the reason a refund or
/// transfer failed. The money comes from the gateway's disbursement
/// account, not the customer's, so a low balance is the operator's to fix.
pub fn money_out_failure_for_reason(reason: &str, operation: Operation) -> (&'static str, String) {
    let noun = operation.noun();
    let (code, what) = match reason {
        "NOT_ENOUGH_FUNDS" => (
            "PROVIDER_FUNDS_LOW",
            "the gateway's MTN disbursement balance is too low; the operator must fund it".to_string(),
        ),
        "PAYEE_NOT_FOUND" => ("CUSTOMER_NOT_FOUND", "no MTN Mobile Money account has this phone number".to_string()),
        "PAYER_LIMIT_REACHED" => ("PROVIDER_LIMIT_REACHED", format!("MTN's limit for this {noun} was reached")),
        "SERVICE_UNAVAILABLE" => ("PROVIDER_UNAVAILABLE", "MTN Mobile Money was unavailable".to_string()),
        "NOT_ALLOWED" | "NOT_ALLOWED_TARGET_ENVIRONMENT" | "INVALID_CALLBACK_URL_HOST" | "INVALID_CURRENCY" => {
            ("PROVIDER_REFUSED", format!("MTN refused the {noun} for this merchant account"))
        }
        _ => ("PROVIDER_FAILED", format!("MTN reported the {noun} failed")),
    };
    let message = if reason.is_empty() { what } else { format!("{what} (MTN: {})", truncate(reason)) };
    (code, message)
}

/// Whether a callback is about a refund or a transfer: the rail marks
/// their callback URL with `for=refund` or `for=transfer`.
pub fn is_money_out_callback(query: &str) -> bool {
    query.split('&').any(|pair| pair == "for=refund" || pair == "for=transfer")
}

/// The gateway's payment id in a callback body (`externalId`). Nothing
/// else in the body is used: MTN does not sign callbacks.
pub fn callback_payment_id(body: &[u8]) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Callback {
        #[serde(rename = "externalId")]
        external_id: String,
    }
    let callback: Callback =
        serde_json::from_slice(body).map_err(|_| "the callback is not JSON with an externalId".to_string())?;
    Some(callback.external_id).filter(|id| !id.is_empty()).ok_or_else(|| "the callback's externalId is empty".into())
}

/// At most 60 characters of provider text, for messages.
pub fn truncate(text: &str) -> String {
    text.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_stable_uuid_v4_per_payment() {
        let a = reference_id(Operation::RequestToPay, "pay_0Vbp0bK1abc");
        assert_eq!(a, reference_id(Operation::RequestToPay, "pay_0Vbp0bK1abc"));
        assert_ne!(a, reference_id(Operation::RequestToPay, "pay_0Vbp0bK1abd"));
        assert_ne!(reference_id(Operation::Refund, "x"), reference_id(Operation::Transfer, "x"));
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
    }

    #[test]
    fn request_body_follows_the_documented_shape() {
        let body = request_to_pay_body("pay_1", "12.50", "USD", "231770001234", Some("Bob's shop"));
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["amount"], "12.50");
        assert_eq!(value["externalId"], "pay_1");
        assert_eq!(value["payer"]["partyIdType"], "MSISDN");
        assert_eq!(value["payer"]["partyId"], "231770001234");
        assert_eq!(value["payerMessage"], "Soxara: Bobs shop");
        let long = "x".repeat(400);
        let body = request_to_pay_body("pay_1", "1.00", "USD", "231770001234", Some(&long));
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["payerMessage"].as_str().unwrap().chars().count(), NOTE_CHARS_MAX);
    }

    const PAY: Operation = Operation::RequestToPay;

    #[test]
    fn statuses_and_reasons_map_to_outcomes() {
        let ok = parse_status(br#"{"status":"SUCCESSFUL","externalId":"pay_1","financialTransactionId":"1"}"#, PAY);
        assert_eq!(ok.unwrap(), Standing::Successful);
        assert_eq!(parse_status(br#"{"status":"PENDING"}"#, PAY).unwrap(), Standing::Pending);
        let rejected = parse_status(br#"{"status":"FAILED","reason":"APPROVAL_REJECTED"}"#, PAY).unwrap();
        assert!(matches!(rejected, Standing::Failed { code: "CUSTOMER_DECLINED", .. }));
        let object_reason =
            parse_status(br#"{"status":"FAILED","reason":{"code":"PAYER_NOT_FOUND","message":"x"}}"#, PAY).unwrap();
        assert!(matches!(object_reason, Standing::Failed { code: "CUSTOMER_NOT_FOUND", .. }));
        let unknown = parse_status(br#"{"status":"FAILED","reason":"SOMETHING_NEW"}"#, PAY).unwrap();
        assert!(matches!(unknown, Standing::Failed { code: "PAYMENT_FAILED", .. }));
        assert!(parse_status(br#"{"status":"MAYBE"}"#, PAY).is_err());
        assert!(parse_status(b"<html>", PAY).is_err());
    }

    #[test]
    fn money_out_failures_are_worded_for_the_operator_or_the_recipient() {
        let low = parse_status(br#"{"status":"FAILED","reason":"NOT_ENOUGH_FUNDS"}"#, Operation::Refund).unwrap();
        assert!(matches!(low, Standing::Failed { code: "PROVIDER_FUNDS_LOW", .. }));
        let missing = parse_status(br#"{"status":"FAILED","reason":"PAYEE_NOT_FOUND"}"#, Operation::Transfer).unwrap();
        assert!(matches!(missing, Standing::Failed { code: "CUSTOMER_NOT_FOUND", .. }));
        let Standing::Failed { message, .. } = parse_status(br#"{"status":"FAILED"}"#, Operation::Refund).unwrap()
        else {
            panic!("failed")
        };
        assert_eq!(message, "MTN reported the refund failed");
    }

    #[test]
    fn refund_and_transfer_bodies_follow_the_documented_shape() {
        let reference = reference_id(Operation::RequestToPay, "pay_1");
        let refund: Value = serde_json::from_slice(&refund_body("ref_1", "pay_1", "2.50", "LRD", &reference)).unwrap();
        assert_eq!(refund["amount"], "2.50");
        assert_eq!(refund["externalId"], "ref_1");
        assert_eq!(refund["referenceIdToRefund"], reference.as_str());
        let transfer: Value = serde_json::from_slice(&transfer_body("po_1", "10.00", "USD", "231770001234")).unwrap();
        assert_eq!(transfer["payee"]["partyId"], "231770001234");
        assert_eq!(transfer["externalId"], "po_1");
    }

    #[test]
    fn money_out_callbacks_are_told_apart_by_their_query() {
        assert!(is_money_out_callback("for=refund"));
        assert!(is_money_out_callback("a=1&for=transfer"));
        assert!(!is_money_out_callback(""));
        assert!(!is_money_out_callback("for=refunds"));
    }

    #[test]
    fn callbacks_name_the_payment() {
        assert_eq!(callback_payment_id(br#"{"status":"SUCCESSFUL","externalId":"pay_9"}"#).unwrap(), "pay_9");
        assert_eq!(callback_payment_id(br#"{"status":"SOMETHING_NEW","externalId":"pay_9"}"#).unwrap(), "pay_9");
        assert!(callback_payment_id(br#"{"status":"SUCCESSFUL"}"#).is_err());
        assert!(callback_payment_id(br#"{"externalId":""}"#).is_err());
    }
}
