//! The Example Pay API as pure functions: request bodies and answers. No
//! host import is used here, so `cargo test` runs these natively.

use serde::Deserialize;
use serde_json::{Value, json};
use soxara_sdk::prelude::*;

/// A charge as Example Pay returns it.
#[derive(Debug, Deserialize)]
pub struct Charge {
    pub id: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    #[serde(default)]
    pub failure_code: Option<String>,
}

/// `GET /v1/charges?reference=…`.
#[derive(Debug, Deserialize)]
pub struct ChargeList {
    pub data: Vec<Charge>,
}

/// The body of `POST /v1/charges`: a decimal amount and the phone without
/// its `+`; `reference` carries the gateway's payment id back.
pub fn charge_body(request: &CollectRequest) -> Result<Value, Failure> {
    let phone = phone::msisdn(phone::required(&request.customer_phone)?)?;
    Ok(json!({
        "reference": request.payment_id,
        "amount": money::to_decimal_text(request.money.amount, &request.money.currency)?,
        "currency": request.money.currency,
        "phone": phone,
    }))
}

impl Charge {
    /// What the charge means for the payment.
    pub fn outcome(self) -> RailOutcome {
        let reference = Some(self.id);
        match self.status.as_str() {
            "succeeded" => RailOutcome::completed(reference),
            "failed" => RailOutcome::failed(reference, failure_for(self.failure_code.as_deref())),
            // `pending`, and anything this rail does not know yet: ask again later.
            _ => RailOutcome::processing(reference),
        }
    }
}

/// Example Pay's failure codes as the gateway's.
fn failure_for(code: Option<&str>) -> Failure {
    match code {
        Some("insufficient_funds") => Failure::new("INSUFFICIENT_FUNDS", "the customer's balance is too low"),
        Some("declined") => Failure::new("PAYMENT_DECLINED", "the customer declined the payment"),
        Some("expired") => Failure::new("PAYMENT_EXPIRED", "the customer did not approve the payment in time"),
        _ => Failure::new("PAYMENT_FAILED", "Example Pay could not complete the payment"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(phone: Option<&str>, amount: u64) -> CollectRequest {
        CollectRequest {
            payment_id: "pay_1".into(),
            money: Money { amount, currency: "USD".into() },
            method: PaymentMethod::MtnMomo,
            customer_phone: phone.map(str::to_string),
            card: None,
            description: None,
            created_at_ms: 0,
        }
    }

    #[test]
    fn charge_body_has_decimal_amount_and_msisdn() {
        let body = charge_body(&request(Some("+231770001234"), 1250)).unwrap();
        assert_eq!(body, json!({"reference": "pay_1", "amount": "12.50", "currency": "USD", "phone": "231770001234"}));
        assert_eq!(charge_body(&request(None, 1250)).unwrap_err().code, "INVALID_PHONE");
    }

    #[test]
    fn charges_map_to_outcomes() {
        let charge = |status: &str, code: Option<&str>| Charge {
            id: "ch_1".into(),
            status: status.into(),
            failure_code: code.map(str::to_string),
        };
        assert_eq!(charge("succeeded", None).outcome().status, TransactionStatus::Completed);
        assert_eq!(charge("pending", None).outcome().status, TransactionStatus::Processing);
        assert_eq!(charge("reversed?", None).outcome().status, TransactionStatus::Processing);
        let failed = charge("failed", Some("insufficient_funds")).outcome();
        assert_eq!(failed.status, TransactionStatus::Failed);
        assert_eq!(failed.failure.unwrap().code, "INSUFFICIENT_FUNDS");
        assert_eq!(failed.provider_reference.as_deref(), Some("ch_1"));
    }
}
