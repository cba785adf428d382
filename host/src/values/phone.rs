//! Phone numbers: a customer's identity, always E.164.

/// Validates an E.164 number: `+`, a non-zero first digit, 8 to 15 digits.
pub fn parse_e164(text: &str) -> Result<String, String> {
    let digits = text.strip_prefix('+').unwrap_or("");
    let valid =
        (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
    if valid { Ok(text.to_string()) } else { Err("must be an E.164 phone number such as +231770001234".into()) }
}

#[cfg(test)]
mod tests {
    use super::parse_e164;

    #[test]
    fn accepts_e164_only() {
        assert!(parse_e164("+231770001234").is_ok());
        assert!(parse_e164("+14155550100").is_ok());
        for bad in ["231770001234", "+0231770001234", "+2317700", "+23177000123456789", "+231 770 001", "", "+"] {
            assert!(parse_e164(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
