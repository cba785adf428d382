//! Identifiers, prefixed by object type (`pay_…`, `mer_…`): the creation
//! time (by the system clock: an id only needs to be unique and sort
//! roughly by age, whatever a test clock says), then random characters. Time first makes ids sort roughly by age,
//! so new rows land at the right edge of every index keyed by an id instead
//! of on a random page: a commit then writes a few pages per index, not one
//! per row (see docs/performance.md).

use rand::Rng;
use rand::distr::Alphanumeric;

/// Base-62 digits in ASCII order, so that byte order is numeric order.
const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Characters of milliseconds since 1970: 62⁸ ms is about 6,900 years.
const ID_TIME_CHARS: usize = 8;
/// Random characters after the time: 16 alphanumerics ≈ 95 bits.
const ID_RANDOM_CHARS: usize = 16;

pub fn new_id(prefix: &str) -> String {
    new_id_at(prefix, super::clock::system_now_ms())
}

fn new_id_at(prefix: &str, now_ms: i64) -> String {
    let mut time = [b'0'; ID_TIME_CHARS];
    let mut rest = u64::try_from(now_ms).unwrap_or(0);
    for digit in time.iter_mut().rev() {
        *digit = DIGITS[(rest % 62) as usize];
        rest /= 62;
    }
    let time = std::str::from_utf8(&time).expect("base-62 digits are ASCII");
    format!("{prefix}_{time}{}", random_alphanumeric(ID_RANDOM_CHARS))
}

pub fn random_alphanumeric(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// A merchant-facing reference such as `PAY20260509083012K7Q2M9XW`: the UTC
/// time to the second, then 8 random upper-case characters.
pub fn new_reference(prefix: &str, now_ms: i64) -> String {
    let time = super::clock::format_compact(now_ms);
    let tail: String = random_alphanumeric(8).to_ascii_uppercase();
    format!("{prefix}{time}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_time() {
        let times = [0, 1, 61, 62, 1_700_000_000_000, 1_700_000_000_001, 4_000_000_000_000];
        let ids: Vec<String> = times.iter().map(|t| new_id_at("pay", *t)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids.iter().all(|id| id.len() == "pay_".len() + ID_TIME_CHARS + ID_RANDOM_CHARS));
        assert!(ids[4].starts_with("pay_0Tvcokgi"), "{}", ids[4]);
    }
}
