//! Crypto sales (`/v1/crypto/…`): the assets, networks and rates taken,
//! the merchant's deposit addresses, and simulated deposits in the sandbox.
//! Reads need `crypto:read`, addresses and test deposits `crypto:write`;
//! all need a secret key. Deposits themselves arrive from the custody
//! provider; `GET /v1/transactions/{id}` reads them.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiQuery, keyed_write, read_body, reply};
use super::fields::{Fields, Parsed, fail};
use super::listing::{Listing, PayoutRate, no_params};
use super::openapi::IdempotencyKey;
use crate::domain::scopes::Scope;
use crate::operations::crypto::{self, AddressAsk, CryptoSale, DepositAddress, TestDepositAsk};
use crate::operations::idempotency::WriteEndpoint;
use crate::values::error::{ApiError, FieldError};
use crate::values::status::ObjectType;

/// The operations described here, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(assets, address, test_deposit))]
pub(super) struct Api;

/// One asset, its networks and what a whole coin pays.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AssetEntry {
    object: ObjectType,
    asset: String,
    name: String,
    /// Base units per coin, as a power of ten: amounts are in base units.
    decimals: u8,
    networks: Vec<NetworkEntry>,
    rates: Vec<PayoutRate>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NetworkEntry {
    network: String,
    name: String,
    /// Confirmations before a deposit is credited.
    confirmations: u32,
    /// The smallest deposit credited, in base units (a string: up to 18 decimals).
    min_deposit: String,
}

/// List crypto assets
///
/// The coins the gateway buys in the key's mode: for each, the networks
/// deposits may arrive on (with their confirmations and smallest deposit)
/// and what a whole coin pays in each payout currency.
#[utoipa::path(
    get,
    path = "/v1/crypto/assets",
    operation_id = "crypto_assets",
    tag = "Crypto",
    responses((status = 200, description = "The assets.", body = Listing<AssetEntry>)),
    security(("api_key" = ["crypto:read"])),
)]
pub async fn assets(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery,
) -> Result<axum::Json<Listing<AssetEntry>>, ApiError> {
    caller.require(Scope::CryptoRead)?;
    no_params(&query)?;
    let listed = crypto::assets(crypto::trader_for(&state.ops, caller.tenant.mode)?).await?;
    let data = listed
        .into_iter()
        .map(|asset| AssetEntry {
            object: ObjectType::CryptoAsset,
            asset: asset.symbol,
            name: asset.name,
            decimals: asset.decimals,
            networks: asset
                .networks
                .into_iter()
                .map(|n| NetworkEntry {
                    network: n.slug,
                    name: n.name,
                    confirmations: n.confirmations,
                    min_deposit: n.min_deposit.to_string(),
                })
                .collect(),
            rates: PayoutRate::all(asset.rates),
        })
        .collect();
    Ok(Listing::of(data))
}

/// Get a deposit address
///
/// The merchant's address for one asset on one network: deposits to it are
/// sold and credited to the balance in `payout_currency`. Made on the first
/// request (`201`); every later request for the same asset, network and
/// payout currency answers the same address (`200`), so no idempotency key
/// is needed.
#[utoipa::path(
    post,
    path = "/v1/crypto/addresses",
    operation_id = "crypto_address",
    tag = "Crypto",
    request_body = doc::AddressBody,
    responses(
        (status = 201, description = "The address, made now.", body = DepositAddress),
        (status = 200, description = "The address made before.", body = DepositAddress),
    ),
    security(("api_key" = ["crypto:write"])),
)]
pub async fn address(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(Scope::CryptoWrite)?;
    let body = read_body(&headers, body).await?;
    let fields = Fields::parse(&body, &["asset", "network", "payout_currency"])?;
    let mut errors = fields.errors();
    // Whether the trader takes them is `operations::crypto`'s to say.
    let asset = non_empty(fields.string("asset", 16, true, &mut errors), "asset", &mut errors);
    let network = non_empty(fields.string("network", 64, true, &mut errors), "network", &mut errors);
    let (asset, network) = (asset.map(|a| a.to_ascii_uppercase()), network.map(|n| n.to_ascii_lowercase()));
    let payout_currency = fields.currency("payout_currency", &mut errors);
    let (Some(asset), Some(network), Some(payout_currency), true) =
        (asset, network, payout_currency, errors.is_empty())
    else {
        return Err(ApiError::Validation(errors));
    };
    let (made, address) =
        crypto::address(&state.ops, caller.tenant.clone(), AddressAsk { asset, network, payout_currency }).await?;
    let status = if made { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(address)).into_response())
}

/// Simulate a crypto deposit
///
/// Test keys only: the sandbox custody provider reports a deposit to one of
/// the merchant's test addresses, recorded and credited as a real one would
/// be. The outcome follows the last 4 characters of `test_reference`.
#[utoipa::path(
    post,
    path = "/v1/crypto/test-deposit",
    operation_id = "crypto_test_deposit",
    tag = "Sandbox",
    params(IdempotencyKey),
    request_body = doc::TestDepositBody,
    responses(
        (status = 201, description = "The crypto sale the deposit made.", body = CryptoSale),
    ),
    security(("api_key" = ["crypto:write"])),
)]
pub async fn test_deposit(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if caller.tenant.mode.is_live() {
        return Err(ApiError::TestModeOnly);
    }
    let (request, ask) =
        keyed_write(&caller, Scope::CryptoWrite, WriteEndpoint::CryptoTestDeposits, &headers, body, parse_test_deposit)
            .await?;
    reply(crypto::test_deposit(&state.ops, request, ask).await?)
}

/// `text`, refused when empty.
fn non_empty(text: Option<String>, field: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    if text.as_deref() == Some("") {
        fail(errors, field, "must not be empty");
        return None;
    }
    text
}

fn parse_test_deposit(body: &[u8]) -> Result<Parsed<TestDepositAsk>, ApiError> {
    let fields = Fields::parse(body, &["address", "amount", "test_reference"])?;
    let mut errors = fields.errors();
    let address = non_empty(fields.string("address", 128, true, &mut errors), "address", &mut errors);
    let amount = fields.amount_field("amount", &mut errors);
    let test_reference = fields.string("test_reference", 64, true, &mut errors);
    if test_reference.as_deref().is_some_and(|r| r.is_empty() || r.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        fail(&mut errors, "test_reference", "must be 1 to 64 characters without spaces, e.g. DEP-TX-1234");
    }
    let ask = match (address, amount, test_reference) {
        (Some(address), Some(amount), Some(test_reference)) => Some(TestDepositAsk { address, amount, test_reference }),
        _ => None,
    };
    fields.done(ask, errors)
}

/// The request bodies as the OpenAPI document shows them (read by hand
/// above, so that every bad field is reported).
#[allow(dead_code)]
mod doc {
    use crate::values::money::{AMOUNT_MINOR_MAX, Currency};

    const _: () = assert!(AMOUNT_MINOR_MAX == 1_000_000_000_000_000, "TestDepositBody documents the amount's range");

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"asset": "USDT", "network": "tron", "payout_currency": "USD"})))]
    pub struct AddressBody {
        /// The asset's symbol (`GET /v1/crypto/assets`), any case.
        #[schema(min_length = 1, max_length = 16)]
        asset: String,
        /// The network's slug, any case.
        #[schema(min_length = 1, max_length = 64)]
        network: String,
        /// What deposits to the address are credited in.
        payout_currency: Currency,
    }

    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"address": "TQ5nJ8bVx3W1kP9sLm2Yc7Rf4Hd6Ga8Ze1", "amount": 25500000, "test_reference": "DEP-TX-1234"})))]
    pub struct TestDepositBody {
        /// One of the merchant's test deposit addresses.
        #[schema(min_length = 1, max_length = 128)]
        address: String,
        /// In the asset's base units (10^`decimals` per coin): a JSON
        /// integer.
        #[schema(minimum = 1, maximum = 1_000_000_000_000_000_i64)]
        amount: i64,
        /// The simulated deposit's reference, unique per deposit: 1 to 64
        /// characters without spaces. Its last 4 choose the outcome: `0000`
        /// held for review, `9999` stays confirming, anything else
        /// confirmed.
        #[schema(min_length = 1, max_length = 64, pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f]+$")]
        test_reference: String,
    }
}
