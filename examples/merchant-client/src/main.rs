//! `cargo run -p merchant-client` — the quickstart's first steps in Rust:
//! pay, pay again under the same key, refund part. Reads `SOXARA_KEY` (the
//! test key the gateway printed) and `SOXARA_BASE` (default
//! `http://127.0.0.1:8080`).

use merchant_client::{Client, NewPayment, new_idempotency_key};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = std::env::var("SOXARA_KEY").map_err(|_| "set SOXARA_KEY to your sandbox key (sxm_test_sk_...)")?;
    let base = std::env::var("SOXARA_BASE").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let client = Client::new(&base, &key);

    let order_key = new_idempotency_key(); // store it with the order before paying
    let order = NewPayment::mobile_money(1250, "USD", "mtn_momo", "+231770001234").description("Order 42");
    let payment = client.create_payment_with_key(&order_key, &order)?;
    println!("payment {} {} {} {} (fee {})", payment.id, payment.status, payment.amount, payment.currency, payment.fee);

    let again = client.create_payment_with_key(&order_key, &order)?;
    println!("same key again: {} (the same payment: {})", again.id, again.id == payment.id);

    let refund = client.refund(&payment.id, Some(250))?;
    println!("refund {} {} of {}", refund.id, refund.status, refund.amount);
    let payment = client.payment(&payment.id)?;
    println!("payment {} now has {} refunded", payment.id, payment.amount_refunded);
    Ok(())
}
