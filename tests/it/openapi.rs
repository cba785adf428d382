//! The OpenAPI document: served, and equal to the checked-in copy.

use std::path::Path;

use soxara_tests::spawn_app;

/// docs/openapi.json, beside the API reference.
fn checked_in() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

/// The document the gateway serves is docs/openapi.json, byte for byte, so
/// the published document cannot drift from the code. After changing the
/// API, regenerate it with `cargo run -q --bin soxara -- openapi >
/// docs/openapi.json` (or run this test with `SOXARA_WRITE_OPENAPI=1`).
#[tokio::test]
async fn the_served_document_is_the_checked_in_one() {
    let app = spawn_app().await;
    let answer = app.client.get(format!("{}/openapi.json", app.base)).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "application/json");
    let served = answer.text().await.unwrap();
    let document: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    if std::env::var_os("SOXARA_WRITE_OPENAPI").is_some() {
        std::fs::write(checked_in(), &served).unwrap();
    }
    let on_disk = std::fs::read_to_string(checked_in()).unwrap_or_default();
    assert!(
        on_disk == served,
        "docs/openapi.json differs from what the gateway serves; regenerate it with \
         `cargo run -q --bin soxara -- openapi > docs/openapi.json` and review the diff"
    );
}
