//! Admin API for billers, as for rails: operators bind a loaded biller
//! version to a mode and bill type (with an optional canary), roll a
//! binding back, and list bill purchases across merchants. Billers are
//! loaded and unloaded with rails (`POST /admin/plugins`,
//! `DELETE /admin/plugins/{id}`).
//!
//! - `GET /admin/bills/routes` → every binding
//! - `POST /admin/bills/routes {mode, bill_type, plugin, canary?: {plugin,
//!   percent}}` → the bindings after the swap
//! - `POST /admin/bills/routes/rollback {mode, bill_type}`
//! - `GET /admin/bills?merchant_id&mode&status&biller&limit&starting_after`
//!   → bills, newest first (tokens withheld: only how many were delivered)

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::Serialize;

use super::AdminState;
use super::admin::{CanaryListing, canary};
use super::extract::ApiQuery;
use super::fields::{Fields, fail, page_query};
use crate::domain::billers::Billers;
use crate::operations::bills::{self, OperatorBill, OperatorFilter};
use crate::values::error::{ApiError, FieldError};
use crate::values::mode::Mode;
use crate::values::page::Page;
use crate::values::status::{BillStatus, BillType};

pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/admin/bills/routes", get(list_routes).post(bind_route))
        .route("/admin/bills/routes/rollback", post(rollback_route))
        .route("/admin/bills", get(list_bills))
}

/// The biller bindings, as `GET /admin/bills/routes` lists them.
#[derive(Serialize)]
struct RouteListing {
    routes: Vec<BindingListing>,
}

#[derive(Serialize)]
struct BindingListing {
    mode: Mode,
    bill_type: BillType,
    plugin: String,
    canary: Option<CanaryListing>,
}

fn routes_of(billers: &Billers) -> RouteListing {
    let routes = billers
        .bindings()
        .into_iter()
        .map(|(mode, bill_type, binding)| BindingListing {
            mode,
            bill_type,
            plugin: binding.primary.id(),
            canary: binding.canary.map(|(biller, percent)| CanaryListing { plugin: biller.id(), percent }),
        })
        .collect();
    RouteListing { routes }
}

async fn list_routes(State(state): State<AdminState>) -> axum::Json<RouteListing> {
    axum::Json(routes_of(&state.app.ops.billers))
}

/// Reads `mode` and `bill_type` (both required).
fn mode_and_type(fields: &Fields, errors: &mut Vec<FieldError>) -> (Option<Mode>, Option<BillType>) {
    let mode = fields.string("mode", 8, true, errors).and_then(|m| {
        Mode::parse(&m).or_else(|| {
            fail(errors, "mode", "must be test or live");
            None
        })
    });
    let bill_type = fields.string("bill_type", 32, true, errors).and_then(|t| {
        BillType::parse(&t).or_else(|| {
            fail(errors, "bill_type", format!("must be one of {}", BillType::words()));
            None
        })
    });
    (mode, bill_type)
}

/// `POST /admin/bills/routes`: swaps the binding atomically; purchases in
/// flight finish on the biller they started with.
async fn bind_route(
    State(state): State<AdminState>,
    body: axum::body::Bytes,
) -> Result<axum::Json<RouteListing>, ApiError> {
    let fields = Fields::parse(&body, &["mode", "bill_type", "plugin", "canary"])?;
    let mut errors = fields.errors();
    let (mode, bill_type) = mode_and_type(&fields, &mut errors);
    let plugin = fields.string("plugin", 256, true, &mut errors);
    let canary = canary(&fields, &mut errors);
    let (Some(mode), Some(bill_type), Some(plugin), true) = (mode, bill_type, plugin, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let canary = canary.as_ref().map(|(p, percent)| (p.as_str(), *percent));
    let billers = &state.app.ops.billers;
    billers.bind_type(mode, bill_type, &plugin, canary).map_err(ApiError::PluginRejected)?;
    Ok(axum::Json(routes_of(billers)))
}

async fn rollback_route(
    State(state): State<AdminState>,
    body: axum::body::Bytes,
) -> Result<axum::Json<RouteListing>, ApiError> {
    let fields = Fields::parse(&body, &["mode", "bill_type"])?;
    let mut errors = fields.errors();
    let (mode, bill_type) = mode_and_type(&fields, &mut errors);
    let (Some(mode), Some(bill_type), true) = (mode, bill_type, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let billers = &state.app.ops.billers;
    billers.rollback(mode, bill_type).map_err(ApiError::PluginRejected)?;
    Ok(axum::Json(routes_of(billers)))
}

/// `GET /admin/bills`: newest first, `limit` (1–100, default 10) a page.
async fn list_bills(
    State(state): State<AdminState>,
    ApiQuery(query): ApiQuery,
) -> Result<axum::Json<Page<OperatorBill>>, ApiError> {
    let mut errors = Vec::new();
    let mut filter = OperatorFilter::default();
    let expected = "limit, starting_after, merchant_id, mode, status, biller";
    let page = page_query(&query, expected, &mut errors, |name, value, errors| {
        match name {
            "merchant_id" => filter.merchant_id = Some(value.to_string()),
            "biller" => filter.biller = Some(value.to_string()),
            "mode" => {
                filter.mode = Mode::parse(value);
                if filter.mode.is_none() {
                    fail(errors, "mode", "must be test or live");
                }
            }
            "status" => {
                filter.status = BillStatus::parse(value);
                if filter.status.is_none() {
                    fail(errors, "status", format!("must be one of {}", BillStatus::words()));
                }
            }
            _ => return false,
        }
        true
    });
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(axum::Json(bills::list_for_operator(&state.app.ops, filter, page).await?))
}
