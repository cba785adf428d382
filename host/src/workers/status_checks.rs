//! The status-check worker: every `[status_checks] poll_interval_ms` it
//! asks the rails about every operation whose check is due (at most
//! `CHECKS_AT_ONCE` at a time), and records the answers (see
//! `operations::lifecycle::check`). Rounds do not overlap, so one operation
//! is never checked twice at once.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::Worker;
use crate::metrics::Metrics;
use crate::operations::{Context, rail_operations};
use crate::values::error::ApiError;

/// Status checks running at once (each holds a blocking thread while the
/// rail waits on its provider).
const CHECKS_AT_ONCE: usize = 16;

pub fn spawn(ctx: Context, metrics: Arc<Metrics>) -> Worker {
    let every_ms = ctx.checks.poll_interval_ms;
    let clock = ctx.clock.clone();
    Worker::every("status_checks", clock, metrics, every_ms, every_ms, None, move || {
        let ctx = ctx.clone();
        async move {
            if let Err(err) = check_due(&ctx).await {
                tracing::warn!(error = %err, "status checks: this round failed; the next one retries");
            }
        }
    })
}

/// Runs every status check that is due now; returns how many ran.
pub async fn check_due(ctx: &Context) -> Result<usize, ApiError> {
    let due = rail_operations::due_checks(ctx).await?;
    let count = due.len();
    let permits = Arc::new(Semaphore::new(CHECKS_AT_ONCE));
    let mut running = JoinSet::new();
    for check in due {
        let (ctx, permits) = (ctx.clone(), Arc::clone(&permits));
        running.spawn(async move {
            let _permit = permits.acquire_owned().await;
            rail_operations::check(&ctx, check).await
        });
    }
    while let Some(finished) = running.join_next().await {
        match finished {
            Ok(Err(err)) => tracing::warn!(error = %err, "status check not recorded; it stays due"),
            Err(err) => tracing::warn!(error = %err, "status check task failed; it stays due"),
            Ok(Ok(())) => {}
        }
    }
    Ok(count)
}
