//! The rail operations the gateway carries out: the one list that status
//! checks and crash recovery dispatch on. A new kind is its module (which
//! implements `RailOperation` and owns its table), its migration, and a line
//! in each match below.

use super::bills::BillPaymentRow;
use super::checks::{self, DueCheck};
use super::context::Context;
use super::gift_cards::GiftCardSaleRow;
use super::idempotency;
use super::lifecycle;
use super::payments::PaymentRow;
use super::refunds::RefundRow;
use super::rmb::RmbPurchaseRow;
use super::settlements::SettlementRow;
use crate::values::error::ApiError;
use crate::values::status::TransactionKind;

/// Checks taken per round; the next round starts when these are done, so
/// one operation is never checked twice at once.
pub const CHECKS_PER_ROUND_MAX: usize = 256;

/// Asks the rail about one due operation (see `lifecycle::check`).
pub async fn check(ctx: &Context, due: DueCheck) -> Result<(), ApiError> {
    match due.kind {
        TransactionKind::Payment => lifecycle::check::<PaymentRow>(ctx, due).await,
        TransactionKind::Refund => lifecycle::check::<RefundRow>(ctx, due).await,
        TransactionKind::Settlement => lifecycle::check::<SettlementRow>(ctx, due).await,
        TransactionKind::BillPayment => lifecycle::check::<BillPaymentRow>(ctx, due).await,
        TransactionKind::RmbPurchase => lifecycle::check::<RmbPurchaseRow>(ctx, due).await,
        TransactionKind::GiftCardSale => lifecycle::check::<GiftCardSaleRow>(ctx, due).await,
        // A deposit is reported, not submitted: it has its own check.
        TransactionKind::CryptoSale => super::crypto::check(ctx, due).await,
        other => {
            tracing::error!(kind = %other, id = due.operation_id, "a status check of a kind no rail carries; stopped");
            let id = due.operation_id;
            ctx.store.write(move |conn| checks::stop(conn, &id)).await?;
            Ok(())
        }
    }
}

/// The checks due now, oldest first.
pub async fn due_checks(ctx: &Context) -> Result<Vec<DueCheck>, ApiError> {
    let now_ms = ctx.clock.now_ms();
    Ok(ctx.store.read(move |conn| checks::due(conn, now_ms, CHECKS_PER_ROUND_MAX)).await?)
}

/// After a crash: every operation claimed under an idempotency key whose
/// answer was never stored is asked of its rail again under the same id
/// and recorded (see `lifecycle::resume`). Returns how many there were.
pub async fn resume_in_flight(ctx: &Context) -> Result<usize, ApiError> {
    let unanswered = ctx.store.read(idempotency::unanswered).await?;
    let count = unanswered.len();
    for id in unanswered {
        match TransactionKind::of_id(&id) {
            Some(TransactionKind::Payment) => lifecycle::resume::<PaymentRow>(ctx, id).await?,
            Some(TransactionKind::Refund) => lifecycle::resume::<RefundRow>(ctx, id).await?,
            Some(TransactionKind::BillPayment) => lifecycle::resume::<BillPaymentRow>(ctx, id).await?,
            Some(TransactionKind::RmbPurchase) => lifecycle::resume::<RmbPurchaseRow>(ctx, id).await?,
            Some(TransactionKind::GiftCardSale) => lifecycle::resume::<GiftCardSaleRow>(ctx, id).await?,
            // Every other write stores its answer in the write that makes it.
            _ => tracing::error!(id, "an idempotency key without an answer for an operation that cannot be resumed"),
        }
    }
    Ok(count)
}
