//! Identifiers: random, prefixed by object type (`pay_…`, `mer_…`).

use rand::Rng;
use rand::distr::Alphanumeric;

/// Random characters after the prefix: 24 alphanumerics ≈ 142 bits.
const ID_RANDOM_CHARS: usize = 24;

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_alphanumeric(ID_RANDOM_CHARS))
}

pub fn random_alphanumeric(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// A merchant-facing reference such as `PAY20260509083012K7Q2M9XW`: the UTC
/// time to the second, then 8 random upper-case characters.
pub fn new_reference(prefix: &str, now_ms: i64) -> String {
    let time = crate::clock::format_compact(now_ms);
    let tail: String = random_alphanumeric(8).to_ascii_uppercase();
    format!("{prefix}{time}{tail}")
}
