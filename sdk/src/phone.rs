//! Phone numbers. The gateway hands rails E.164 numbers (`+231770001234`);
//! providers want them in their own shapes.

use crate::Failure;

/// Shortest and longest E.164 number, in digits after the `+`.
const E164_DIGITS_MIN: usize = 8;
const E164_DIGITS_MAX: usize = 15;

/// The digits of an E.164 number without its `+` (MTN's MSISDN):
/// `"+231770001234"` → `"231770001234"`.
pub fn msisdn(e164: &str) -> Result<String, Failure> {
    let digits = e164.strip_prefix('+').ok_or_else(not_e164)?;
    let valid = (E164_DIGITS_MIN..=E164_DIGITS_MAX).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if valid { Ok(digits.to_string()) } else { Err(not_e164()) }
}

/// The national number after `country_code` (digits, no `+`), for providers
/// that want it: `("+231770001234", "231")` → `"770001234"`. A number from
/// another country is refused.
pub fn national_number(e164: &str, country_code: &str) -> Result<String, Failure> {
    let digits = msisdn(e164)?;
    digits
        .strip_prefix(country_code)
        .filter(|rest| !rest.is_empty())
        .map(str::to_string)
        .ok_or_else(|| Failure::new("INVALID_PHONE", format!("the customer phone is not a +{country_code} number")))
}

/// The customer's phone of a request, or `INVALID_PHONE` when it has none.
pub fn required(phone: &Option<String>) -> Result<&str, Failure> {
    phone.as_deref().ok_or_else(|| Failure::new("INVALID_PHONE", "this rail needs the customer's phone"))
}

fn not_e164() -> Failure {
    Failure::new("INVALID_PHONE", "the customer phone is not an E.164 number")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers_become_provider_shapes() {
        assert_eq!(msisdn("+231770001234").unwrap(), "231770001234");
        assert_eq!(national_number("+231770001234", "231").unwrap(), "770001234");
        for bad in ["231770001234", "+23177", "+2317700012345678", "+23177000123a", "+0231770001234", ""] {
            assert_eq!(msisdn(bad).unwrap_err().code, "INVALID_PHONE", "{bad}");
        }
        assert!(national_number("+46733123454", "231").is_err());
        assert!(required(&None).is_err());
        assert_eq!(required(&Some("+231770001234".into())).unwrap(), "+231770001234");
    }
}
