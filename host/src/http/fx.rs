//! FX quotes and swaps.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiQuery, keyed_write, reply};
use super::fields::{Fields, Parsed, fail};
use crate::domain::fx::{self, Quote, QuoteRequest};
use crate::domain::scopes::Scope;
use crate::operations::idempotency::WriteEndpoint;
use crate::operations::swaps::{self, NewSwap};
use crate::values::error::{ApiError, FieldError};
use crate::values::money::{self, Currency};

/// The operations described here, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub(super) struct Api;

/// `GET /v1/fx/quote?from=USD&to=LRD&amount=1234`.
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
    if let (Some(f), Some(t)) = (from, to)
        && f == t
    {
        fail(&mut errors, "to", "must differ from `from`");
    }
    match (from, to, amount) {
        (Some(from), Some(to), Some(amount_minor)) if errors.is_empty() => Ok(QuoteRequest { from, to, amount_minor }),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// `POST /v1/fx/swaps`.
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
