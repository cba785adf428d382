//! How requests reach the gateway: HTTPS from the operator's certificate,
//! live keys refused over plain HTTP unless from a configured secure peer
//! or a trusted proxy that says exactly `https`, the client address behind
//! a trusted proxy, and every rule failing closed.

use std::sync::Arc;

use reqwest::Method;
use serde_json::json;
use soxara::config::{FileConfig, TlsSettings};
use soxara::domain::keys::KeyKind;
use soxara::values::mode::Mode;
use soxara_tests::{TestApp, spawn_app, spawn_app_exactly, spawn_app_with};

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls").join(name)
}

/// A blocking client that trusts only the test certificate.
fn tls_client() -> ureq::Agent {
    let pem = std::fs::read(fixture("cert.pem")).unwrap();
    let cert = ureq::tls::Certificate::from_pem(&pem).unwrap().to_owned();
    let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert]))).build();
    ureq::Agent::config_builder().tls_config(tls).http_status_as_error(false).build().into()
}

/// GET `url` with `key`; (status, body).
async fn get(agent: &ureq::Agent, url: String, key: String) -> Result<(u16, serde_json::Value), String> {
    let agent = agent.clone();
    tokio::task::spawn_blocking(move || {
        let mut response =
            agent.get(&url).header("Authorization", format!("Bearer {key}")).call().map_err(|e| e.to_string())?;
        let body = response.body_mut().read_json().unwrap_or(serde_json::Value::Null);
        Ok((response.status().as_u16(), body))
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_api_is_served_over_https_from_the_configured_certificate() {
    let config = FileConfig {
        tls: Some(TlsSettings { cert_file: fixture("cert.pem"), key_file: fixture("key.pem") }),
        ..FileConfig::default()
    };
    let app = spawn_app_with(config).await;
    let live = app.create_key(&app.merchant_id, Mode::Live, KeyKind::Secret).await;
    let https = app.base.replacen("http://", "https://", 1);
    let agent = tls_client();

    let (status, body) = get(&agent, format!("{https}/v1/account"), app.key.clone()).await.expect("an HTTPS answer");
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&agent, format!("{https}/v1/account"), live).await.expect("an HTTPS answer");
    assert_eq!((status, body["key"]["mode"].as_str()), (200, Some("live")), "{body}");

    // Plain HTTP on the TLS port gets no API answer.
    let plain = get(&ureq::agent(), format!("{}/health", app.base), String::new()).await;
    assert!(!matches!(plain, Ok((200, _))), "{plain:?}");
    // Nor does a client that does not trust the certificate.
    let untrusted = get(&ureq::agent(), format!("{https}/health"), String::new()).await;
    assert!(untrusted.is_err(), "{untrusted:?}");
}

#[tokio::test]
async fn a_bad_certificate_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = FileConfig::default();
    file.admin.listen = "127.0.0.1:0".parse().unwrap();
    file.tls = Some(TlsSettings { cert_file: dir.path().join("missing.pem"), key_file: fixture("key.pem") });
    let config = soxara::app::Config {
        database: dir.path().join("g.db"),
        listen: "127.0.0.1:0".parse().unwrap(),
        plugin_dir: soxara_tests::plugin_dir(),
        file: file.clone(),
        clock: Default::default(),
    };
    let err = soxara::app::start(config).await.err().expect("no start without the certificate");
    assert!(format!("{err:#}").contains("missing.pem"), "{err:#}");

    // The key of another certificate (here: the certificate itself) is refused too.
    file.tls = Some(TlsSettings { cert_file: fixture("cert.pem"), key_file: fixture("cert.pem") });
    let config = soxara::app::Config {
        database: dir.path().join("g.db"),
        listen: "127.0.0.1:0".parse().unwrap(),
        plugin_dir: soxara_tests::plugin_dir(),
        file,
        clock: Default::default(),
    };
    assert!(soxara::app::start(config).await.is_err());
}

/// A gateway that believes forwarding headers from loopback (as from a
/// TLS-terminating proxy on the same machine).
async fn behind_a_proxy() -> TestApp {
    let config = FileConfig { trusted_proxies: vec!["127.0.0.1".into(), "::1".into()], ..FileConfig::default() };
    spawn_app_with(config).await
}

async fn account_via_proxy(app: &TestApp, key: &str, forwarded: &[(&str, &str)]) -> soxara_tests::Answer {
    let mut request = app.client.get(format!("{}/v1/account", app.base)).bearer_auth(key);
    for (name, value) in forwarded {
        request = request.header(*name, *value);
    }
    soxara_tests::answer(request.send().await.unwrap()).await
}

#[tokio::test]
async fn live_keys_need_https_and_test_keys_do_not() {
    let app = behind_a_proxy().await;
    let live = app.create_key(&app.merchant_id, Mode::Live, KeyKind::Secret).await;
    let plain = [("x-forwarded-for", "198.51.100.7"), ("x-forwarded-proto", "http")];
    let refused = account_via_proxy(&app, &live, &plain).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "HTTPS_REQUIRED"), "{:?}", refused.body);
    assert_eq!(account_via_proxy(&app, &app.key, &plain).await.status, 200, "test keys may use plain HTTP");
    let secure = [("x-forwarded-for", "198.51.100.7"), ("x-forwarded-proto", "https")];
    assert_eq!(account_via_proxy(&app, &live, &secure).await.status, 200);

    // Only one exact `https` counts: a missing, listed or repeated header is plain.
    for unclear in [
        vec![("x-forwarded-for", "198.51.100.7")],
        vec![("x-forwarded-for", "198.51.100.7"), ("x-forwarded-proto", "https, http")],
        vec![("x-forwarded-for", "198.51.100.7"), ("x-forwarded-proto", "https"), ("x-forwarded-proto", "https")],
    ] {
        let refused = account_via_proxy(&app, &live, &unclear).await;
        assert_eq!(refused.code(), "HTTPS_REQUIRED", "{unclear:?}");
    }
}

#[tokio::test]
async fn loopback_is_not_trusted_unless_the_operator_says_so() {
    let direct = spawn_app_exactly(FileConfig::default()).await;
    let live = direct.create_key(&direct.merchant_id, Mode::Live, KeyKind::Secret).await;
    let refused = account_via_proxy(&direct, &live, &[]).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "HTTPS_REQUIRED"), "{:?}", refused.body);
    assert_eq!(account_via_proxy(&direct, &direct.key, &[]).await.status, 200, "test keys may use plain HTTP");
    let metrics = direct.client.get(format!("{}/metrics", direct.base)).send().await.unwrap();
    assert_eq!(metrics.status(), 404, "nobody reads /metrics by default");

    // An operator with a TLS sidecar on loopback says so.
    let config = FileConfig {
        secure_peers: vec!["127.0.0.1".into(), "::1".into()],
        metrics_from: vec!["127.0.0.1".into(), "::1".into()],
        ..FileConfig::default()
    };
    let sidecar = spawn_app_exactly(config).await;
    let live = sidecar.create_key(&sidecar.merchant_id, Mode::Live, KeyKind::Secret).await;
    assert_eq!(account_via_proxy(&sidecar, &live, &[]).await.status, 200);
    let metrics = sidecar.client.get(format!("{}/metrics", sidecar.base)).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
}

#[tokio::test]
async fn a_malformed_forwarding_chain_from_the_proxy_is_refused() {
    let app = behind_a_proxy().await;
    let key = allowlisted_key(&app).await;
    // A spoofed allowed address ahead of garbage must not become the client.
    for chain in ["198.51.100.7, not-an-address", "198.51.100.7, unknown, 127.0.0.1", "198.51.100.7:443"] {
        let refused = account_via_proxy(&app, &key, &[("x-forwarded-for", chain)]).await;
        assert_eq!((refused.status.as_u16(), refused.code()), (400, "FORWARDING_HEADER_INVALID"), "{chain:?}");
    }
    let allowed = account_via_proxy(&app, &key, &[("x-forwarded-for", "192.0.2.1, 198.51.100.7")]).await;
    assert_eq!(allowed.status, 200, "{:?}", allowed.body);
}

/// A test secret key of a new merchant, usable only from `198.51.100.0/24`.
async fn allowlisted_key(app: &TestApp) -> String {
    let made = app.admin(Method::POST, "/admin/merchants", Some(json!({ "name": "Proxy shop", "kyc_tier": 2 }))).await;
    let id = made.body["id"].as_str().unwrap();
    let request = json!({ "mode": "test", "ip_allowlist": ["198.51.100.0/24"] });
    let pair = app.admin(Method::POST, &format!("/admin/merchants/{id}/keys"), Some(request)).await;
    pair.body["secret_key"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn allowlists_see_the_client_behind_a_trusted_proxy_and_ignore_headers_from_others() {
    let app = behind_a_proxy().await;
    let key = allowlisted_key(&app).await;
    let allowed = account_via_proxy(&app, &key, &[("x-forwarded-for", "198.51.100.7")]).await;
    assert_eq!(allowed.status, 200, "{:?}", allowed.body);
    let other = account_via_proxy(&app, &key, &[("x-forwarded-for", "192.0.2.1")]).await;
    assert_eq!(other.code(), "IP_NOT_ALLOWED");
    assert!(other.body["error"]["message"].as_str().unwrap().contains("192.0.2.1"));

    // A gateway that trusts no proxy ignores the header: the client is loopback.
    let direct = spawn_app().await;
    let key = allowlisted_key(&direct).await;
    let spoofed = account_via_proxy(&direct, &key, &[("x-forwarded-for", "198.51.100.7")]).await;
    assert_eq!(spoofed.code(), "IP_NOT_ALLOWED", "a spoofed header does not pass the allowlist");
}
