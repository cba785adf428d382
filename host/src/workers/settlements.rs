//! The settlement worker: runs a batch when `[settlement] interval_ms` has
//! passed since the last one (by the clock and the database, so restarts
//! neither skip nor repeat it); not at all when 0. It looks a second after
//! the start, then at least once a minute.

use std::sync::Arc;

use super::Worker;
use crate::config::SettlementSettings;
use crate::metrics::Metrics;
use crate::operations::{Context, settlement_batches};

/// The longest wait between two looks at whether a batch is due.
const LOOK_EVERY_MS_MAX: u64 = 60_000;
/// The first look, once the gateway has started.
const FIRST_LOOK_MS: u64 = 1_000;

pub fn spawn(ctx: Context, settings: SettlementSettings, metrics: Arc<Metrics>) -> Worker {
    if settings.interval_ms == 0 {
        return Worker::none();
    }
    let clock = ctx.clock.clone();
    let every_ms = settings.interval_ms.min(LOOK_EVERY_MS_MAX);
    Worker::every("settlements", clock, metrics, FIRST_LOOK_MS, every_ms, None, move || {
        let ctx = ctx.clone();
        async move {
            match settlement_batches::run_if_due(&ctx, settings).await {
                Ok(Some(batch)) => tracing::info!(
                    settlements = batch.settlements.len(),
                    skipped = batch.skipped.len(),
                    "settlement batch"
                ),
                Ok(None) => {}
                Err(err) => tracing::error!(error = %err, "settlement batch failed; the next look retries"),
            }
        }
    })
}
