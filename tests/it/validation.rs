//! Bad input gets a 4xx naming the field, never a 500.

use soxara_tests::{new_key, spawn_app};

#[tokio::test]
async fn every_bad_field_gets_a_400_naming_it() {
    let app = spawn_app().await;
    let phone = r#""customer":{"phone":"+231770001234"}"#;
    let cases = [
        (format!(r#"{{"amount":12.50,"currency":"USD","method":"mtn_momo",{phone}}}"#), "amount", "decimals"),
        (format!(r#"{{"amount":"1250","currency":"USD","method":"mtn_momo",{phone}}}"#), "amount", "not a string"),
        (format!(r#"{{"amount":0,"currency":"USD","method":"mtn_momo",{phone}}}"#), "amount", "greater than zero"),
        (format!(r#"{{"amount":-100,"currency":"USD","method":"mtn_momo",{phone}}}"#), "amount", "greater than zero"),
        (
            format!(r#"{{"amount":9223372036854775808,"currency":"USD","method":"mtn_momo",{phone}}}"#),
            "amount",
            "at most",
        ),
        (format!(r#"{{"amount":1e3,"currency":"USD","method":"mtn_momo",{phone}}}"#), "amount", "decimals"),
        (format!(r#"{{"currency":"USD","method":"mtn_momo",{phone}}}"#), "amount", "required"),
        (format!(r#"{{"amount":100,"method":"mtn_momo",{phone}}}"#), "currency", "no default currency"),
        (format!(r#"{{"amount":100,"currency":"NGN","method":"mtn_momo",{phone}}}"#), "currency", "unknown currency"),
        (format!(r#"{{"amount":100,"currency":"usd","method":"mtn_momo",{phone}}}"#), "currency", "upper case"),
        (
            r#"{"amount":100,"currency":"USD","method":"mtn_momo","customer":{"phone":"0770001234"}}"#.to_string(),
            "customer.phone",
            "E.164",
        ),
        (r#"{"amount":100,"currency":"USD","method":"mtn_momo"}"#.to_string(), "customer.phone", "required"),
        (format!(r#"{{"amount":100,"currency":"USD","method":"cash",{phone}}}"#), "method", "unknown method"),
        (format!(r#"{{"amount":100,"currency":"USD",{phone}}}"#), "method", "required"),
        (
            r#"{"amount":100,"currency":"USD","method":"card","card":{"number":"4242424242424241"}}"#.to_string(),
            "card.number",
            "checksum",
        ),
        (r#"{"amount":100,"currency":"USD","method":"card"}"#.to_string(), "card", "required"),
        (
            format!(r#"{{"amount":100,"currency":"USD","method":"mtn_momo",{phone},"colour":"red"}}"#),
            "colour",
            "not a known field",
        ),
        (
            format!(r#"{{"amount":100,"currency":"USD","method":"mtn_momo",{phone},"metadata":{{"n":1}}}}"#),
            "metadata.n",
            "string",
        ),
        ("[1,2,3]".to_string(), "body", "JSON object"),
    ];
    for (body, field, hint) in cases {
        let answer = app.pay(&app.key, Some(&new_key()), &body).await;
        assert_eq!(answer.status, 400, "{body}: {:?}", answer.body);
        assert_eq!(answer.code(), "VALIDATION_ERROR", "{body}");
        let fields = answer.body["error"]["fields"].as_array().expect("field details");
        let named = fields.iter().find(|f| f["field"] == field);
        let named = named.unwrap_or_else(|| panic!("{body}: {field} not named in {fields:?}"));
        assert!(named["message"].as_str().unwrap().contains(hint), "{body}: {named}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM payments").await, 0);
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_4xx() {
    let app = spawn_app().await;
    let invalid = app.pay(&app.key, Some(&new_key()), r#"{"amount": 100,"#).await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.code(), "INVALID_JSON");

    let description = "x".repeat(100 * 1024);
    let huge = format!(r#"{{"amount":100,"currency":"USD","description":"{description}"}}"#);
    let oversized = app.pay(&app.key, Some(&new_key()), &huge).await;
    assert_eq!(oversized.status, 413);
    assert_eq!(oversized.code(), "PAYLOAD_TOO_LARGE");

    // A chunked body declares no length; the limit still holds.
    assert_eq!(chunked_post(&app, 100 * 1024).await, 413);
}

/// Sends a chunked POST of `total_bytes` over a raw socket; returns the status.
async fn chunked_post(app: &soxara_tests::TestApp, total_bytes: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/payments HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nX-Idempotency-Key: {}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.key,
        new_key()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let chunk = "x".repeat(1024);
    for _ in 0..total_bytes / 1024 {
        // The server may answer and close before reading everything.
        if socket.write_all(format!("400\r\n{chunk}\r\n").as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = socket.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = socket.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}
