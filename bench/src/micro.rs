//! The plugin call on its own: instantiate the simulator component in a
//! fresh store and call `collect`, as the gateway does for every payment,
//! on one thread, without HTTP or the database.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use soxara::config::{PluginLimits, PluginSettings};
use soxara::metrics::Metrics;
use soxara::plugins::{CollectRequest, Money, PaymentMethod, PluginContext, Runtime};

pub struct Micro {
    pub calls: u64,
    pub elapsed: Duration,
    /// Nanoseconds per instantiate + call.
    pub latency: Histogram<u64>,
}

impl Micro {
    pub fn mean_micros(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e6 / self.calls as f64
    }

    pub fn percentile_micros(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Times `calls` instantiate + `collect` calls of the component at `path`.
pub fn instantiate_and_call(path: &Path, calls: u64) -> Result<Micro> {
    let limits = PluginLimits::default();
    let runtime = Runtime::new(limits, limits.memory_bytes_max, Arc::new(Metrics::default()), None)?;
    let rail = runtime
        .load_rail(path, PluginContext::new("simulator".into(), PluginSettings::default()))
        .with_context(|| format!("loading {}", path.display()))?;
    let request = CollectRequest {
        payment_id: "pay_bench".into(),
        money: Money { amount: 1250, currency: "USD".into() },
        method: PaymentMethod::MtnMomo,
        customer_phone: Some("+231770001234".into()),
        card: None,
        description: Some("bench".into()),
        created_at_ms: 0,
    };
    // Warm the code and the allocator before timing.
    for _ in 0..1_000 {
        rail.collect(&request)?.map_err(|f| anyhow::anyhow!("the simulator refused: {}", f.message))?;
    }
    let mut latency = Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid histogram bounds");
    let started = Instant::now();
    for _ in 0..calls {
        let call_started = Instant::now();
        let answer = rail.collect(&request)?;
        latency.saturating_record(u64::try_from(call_started.elapsed().as_nanos()).unwrap_or(u64::MAX));
        std::hint::black_box(answer).map_err(|f| anyhow::anyhow!("the simulator refused: {}", f.message))?;
    }
    Ok(Micro { calls, elapsed: started.elapsed(), latency })
}
