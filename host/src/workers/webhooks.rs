//! The delivery worker: takes due deliveries from the outbox
//! (`domain::webhooks::outbox`), sends them signed, logs every attempt, and
//! schedules retries. A delivery is leased (its next attempt pushed past
//! the send timeout) before it is sent, so a crash mid-send only means it
//! is sent again later: at least once. Deliveries reach only public
//! addresses (`domain::webhooks::targets`): the host is resolved once, its
//! addresses checked, and the connection made to exactly those.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::config::WebhookSettings;
use crate::domain::webhooks::outbox::{self, AttemptResult, Due};
use crate::domain::webhooks::{signing, targets};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::values::clock::Clock;
use crate::values::mode::Mode;

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
        let agent = agent(self.settings.allow_private_targets);
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
                let (delays, plain_http_live) =
                    (self.settings.retry_delays_ms.clone(), self.settings.allow_plain_http_live);
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
                        tokio::task::spawn_blocking(move || send(&agent, &to_send, plain_http_live, now_s))
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

/// The agent deliveries go out through: no proxy (it would connect on our
/// behalf, past the address check), no redirects (a public endpoint could
/// send us on to an internal one), a deadline, and unless the operator
/// allows private targets (tests, a private network), only public
/// addresses.
fn agent(allow_private: bool) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(DELIVERY_TIMEOUT_MS)))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .build();
    if allow_private {
        ureq::Agent::new_with_config(config)
    } else {
        ureq::Agent::with_parts(config, DefaultConnector::default(), PublicOnly)
    }
}

/// Resolves a delivery's host and refuses it if any address it resolves to
/// is special-purpose. ureq connects to exactly the addresses returned here,
/// so a second, different DNS answer (rebinding) is never used.
#[derive(Debug)]
struct PublicOnly;

/// Why a delivery was not sent. It names no address: the attempt log is
/// the merchant's to read, and must not map the gateway's network.
const REFUSED_TARGET: &str = "refused: the endpoint's host resolves to a loopback, private or other special-purpose \
                              address; webhooks go to public addresses only";

#[derive(Debug, thiserror::Error)]
#[error("{REFUSED_TARGET}")]
struct RefusedTarget;

impl Resolver for PublicOnly {
    fn resolve(&self, uri: &Uri, config: &Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addresses = DefaultResolver::default().resolve(uri, config, timeout)?;
        if addresses.iter().any(|address| targets::is_special_purpose(address.ip())) {
            return Err(ureq::Error::Other(Box::new(RefusedTarget)));
        }
        Ok(addresses)
    }
}

/// Sends one delivery, signed at the moment of sending (`timestamp_s`).
fn send(agent: &ureq::Agent, due: &Due, plain_http_live: bool, timestamp_s: i64) -> AttemptResult {
    let refused =
        |why: &str| AttemptResult { status_code: None, latency_ms: 0, excerpt: None, error: Some(why.into()) };
    if due.mode == Mode::Live && !targets::is_https(&due.url) && !plain_http_live {
        return refused("refused: live webhook endpoints must use https");
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
    let result = request.body(due.payload.as_bytes().to_vec()).map_err(|e| e.to_string()).and_then(|r| {
        agent.run(r).map_err(|err| match err {
            ureq::Error::Other(other) if other.is::<RefusedTarget>() => REFUSED_TARGET.to_string(),
            other => other.to_string(),
        })
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The check is made on the addresses the connection will use: a name
    /// (not a literal address) that resolves to loopback is refused when it
    /// is resolved, before any connection.
    #[test]
    fn names_resolving_to_internal_addresses_are_refused_when_resolved() {
        let agent = agent(false);
        for url in ["http://localhost:1/hooks", "http://127.0.0.1:1/hooks", "http://[::1]:1/hooks"] {
            match agent.post(url).send("{}") {
                Err(ureq::Error::Other(err)) => assert!(err.is::<RefusedTarget>(), "{url}: {err}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}
