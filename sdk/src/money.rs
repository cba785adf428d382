//! Money as providers write it. The gateway always speaks integer minor
//! units with an explicit ISO 4217 code; providers often want a decimal
//! string (`"12.50"`) or whole units. Every conversion here is exact: an
//! amount that does not convert is refused, never rounded.

use crate::Failure;

/// Most digits after the decimal point an exact rate may carry.
pub const DECIMAL_FRACTION_DIGITS_MAX: usize = 12;

/// Digits after the decimal point of a currency's minor unit, for the
/// currencies the gateway serves and their common neighbours; `None` for a
/// code this table does not know (refuse it rather than guess).
pub fn minor_unit_digits(currency: &str) -> Option<u32> {
    match currency {
        "USD" | "LRD" | "EUR" | "GBP" | "GHS" | "NGN" | "SLE" | "KES" | "ZAR" => Some(2),
        "XOF" | "XAF" | "GNF" | "JPY" | "UGX" | "RWF" => Some(0),
        _ => None,
    }
}

/// Minor units as a decimal string: `(1250, "USD")` → `"12.50"`,
/// `(500, "XOF")` → `"500"`.
pub fn to_decimal_text(minor: u64, currency: &str) -> Result<String, Failure> {
    let digits = known_digits(currency)?;
    if digits == 0 {
        return Ok(minor.to_string());
    }
    let scale = 10u64.pow(digits);
    Ok(format!("{}.{:0width$}", minor / scale, minor % scale, width = digits as usize))
}

/// A provider's decimal amount back in minor units: `("12.5", "USD")` →
/// `1250`. More fraction digits than the currency has, signs, exponents and
/// overflow are refused.
pub fn from_decimal_text(text: &str, currency: &str) -> Result<u64, Failure> {
    let digits = known_digits(currency)? as usize;
    let bad = || Failure::bad_provider_response(format!("`{text}` is not a {currency} amount"));
    let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > digits {
        return Err(bad());
    }
    let padded = format!("{whole}{fraction:0<digits$}");
    padded.parse::<u64>().map_err(|_| bad())
}

/// Minor units as whole units, for providers without minor units in their
/// API: `(150000, "LRD")` → `1500`; `(150050, "LRD")` is refused.
pub fn to_whole_units(minor: u64, currency: &str) -> Result<u64, Failure> {
    let scale = 10u64.pow(known_digits(currency)?);
    if !minor.is_multiple_of(scale) {
        return Err(Failure::new(
            "AMOUNT_NOT_SUPPORTED",
            format!("this rail takes whole {currency} amounts; {minor} minor units is not one"),
        ));
    }
    Ok(minor / scale)
}

fn known_digits(currency: &str) -> Result<u32, Failure> {
    minor_unit_digits(currency).ok_or_else(|| {
        Failure::new("CURRENCY_NOT_SUPPORTED", format!("currency {currency} is not supported by this rail"))
    })
}

/// Reads a plain positive decimal (`181`, `1.0825`) as an exact fraction
/// `(numerator, denominator)`, so no rate ever passes through a float.
/// Exponents, signs and zero are refused.
pub fn parse_decimal(text: &str) -> Result<(u64, u64), String> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > DECIMAL_FRACTION_DIGITS_MAX {
        return Err(format!("`{text}` is not a plain positive decimal"));
    }
    let denominator = 10u64.pow(fraction.len() as u32);
    let numerator: u64 = format!("{whole}{fraction}").parse().map_err(|_| format!("`{text}` is too large"))?;
    if numerator == 0 {
        return Err(format!("`{text}` is zero"));
    }
    Ok((numerator, denominator))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact_fractions() {
        assert_eq!(parse_decimal("181"), Ok((181, 1)));
        assert_eq!(parse_decimal("181.25"), Ok((18125, 100)));
        assert_eq!(parse_decimal("0.005"), Ok((5, 1000)));
        for bad in ["", ".5", "1e3", "-1", "0", "0.000", "abc", "1.2.3", "99999999999999999999"] {
            assert!(parse_decimal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn minor_units_round_trip_as_decimal_text() {
        assert_eq!(to_decimal_text(1250, "USD").unwrap(), "12.50");
        assert_eq!(to_decimal_text(5, "LRD").unwrap(), "0.05");
        assert_eq!(to_decimal_text(500, "XOF").unwrap(), "500");
        assert_eq!(to_decimal_text(1, "ABC").unwrap_err().code, "CURRENCY_NOT_SUPPORTED");
        for (text, minor) in
            [("12.50", 1250), ("12.5", 1250), ("12", 1200), ("0.05", 5), ("18446744073709551.61", 1844674407370955161)]
        {
            assert_eq!(from_decimal_text(text, "USD").unwrap(), minor, "{text}");
        }
        for bad in ["12.505", "-1", "1e2", "", ".5", "1,00", "999999999999999999999"] {
            assert!(from_decimal_text(bad, "USD").is_err(), "{bad}");
        }
    }

    #[test]
    fn whole_units_are_never_rounded() {
        assert_eq!(to_whole_units(150_000, "LRD").unwrap(), 1_500);
        assert_eq!(to_whole_units(700, "XOF").unwrap(), 700);
        assert_eq!(to_whole_units(150_050, "LRD").unwrap_err().code, "AMOUNT_NOT_SUPPORTED");
    }
}
