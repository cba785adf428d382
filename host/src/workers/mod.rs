//! Background workers: loops that act as the clock runs — status checks of
//! operations a rail left processing, settlement batches, the transfer
//! sweep, webhook deliveries. Each waits on the application's clock and
//! counts its finished rounds (`soxara_worker_rounds_total{worker}`), so
//! tests move the clock and wait for a round instead of sleeping.
//!
//! May call: `operations`, `domain`, `store`, `plugins`, `values`, `config`.

pub mod settlements;
pub mod status_checks;
pub mod transfers;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::values::clock::Clock;

/// A running worker; `stop` ends it at once (work cut short is due again
/// at the next start).
pub struct Worker {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Worker {
    /// A worker that never runs (switched off by configuration).
    pub fn none() -> Worker {
        Worker { stop: watch::channel(false).0, task: None }
    }

    /// Runs `round` after `first_ms`, then every `every_ms`, on `clock`
    /// (and at once whenever `wake` is notified), counting finished rounds
    /// as `name`, until stopped.
    pub fn every<F, Fut>(
        name: &'static str,
        clock: Clock,
        metrics: Arc<Metrics>,
        first_ms: u64,
        every_ms: u64,
        wake: Option<Arc<Notify>>,
        mut round: F,
    ) -> Worker
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut wait_ms = first_ms;
            // A worker nobody wakes waits on a notice that never comes.
            let wake = wake.unwrap_or_default();
            loop {
                tokio::select! {
                    _ = clock.sleep_ms(wait_ms) => {}
                    _ = wake.notified() => {}
                    _ = stopped.changed() => return,
                }
                round().await;
                metrics.worker_round(name);
                wait_ms = every_ms;
            }
        });
        Worker { stop, task: Some(task) }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task {
            task.abort();
            let _ = task.await;
        }
    }
}
