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

/// A tool of the API tests' Python environment (installed by `cargo xtask
/// test` on first use).
fn api_tool(name: &str) -> std::path::PathBuf {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/api-tools/bin").join(name);
    assert!(tool.exists(), "{} is missing: `cargo xtask test` installs it into target/api-tools/", tool.display());
    tool
}

/// The checked-in document (the served one, by the test above) is valid
/// OpenAPI 3.1.
#[test]
fn the_document_is_valid_openapi_3_1() {
    let output = std::process::Command::new(api_tool("openapi-spec-validator"))
        .arg("--schema")
        .arg("3.1")
        .arg(checked_in())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "docs/openapi.json is not valid OpenAPI 3.1:\n{report}");
}

/// Schemathesis against the running gateway, every operation of the
/// document and every check: schema-valid requests accepted, invalid ones
/// refused with a 4xx, no server errors, every answer's status, headers,
/// content type and body as documented. A fixed seed keeps the run
/// repeatable; `SOXARA_SCHEMATHESIS_SEED` and `SOXARA_SCHEMATHESIS_EXAMPLES`
/// explore further.
#[tokio::test]
async fn schemathesis_finds_nothing_wrong() {
    let app = spawn_app().await;
    let seed = std::env::var("SOXARA_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261203".into());
    let examples = std::env::var("SOXARA_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "40".into());
    let work_dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(api_tool("schemathesis"));
    command
        .current_dir(work_dir.path())
        .env("PYTHONPATH", Path::new(env!("CARGO_MANIFEST_DIR")).join("api"))
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .arg("--config-file")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("api/schemathesis.toml"))
        .args(["run", &format!("{}/openapi.json", app.base)])
        .args(["--header", &format!("Authorization: Bearer {}", app.key)])
        .args(["--checks", "all", "--seed", &seed, "--max-examples", &examples])
        .args(["--generation-database", "none", "--request-timeout", "30", "--no-color"]);
    // The gateway serves on this test's runtime: wait for the tool off it.
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "schemathesis found problems (seed {seed}):\n{report}");
}

/// docs/api.md links each operation of the document (`openapi.json#/paths/…`),
/// and every such link names an operation the document has.
#[test]
fn the_api_reference_links_every_operation() {
    let document: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(checked_in()).unwrap()).unwrap();
    let reference = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md")).unwrap();
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations += 1;
            let pointer = format!("/paths/{}/{method}", path.replace('~', "~0").replace('/', "~1"));
            assert!(
                reference.contains(&format!("](openapi.json#{pointer})")),
                "docs/api.md does not link {} {path} (openapi.json#{pointer})",
                method.to_uppercase()
            );
        }
    }
    assert!(operations > 60, "the document has every operation: {operations}");
    for link in reference.split("](openapi.json#").skip(1) {
        let pointer = &link[..link.find(')').unwrap()];
        assert!(
            document.pointer(pointer).and_then(|op| op.get("operationId")).is_some(),
            "docs/api.md links openapi.json#{pointer}, which is no operation"
        );
    }
}

/// The README's generated client: a Python client generated from
/// docs/openapi.json with openapi-python-client makes a payment and reads it
/// back (examples/python-client/pay.py).
#[tokio::test]
async fn a_generated_python_client_makes_a_payment() {
    let app = spawn_app().await;
    let work_dir = tempfile::tempdir().unwrap();
    let tools = api_tool("python").parent().unwrap().to_path_buf();
    let path = format!("{}:{}", tools.display(), std::env::var("PATH").unwrap_or_default());
    let generate = std::process::Command::new(api_tool("openapi-python-client"))
        .current_dir(work_dir.path())
        .env("PATH", &path)
        .args(["generate", "--meta", "none", "--output-path", "soxara_client", "--path"])
        .arg(checked_in())
        .output()
        .unwrap();
    assert!(generate.status.success(), "generating the client: {}", String::from_utf8_lossy(&generate.stderr));
    let mut pay = std::process::Command::new(api_tool("python"));
    pay.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python-client/pay.py"))
        .env("PYTHONPATH", work_dir.path())
        .env("SOXARA_URL", &app.base)
        .env("SOXARA_KEY", &app.key);
    // The gateway serves on this test's runtime: wait for the client off it.
    let output = tokio::task::spawn_blocking(move || pay.output()).await.unwrap().unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "pay.py: {printed}{}", String::from_utf8_lossy(&output.stderr));
    let words: Vec<&str> = printed.split_whitespace().collect();
    assert!(words[0].starts_with("pay_"), "{printed}");
    assert_eq!(words[1..], ["completed", "1250", "USD", "fee", "12"], "{printed}");
    let payment = app.get(&app.key, &format!("/v1/payments/{}", words[0])).await;
    assert_eq!(payment.body["status"], "completed", "the client's payment is the gateway's");
}
