//! Customers' wallets, their history with the merchant, and sandbox top-ups.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiPath, ApiQuery, keyed_write, reply};
use super::fields::{Fields, Parsed, fail, page_query};
use super::openapi::{IdempotencyKey, PageParams};
use crate::domain::scopes::Scope;
use crate::domain::wallet_access;
use crate::domain::wallets::Wallet;
use crate::operations::idempotency::WriteEndpoint;
use crate::operations::objects::TopUp;
use crate::operations::top_ups::{self, NewTopUp};
use crate::operations::transactions::{self, Transaction};
use crate::values::error::ApiError;
use crate::values::page::Page;
use crate::values::phone::parse_e164;

/// The operations described here, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_wallets, list_customer_transactions, create_top_up))]
pub(super) struct Api;

/// List a customer's wallets
///
/// One wallet per enabled currency, with its balance, in the key's mode,
/// if the customer lets this merchant see them (see
/// `POST /v1/customers/{phone}/wallet-access`); else `404`, as for a phone
/// with no wallets: nobody learns a balance, or that a phone has wallets,
/// without the customer's consent.
#[utoipa::path(
    get,
    path = "/v1/customers/{phone}/wallets",
    tag = "Customers",
    params(("phone" = String, Path, description = "The customer's phone number, E.164.", pattern = "^\\+[1-9][0-9]{7,14}$", example = "+231770001234")),
    responses((status = 200, description = "The customer's wallets (one page).", body = Page<Wallet>)),
    security(("api_key" = ["wallet:read"])),
)]
pub async fn list_wallets(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(phone): ApiPath,
) -> Result<axum::Json<Page<Wallet>>, ApiError> {
    caller.require(Scope::WalletRead)?;
    let phone = parse_e164(&phone).map_err(|m| ApiError::invalid("phone", m))?;
    let (wallets, tenant) = (state.ops.wallets.clone(), caller.tenant.clone());
    let data = state
        .ops
        .store
        .read(move |conn| match wallet_access::is_granted(conn, &tenant, &phone)? {
            true => wallets.list(conn, tenant.mode, &phone).map(Some),
            false => Ok(None),
        })
        .await?;
    let data = data.ok_or(ApiError::NotFound { what: "customer wallet" })?;
    Ok(axum::Json(Page::new(data, false)))
}

/// List a customer's transactions
///
/// The customer's history with this merchant in the key's mode (payments,
/// refunds, top-ups, swaps and transfers), newest first, in cursor pages.
#[utoipa::path(
    get,
    path = "/v1/customers/{phone}/transactions",
    tag = "Customers",
    params(
        ("phone" = String, Path, description = "The customer's phone number, E.164.", pattern = "^\\+[1-9][0-9]{7,14}$", example = "+231770001234"),
        PageParams,
    ),
    responses((status = 200, description = "A page of the customer's transactions, newest first.", body = Page<Transaction>)),
    security(("api_key" = ["wallet:read"])),
)]
pub async fn list_customer_transactions(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(phone): ApiPath,
    ApiQuery(query): ApiQuery,
) -> Result<axum::Json<Page<Transaction>>, ApiError> {
    caller.require(Scope::WalletRead)?;
    let mut errors = Vec::new();
    let phone = parse_e164(&phone).map_err(|m| fail(&mut errors, "phone", m)).ok();
    let page = page_query(&query, "limit, starting_after", &mut errors, |_, _, _| false);
    let Some(phone) = phone.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    Ok(axum::Json(transactions::customer_history(&state.ops.store, &caller.tenant, phone, page).await?))
}

/// Top up a test wallet
///
/// Adds sandbox money to a customer's test wallet (test keys only), and
/// registers the phone as a customer. A retry with the same idempotency key
/// answers the same (`Idempotency-Replayed: true`).
#[utoipa::path(
    post,
    path = "/v1/wallets/top-ups",
    tag = "Sandbox",
    params(IdempotencyKey),
    request_body = doc::TopUpBody,
    responses(
        (status = 201, description = "The top-up, completed.", body = TopUp),
    ),
    security(("api_key" = ["wallet:write"])),
)]
pub async fn create_top_up(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (request, new) =
        keyed_write(&caller, Scope::WalletWrite, WriteEndpoint::TopUps, &headers, body, parse_top_up).await?;
    reply(top_ups::create(&state.ops, request, new).await?)
}

fn parse_top_up(body: &[u8]) -> Result<Parsed<NewTopUp>, ApiError> {
    let fields = Fields::parse(body, &["amount", "currency", "customer"])?;
    let mut errors = fields.errors();
    let amount = fields.amount(&mut errors);
    let currency = fields.currency("currency", &mut errors);
    let phone = fields.customer_phone(&mut errors, true);
    let top_up = match (amount, currency, phone) {
        (Some(amount_minor), Some(currency), Some(phone)) => Some(NewTopUp { phone, amount_minor, currency }),
        _ => None,
    };
    fields.done(top_up, errors)
}

/// The request body as the OpenAPI document shows it (read by hand above,
/// so that every bad field is reported).
#[allow(dead_code)]
mod doc {
    use crate::http::openapi::{AmountMinor, CustomerInput};
    use crate::values::money::Currency;

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"amount": 50000, "currency": "USD", "customer": {"phone": "+231770001234"}})))]
    pub struct TopUpBody {
        amount: AmountMinor,
        currency: Currency,
        /// The customer whose test wallet is topped up.
        customer: CustomerInput,
    }
}
