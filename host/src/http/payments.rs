//! Payments, refunds and disputes: reading requests into typed inputs, and
//! answering with the objects.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiPath, keyed_write, reply};
use super::fields::{Fields, Parsed, fail};
use super::openapi::IdempotencyKey;
use crate::domain::scopes::Scope;
use crate::operations::disputes::DisputeRow;
use crate::operations::idempotency::WriteEndpoint;
use crate::operations::objects::{Dispute, Payment, Refund};
use crate::operations::payments::{self, CardInput, NewPayment, PaymentRow};
use crate::operations::refunds::{self, NewRefund, RefundRow};
use crate::values::error::ApiError;
use crate::values::method::Method;

pub const DESCRIPTION_CHARS_MAX: usize = 500;
pub const METADATA_KEYS_MAX: usize = 20;
pub const METADATA_KEY_CHARS_MAX: usize = 40;
pub const METADATA_VALUE_CHARS_MAX: usize = 500;
/// The longest payment-method token accepted (Stripe's ids are far shorter).
pub const CARD_TOKEN_CHARS_MAX: usize = 255;
pub const REASON_CHARS_MAX: usize = 500;
const PAYMENT_ID_CHARS_MAX: usize = 64;

/// The operations described here, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create_payment, get_payment, create_refund, get_refund, get_dispute))]
pub(super) struct Api;

/// Create a payment
///
/// Charges a customer by card, mobile money or their wallet. The answer is
/// the payment: `processing` while the customer approves (see
/// `next_action`), or already `completed` or `failed`. A retry with the same
/// idempotency key answers the same (`Idempotency-Replayed: true`).
#[utoipa::path(
    post,
    path = "/v1/payments",
    tag = "Payments",
    params(IdempotencyKey),
    request_body = doc::NewPaymentBody,
    responses(
        (status = 201, description = "The payment.", body = Payment),
    ),
    security(("api_key" = ["payments:write"])),
)]
pub async fn create_payment(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (request, new) =
        keyed_write(&caller, Scope::PaymentsWrite, WriteEndpoint::Payments, &headers, body, parse_new_payment).await?;
    reply(payments::create(&state.ops, request, new).await?)
}

/// Retrieve a payment.
#[utoipa::path(
    get,
    path = "/v1/payments/{id}",
    tag = "Payments",
    params(("id" = String, Path, description = "The payment's id (`pay_…`).")),
    responses((status = 200, description = "The payment.", body = Payment)),
    security(("api_key" = ["payments:read"])),
)]
pub async fn get_payment(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Payment>, ApiError> {
    caller.require(Scope::PaymentsRead)?;
    let payment: PaymentRow = crate::store::fetch(&state.ops.store, &caller.tenant, id).await?;
    Ok(axum::Json(payment.object()))
}

/// Refund a payment
///
/// Returns a completed payment's money, in whole or in part.
#[utoipa::path(
    post,
    path = "/v1/refunds",
    tag = "Refunds",
    params(IdempotencyKey),
    request_body = doc::NewRefundBody,
    responses(
        (status = 201, description = "The refund.", body = Refund),
    ),
    security(("api_key" = ["refunds:write"])),
)]
pub async fn create_refund(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (request, new) =
        keyed_write(&caller, Scope::RefundsWrite, WriteEndpoint::Refunds, &headers, body, parse_new_refund).await?;
    reply(refunds::create(&state.ops, request, new).await?)
}

/// Retrieve a refund.
#[utoipa::path(
    get,
    path = "/v1/refunds/{id}",
    tag = "Refunds",
    params(("id" = String, Path, description = "The refund's id (`ref_…`).")),
    responses((status = 200, description = "The refund.", body = Refund)),
    security(("api_key" = ["refunds:read"])),
)]
pub async fn get_refund(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Refund>, ApiError> {
    caller.require(Scope::RefundsRead)?;
    let refund: RefundRow = crate::store::fetch(&state.ops.store, &caller.tenant, id).await?;
    Ok(axum::Json(refund.object()))
}

/// Retrieve a dispute.
#[utoipa::path(
    get,
    path = "/v1/disputes/{id}",
    tag = "Disputes",
    params(("id" = String, Path, description = "The dispute's id (`dsp_…`).")),
    responses((status = 200, description = "The dispute.", body = Dispute)),
    security(("api_key" = ["disputes:read"])),
)]
pub async fn get_dispute(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Dispute>, ApiError> {
    caller.require(Scope::DisputesRead)?;
    let dispute: DisputeRow = crate::store::fetch(&state.ops.store, &caller.tenant, id).await?;
    Ok(axum::Json(dispute.object()))
}

/// Reads a `POST /v1/payments` body, reporting every bad field.
pub fn parse_new_payment(body: &[u8]) -> Result<Parsed<NewPayment>, ApiError> {
    const KNOWN: [&str; 7] = ["amount", "currency", "method", "customer", "card", "description", "metadata"];
    let fields = Fields::parse(body, &KNOWN)?;
    let mut errors = fields.errors();
    let amount_minor = fields.amount(&mut errors);
    let currency = fields.currency("currency", &mut errors);
    let methods = Method::words();
    let method = match fields.get("/method") {
        None => {
            fail(&mut errors, "method", format!("is required: one of {methods}"));
            None
        }
        Some(Value::String(name)) => {
            let method = Method::parse(name);
            if method.is_none() {
                fail(&mut errors, "method", format!("unknown method \"{name}\"; use one of {methods}"));
            }
            method
        }
        Some(_) => {
            fail(&mut errors, "method", format!("must be a string: one of {methods}"));
            None
        }
    };
    let phone_required = matches!(method, Some(Method::MtnMomo | Method::OrangeMoney | Method::Wallet));
    let customer_phone = fields.customer_phone(&mut errors, phone_required);
    let card = parse_card(&fields, method, &mut errors);
    let description = fields.string("description", DESCRIPTION_CHARS_MAX, false, &mut errors);
    let metadata = parse_metadata(&fields, &mut errors);
    let payment = match (amount_minor, currency, method) {
        (Some(amount_minor), Some(currency), Some(method)) => {
            Some(NewPayment { amount_minor, currency, method, customer_phone, card, description, metadata })
        }
        _ => None,
    };
    fields.done(payment, errors)
}

/// `card`: `{"token": "pm_…"}` or, with test keys, `{"number": "…"}`; card
/// payments only.
fn parse_card(
    fields: &Fields,
    method: Option<Method>,
    errors: &mut Vec<crate::values::error::FieldError>,
) -> Option<CardInput> {
    match (fields.get("/card"), method) {
        (None, Some(Method::Card)) => {
            fail(
                errors,
                "card",
                "is required for card payments: {\"token\": \"pm_…\"} or, with test keys, {\"number\": \"…\"}",
            );
            None
        }
        (None, _) => None,
        (Some(_), Some(m)) if m != Method::Card => {
            fail(errors, "card", format!("is only for card payments, not {m}"));
            None
        }
        (Some(Value::Object(card)), _) => {
            for field in card.keys().filter(|k| !matches!(k.as_str(), "number" | "token")) {
                fail(errors, &format!("card.{field}"), "is not a known field; expected token or number");
            }
            match (card.get("number"), card.get("token")) {
                (Some(_), Some(_)) => {
                    fail(errors, "card", "takes either token or number, not both");
                    None
                }
                (Some(Value::String(number)), None) => {
                    parse_card_number(number).map(CardInput::Number).map_err(|m| fail(errors, "card.number", m)).ok()
                }
                (None, Some(Value::String(token))) => {
                    parse_card_token(token).map(CardInput::Token).map_err(|m| fail(errors, "card.token", m)).ok()
                }
                (Some(_), None) => {
                    fail(errors, "card.number", "must be a string of digits");
                    None
                }
                (None, Some(_)) => {
                    fail(errors, "card.token", "must be a string such as \"pm_…\"");
                    None
                }
                (None, None) => {
                    fail(errors, "card", "needs a token (\"pm_…\") or, with test keys, a number");
                    None
                }
            }
        }
        (Some(_), _) => {
            fail(errors, "card", "must be an object such as {\"number\": \"4242424242424242\"}");
            None
        }
    }
}

/// `metadata`: at most `METADATA_KEYS_MAX` string values.
fn parse_metadata(
    fields: &Fields,
    errors: &mut Vec<crate::values::error::FieldError>,
) -> serde_json::Map<String, Value> {
    match fields.get("/metadata") {
        None => serde_json::Map::new(),
        Some(Value::Object(map)) => {
            if map.len() > METADATA_KEYS_MAX {
                fail(errors, "metadata", format!("may have at most {METADATA_KEYS_MAX} keys"));
            }
            for (key, value) in map {
                let field = format!("metadata.{key}");
                if key.is_empty() || key.chars().count() > METADATA_KEY_CHARS_MAX {
                    fail(errors, &field, format!("keys must be 1 to {METADATA_KEY_CHARS_MAX} characters"));
                }
                match value {
                    Value::String(s) if s.chars().count() <= METADATA_VALUE_CHARS_MAX => {}
                    Value::String(_) => {
                        fail(errors, &field, format!("must be at most {METADATA_VALUE_CHARS_MAX} characters"))
                    }
                    _ => fail(errors, &field, "must be a string"),
                }
            }
            map.clone()
        }
        Some(_) => {
            fail(errors, "metadata", "must be an object of string values");
            serde_json::Map::new()
        }
    }
}

/// A provider payment-method token: `pm_` or `tok_` and then letters,
/// digits and underscores.
fn parse_card_token(text: &str) -> Result<String, String> {
    let known_prefix = ["pm_", "tok_"].iter().any(|p| text.starts_with(p));
    let charset = text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !known_prefix || !charset || text.len() > CARD_TOKEN_CHARS_MAX {
        return Err(format!(
            "must be a payment-method token from the card provider's client library (pm_…, tok_…), \
             at most {CARD_TOKEN_CHARS_MAX} characters"
        ));
    }
    Ok(text.to_string())
}

/// A card number: 12 to 19 digits (spaces allowed) passing the Luhn check.
fn parse_card_number(text: &str) -> Result<String, String> {
    let digits: String = text.chars().filter(|c| *c != ' ').collect();
    if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be 12 to 19 digits".into());
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }
        })
        .sum();
    if !sum.is_multiple_of(10) {
        return Err("is not a valid card number (checksum failed)".into());
    }
    Ok(digits)
}

/// Reads a `POST /v1/refunds` body, reporting every bad field.
pub fn parse_new_refund(body: &[u8]) -> Result<Parsed<NewRefund>, ApiError> {
    let fields = Fields::parse(body, &["payment_id", "amount", "reason"])?;
    let mut errors = fields.errors();
    let payment_id = fields.string("payment_id", PAYMENT_ID_CHARS_MAX, true, &mut errors);
    let amount_minor = match fields.get("/amount") {
        None => None,
        Some(_) => fields.amount(&mut errors),
    };
    let reason = fields.string("reason", REASON_CHARS_MAX, false, &mut errors);
    if payment_id.as_ref().is_some_and(|id| !id.starts_with("pay_")) {
        fail(&mut errors, "payment_id", "must be a payment id (pay_…)");
    }
    fields.done(payment_id.map(|payment_id| NewRefund { payment_id, amount_minor, reason }), errors)
}

/// The request bodies as the OpenAPI document shows them (read by hand
/// above, so that every bad field is reported).
#[allow(dead_code)]
mod doc {
    use crate::http::openapi::{AmountMinor, CustomerInput, Metadata, OptionalCustomerInput};
    use crate::values::money::Currency;

    /// A payment to create; what else it needs depends on its `method`.
    #[derive(utoipa::ToSchema)]
    #[serde(tag = "method", rename_all = "snake_case")]
    #[schema(examples(json!({"amount": 1250, "currency": "USD", "method": "mtn_momo", "customer": {"phone": "+231770001234"}})))]
    pub enum NewPaymentBody {
        /// By card: a token from the card provider's client library or,
        /// with test keys only, a test number.
        #[serde(deny_unknown_fields)]
        #[schema(title = "CardPayment")]
        Card {
            amount: AmountMinor,
            currency: Currency,
            #[schema(max_length = 500)]
            description: Option<String>,
            metadata: Option<Metadata>,
            card: CardBody,
            /// Optional for cards.
            customer: Option<OptionalCustomerInput>,
        },
        /// By MTN Mobile Money: the customer approves on their phone.
        #[serde(deny_unknown_fields)]
        #[schema(title = "MtnMomoPayment")]
        MtnMomo {
            amount: AmountMinor,
            currency: Currency,
            #[schema(max_length = 500)]
            description: Option<String>,
            metadata: Option<Metadata>,
            customer: CustomerInput,
        },
        /// By Orange Money: the customer approves on their phone.
        #[serde(deny_unknown_fields)]
        #[schema(title = "OrangeMoneyPayment")]
        OrangeMoney {
            amount: AmountMinor,
            currency: Currency,
            #[schema(max_length = 500)]
            description: Option<String>,
            metadata: Option<Metadata>,
            customer: CustomerInput,
        },
        /// From the customer's Soxara wallet, with their consent.
        #[serde(deny_unknown_fields)]
        #[schema(title = "WalletPayment")]
        Wallet {
            amount: AmountMinor,
            currency: Currency,
            #[schema(max_length = 500)]
            description: Option<String>,
            metadata: Option<Metadata>,
            customer: CustomerInput,
        },
    }

    /// A card: a token from the card provider's client library or, with
    /// test keys only, a test number (docs/api.md lists what each does).
    #[derive(utoipa::ToSchema)]
    #[serde(untagged)]
    pub enum CardBody {
        #[serde(deny_unknown_fields)]
        #[schema(title = "CardToken")]
        Token {
            #[schema(pattern = "^(pm_|tok_)[A-Za-z0-9_]*$", max_length = 255)]
            token: String,
        },
        #[serde(deny_unknown_fields)]
        #[schema(title = "TestCardNumber")]
        Number {
            /// A test card (test keys only). The sandbox takes any number of
            /// 12 to 19 digits that passes the Luhn check; these are the
            /// published ones.
            #[schema(schema_with = test_card_numbers)]
            number: String,
        },
    }

    fn test_card_numbers() -> utoipa::openapi::schema::Object {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some([
                "4242424242424242",
                "4000000000020000",
                "4000000000069999",
                "4000000000000002",
                "4000000000000341",
                "4000000000009995",
                "4000000000000069",
                "4000000000000127",
                "4000000000000119",
            ]))
            .build()
    }

    #[derive(utoipa::ToSchema)]
    #[schema(examples(json!({"payment_id": "pay_01J9Z3YB7QK4T5V8X2W6M0N1PR", "amount": 500, "reason": "requested_by_customer"})))]
    #[serde(deny_unknown_fields)]
    pub struct NewRefundBody {
        #[schema(pattern = "^pay_", max_length = 64)]
        payment_id: String,
        /// What to refund; the whole unrefunded amount if absent.
        amount: Option<AmountMinor>,
        #[schema(max_length = 500)]
        reason: Option<String>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_ignores_key_order_and_spacing() {
        let a = parse_new_payment(
            br#"{"amount":100,"currency":"USD","method":"mtn_momo","customer":{"phone":"+231770001234"}}"#,
        )
        .unwrap();
        let b = parse_new_payment(
            br#"{ "customer": {"phone": "+231770001234"}, "method": "mtn_momo", "currency": "USD", "amount": 100 }"#,
        )
        .unwrap();
        assert_eq!(a.canonical, b.canonical);
    }

    #[test]
    fn every_bad_field_is_named() {
        let Err(ApiError::Validation(fields)) =
            parse_new_payment(br#"{"amount":12.5,"currency":"usd","method":"cash","x":1}"#)
        else {
            panic!("expected a validation error");
        };
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        for expected in ["x", "amount", "currency", "method"] {
            assert!(names.contains(&expected), "{expected} missing from {names:?}");
        }
    }

    #[test]
    fn card_numbers_need_a_valid_checksum() {
        assert!(parse_card_number("4242 4242 4242 4242").is_ok());
        assert!(parse_card_number("4242424242424241").is_err());
        assert!(parse_card_number("42424242").is_err());
    }
}
