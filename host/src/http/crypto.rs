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
use crate::domain::scopes::Scope;
use crate::operations::crypto::{self, AddressAsk, TestDepositAsk};
use crate::operations::idempotency::WriteEndpoint;
use crate::values::error::ApiError;
use crate::values::status::ObjectType;

/// The operations described here, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub(super) struct Api;

/// One asset, its networks and what a whole coin pays.
#[derive(Serialize)]
pub struct AssetEntry {
    object: ObjectType,
    asset: String,
    name: String,
    /// Base units per coin, as a power of ten: amounts are in base units.
    decimals: u8,
    networks: Vec<NetworkEntry>,
    rates: Vec<PayoutRate>,
}

#[derive(Serialize)]
pub struct NetworkEntry {
    network: String,
    name: String,
    /// Confirmations before a deposit is credited.
    confirmations: u32,
    /// The smallest deposit credited, in base units (a string: up to 18 decimals).
    min_deposit: String,
}

/// `GET /v1/crypto/assets`.
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

/// `POST /v1/crypto/addresses {asset, network, payout_currency}`: `201`
/// with the address made now, `200` with the one made before (the same
/// address on every request; no idempotency key needed).
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
    let asset = fields.string("asset", 16, true, &mut errors).map(|a| a.to_ascii_uppercase());
    let network = fields.string("network", 64, true, &mut errors).map(|n| n.to_ascii_lowercase());
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

/// `POST /v1/crypto/test-deposit {address, amount, test_reference}` (test
/// keys): the outcome follows the last 4 characters of `test_reference`.
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

fn parse_test_deposit(body: &[u8]) -> Result<Parsed<TestDepositAsk>, ApiError> {
    let fields = Fields::parse(body, &["address", "amount", "test_reference"])?;
    let mut errors = fields.errors();
    let address = fields.string("address", 128, true, &mut errors);
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
