//! Helpers for Soxara gateway plugins, targeting the WIT package
//! `soxara:gateway@0.1.0` (`../wit`).
//!
//! The full SDK (a rail trait, an export macro, a testkit) is still to come;
//! this crate holds the pieces plugins already share.

/// The WIT package this SDK targets.
pub const WIT_PACKAGE: &str = "soxara:gateway@0.1.0";

/// Most digits after the decimal point an exact rate may carry.
pub const DECIMAL_FRACTION_DIGITS_MAX: usize = 12;

/// Reads a plain positive decimal (`181`, `1.0825`) as an exact fraction
/// `(numerator, denominator)`, so no rate ever passes through a float.
/// Exponents, signs and zero are refused.
pub fn parse_decimal(text: &str) -> Result<(u64, u64), String> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > DECIMAL_FRACTION_DIGITS_MAX
    {
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
    use super::parse_decimal;

    #[test]
    fn decimals_are_exact_fractions() {
        assert_eq!(parse_decimal("181"), Ok((181, 1)));
        assert_eq!(parse_decimal("181.25"), Ok((18125, 100)));
        assert_eq!(parse_decimal("0.005"), Ok((5, 1000)));
        for bad in ["", ".5", "1e3", "-1", "0", "0.000", "abc", "1.2.3", "99999999999999999999"] {
            assert!(parse_decimal(bad).is_err(), "{bad}");
        }
    }
}
