//! RMB purchases (`/v1/rmb/…`): the channels and their order limits, the
//! rates, a quote that locks one for 60 seconds, and orders at a quote.
//! Reads need `rmb:read`, orders `rmb:write` and an idempotency key; all
//! need a secret key.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiQuery, keyed_write, reply};
use super::fields::{Fields, Parsed, fail};
use super::listing::{Listing, no_params};
use crate::domain::fx::{Amount, RateObject, Ratio};
use crate::domain::scopes::Scope;
use crate::operations::idempotency::WriteEndpoint;
use crate::operations::rmb::{self, CNY, NewOrder, QuoteAsk, RmbQuote};
use crate::values::error::{ApiError, FieldError};
use crate::values::money::{self, Currency};
use crate::values::status::ObjectType;

/// The operations described here, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub(super) struct Api;

/// Longest recipient identifier (an Alipay or WeChat ID, a bank card
/// number) and name.
const RECIPIENT_CHARS_MAX: usize = 64;
const NAME_CHARS_MAX: usize = 128;

/// One way to pay a recipient, with its order limits in fen.
#[derive(Serialize)]
pub struct ChannelEntry {
    object: ObjectType,
    channel: String,
    name: String,
    /// What `recipient_identifier` holds for this channel.
    recipient_label: String,
    min: Amount,
    max: Amount,
}

/// `GET /v1/rmb/channels`.
pub async fn channels(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery,
) -> Result<axum::Json<Listing<ChannelEntry>>, ApiError> {
    caller.require(Scope::RmbRead)?;
    no_params(&query)?;
    let offer = rmb::offer(rmb::trader_for(&state.ops, caller.tenant.mode)?).await?;
    let fen = |amount: u64| Amount { currency: CNY, amount: i64::try_from(amount).unwrap_or(i64::MAX) };
    Ok(Listing::of(
        offer
            .channels
            .into_iter()
            .map(|c| ChannelEntry {
                object: ObjectType::RmbChannel,
                channel: c.slug,
                name: c.name,
                recipient_label: c.recipient_label,
                min: fen(c.min),
                max: fen(c.max),
            })
            .collect(),
    ))
}

/// What one unit of a pay currency buys, in CNY.
#[derive(Serialize)]
pub struct RateEntry {
    object: ObjectType,
    pay_currency: String,
    currency: &'static str,
    rate: RateObject,
}

/// `GET /v1/rmb/rates`: indicative; a quote locks one.
pub async fn rates(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery,
) -> Result<axum::Json<Listing<RateEntry>>, ApiError> {
    caller.require(Scope::RmbRead)?;
    no_params(&query)?;
    let offer = rmb::offer(rmb::trader_for(&state.ops, caller.tenant.mode)?).await?;
    Ok(Listing::of(
        offer
            .rates
            .into_iter()
            // Only the currencies merchants hold can pay.
            .filter(|r| Currency::from_code(&r.base).is_ok())
            .filter_map(|r| {
                let rate = Ratio::new(u128::from(r.numerator), u128::from(r.denominator))?;
                Some(RateEntry {
                    object: ObjectType::RmbRate,
                    pay_currency: r.base,
                    currency: CNY.code,
                    rate: RateObject::from(rate),
                })
            })
            .collect(),
    ))
}

/// `GET /v1/rmb/quote?channel=alipay&amount=100000&pay_currency=USD`:
/// `amount` in fen (CNY minor units) for the recipient.
pub async fn quote(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery,
) -> Result<axum::Json<RmbQuote>, ApiError> {
    caller.require(Scope::RmbRead)?;
    let ask = parse_quote_query(&query)?;
    Ok(axum::Json(rmb::quote(&state.ops, caller.tenant.clone(), ask).await?))
}

fn parse_quote_query(query: &[(String, String)]) -> Result<QuoteAsk, ApiError> {
    const KNOWN: [&str; 3] = ["channel", "amount", "pay_currency"];
    let mut errors = Vec::new();
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    for (name, _) in query.iter().filter(|(k, _)| !KNOWN.contains(&k.as_str())) {
        fail(&mut errors, name, "is not a known parameter; expected channel, amount, pay_currency");
    }
    let channel = match param("channel") {
        Some(slug) if !slug.is_empty() && slug.len() <= 64 => Some(slug.to_ascii_lowercase()),
        _ => {
            fail(&mut errors, "channel", "is required: alipay, wechat-pay or bank-transfer (GET /v1/rmb/channels)");
            None
        }
    };
    let amount = match param("amount") {
        None => {
            fail(
                &mut errors,
                "amount",
                "is required: an integer of fen (CNY minor units), e.g. 100000 for CNY 1,000.00",
            );
            None
        }
        Some(text) => money::parse_amount_minor(text).map_err(|m| fail(&mut errors, "amount", m)).ok(),
    };
    let pay_currency = match param("pay_currency") {
        None => {
            fail(&mut errors, "pay_currency", "is required (USD or LRD): the balance the order is paid from");
            None
        }
        Some(code) => Currency::from_code(code).map_err(|m| fail(&mut errors, "pay_currency", m)).ok(),
    };
    match (channel, amount, pay_currency) {
        (Some(channel), Some(amount_fen), Some(pay_currency)) if errors.is_empty() => {
            Ok(QuoteAsk { channel, amount_fen, pay_currency })
        }
        _ => Err(ApiError::Validation(errors)),
    }
}

/// `POST /v1/rmb/orders`.
pub async fn create_order(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (request, new) =
        keyed_write(&caller, Scope::RmbWrite, WriteEndpoint::RmbOrders, &headers, body, parse_order).await?;
    reply(rmb::order(&state.ops, request, new).await?)
}

/// A recipient identifier: printable, no spaces at either end.
fn recipient(text: &str) -> Result<(), String> {
    if text.is_empty() || text.trim() != text || text.chars().any(char::is_control) {
        return Err("must be the recipient's ID or card number, without spaces at either end".into());
    }
    Ok(())
}

fn parse_order(body: &[u8]) -> Result<Parsed<NewOrder>, ApiError> {
    let fields = Fields::parse(body, &["quote_id", "recipient_identifier", "recipient_name"])?;
    let mut errors: Vec<FieldError> = fields.errors();
    let quote_id = fields.string("quote_id", 64, true, &mut errors);
    let identifier = fields
        .string("recipient_identifier", RECIPIENT_CHARS_MAX, true, &mut errors)
        .and_then(|id| recipient(&id).map(|()| id).map_err(|why| fail(&mut errors, "recipient_identifier", why)).ok());
    let recipient_name = fields.string("recipient_name", NAME_CHARS_MAX, false, &mut errors);
    let order = match (quote_id, identifier) {
        (Some(quote_id), Some(recipient_identifier)) => {
            Some(NewOrder { quote_id, recipient_identifier, recipient_name })
        }
        _ => None,
    };
    fields.done(order, errors)
}
