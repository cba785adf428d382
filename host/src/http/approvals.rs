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
#[openapi(paths(get_approval, approve, refuse, request_wallet_access, revoke_wallet_access))]
pub(super) struct Api;

/// Retrieve an approval
///
/// A customer's approval of a wallet payment, a swap or wallet access: its
/// status, and when the code sent to them expires. The key needs the scope
/// of what the approval is for: `payments:read` for a payment, `fx:write`
/// for a swap, `wallet:read` for wallet access.
#[utoipa::path(
    get,
    path = "/v1/approvals/{id}",
    tag = "Approvals",
    params(("id" = String, Path, description = "The approval's id (`apv_…`).")),
    responses((status = 200, description = "The approval.", body = Approval)),
    security(("api_key" = ["payments:read"]), ("api_key" = ["fx:write"]), ("api_key" = ["wallet:read"])),
)]
pub async fn get_approval(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Approval>, ApiError> {
    let approval = owned_with_scope(&state, &caller, id, false).await?;
    Ok(axum::Json(approval.object()))
}

/// Approve with the customer's code
///
/// Decides an approval with the code the customer was sent through
/// WhatsApp and gave the merchant: the right code approves it (the payment
/// or swap goes ahead, or wallet access is granted); wrong codes count
/// against the customer's phone. The key needs the scope of what the
/// approval is for: `payments:write` for a payment, `fx:write` for a swap,
/// `wallet:read` for wallet access.
#[utoipa::path(
    post,
    path = "/v1/approvals/{id}/approve",
    tag = "Approvals",
    params(("id" = String, Path, description = "The approval's id (`apv_…`).")),
    request_body = doc::ApproveBody,
    responses((status = 200, description = "The approval, decided.", body = Approval)),
    security(("api_key" = ["payments:write"]), ("api_key" = ["fx:write"]), ("api_key" = ["wallet:read"])),
)]
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

/// Refuse an approval
///
/// The customer said no: the approval is refused and what it was for fails
/// with nothing moved. It takes no body. The key needs the scope of what
/// the approval is for: `payments:write` for a payment, `fx:write` for a
/// swap, `wallet:read` for wallet access.
#[utoipa::path(
    post,
    path = "/v1/approvals/{id}/refuse",
    tag = "Approvals",
    params(("id" = String, Path, description = "The approval's id (`apv_…`).")),
    responses((status = 200, description = "The approval, refused.", body = Approval)),
    security(("api_key" = ["payments:write"]), ("api_key" = ["fx:write"]), ("api_key" = ["wallet:read"])),
)]
pub async fn refuse(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<axum::Json<Approval>, ApiError> {
    let approval = owned_with_scope(&state, &caller, id, true).await?;
    Ok(axum::Json(consent::refuse(&state.ops, &caller.tenant, approval.id).await?))
}

/// Ask for wallet access
///
/// Asks the customer, through WhatsApp, to let this merchant read their
/// wallet balances: the answer is the approval, waiting for the code they
/// were sent (`POST /v1/approvals/{id}/approve`). It takes no body.
#[utoipa::path(
    post,
    path = "/v1/customers/{phone}/wallet-access",
    tag = "Customers",
    params(("phone" = String, Path, description = "The customer's phone number, E.164.", pattern = "^\\+[1-9][0-9]{7,14}$", example = "+231770001234")),
    responses((status = 201, description = "The approval the customer was asked for.", body = Approval)),
    security(("api_key" = ["wallet:read"])),
)]
pub async fn request_wallet_access(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(phone): ApiPath,
) -> Result<Response, ApiError> {
    caller.require(Scope::WalletRead)?;
    let phone = parse_e164(&phone).map_err(|m| ApiError::invalid("phone", m))?;
    Ok(created(consent::request_wallet_access(&state.ops, &caller.tenant, phone).await?))
}

/// Give up wallet access
///
/// The merchant gives up its access to the customer's wallets (`404` if
/// it had none); asking again needs the customer's approval again.
#[utoipa::path(
    delete,
    path = "/v1/customers/{phone}/wallet-access",
    tag = "Customers",
    params(("phone" = String, Path, description = "The customer's phone number, E.164.", pattern = "^\\+[1-9][0-9]{7,14}$", example = "+231770001234")),
    responses((status = 200, description = "The access, now not granted.", body = WalletAccess)),
    security(("api_key" = ["wallet:read"])),
)]
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

/// The request body as the OpenAPI document shows it (read by hand above,
/// so that every bad field is reported).
#[allow(dead_code)]
mod doc {
    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"code": "482913"})))]
    pub struct ApproveBody {
        /// The 6-digit code the customer was sent.
        #[schema(pattern = "^[0-9]{6}$", min_length = 6, max_length = 6)]
        code: String,
    }
}

const _: () = assert!(CODE_DIGITS == 6, "doc::ApproveBody documents the code's length");
