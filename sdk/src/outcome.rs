//! Constructors for the values a rail answers with, so a rail's code reads
//! as what it means (`RailOutcome::completed(reference)`) rather than as
//! struct literals.

use crate::{Failure, PaymentMethod, RailInfo, RailOutcome, SupportedMethod, TransactionStatus};

impl Failure {
    /// A final refusal: trying again will not help (a decline, bad input).
    pub fn new(code: &str, message: impl Into<String>) -> Failure {
        Failure { code: code.to_string(), message: message.into(), retryable: false }
    }

    /// A refusal that may pass later (an outage, a rate limit).
    pub fn retryable(code: &str, message: impl Into<String>) -> Failure {
        Failure { code: code.to_string(), message: message.into(), retryable: true }
    }

    /// `NOT_SUPPORTED`: this rail does not offer `what` (e.g. "refunds").
    pub fn not_supported(what: &str) -> Failure {
        Failure::new("NOT_SUPPORTED", format!("this rail does not support {what}"))
    }

    /// `BAD_PROVIDER_RESPONSE`: the provider answered something this rail
    /// cannot read. Retryable: the payment's state is unknown, not refused.
    pub fn bad_provider_response(message: impl Into<String>) -> Failure {
        Failure::retryable("BAD_PROVIDER_RESPONSE", message)
    }
}

impl RailOutcome {
    /// The money moved.
    pub fn completed(provider_reference: Option<String>) -> RailOutcome {
        RailOutcome::with_status(TransactionStatus::Completed, provider_reference)
    }

    /// The provider has not decided yet; the gateway will ask `status` later.
    pub fn processing(provider_reference: Option<String>) -> RailOutcome {
        RailOutcome::with_status(TransactionStatus::Processing, provider_reference)
    }

    /// The provider refused (a decline, insufficient funds, …).
    pub fn failed(provider_reference: Option<String>, failure: Failure) -> RailOutcome {
        RailOutcome {
            failure: Some(failure),
            ..RailOutcome::with_status(TransactionStatus::Failed, provider_reference)
        }
    }

    /// Where the customer goes to approve a `processing` payment (https, on a
    /// host the operator allows in `redirect_hosts`).
    pub fn with_redirect(self, url: impl Into<String>) -> RailOutcome {
        RailOutcome { redirect_url: Some(url.into()), ..self }
    }

    fn with_status(status: TransactionStatus, provider_reference: Option<String>) -> RailOutcome {
        RailOutcome { status, provider_reference, failure: None, redirect_url: None }
    }
}

impl RailInfo {
    /// A rail named `name` (its stable name in payments and logs) at
    /// `version`, taking the ISO 4217 codes listed in `currencies`
    /// (comma-separated, e.g. "USD,LRD"). Add methods with [`RailInfo::method`].
    pub fn new(name: &str, version: &str, currencies: &str) -> RailInfo {
        RailInfo {
            name: name.to_string(),
            version: version.to_string(),
            methods: Vec::new(),
            currencies: crate::config::split_list(currencies),
        }
    }

    /// Serves `method`, moving the money under the legal `entity` (shown to
    /// merchants, never to customers).
    pub fn method(mut self, method: PaymentMethod, entity: &str) -> RailInfo {
        self.methods.push(SupportedMethod { method, entity: entity.to_string() });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_carry_what_they_say() {
        let failed = RailOutcome::failed(Some("r1".into()), Failure::new("CARD_DECLINED", "declined"));
        assert_eq!(failed.status, TransactionStatus::Failed);
        assert_eq!(failed.failure.as_ref().map(|f| (f.code.as_str(), f.retryable)), Some(("CARD_DECLINED", false)));
        let pending = RailOutcome::processing(None).with_redirect("https://pay.example/p/1");
        assert_eq!(pending.status, TransactionStatus::Processing);
        assert_eq!(pending.redirect_url.as_deref(), Some("https://pay.example/p/1"));
        assert!(RailOutcome::completed(None).failure.is_none());
        assert!(Failure::retryable("PROVIDER_TIMEOUT", "late").retryable);
    }

    #[test]
    fn info_lists_methods_and_currencies() {
        let info = RailInfo::new("demo", "1.0.0", " USD, lrd ,,").method(PaymentMethod::Card, "Cinrique Inc.");
        assert_eq!(info.currencies, ["USD", "LRD"]);
        assert_eq!(info.methods.len(), 1);
        assert_eq!(info.methods[0].entity, "Cinrique Inc.");
    }
}
