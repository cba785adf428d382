//! Request bodies: parsed once at the edge into a JSON object, checked for
//! unknown fields, and read field by field with messages that name the field
//! (and list queries, by `page_query`).
//! Every endpoint reads amounts, currencies and phones through here, so the
//! rules (integers only, explicit currency, E.164) are the same everywhere.

use std::collections::BTreeMap;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::values::error::{ApiError, FieldError};
use crate::values::money::{self, Currency};
use crate::values::page::{PAGE_LIMIT_MAX, PageRequest};

/// A request body read into its typed input, with its canonical form (sorted
/// keys, no spacing) for the idempotency fingerprint.
pub struct Parsed<T> {
    pub value: T,
    pub canonical: String,
}

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

    /// The typed input read from it, or every field error found.
    pub fn done<T>(&self, value: Option<T>, errors: Vec<FieldError>) -> Result<Parsed<T>, ApiError> {
        match value {
            Some(value) if errors.is_empty() => Ok(Parsed { value, canonical: self.canonical() }),
            _ => Err(ApiError::Validation(errors)),
        }
    }

    /// A field's value, treating JSON `null` as absent.
    pub fn get(&self, pointer: &str) -> Option<&Value> {
        self.value.pointer(pointer).filter(|v| !v.is_null())
    }

    /// `amount`: a positive integer of minor units, read from the raw text.
    pub fn amount(&self, errors: &mut Vec<FieldError>) -> Option<u64> {
        self.amount_field("amount", errors)
    }

    /// A required amount field: a positive integer of minor units, read
    /// from the raw text.
    pub fn amount_field(&self, field: &str, errors: &mut Vec<FieldError>) -> Option<u64> {
        match self.raw.get(field) {
            None => {
                fail(errors, field, "is required: an integer of minor units (e.g. 1250 for USD 12.50)");
                None
            }
            Some(raw) => money::parse_amount_minor(raw.get()).map_err(|m| fail(errors, field, m)).ok(),
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
    /// under `field` (`customer`, `recipient`). Where the party is optional,
    /// `{}` and `{"phone": null}` name nobody (as they always have, so a
    /// retry of such a request still replays).
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
                crate::values::phone::parse_e164(phone).map_err(|m| fail(errors, &phone_field, m)).ok()
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

/// Reads a list's query: `limit` (1 to `PAGE_LIMIT_MAX`), `starting_after`,
/// and the parameters `other` takes (it returns whether it knew the name);
/// anything else is an error naming what is expected.
pub fn page_query(
    query: &[(String, String)],
    expected: &str,
    errors: &mut Vec<FieldError>,
    mut other: impl FnMut(&str, &str, &mut Vec<FieldError>) -> bool,
) -> PageRequest {
    let mut page = PageRequest::default();
    for (name, value) in query {
        match name.as_str() {
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=PAGE_LIMIT_MAX).contains(&n) => page.limit = n,
                _ => fail(errors, "limit", format!("must be an integer from 1 to {PAGE_LIMIT_MAX}")),
            },
            "starting_after" if value.is_empty() => {
                fail(errors, "starting_after", "must be the id of the last item of the previous page")
            }
            "starting_after" => page.starting_after = Some(value.clone()),
            name if other(name, value, errors) => {}
            name => fail(errors, name, format!("is not a known parameter; expected {expected}")),
        }
    }
    page
}

pub fn fail(errors: &mut Vec<FieldError>, field: &str, message: impl Into<String>) {
    errors.push(FieldError { field: field.to_string(), message: message.into() });
}
