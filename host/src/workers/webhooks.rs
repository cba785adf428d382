//! The delivery worker: takes due deliveries from the outbox
//! (`domain::webhooks::outbox`), sends them signed, logs every attempt, and
//! schedules retries. A delivery is leased (its next attempt pushed past
//! the send timeout) before it is sent, so a crash mid-send only means it
//! is sent again later: at least once.

use std::collections::HashMap;
use std::io::Read;
use std::net::ToSocketAddrs;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::WebhookSettings;
use crate::domain::webhooks::outbox::{self, AttemptResult, Due};
use crate::domain::webhooks::{is_internal_ip, signing};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::values::clock::Clock;

/// A merchant's endpoint must answer within this, or the attempt fails.
pub const DELIVERY_TIMEOUT_MS: u64 = 15_000;
/// Deliveries being sent at once; a slow endpoint holds one slot, not all.
const DELIVERIES_IN_FLIGHT_MAX: usize = 32;
/// Bytes of the endpoint's response kept in the attempt log.
const RESPONSE_EXCERPT_BYTES_MAX: u64 = 512;
/// A leased delivery is retried after this if its sender vanished.
const LEASE_MS: i64 = DELIVERY_TIMEOUT_MS as i64 + 5_000;

/// Deliveries leased and not yet recorded: id → the lease it holds.
type Leases = Arc<Mutex<HashMap<String, i64>>>;

/// The running worker; `stop` ends it.
pub struct Worker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    store: Store,
    clock: Clock,
    leases: Leases,
}

impl Worker {
    pub fn spawn(store: Store, clock: Clock, settings: WebhookSettings, metrics: Arc<Metrics>) -> Worker {
        let (stop, stopped) = watch::channel(false);
        let leases = Leases::default();
        let sender = Sender { store: store.clone(), clock: clock.clone(), settings, leases: Arc::clone(&leases) };
        let task = tokio::spawn(sender.run(stopped, metrics));
        Worker { stop, task, store, clock, leases }
    }

    /// Stops taking deliveries, abandons any in flight, and hands their
    /// leases back so the next start sends them at once. (After a crash
    /// the leases simply expire.)
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.abort();
        let _ = self.task.await;
        let leases: Vec<(String, i64)> = self.leases.lock().expect("never poisoned").drain().collect();
        let clock = self.clock.clone();
        let released = self.store.write(move |conn| outbox::release(conn, &leases, clock.now_ms())).await;
        if let Err(err) = released {
            tracing::warn!(error = %err, "webhook leases not released; they expire on their own");
        }
    }
}

struct Sender {
    store: Store,
    clock: Clock,
    settings: WebhookSettings,
    leases: Leases,
}

impl Sender {
    async fn run(self, mut stopped: watch::Receiver<bool>, metrics: Arc<Metrics>) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(DELIVERY_TIMEOUT_MS)))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let mut sends = JoinSet::new();
        loop {
            while sends.try_join_next().is_some() {}
            let capacity = DELIVERIES_IN_FLIGHT_MAX.saturating_sub(sends.len());
            let due = if capacity == 0 {
                Vec::new()
            } else {
                let clock = self.clock.clone();
                let leased = self.store.write(move |conn| {
                    let now_ms = clock.now_ms();
                    outbox::lease_due(conn, now_ms, now_ms.saturating_add(LEASE_MS), capacity)
                });
                leased.await.unwrap_or_else(|err| {
                    tracing::error!(error = %err, "webhook worker could not read the outbox");
                    Vec::new()
                })
            };
            let leased_any = !due.is_empty();
            for delivery in due {
                self.leases.lock().expect("never poisoned").insert(delivery.delivery_id.clone(), delivery.lease_ms);
                let (store, clock, agent, leases) =
                    (self.store.clone(), self.clock.clone(), agent.clone(), Arc::clone(&self.leases));
                let (delays, allow_private) =
                    (self.settings.retry_delays_ms.clone(), self.settings.allow_private_targets);
                sends.spawn(async move {
                    let attempt = if delivery.endpoint_deleted {
                        AttemptResult {
                            status_code: None,
                            latency_ms: 0,
                            excerpt: None,
                            error: Some("endpoint deleted".into()),
                        }
                    } else {
                        let (to_send, now_s) = (delivery.clone(), clock.now_ms() / 1000);
                        tokio::task::spawn_blocking(move || send(&agent, &to_send, allow_private, now_s))
                            .await
                            .unwrap_or_else(|e| AttemptResult {
                                status_code: None,
                                latency_ms: 0,
                                excerpt: None,
                                error: Some(format!("sender panicked: {e}")),
                            })
                    };
                    let id = delivery.delivery_id.clone();
                    let final_failure = delivery.endpoint_deleted;
                    let recorded = store.write(move |conn| {
                        outbox::record(conn, &delivery, &attempt, &delays, final_failure, clock.now_ms())
                    });
                    if let Err(err) = recorded.await {
                        tracing::error!(error = %err, "webhook attempt not recorded; it will be sent again");
                    }
                    leases.lock().expect("never poisoned").remove(&id);
                });
            }
            metrics.worker_round("webhooks");
            if !leased_any {
                tokio::select! {
                    _ = self.clock.sleep_ms(self.settings.poll_interval_ms) => {}
                    _ = sends.join_next(), if !sends.is_empty() => {}
                    _ = stopped.changed() => return,
                }
            }
        }
    }
}

/// Sends one delivery, signed at the moment of sending (`timestamp_s`).
fn send(agent: &ureq::Agent, due: &Due, allow_private: bool, timestamp_s: i64) -> AttemptResult {
    if !allow_private && let Err(refusal) = public_target(&due.url) {
        return AttemptResult { status_code: None, latency_ms: 0, excerpt: None, error: Some(refusal) };
    }
    let delivery = signing::Delivery {
        event_id: &due.event_id,
        delivery_id: &due.delivery_id,
        event_type: &due.event_type,
        timestamp_s,
        body: due.payload.as_bytes(),
    };
    let secrets: Vec<&str> = due.secrets.iter().map(String::as_str).collect();
    let mut request = ureq::http::Request::builder().method("POST").uri(&due.url);
    for (name, value) in signing::headers(&delivery, &secrets) {
        request = request.header(name, value);
    }
    let started = Instant::now();
    let result = request
        .body(due.payload.as_bytes().to_vec())
        .map_err(|e| e.to_string())
        .and_then(|r| agent.run(r).map_err(|e| e.to_string()));
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    match result {
        Ok(response) => {
            let status_code = response.status().as_u16();
            let mut excerpt = Vec::new();
            let _ = response.into_body().into_reader().take(RESPONSE_EXCERPT_BYTES_MAX).read_to_end(&mut excerpt);
            AttemptResult {
                status_code: Some(status_code),
                latency_ms,
                excerpt: Some(String::from_utf8_lossy(&excerpt).into_owned()),
                error: None,
            }
        }
        Err(error) => AttemptResult { status_code: None, latency_ms, excerpt: None, error: Some(error) },
    }
}

/// Refuses a URL whose host resolves to a loopback, private, link-local or
/// otherwise internal address: webhooks must not become a way to reach the
/// gateway's own network. (The address is resolved again to connect, so a
/// host that changes its DNS answer in between is not caught here.)
fn public_target(url: &str) -> Result<(), String> {
    let uri: ureq::http::Uri = url.parse().map_err(|_| format!("not a URL: {url}"))?;
    let host = uri.host().ok_or("the URL has no host")?.trim_matches(|c| c == '[' || c == ']');
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    let addresses = (host, port).to_socket_addrs().map_err(|e| format!("cannot resolve {host}: {e}"))?;
    for address in addresses {
        if is_internal_ip(address.ip()) {
            return Err(format!("refused: {host} resolves to the internal address {}", address.ip()));
        }
    }
    Ok(())
}
