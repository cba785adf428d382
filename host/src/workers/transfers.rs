//! The transfer sweep, every second and whenever a new transfer waits for
//! its first claim code: returns transfers whose claim period ended, sends
//! the claim codes that are due (see `operations::claims::send_due`), and
//! expires customer approvals nobody answered in time.

use std::sync::Arc;

use super::Worker;
use crate::metrics::Metrics;
use crate::operations::{Context, claims, consent, transfers};
use crate::values::error::ApiError;

const SWEEP_EVERY_MS: u64 = 1_000;
/// Transfers one sweep returns at most.
const RETURNS_PER_SWEEP_MAX: usize = 500;

pub fn spawn(ctx: Context, metrics: Arc<Metrics>) -> Worker {
    let clock = ctx.clock.clone();
    let wake = Some(std::sync::Arc::clone(&ctx.claim_codes_due));
    Worker::every("transfers", clock, metrics, SWEEP_EVERY_MS, SWEEP_EVERY_MS, wake, move || {
        let ctx = ctx.clone();
        async move {
            match sweep(&ctx).await {
                Ok(Swept { returned, resent, expired }) if returned + resent + expired > 0 => {
                    tracing::info!(returned, resent, expired, "transfer sweep")
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "transfer sweep failed; the next one retries"),
            }
        }
    })
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Transfers returned to their merchant.
    pub returned: usize,
    /// Claim codes sent.
    pub resent: usize,
    /// Approvals expired.
    pub expired: usize,
}

/// One sweep at the clock's now.
pub async fn sweep(ctx: &Context) -> Result<Swept, ApiError> {
    let now_ms = ctx.clock.now_ms();
    let returned = ctx.store.write(move |conn| transfers::return_expired(conn, now_ms, RETURNS_PER_SWEEP_MAX)).await?;
    let resent = claims::send_due(ctx, now_ms).await?;
    let expired = consent::expire_due(ctx).await?;
    Ok(Swept { returned, resent, expired })
}
