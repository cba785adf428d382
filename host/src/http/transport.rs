//! How requests reach the API: plain TCP or TLS (rustls, from the operator's
//! PEM files), and who the client is. Behind a proxy the operator trusts
//! (`trusted_proxies`), the client is the nearest untrusted address in
//! `X-Forwarded-For` and the request counts as secure unless the proxy says
//! `X-Forwarded-Proto: http`. Live keys need a secure request, or one from
//! loopback (`auth`).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::connect_info::Connected;
use axum::http::HeaderMap;
use axum::serve::{IncomingStream, Listener};
use ipnet::IpNet;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

/// A client has this long to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const READY_CONNECTIONS_MAX: usize = 1_024;

/// The other end of a connection, and whether it came over TLS.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    pub tls: bool,
}

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Peer {
        Peer { addr: *stream.remote_addr(), tls: false }
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Peer {
        Peer { addr: *stream.remote_addr(), tls: true }
    }
}

/// Who made a request, as far as the gateway can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    /// Over TLS, from loopback, or through a trusted proxy that did not say
    /// it received plain HTTP.
    pub secure: bool,
}

/// The client behind `peer`, trusting forwarding headers only from
/// `trusted_proxies`.
pub fn client(peer: &Peer, headers: &HeaderMap, trusted_proxies: &[IpNet]) -> Client {
    let peer_ip = peer.addr.ip().to_canonical();
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer_ip) {
        return Client { ip: peer_ip, secure: peer.tls || peer_ip.is_loopback() };
    }
    // Each proxy appends the address it received from: the client is the
    // right-most address no trusted proxy added.
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect();
    let ip = forwarded.iter().rev().find(|ip| !trusted(ip)).copied().unwrap_or(peer_ip);
    let plain = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("http"));
    Client { ip, secure: peer.tls || !plain }
}

/// The TLS acceptor for the operator's certificate chain and private key.
pub fn acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .with_context(|| format!("reading the certificate chain {}", cert_file.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing the certificate chain {}", cert_file.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{} holds no certificate", cert_file.display());
    let key = PrivateKeyDer::from_pem_file(key_file)
        .with_context(|| format!("reading the private key {}", key_file.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the private key does not match the certificate")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A listener whose connections are TLS streams. Handshakes run on their
/// own tasks (a slow client holds up nobody) and are dropped after
/// `HANDSHAKE_TIMEOUT` or on failure.
pub struct TlsListener {
    local_addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    acceptor_task: JoinHandle<()>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> Result<TlsListener> {
        let local_addr = tcp.local_addr()?;
        let (sender, ready) = mpsc::channel(READY_CONNECTIONS_MAX);
        let acceptor_task = tokio::spawn(async move {
            let mut tcp = tcp;
            loop {
                let (stream, addr) = Listener::accept(&mut tcp).await;
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = sender.send((tls, addr)).await;
                        }
                        Ok(Err(err)) => tracing::debug!(%addr, error = %err, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { local_addr, ready, acceptor_task })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor_task.abort();
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The acceptor task only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str, tls: bool) -> Peer {
        Peer { addr: SocketAddr::new(ip.parse().unwrap(), 40_000), tls }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap())).collect()
    }

    #[test]
    fn the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let spoofed = headers(&[("x-forwarded-for", "198.51.100.7")]);
        let direct = client(&peer("203.0.113.9", false), &spoofed, &proxies);
        assert_eq!(
            direct,
            Client { ip: "203.0.113.9".parse().unwrap(), secure: false },
            "headers from anyone else are ignored"
        );
        assert!(client(&peer("203.0.113.9", true), &spoofed, &proxies).secure);
        assert!(client(&peer("127.0.0.1", false), &spoofed, &proxies).secure, "loopback");
        assert!(client(&peer("::ffff:127.0.0.1", false), &HeaderMap::new(), &[]).secure, "mapped loopback");

        let chain =
            headers(&[("x-forwarded-for", "192.0.2.1, 198.51.100.7, 10.1.1.1"), ("x-forwarded-proto", "https")]);
        let proxied = client(&peer("10.0.0.2", false), &chain, &proxies);
        assert_eq!(proxied, Client { ip: "198.51.100.7".parse().unwrap(), secure: true });
        let plain = headers(&[("x-forwarded-for", "198.51.100.7"), ("x-forwarded-proto", "http")]);
        assert!(!client(&peer("10.0.0.2", false), &plain, &proxies).secure);
    }
}
