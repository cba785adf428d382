//! Money: currencies from a registry and amounts as integer minor units.
//!
//! Amounts never pass through a float. Parsing works on the raw JSON text so
//! that `12.50`, `"1250"` and `1e3` are refused with a message that says why.

/// The largest amount any request may carry, in minor units: 10^15 (USD 10
/// trillion). Far below i64::MAX, so that an account's balance, a sum of
/// postings in SQLite's 64-bit integers, cannot overflow in practice: it
/// would take over 9,000 maximal payments into one account.
pub const AMOUNT_MINOR_MAX: u64 = 1_000_000_000_000_000;

/// A currency the gateway handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    /// ISO 4217 code, upper case.
    pub code: &'static str,
    /// Digits after the decimal point in the major unit (2 for USD: cents).
    pub exponent: u8,
    /// The smallest amount, in minor units, that customer-facing conversions
    /// round to (LRD: 100, i.e. LRD 1.00).
    pub rounding_increment_minor: u64,
}

/// The enabled currencies. Adding one is adding a line here.
pub const CURRENCIES: &[Currency] = &[
    Currency { code: "USD", exponent: 2, rounding_increment_minor: 1 },
    Currency { code: "LRD", exponent: 2, rounding_increment_minor: 100 },
];

impl Currency {
    /// Looks a code up in the registry. Codes are case-sensitive (upper case).
    pub fn from_code(code: &str) -> Result<Currency, String> {
        if let Some(currency) = CURRENCIES.iter().find(|c| c.code == code) {
            return Ok(*currency);
        }
        let enabled: Vec<&str> = CURRENCIES.iter().map(|c| c.code).collect();
        let upper = code.to_ascii_uppercase();
        if CURRENCIES.iter().any(|c| c.code == upper) {
            return Err(format!("currency codes are upper case: use \"{upper}\""));
        }
        Err(format!("unknown currency \"{code}\"; enabled currencies: {}", enabled.join(", ")))
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code)
    }
}

/// A currency is shown and stored as its code.
impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code)
    }
}

/// An ISO 4217 code of an enabled currency, in the OpenAPI document.
impl utoipa::PartialSchema for Currency {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(CURRENCIES.iter().map(|c| c.code)))
            .description(Some("An ISO 4217 currency code. Amounts in that currency are integers in its minor unit."))
            .into()
    }
}

impl utoipa::ToSchema for Currency {}

impl rusqlite::types::ToSql for Currency {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(self.code.as_bytes())))
    }
}

/// A stored code must still be enabled: rows in a disabled currency are an
/// error to look at, never silently another currency.
impl rusqlite::types::FromSql for Currency {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Currency> {
        Currency::from_code(value.as_str()?).map_err(|why| rusqlite::types::FromSqlError::Other(why.into()))
    }
}

/// An amount as people read it: "LRD 1,500.00" (code, grouped major units,
/// the currency's decimals). For messages, never for arithmetic.
pub fn display_amount(amount_minor: u64, currency: Currency) -> String {
    let scale = 10u64.pow(u32::from(currency.exponent));
    let (major, minor) = (amount_minor / scale, amount_minor % scale);
    let digits = major.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if currency.exponent == 0 {
        format!("{} {grouped}", currency.code)
    } else {
        format!("{} {grouped}.{minor:0width$}", currency.code, width = usize::from(currency.exponent))
    }
}

/// Parses an amount from its raw JSON text: a positive integer of minor units
/// that fits in i64.
pub fn parse_amount_minor(raw_json: &str) -> Result<u64, String> {
    let text = raw_json.trim();
    if text.starts_with('"') {
        return Err("must be a JSON integer of minor units (e.g. 1250 for USD 12.50), not a string".into());
    }
    if text == "null" {
        return Err("is required".into());
    }
    let is_number = text.starts_with(|c: char| c == '-' || c.is_ascii_digit());
    if !is_number {
        return Err("must be a JSON integer of minor units (e.g. 1250 for USD 12.50)".into());
    }
    if text.contains(['.', 'e', 'E']) {
        return Err("must be an integer of minor units (e.g. 1250 for USD 12.50); decimals are not accepted".into());
    }
    if text.starts_with('-') {
        return Err("must be greater than zero".into());
    }
    match text.parse::<u64>() {
        Ok(0) => Err("must be greater than zero".into()),
        Ok(n) if n <= AMOUNT_MINOR_MAX => Ok(n),
        _ => Err(format!("must be at most {AMOUNT_MINOR_MAX} minor units")),
    }
}

/// `amount × bps / 10_000`, rounded down, without overflow.
pub fn basis_points_of(amount_minor: u64, bps: u64) -> u64 {
    let product = u128::from(amount_minor) * u128::from(bps) / 10_000;
    u64::try_from(product).expect("bps ≤ 10_000 keeps the result ≤ amount")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_display_in_major_units_with_grouping() {
        let lrd = Currency::from_code("LRD").unwrap();
        assert_eq!(display_amount(150_000, lrd), "LRD 1,500.00");
        assert_eq!(display_amount(5, lrd), "LRD 0.05");
        assert_eq!(display_amount(12_345_678_901, lrd), "LRD 123,456,789.01");
        assert_eq!(display_amount(100_000, Currency::from_code("USD").unwrap()), "USD 1,000.00");
    }

    #[test]
    fn amounts_are_positive_integers_in_range() {
        assert_eq!(parse_amount_minor("1250"), Ok(1250));
        assert_eq!(parse_amount_minor(" 1 "), Ok(1));
        assert_eq!(parse_amount_minor("1000000000000000"), Ok(AMOUNT_MINOR_MAX));
        let too_large = ["1000000000000001", "9223372036854775808", "99999999999999999999999"];
        for bad in ["12.50", "1e3", "\"1250\"", "0", "-5", "true", "null"].into_iter().chain(too_large) {
            assert!(parse_amount_minor(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn currency_registry_knows_usd_and_lrd() {
        assert_eq!(Currency::from_code("USD").unwrap().rounding_increment_minor, 1);
        assert_eq!(Currency::from_code("LRD").unwrap().rounding_increment_minor, 100);
        assert!(Currency::from_code("usd").unwrap_err().contains("upper case"));
        assert!(Currency::from_code("NGN").unwrap_err().contains("unknown currency"));
    }

    #[test]
    fn basis_points_round_down_and_never_overflow() {
        assert_eq!(basis_points_of(1250, 100), 12);
        assert_eq!(basis_points_of(99, 100), 0);
        assert_eq!(basis_points_of(AMOUNT_MINOR_MAX, 10_000), AMOUNT_MINOR_MAX);
    }
}
