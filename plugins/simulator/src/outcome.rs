//! The sandbox outcome table, kept free of bindings so it is tested natively.

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Refunded,
    Processing,
}

/// Decides by the last four characters of the identifier (the seed's table).
pub fn for_identifier(identifier: &str) -> Outcome {
    let trimmed = identifier.trim();
    let last4 = trimmed.get(trimmed.len().saturating_sub(4)..).unwrap_or("");
    match last4 {
        "0000" => Outcome::Refunded,
        "9999" => Outcome::Processing,
        _ => Outcome::Completed,
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
}
