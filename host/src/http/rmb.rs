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
use super::openapi::IdempotencyKey;
use crate::domain::fx::{Amount, RateObject, Ratio};
use crate::domain::scopes::Scope;
use crate::operations::idempotency::WriteEndpoint;
use crate::operations::rmb::{self, CNY, NewOrder, QuoteAsk, RmbPurchase, RmbQuote};
use crate::values::error::{ApiError, FieldError};
use crate::values::money::{self, Currency};
use crate::values::status::ObjectType;

/// The operations described here, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(channels, rates, quote, create_order))]
pub(super) struct Api;

/// Longest recipient identifier (an Alipay or WeChat ID, a bank card
/// number) and name.
const RECIPIENT_CHARS_MAX: usize = 64;
const NAME_CHARS_MAX: usize = 128;

/// One way to pay a recipient, with its order limits in fen.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChannelEntry {
    object: ObjectType,
    channel: String,
    name: String,
    /// What `recipient_identifier` holds for this channel.
    recipient_label: String,
    /// The smallest order, in fen.
    #[schema(value_type = crate::operations::rmb::FenAmount)]
    min: Amount,
    /// The largest order, in fen.
    #[schema(value_type = crate::operations::rmb::FenAmount)]
    max: Amount,
}

/// List RMB channels
///
/// The ways a recipient in China can be paid (Alipay, WeChat Pay, a bank
/// card), what identifies the recipient on each, and the order limits.
#[utoipa::path(
    get,
    path = "/v1/rmb/channels",
    operation_id = "rmb_channels",
    tag = "RMB",
    responses((status = 200, description = "The channels.", body = Listing<ChannelEntry>)),
    security(("api_key" = ["rmb:read"])),
)]
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
#[derive(Serialize, utoipa::ToSchema)]
pub struct RateEntry {
    object: ObjectType,
    /// What the order is paid in (a currency of the merchant's balance).
    #[schema(value_type = Currency)]
    pay_currency: String,
    /// Always `CNY`.
    currency: &'static str,
    rate: RateObject,
}

/// List RMB rates
///
/// What one unit of each currency the merchant can pay in buys in CNY, now.
/// Indicative: a quote locks a rate.
#[utoipa::path(
    get,
    path = "/v1/rmb/rates",
    operation_id = "rmb_rates",
    tag = "RMB",
    responses((status = 200, description = "The rates.", body = Listing<RateEntry>)),
    security(("api_key" = ["rmb:read"])),
)]
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

/// Quote an RMB purchase
///
/// Prices a CNY amount for a recipient on a channel, paid from the
/// merchant's balance in `pay_currency`: the cost at the trader's rate and
/// the fee, locked for 60 seconds. An order names the quote.
#[utoipa::path(
    get,
    path = "/v1/rmb/quote",
    operation_id = "rmb_quote",
    tag = "RMB",
    params(
        ("channel" = String, Query, min_length = 1, max_length = 64, description = "The channel's slug (`GET /v1/rmb/channels`), any case, e.g. `alipay`."),
        ("amount" = i64, Query, minimum = 1, maximum = 1_000_000_000_000_000_i64, description = "What the recipient receives, in fen (CNY minor units): `100000` is CNY 1,000.00."),
        ("pay_currency" = Currency, Query, description = "The balance the order is paid from."),
    ),
    responses((status = 200, description = "The quote.", body = RmbQuote)),
    security(("api_key" = ["rmb:read"])),
)]
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
        Some(slug) if !slug.is_empty() && slug.chars().count() <= 64 => Some(slug.to_ascii_lowercase()),
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

/// Order an RMB purchase
///
/// Pays a recipient in China at a quote that has not expired nor been used:
/// the quote's total is taken from the merchant's balance now, and the
/// purchase is `processing` until the trader pays out (then `completed`,
/// or `refunded` with the money back).
#[utoipa::path(
    post,
    path = "/v1/rmb/orders",
    operation_id = "create_rmb_order",
    tag = "RMB",
    params(IdempotencyKey),
    request_body = doc::OrderBody,
    responses(
        (status = 201, description = "The RMB purchase.", body = RmbPurchase),
    ),
    security(("api_key" = ["rmb:write"])),
)]
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

/// The request bodies as the OpenAPI document shows them (read by hand
/// above, so that every bad field is reported).
#[allow(dead_code)]
mod doc {
    const _: () = assert!(
        super::RECIPIENT_CHARS_MAX == 64 && super::NAME_CHARS_MAX == 128,
        "OrderBody documents the recipient's lengths"
    );

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"quote_id": "rmbq_01J9Z3YB7QK4T5V8X2W6M0N1PR", "recipient_identifier": "wang.li@example.cn", "recipient_name": "Wang Li"})))]
    pub struct OrderBody {
        /// The quote (`GET /v1/rmb/quote`), within its 60 seconds.
        #[schema(max_length = 64)]
        quote_id: String,
        /// The recipient on the quote's channel: their Alipay or WeChat ID,
        /// or bank card number. No spaces at either end, no control
        /// characters.
        #[schema(
            min_length = 1,
            max_length = 64,
            pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f]([^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$"
        )]
        recipient_identifier: String,
        /// The recipient's name, as the channel knows it.
        #[schema(max_length = 128)]
        recipient_name: Option<String>,
    }
}
