//! Serving connections within limits, so that slow or numerous clients
//! cannot starve the rest (a slow-loris client holds connections open by
//! sending its request a byte at a time):
//! - at most `connections_max` connections at once; more wait in the
//!   kernel's accept backlog until one closes;
//! - a request's headers must arrive within `header_read_timeout_ms` of the
//!   server starting to read them (which also closes a keep-alive
//!   connection idle that long);
//! - its whole body within `body_read_timeout_ms` of the headers
//!   (`408 REQUEST_TIMEOUT`, from `extract::read_body`);
//! - TLS handshakes are capped separately (`transport::TlsListener`).
//!
//! HTTP/1.1, served by hyper; the connection's peer goes to handlers as
//! `ConnectInfo<Peer>`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use super::transport::Peer;
use crate::config::ListenerSettings;

/// Serves `router` on `listener` (whose connections are TLS if `tls`) until
/// `shutdown` completes; then lets open connections finish their requests.
pub async fn serve<L>(
    mut listener: L,
    tls: bool,
    router: Router,
    limits: ListenerSettings,
    shutdown: impl Future<Output = ()>,
) where
    L: Listener<Addr = SocketAddr>,
{
    let connections = Arc::new(Semaphore::new(limits.connections_max));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms));
    let body_timeout = Duration::from_millis(limits.body_read_timeout_ms);
    let (closing, _) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (io, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let peer = Peer { addr, tls };
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let deadline = Instant::now() + body_timeout;
            let mut request = request.map(|body| Body::new(DeadlineBody { inner: body, deadline, sleep: None }));
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let connection = http.serve_connection(TokioIo::new(io), service);
        let mut closing = closing.subscribe();
        tokio::spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = closing.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(permit);
        });
    }
    let _ = closing.send(());
    // Every permit back: every connection has closed.
    let all = u32::try_from(limits.connections_max).unwrap_or(u32::MAX);
    let _ = connections.acquire_many(all).await;
}

/// A request body that fails once its deadline passes: a limit on the whole
/// body, which a client cannot stretch by sending a byte now and then.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    /// Made on the first read: most requests have no body to wait for.
    sleep: Option<Pin<Box<Sleep>>>,
}

/// What a body read past its deadline fails with (`extract::read_body`
/// answers `408`).
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
