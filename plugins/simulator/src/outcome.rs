//! The sandbox outcome table, kept free of bindings so it is tested natively
//! (and shared, as source, with the benchmark's compiled-in baseline).

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Refunded,
    /// Stays processing for ever.
    Processing,
    /// Processing at first; the first status check finds it completed.
    CompletesLater,
    Failed {
        code: &'static str,
        message: &'static str,
    },
}

/// Decides by the customer identifier (phone or card number): the providers'
/// own published test values first (MTN's sandbox MSISDNs, Stripe's test
/// cards), so integrators' existing test data behaves as they expect; then
/// the last four characters (the seed's table).
pub fn for_identifier(identifier: &str) -> Outcome {
    let trimmed = identifier.trim();
    if let Some(outcome) = provider_test_value(trimmed) {
        return outcome;
    }
    let last4 = trimmed.get(trimmed.len().saturating_sub(4)..).unwrap_or("");
    match last4 {
        "0000" => Outcome::Refunded,
        "9999" => Outcome::Processing,
        _ => Outcome::Completed,
    }
}

/// The answer a status check gets for a payment collected with `identifier`.
pub fn status_for_identifier(identifier: &str) -> Outcome {
    match for_identifier(identifier) {
        Outcome::CompletesLater => Outcome::Completed,
        other => other,
    }
}

fn failed(code: &'static str, message: &'static str) -> Option<Outcome> {
    Some(Outcome::Failed { code, message })
}

/// MTN MoMo's sandbox payer numbers (as E.164, `+46733123450`…) and
/// Stripe's test card numbers, with the failure codes the live rails use.
fn provider_test_value(identifier: &str) -> Option<Outcome> {
    match identifier.strip_prefix('+').unwrap_or(identifier) {
        "46733123450" => failed("PAYMENT_FAILED", "sandbox: MTN reported the payment failed"),
        "46733123451" => failed("CUSTOMER_DECLINED", "sandbox: the customer rejected the payment request"),
        "46733123452" | "46733123463" => {
            failed("APPROVAL_EXPIRED", "sandbox: the customer did not approve the payment in time")
        }
        "46733123453" => Some(Outcome::Processing),
        "46733123454" => Some(Outcome::CompletesLater),
        "46733123455" => failed("CUSTOMER_NOT_FOUND", "sandbox: no MTN Mobile Money account has this number"),
        "46733123456" | "46733123457" | "46733123458" | "46733123459" | "46733123460" => {
            failed("PROVIDER_REFUSED", "sandbox: MTN refused the request for this merchant account")
        }
        "46733123461" => failed("PROVIDER_PROCESSING_ERROR", "sandbox: MTN could not process the payment"),
        "46733123462" => failed("PROVIDER_UNAVAILABLE", "sandbox: MTN Mobile Money was unavailable"),
        "4000000000000002" | "4000000000000341" => failed("CARD_DECLINED", "sandbox: the card was declined"),
        "4000000000009995" => failed("INSUFFICIENT_FUNDS", "sandbox: the card has insufficient funds"),
        "4000000000000069" => failed("EXPIRED_CARD", "sandbox: the card has expired"),
        "4000000000000127" => failed("INCORRECT_CVC", "sandbox: the card's security code is incorrect"),
        "4000000000000119" => failed("PROCESSING_ERROR", "sandbox: the card could not be processed"),
        // Stripe's test payment methods, for integrations that send tokens.
        "pm_card_chargeDeclined" => failed("CARD_DECLINED", "sandbox: the card was declined"),
        "pm_card_chargeDeclinedInsufficientFunds" => {
            failed("INSUFFICIENT_FUNDS", "sandbox: the card has insufficient funds")
        }
        "pm_card_chargeDeclinedExpiredCard" => failed("EXPIRED_CARD", "sandbox: the card has expired"),
        "pm_card_authenticationRequired" => {
            failed("CARD_AUTHENTICATION_REQUIRED", "sandbox: the card needs 3-D Secure authentication")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_four_digits_decide() {
        assert_eq!(for_identifier("+231770000000"), Outcome::Refunded);
        assert_eq!(for_identifier("+231779999999"), Outcome::Processing);
        assert_eq!(for_identifier("+231770001234"), Outcome::Completed);
        assert_eq!(for_identifier("4000000000000000"), Outcome::Refunded);
        assert_eq!(for_identifier("12"), Outcome::Completed);
    }

    #[test]
    fn providers_published_test_values_behave_as_documented() {
        assert!(matches!(for_identifier("+46733123451"), Outcome::Failed { code: "CUSTOMER_DECLINED", .. }));
        assert!(matches!(for_identifier("46733123455"), Outcome::Failed { code: "CUSTOMER_NOT_FOUND", .. }));
        assert_eq!(for_identifier("+46733123453"), Outcome::Processing);
        assert_eq!(for_identifier("+46733123454"), Outcome::CompletesLater);
        assert_eq!(status_for_identifier("+46733123454"), Outcome::Completed);
        assert_eq!(status_for_identifier("+46733123453"), Outcome::Processing);
        assert_eq!(for_identifier("+46733123464"), Outcome::Completed, "MTN: any other number succeeds");
        assert!(matches!(for_identifier("4000000000000002"), Outcome::Failed { code: "CARD_DECLINED", .. }));
        assert!(matches!(for_identifier("4000000000009995"), Outcome::Failed { code: "INSUFFICIENT_FUNDS", .. }));
        assert_eq!(for_identifier("4242424242424242"), Outcome::Completed);
        assert!(matches!(for_identifier("pm_card_chargeDeclined"), Outcome::Failed { code: "CARD_DECLINED", .. }));
        assert_eq!(for_identifier("pm_card_visa"), Outcome::Completed);
    }
}
