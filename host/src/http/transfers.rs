//! Transfers to phone numbers, claims, and the sandbox's outbox.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiPath, ApiQuery, keyed_write, reply};
use super::fields::{Fields, Parsed, fail, page_query};
use crate::domain::codes::CODE_DIGITS;
use crate::domain::messaging::{self, SandboxMessage};
use crate::domain::scopes::Scope;
use crate::operations::claims::{self, NewClaim};
use crate::operations::idempotency::WriteEndpoint;
use crate::operations::objects::Transfer;
use crate::operations::transfers::{self, NewTransfer};
use crate::values::error::ApiError;
use crate::values::mode::Mode;
use crate::values::page::Page;
use crate::values::phone::parse_e164;
use crate::values::status::TransferStatus;

/// The operations described here, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub(super) struct Api;

/// Longest transfer description.
const DESCRIPTION_CHARS_MAX: usize = 255;

/// `POST /v1/transfers`.
pub async fn create_transfer(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (request, new) =
        keyed_write(&caller, Scope::TransfersWrite, WriteEndpoint::Transfers, &headers, body, parse_transfer).await?;
    reply(transfers::create(&state.ops, request, new).await?)
}

fn parse_transfer(body: &[u8]) -> Result<Parsed<NewTransfer>, ApiError> {
    let fields = Fields::parse(body, &["amount", "currency", "recipient", "description"])?;
    let mut errors = fields.errors();
    let amount = fields.amount(&mut errors);
    let currency = fields.currency("currency", &mut errors);
    let phone = fields.phone_of("recipient", &mut errors, true);
    let description = fields.string("description", DESCRIPTION_CHARS_MAX, false, &mut errors);
    let transfer = match (amount, currency, phone) {
        (Some(amount_minor), Some(currency), Some(phone)) => {
            Some(NewTransfer { phone, amount_minor, currency, description })
        }
        _ => None,
    };
    fields.done(transfer, errors)
}

/// `GET /v1/transfers`: newest first, `limit` (1–100, default 10) a page
/// after `starting_after`, optionally only one `status`.
pub async fn list_transfers(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery,
) -> Result<axum::Json<Page<Transfer>>, ApiError> {
    caller.require(Scope::TransfersRead)?;
    let mut errors = Vec::new();
    let mut status = None;
    let page = page_query(&query, "limit, starting_after, status", &mut errors, |name, value, errors| {
        if name != "status" {
            return false;
        }
        status = TransferStatus::parse(value);
        if status.is_none() {
            fail(errors, "status", format!("must be one of {}", TransferStatus::words()));
        }
        true
    });
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(axum::Json(transfers::list(&state.ops, &caller.tenant, page, status).await?))
}

/// `GET /v1/transfers/{id}`.
pub async fn get_transfer(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Transfer>, ApiError> {
    caller.require(Scope::TransfersRead)?;
    Ok(axum::Json(transfers::get(&state.ops, &caller.tenant, id).await?))
}

/// `POST /v1/claims`: secret keys only (a claim page or chat bot run by the
/// merchant's server).
pub async fn create_claim(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (request, new) =
        keyed_write(&caller, Scope::ClaimsWrite, WriteEndpoint::Claims, &headers, body, parse_claim).await?;
    reply(claims::claim(&state.ops, request, new).await?)
}

fn parse_claim(body: &[u8]) -> Result<Parsed<NewClaim>, ApiError> {
    let fields = Fields::parse(body, &["phone", "code"])?;
    let mut errors = fields.errors();
    let phone = fields
        .string("phone", 32, true, &mut errors)
        .and_then(|p| parse_e164(&p).map_err(|m| fail(&mut errors, "phone", m)).ok());
    let code = fields.string("code", 32, true, &mut errors).filter(|c| {
        let well_formed = c.len() == CODE_DIGITS as usize && c.bytes().all(|b| b.is_ascii_digit());
        if !well_formed {
            fail(&mut errors, "code", format!("must be the {CODE_DIGITS}-digit code the recipient was sent"));
        }
        well_formed
    });
    let claim = match (phone, code) {
        (Some(phone), Some(code)) => Some(NewClaim { phone, code }),
        _ => None,
    };
    fields.done(claim, errors)
}

/// `GET /v1/test/messages[?phone=]`: what the sandbox would have sent to
/// customers for this merchant's test transfers, newest first (100 at most).
pub async fn list_test_messages(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery,
) -> Result<axum::Json<Page<SandboxMessage>>, ApiError> {
    caller.require(Scope::TransfersRead)?;
    let mut phone = None;
    for (name, value) in query {
        match name.as_str() {
            "phone" => phone = Some(value),
            other => return Err(ApiError::invalid(other, "is not a known parameter; expected phone")),
        }
    }
    if caller.mode() != Mode::Test {
        return Err(ApiError::TestModeOnly);
    }
    let phone = phone
        .map(|p| {
            parse_e164(&p).map_err(|m| match p.starts_with(' ') {
                // A query string decodes `+` as a space.
                true => ApiError::invalid("phone", format!("{m}; in a query string, send + as %2B")),
                false => ApiError::invalid("phone", m),
            })
        })
        .transpose()?;
    let tenant = caller.tenant.clone();
    let (data, has_more) = state.ops.store.read(move |conn| messaging::list(conn, &tenant, phone.as_deref())).await?;
    Ok(axum::Json(Page::new(data, has_more)))
}
