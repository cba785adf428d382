//! Customers' approvals (of wallet payments, swaps and wallet access), and
//! the requests for wallet access.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiPath, created, read_body};
use super::fields::{Fields, fail};
use crate::domain::codes::CODE_DIGITS;
use crate::domain::scopes::Scope;
use crate::domain::wallet_access::WalletAccess;
use crate::operations::approvals::{Approval, ApprovalRow};
use crate::operations::consent;
use crate::values::error::ApiError;
use crate::values::phone::parse_e164;
use crate::values::status::ApprovalPurpose;

/// The operations described here, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub(super) struct Api;

/// `GET /v1/approvals/{id}`.
pub async fn get_approval(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Approval>, ApiError> {
    let approval = owned_with_scope(&state, &caller, id, false).await?;
    Ok(axum::Json(approval.object()))
}

/// `POST /v1/approvals/{id}/approve {code}`: the code the customer was
/// sent and gave the merchant.
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<Approval>, ApiError> {
    let approval = owned_with_scope(&state, &caller, id, true).await?;
    let body = read_body(&headers, body).await?;
    let fields = Fields::parse(&body, &["code"])?;
    let mut errors = fields.errors();
    let code = fields.string("code", 32, true, &mut errors).filter(|c| {
        let well_formed = c.len() == CODE_DIGITS as usize && c.bytes().all(|b| b.is_ascii_digit());
        if !well_formed {
            fail(&mut errors, "code", format!("must be the {CODE_DIGITS}-digit code the customer was sent"));
        }
        well_formed
    });
    let code = fields.done(code, errors)?.value;
    Ok(axum::Json(consent::approve(&state.ops, &caller.tenant, approval.id, code).await?))
}

/// `POST /v1/approvals/{id}/refuse`: the customer said no.
pub async fn refuse(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Approval>, ApiError> {
    let approval = owned_with_scope(&state, &caller, id, true).await?;
    Ok(axum::Json(consent::refuse(&state.ops, &caller.tenant, approval.id).await?))
}

/// `POST /v1/customers/{phone}/wallet-access`: asks the customer, through
/// WhatsApp, to let this merchant read their wallet balances.
pub async fn request_wallet_access(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(phone): ApiPath,
) -> Result<Response, ApiError> {
    caller.require(Scope::WalletRead)?;
    let phone = parse_e164(&phone).map_err(|m| ApiError::invalid("phone", m))?;
    Ok(created(consent::request_wallet_access(&state.ops, &caller.tenant, phone).await?))
}

/// `DELETE /v1/customers/{phone}/wallet-access`: gives the access up.
pub async fn revoke_wallet_access(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(phone): ApiPath,
) -> Result<axum::Json<WalletAccess>, ApiError> {
    caller.require(Scope::WalletRead)?;
    let phone = parse_e164(&phone).map_err(|m| ApiError::invalid("phone", m))?;
    Ok(axum::Json(consent::revoke_wallet_access(&state.ops, &caller.tenant, phone).await?))
}

/// The caller's approval `id`, if its key has the scope of what the
/// approval is for (`write`: to decide it).
async fn owned_with_scope(state: &AppState, caller: &Caller, id: String, write: bool) -> Result<ApprovalRow, ApiError> {
    let approval: ApprovalRow = crate::store::fetch(&state.ops.store, &caller.tenant, id).await?;
    let scope = match (approval.purpose, write) {
        (ApprovalPurpose::Payment, false) => Scope::PaymentsRead,
        (ApprovalPurpose::Payment, true) => Scope::PaymentsWrite,
        // Not fx:read, which public keys have.
        (ApprovalPurpose::Swap, _) => Scope::FxWrite,
        (ApprovalPurpose::WalletAccess, _) => Scope::WalletRead,
    };
    caller.require(scope)?;
    Ok(approval)
}
