//! FX quotes and swaps.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiQuery, keyed_write, reply};
use super::fields::{Fields, Parsed, fail};
use super::openapi::IdempotencyKey;
use crate::domain::fx::{self, Quote, QuoteRequest};
use crate::domain::scopes::Scope;
use crate::operations::idempotency::WriteEndpoint;
use crate::operations::objects::Swap;
use crate::operations::swaps::{self, NewSwap};
use crate::values::error::{ApiError, FieldError};
use crate::values::money::{self, Currency};

/// The operations described here, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(get_quote, create_swap))]
pub(super) struct Api;

/// Get an FX quote
///
/// Prices `amount` of `from` in `to` at the platform's rate (the mid rate
/// less its spread, rounded down to the target's increment) and locks it
/// until `expires_at`: a swap at this quote gets exactly these amounts.
/// Public keys may ask.
#[utoipa::path(
    get,
    path = "/v1/fx/quote",
    tag = "FX",
    params(
        ("from" = Currency, Query, description = "The currency the customer pays in.", example = "USD"),
        ("to" = Currency, Query, description = "The currency the customer receives; not `from`.", example = "LRD"),
        ("amount" = i64, Query, description = "How much of `from`, in its minor unit (USD 12.34 is `1234`).", minimum = 1, maximum = 1_000_000_000_000_000_i64, example = 1234),
    ),
    responses((status = 200, description = "The quote, locked until `expires_at`.", body = Quote)),
    security(("api_key" = ["fx:read"])),
)]
pub async fn get_quote(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery,
) -> Result<axum::Json<Quote>, ApiError> {
    caller.require(Scope::FxRead)?;
    let request = parse_quote_query(&query)?;
    let quote =
        fx::quote(&state.ops.store, &state.ops.clock, &state.fx_rates, &state.settings.fx, &caller.tenant, request)
            .await?;
    Ok(axum::Json(quote))
}

fn parse_quote_query(query: &[(String, String)]) -> Result<QuoteRequest, ApiError> {
    let mut errors = Vec::new();
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    for (name, _) in query.iter().filter(|(k, _)| !["from", "to", "amount"].contains(&k.as_str())) {
        fail(&mut errors, name, "is not a known parameter; expected from, to, amount");
    }
    let currency = |name: &str, errors: &mut Vec<FieldError>| match param(name) {
        None => {
            fail(errors, name, "is required (e.g. USD or LRD)");
            None
        }
        Some(code) => Currency::from_code(code).map_err(|m| fail(errors, name, m)).ok(),
    };
    let from = currency("from", &mut errors);
    let to = currency("to", &mut errors);
    let amount = match param("amount") {
        None => {
            fail(&mut errors, "amount", "is required: an integer of minor units of `from`");
            None
        }
        Some(text) => money::parse_amount_minor(text).map_err(|m| fail(&mut errors, "amount", m)).ok(),
    };
    match (from, to, amount) {
        // Well-formed, but nothing to convert.
        (Some(from), Some(to), Some(_)) if errors.is_empty() && from == to => {
            Err(ApiError::CurrencyPairUnsupported { from: from.code.into(), to: to.code.into() })
        }
        (Some(from), Some(to), Some(amount_minor)) if errors.is_empty() => Ok(QuoteRequest { from, to, amount_minor }),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// Swap a customer's money
///
/// Moves a customer's money from one of their wallets into their wallet in
/// another currency at a quote (`GET /v1/fx/quote`), which the swap
/// reserves. It takes their money, so it waits for their approval: the swap
/// is `processing` with `next_action.type = customer_approval` until the
/// merchant passes on the code they were sent
/// (`POST /v1/approvals/{id}/approve`). A retry with the same idempotency
/// key answers the same (`Idempotency-Replayed: true`).
#[utoipa::path(
    post,
    path = "/v1/fx/swaps",
    tag = "FX",
    params(IdempotencyKey),
    request_body = doc::NewSwapBody,
    responses(
        (status = 201, description = "The swap, waiting for the customer's approval.", body = Swap),
    ),
    security(("api_key" = ["fx:write"])),
)]
pub async fn create_swap(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (request, new) = keyed_write(&caller, Scope::FxWrite, WriteEndpoint::Swaps, &headers, body, parse_swap).await?;
    reply(swaps::create(&state.ops, request, new).await?)
}

fn parse_swap(body: &[u8]) -> Result<Parsed<NewSwap>, ApiError> {
    let fields = Fields::parse(body, &["quote_id", "customer"])?;
    let mut errors = fields.errors();
    let quote_id = fields.string("quote_id", 64, true, &mut errors);
    let phone = fields.customer_phone(&mut errors, true);
    let swap = match (quote_id, phone) {
        (Some(quote_id), Some(phone)) => Some(NewSwap { quote_id, phone }),
        _ => None,
    };
    fields.done(swap, errors)
}

/// The request body as the OpenAPI document shows it (read by hand above,
/// so that every bad field is reported).
#[allow(dead_code)]
mod doc {
    use crate::http::openapi::CustomerInput;

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"quote_id": "quote_01J9Z3YB7QK4T5V8X2W6M0N1PR", "customer": {"phone": "+231770001234"}})))]
    pub struct NewSwapBody {
        /// The quote to swap at: the merchant's, unexpired, not used by
        /// another swap.
        #[schema(max_length = 64)]
        quote_id: String,
        /// The customer whose wallets the money moves between.
        customer: CustomerInput,
    }
}

const _: () = assert!(money::AMOUNT_MINOR_MAX == 1_000_000_000_000_000, "get_quote documents the amount's maximum");
