//! The fake Example Pay provider the rail template speaks, as a program, so
//! a partner can pay through their copy of the template by hand
//! (docs/plugins.md): `cargo run -p soxara-tests --bin fake-example-pay`.

use soxara_tests::fakes::example_pay::{self, FakeExamplePay};

#[tokio::main]
async fn main() {
    let listen = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9090".to_string());
    let fake = match FakeExamplePay::start_on(&listen).await {
        Ok(fake) => fake,
        Err(e) => {
            eprintln!("fake-example-pay: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    println!("Example Pay (fake) at {}  api_key = {}", fake.url(), example_pay::API_KEY);
    println!("phones ending 0001 fail (insufficient funds), 0002 stay pending until read; others succeed");
    tokio::signal::ctrl_c().await.ok();
}
