//! Admin API for trades: the gift card review queue, for operators who
//! verify cards themselves. Each decision is recorded with who made it and
//! when, and applies once: a sale no longer pending answers `409
//! TRADE_NOT_PENDING`.
//!
//! - `GET /admin/gift-cards?status&limit&starting_after` → sales, oldest
//!   first, with the e-code and photo hashes
//! - `GET /admin/gift-cards/{id}/photos/{sha256}` → the photo's bytes
//! - `POST /admin/gift-cards/{id}/approve {verified_value, reviewer}` →
//!   credits the merchant the price of `verified_value` at the locked rate
//! - `POST /admin/gift-cards/{id}/reject {reason, reviewer}` → cancelled

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};

use super::AdminState;
use super::extract::ApiQuery;
use super::fields::{Fields, fail, page_query};
use crate::operations::gift_cards::{self, Decision, OperatorSale};
use crate::values::error::ApiError;
use crate::values::page::Page;
use crate::values::status::GiftCardStatus;

pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/admin/gift-cards", get(list_sales))
        .route("/admin/gift-cards/{id}/photos/{sha256}", get(photo))
        .route("/admin/gift-cards/{id}/approve", post(approve))
        .route("/admin/gift-cards/{id}/reject", post(reject))
}

/// `GET /admin/gift-cards`: oldest first, `limit` (1–100, default 10) a page.
async fn list_sales(
    State(state): State<AdminState>,
    ApiQuery(query): ApiQuery,
) -> Result<axum::Json<Page<OperatorSale>>, ApiError> {
    let mut errors = Vec::new();
    let mut status = None;
    let page = page_query(&query, "limit, starting_after, status", &mut errors, |name, value, errors| {
        if name != "status" {
            return false;
        }
        status = GiftCardStatus::parse(value);
        if status.is_none() {
            fail(errors, "status", format!("must be one of {}", GiftCardStatus::words()));
        }
        true
    });
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(axum::Json(gift_cards::list_for_operator(&state.app.ops, status, page).await?))
}

async fn photo(
    State(state): State<AdminState>,
    Path((id, sha256)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let (content_type, bytes) = gift_cards::photo(&state.app.ops, id, sha256).await?;
    Ok(([(header::CONTENT_TYPE, content_type)], bytes))
}

/// The reviewer's name, required on every decision.
const REVIEWER_CHARS_MAX: usize = 128;

async fn approve(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<axum::Json<OperatorSale>, ApiError> {
    let fields = Fields::parse(&body, &["verified_value", "reviewer"])?;
    let mut errors = fields.errors();
    let verified_value = fields.amount_field("verified_value", &mut errors);
    let reviewer = fields.string("reviewer", REVIEWER_CHARS_MAX, true, &mut errors);
    let (Some(verified_value), Some(reviewer), true) = (verified_value, reviewer, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let decision = Decision::Approve { verified_value };
    Ok(axum::Json(gift_cards::review(&state.app.ops, id, decision, reviewer).await?))
}

async fn reject(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<axum::Json<OperatorSale>, ApiError> {
    let fields = Fields::parse(&body, &["reason", "reviewer"])?;
    let mut errors = fields.errors();
    let reason = fields.string("reason", 500, true, &mut errors).filter(|r| !r.trim().is_empty());
    if reason.is_none() && !errors.iter().any(|e| e.field == "reason") {
        fail(&mut errors, "reason", "must say why, for the merchant");
    }
    let reviewer = fields.string("reviewer", REVIEWER_CHARS_MAX, true, &mut errors);
    let (Some(reason), Some(reviewer), true) = (reason, reviewer, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    Ok(axum::Json(gift_cards::review(&state.app.ops, id, Decision::Reject { reason }, reviewer).await?))
}
