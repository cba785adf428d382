//! Metrics: counts and latency histograms of HTTP requests and plugin calls,
//! and the rounds each background worker finished, served on `/metrics` in the OpenMetrics text format that Prometheus
//! scrapes. Recording is a few atomic operations; nothing here blocks.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Histogram buckets in seconds: 50 µs doubling to about 1.6 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_05, 2.0, 16)
}

fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginCallLabels {
    plugin: String,
    export: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    plugin: String,
    export: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker: String,
}

type LatencyFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_latency: LatencyFamily<RouteLabels>,
    plugin_calls: Family<PluginCallLabels, Counter>,
    plugin_latency: LatencyFamily<PluginLabels>,
    worker_rounds: Family<WorkerLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("soxara");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_latency: LatencyFamily<RouteLabels> = Family::new_with_constructor(latency_histogram);
        let plugin_calls = Family::<PluginCallLabels, Counter>::default();
        let plugin_latency: LatencyFamily<PluginLabels> = Family::new_with_constructor(latency_histogram);
        registry.register("http_requests", "HTTP requests by route, method and status", http_requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", http_latency.clone());
        registry.register(
            "plugin_calls",
            "Plugin calls by plugin, export and outcome (ok, failure, timeout, memory, trap, malformed, host)",
            plugin_calls.clone(),
        );
        registry.register("plugin_call_duration_seconds", "Plugin call latency", plugin_latency.clone());
        let worker_rounds = Family::<WorkerLabels, Counter>::default();
        registry.register("worker_rounds", "Rounds each background worker finished", worker_rounds.clone());
        Metrics { registry, http_requests, http_latency, plugin_calls, plugin_latency, worker_rounds }
    }
}

impl Metrics {
    /// One HTTP request: `route` is the route template (`/v1/payments/{id}`).
    pub fn http_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let labels = HttpLabels { route: route.to_string(), method: method.to_string(), status };
        self.http_requests.get_or_create(&labels).inc();
        self.http_latency.get_or_create(&RouteLabels { route: route.to_string() }).observe(seconds);
    }

    /// One plugin call and how it ended.
    pub fn plugin_call(&self, plugin: &str, export: &str, outcome: &str, seconds: f64) {
        let labels =
            PluginCallLabels { plugin: plugin.to_string(), export: export.to_string(), outcome: outcome.to_string() };
        self.plugin_calls.get_or_create(&labels).inc();
        let labels = PluginLabels { plugin: plugin.to_string(), export: export.to_string() };
        self.plugin_latency.get_or_create(&labels).observe(seconds);
    }

    /// A background worker finished a round (whatever it found to do).
    pub fn worker_round(&self, worker: &str) {
        self.worker_rounds.get_or_create(&WorkerLabels { worker: worker.to_string() }).inc();
    }

    /// Rounds a background worker has finished so far.
    pub fn worker_rounds(&self, worker: &str) -> u64 {
        self.worker_rounds.get_or_create(&WorkerLabels { worker: worker.to_string() }).get()
    }

    /// Everything, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_what_was_recorded() {
        let metrics = super::Metrics::default();
        metrics.plugin_call("simulator", "collect", "ok", 0.000_2);
        metrics.http_request("/v1/payments", "POST", 201, 0.003);
        let text = metrics.encode();
        assert!(
            text.contains(r#"soxara_plugin_calls_total{plugin="simulator",export="collect",outcome="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"soxara_http_requests_total{route="/v1/payments",method="POST",status="201"} 1"#),
            "{text}"
        );
        assert!(text.contains("soxara_plugin_call_duration_seconds_bucket"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
