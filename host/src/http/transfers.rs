//! Transfers to phone numbers, claims, and the sandbox's outbox.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiPath, ApiQuery, keyed_write, reply};
use super::fields::{Fields, Parsed, fail, page_query};
use super::openapi::{IdempotencyKey, PageParams};
use crate::domain::codes::CODE_DIGITS;
use crate::domain::messaging::{self, SandboxMessage};
use crate::domain::scopes::Scope;
use crate::operations::claims::{self, NewClaim};
use crate::operations::idempotency::WriteEndpoint;
use crate::operations::objects::{Claim, Transfer};
use crate::operations::transfers::{self, NewTransfer};
use crate::values::error::ApiError;
use crate::values::mode::Mode;
use crate::values::page::Page;
use crate::values::phone::parse_e164;
use crate::values::status::TransferStatus;

/// The operations described here, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create_transfer, list_transfers, get_transfer, create_claim, list_test_messages))]
pub(super) struct Api;

/// Longest transfer description.
const DESCRIPTION_CHARS_MAX: usize = 255;

/// Send money to a phone number
///
/// Sends money from the merchant's balance to any E.164 phone number. A
/// recipient already on Soxara is credited at once (`completed`); anyone
/// else is sent a claim code through WhatsApp while the money waits
/// (`pending_claim`), and gets it back to the merchant if they do not claim
/// it in time. A retry with the same idempotency key answers the same
/// (`Idempotency-Replayed: true`).
#[utoipa::path(
    post,
    path = "/v1/transfers",
    tag = "Transfers",
    params(IdempotencyKey),
    request_body = doc::NewTransferBody,
    responses(
        (status = 201, description = "The transfer.", body = Transfer),
    ),
    security(("api_key" = ["transfers:write"])),
)]
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

/// List transfers
///
/// The merchant's transfers in the key's mode, newest first, in cursor
/// pages; optionally only those with one `status`.
#[utoipa::path(
    get,
    path = "/v1/transfers",
    tag = "Transfers",
    params(
        PageParams,
        ("status" = Option<TransferStatus>, Query, description = "Only transfers with this status."),
    ),
    responses((status = 200, description = "A page of transfers, newest first.", body = Page<Transfer>)),
    security(("api_key" = ["transfers:read"])),
)]
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

/// Retrieve a transfer
///
/// One of the merchant's transfers: its status, recipient and claim window.
#[utoipa::path(
    get,
    path = "/v1/transfers/{id}",
    tag = "Transfers",
    params(("id" = String, Path, description = "The transfer's id (`trf_…`).")),
    responses((status = 200, description = "The transfer.", body = Transfer)),
    security(("api_key" = ["transfers:read"])),
)]
pub async fn get_transfer(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Transfer>, ApiError> {
    caller.require(Scope::TransfersRead)?;
    Ok(axum::Json(transfers::get(&state.ops, &caller.tenant, id).await?))
}

/// Claim transfers with a code
///
/// The recipient proves their number with the code it was sent: they join
/// Soxara with a wallet per currency, and every transfer waiting for the
/// phone is credited to it. Wrong codes count against the phone, whoever
/// sends them; a wrong code and a phone nothing waits for get the same
/// answer. Secret keys only (a claim page or chat bot run by the merchant's
/// server). Every answer, refusals too, is kept under the idempotency key,
/// so a retry is not another attempt (`Idempotency-Replayed: true`).
#[utoipa::path(
    post,
    path = "/v1/claims",
    tag = "Transfers",
    params(IdempotencyKey),
    request_body = doc::NewClaimBody,
    responses(
        (status = 200, description = "The claim: the transfers credited and the recipient's wallets.", body = Claim),
    ),
    security(("api_key" = ["claims:write"])),
)]
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

/// List sandbox messages
///
/// What the sandbox would have sent to customers through WhatsApp for this
/// merchant (claim codes of test transfers, approval codes), newest first,
/// 100 at most; optionally only those to one phone. Test keys only.
#[utoipa::path(
    get,
    path = "/v1/test/messages",
    tag = "Sandbox",
    params(("phone" = Option<String>, Query, description = "Only messages to this E.164 phone number (send `+` as `%2B`).", pattern = "^\\+[1-9][0-9]{7,14}$", example = "+231770001234")),
    responses((status = 200, description = "The messages, newest first.", body = Page<SandboxMessage>)),
    security(("api_key" = ["transfers:read"])),
)]
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

/// The request bodies as the OpenAPI document shows them (read by hand
/// above, so that every bad field is reported).
#[allow(dead_code)]
mod doc {
    use crate::http::openapi::{AmountMinor, CustomerInput};
    use crate::values::money::Currency;

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"amount": 2500, "currency": "USD", "recipient": {"phone": "+231770001234"}, "description": "March commission"})))]
    pub struct NewTransferBody {
        amount: AmountMinor,
        currency: Currency,
        /// Who receives the money: any E.164 phone number.
        recipient: CustomerInput,
        #[schema(max_length = 255)]
        description: Option<String>,
    }

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"phone": "+231770001234", "code": "482913"})))]
    pub struct NewClaimBody {
        /// The recipient's phone number, E.164.
        #[schema(pattern = "^\\+[1-9][0-9]{7,14}$")]
        phone: String,
        /// The 6-digit code the recipient was sent.
        #[schema(pattern = "^[0-9]{6}$")]
        code: String,
    }
}

const _: () = assert!(CODE_DIGITS == 6, "doc::NewClaimBody documents the code's length");
