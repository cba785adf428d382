//! Request bodies: parsed once at the edge into a JSON object, checked for
//! unknown fields, and read field by field with messages that name the field.
//! Every endpoint reads amounts, currencies and phones through here, so the
//! rules (integers only, explicit currency, E.164) are the same everywhere.

use std::collections::BTreeMap;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::{ApiError, FieldError};
use crate::money::{self, Currency};

pub struct Fields {
    value: Value,
    raw: BTreeMap<String, Box<RawValue>>,
    unknown: Vec<FieldError>,
}

impl Fields {
    /// Parses a JSON object body; fields not in `known` become errors.
    pub fn parse(body: &[u8], known: &[&str]) -> Result<Fields, ApiError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
        if !value.is_object() {
            return Err(ApiError::invalid("body", "must be a JSON object"));
        }
        let raw: BTreeMap<String, Box<RawValue>> =
            serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
        let unknown = raw
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .map(|k| FieldError {
                field: k.clone(),
                message: format!("is not a known field; expected one of: {}", known.join(", ")),
            })
            .collect();
        Ok(Fields { value, raw, unknown })
    }

    /// The errors found so far (unknown fields); add to it while reading.
    pub fn errors(&self) -> Vec<FieldError> {
        self.unknown.clone()
    }

    /// The body with sorted keys and no spacing, for idempotency fingerprints.
    pub fn canonical(&self) -> String {
        self.value.to_string()
    }

    /// A field's value, treating JSON `null` as absent.
    pub fn get(&self, pointer: &str) -> Option<&Value> {
        self.value.pointer(pointer).filter(|v| !v.is_null())
    }

    /// `amount`: a positive integer of minor units, read from the raw text.
    pub fn amount(&self, errors: &mut Vec<FieldError>) -> Option<u64> {
        match self.raw.get("amount") {
            None => {
                fail(errors, "amount", "is required: an integer of minor units (e.g. 1250 for USD 12.50)");
                None
            }
            Some(raw) => money::parse_amount_minor(raw.get()).map_err(|m| fail(errors, "amount", m)).ok(),
        }
    }

    /// A required currency code field.
    pub fn currency(&self, field: &str, errors: &mut Vec<FieldError>) -> Option<Currency> {
        match self.get(&format!("/{field}")) {
            None => {
                fail(errors, field, "is required (e.g. \"USD\" or \"LRD\"); there is no default currency");
                None
            }
            Some(Value::String(code)) => Currency::from_code(code).map_err(|m| fail(errors, field, m)).ok(),
            Some(_) => {
                fail(errors, field, "must be a string such as \"USD\"");
                None
            }
        }
    }

    /// `customer.phone` (E.164); `customer` may hold nothing else.
    pub fn customer_phone(&self, errors: &mut Vec<FieldError>, required: bool) -> Option<String> {
        self.phone_of("customer", errors, required)
    }

    /// The E.164 phone of a party object such as `{"phone": "+231770001234"}`
    /// under `field` (`customer`, `recipient`).
    pub fn phone_of(&self, field: &str, errors: &mut Vec<FieldError>, required: bool) -> Option<String> {
        let party = match self.get(&format!("/{field}")) {
            None => None,
            Some(Value::Object(party)) => {
                for key in party.keys().filter(|k| k.as_str() != "phone") {
                    fail(errors, &format!("{field}.{key}"), "is not a known field; expected phone");
                }
                Some(party)
            }
            Some(_) => {
                fail(errors, field, "must be an object such as {\"phone\": \"+231770001234\"}");
                return None;
            }
        };
        let phone_field = format!("{field}.phone");
        match party.and_then(|c| c.get("phone")).filter(|v| !v.is_null()) {
            None => {
                if required {
                    fail(errors, &phone_field, "is required: an E.164 phone number such as +231770001234");
                }
                None
            }
            Some(Value::String(phone)) => {
                crate::phone::parse_e164(phone).map_err(|m| fail(errors, &phone_field, m)).ok()
            }
            Some(_) => {
                fail(errors, &phone_field, "must be a string such as \"+231770001234\"");
                None
            }
        }
    }

    pub fn string(
        &self,
        field: &str,
        chars_max: usize,
        required: bool,
        errors: &mut Vec<FieldError>,
    ) -> Option<String> {
        match self.get(&format!("/{field}")) {
            None => {
                if required {
                    fail(errors, field, "is required");
                }
                None
            }
            Some(Value::String(text)) if text.chars().count() <= chars_max => Some(text.clone()),
            Some(Value::String(_)) => {
                fail(errors, field, format!("must be at most {chars_max} characters"));
                None
            }
            Some(_) => {
                fail(errors, field, "must be a string");
                None
            }
        }
    }
}

/// A list page's size when the query gives none, and the most it may ask.
pub const PAGE_LIMIT_DEFAULT: usize = 10;
pub const PAGE_LIMIT_MAX: usize = 100;

/// A list's `limit` query parameter: 1 to `PAGE_LIMIT_MAX`.
pub fn page_limit(value: &str, errors: &mut Vec<FieldError>) -> Option<usize> {
    match value.parse::<usize>() {
        Ok(n) if (1..=PAGE_LIMIT_MAX).contains(&n) => Some(n),
        _ => {
            fail(errors, "limit", format!("must be an integer from 1 to {PAGE_LIMIT_MAX}"));
            None
        }
    }
}

pub fn fail(errors: &mut Vec<FieldError>, field: &str, message: impl Into<String>) {
    errors.push(FieldError { field: field.to_string(), message: message.into() });
}
