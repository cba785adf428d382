//! How requests reach the API: plain TCP or TLS (rustls, from the operator's
//! PEM files), and who the client is. Everything here fails closed: behind
//! a proxy the operator trusts (`trusted_proxies`), the client is the
//! nearest untrusted address in `X-Forwarded-For` (a chain with any entry
//! that is not an IP address is refused, never skipped), and the request
//! counts as secure only if the proxy sent exactly one
//! `X-Forwarded-Proto: https`. A direct request is secure over TLS, or from
//! a peer the operator names in `secure_peers` (a TLS-terminating sidecar on
//! loopback); loopback is not trusted by default. Live keys need a secure
//! request (`auth`).

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
use tokio::sync::{Semaphore, mpsc};
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

/// Whom the operator trusts about a request's origin.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    pub proxies: Vec<IpNet>,
    /// Direct peers whose plain HTTP counts as secure.
    pub secure_peers: Vec<IpNet>,
}

fn contains(nets: &[IpNet], ip: &IpAddr) -> bool {
    nets.iter().any(|net| net.contains(ip))
}

/// Who made a request, as far as the gateway can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    /// Over TLS, from a configured secure peer, or through a trusted proxy
    /// that said exactly `https`.
    pub secure: bool,
}

/// A trusted proxy sent a forwarding chain that is not a list of IP
/// addresses: refused, since skipping an entry could let a spoofed one
/// stand in for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedForwarding;

/// The client behind `peer`, believing forwarding headers only from
/// `trust.proxies`.
pub fn client(peer: &Peer, headers: &HeaderMap, trust: &Trust) -> Result<Client, MalformedForwarding> {
    let peer_ip = peer.addr.ip().to_canonical();
    if !contains(&trust.proxies, &peer_ip) {
        return Ok(Client { ip: peer_ip, secure: peer.tls || contains(&trust.secure_peers, &peer_ip) });
    }
    // Each proxy appends the address it received from: the client is the
    // right-most address no trusted proxy added.
    let mut forwarded = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let value = value.to_str().map_err(|_| MalformedForwarding)?;
        for entry in value.split(',') {
            let ip = entry.trim().parse::<IpAddr>().map_err(|_| MalformedForwarding)?;
            forwarded.push(ip.to_canonical());
        }
    }
    let ip = forwarded.iter().rev().find(|ip| !contains(&trust.proxies, ip)).or(forwarded.first());
    let mut protos = headers.get_all("x-forwarded-proto").iter();
    let https = match (protos.next(), protos.next()) {
        (Some(only), None) => only.to_str().is_ok_and(|proto| proto.trim().eq_ignore_ascii_case("https")),
        _ => false,
    };
    Ok(Client { ip: ip.copied().unwrap_or(peer_ip), secure: https })
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
/// own tasks (a slow client holds up nobody), at most `handshakes_max` at
/// once (more wait in the kernel's backlog), and are dropped after
/// `HANDSHAKE_TIMEOUT` or on failure.
pub struct TlsListener {
    local_addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    acceptor_task: JoinHandle<()>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor, handshakes_max: usize) -> Result<TlsListener> {
        let local_addr = tcp.local_addr()?;
        let (sender, ready) = mpsc::channel(READY_CONNECTIONS_MAX);
        let handshakes = Arc::new(Semaphore::new(handshakes_max));
        let acceptor_task = tokio::spawn(async move {
            let mut tcp = tcp;
            loop {
                let slot = Arc::clone(&handshakes).acquire_owned().await.expect("the semaphore is never closed");
                let (stream, addr) = Listener::accept(&mut tcp).await;
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    let _slot = slot;
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
        let trust = Trust { proxies: vec!["10.0.0.0/8".parse().unwrap()], secure_peers: Vec::new() };
        let spoofed = headers(&[("x-forwarded-for", "198.51.100.7"), ("x-forwarded-proto", "https")]);
        let direct = client(&peer("203.0.113.9", false), &spoofed, &trust);
        assert_eq!(
            direct,
            Ok(Client { ip: "203.0.113.9".parse().unwrap(), secure: false }),
            "headers from anyone else are ignored"
        );
        assert!(client(&peer("203.0.113.9", true), &spoofed, &trust).unwrap().secure);
        assert!(!client(&peer("127.0.0.1", false), &spoofed, &trust).unwrap().secure, "loopback is not trusted");
        let sidecar = Trust { secure_peers: vec!["127.0.0.1/32".parse().unwrap()], ..trust.clone() };
        assert!(client(&peer("::ffff:127.0.0.1", false), &HeaderMap::new(), &sidecar).unwrap().secure, "mapped");

        let chain =
            headers(&[("x-forwarded-for", "192.0.2.1, 198.51.100.7, 10.1.1.1"), ("x-forwarded-proto", "https")]);
        let proxied = client(&peer("10.0.0.2", false), &chain, &trust);
        assert_eq!(proxied, Ok(Client { ip: "198.51.100.7".parse().unwrap(), secure: true }));
    }

    #[test]
    fn only_one_exact_https_from_a_trusted_proxy_is_secure() {
        let trust = Trust { proxies: vec!["10.0.0.0/8".parse().unwrap()], secure_peers: Vec::new() };
        let secure = |pairs: &[(&str, &str)]| client(&peer("10.0.0.2", true), &headers(pairs), &trust).unwrap().secure;
        assert!(secure(&[("x-forwarded-proto", "HTTPS")]));
        assert!(!secure(&[]), "missing: not secure, even over TLS from the proxy");
        assert!(!secure(&[("x-forwarded-proto", "http")]));
        assert!(!secure(&[("x-forwarded-proto", "https, http")]));
        assert!(!secure(&[("x-forwarded-proto", "https"), ("x-forwarded-proto", "https")]), "two headers");
        assert!(!secure(&[("x-forwarded-proto", "httpsx")]));
    }

    #[test]
    fn a_malformed_forwarding_chain_is_refused_not_skipped() {
        let trust = Trust { proxies: vec!["10.0.0.0/8".parse().unwrap()], secure_peers: Vec::new() };
        for chain in ["198.51.100.7, garbage, 10.1.1.1", "198.51.100.7,,10.1.1.1", "unknown", "198.51.100.7:443", ""] {
            let got = client(&peer("10.0.0.2", false), &headers(&[("x-forwarded-for", chain)]), &trust);
            assert_eq!(got, Err(MalformedForwarding), "{chain:?}");
        }
        // Two header lines are one list, in order.
        let mut two = headers(&[("x-forwarded-for", "192.0.2.1")]);
        two.append("x-forwarded-for", "198.51.100.7".parse().unwrap());
        assert_eq!(
            client(&peer("10.0.0.2", false), &two, &trust).unwrap().ip,
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // All trusted: the left-most is the client.
        let inside = headers(&[("x-forwarded-for", "10.9.9.9, 10.1.1.1")]);
        assert_eq!(
            client(&peer("10.0.0.2", false), &inside, &trust).unwrap().ip,
            "10.9.9.9".parse::<IpAddr>().unwrap()
        );
    }
}
