//! Time and randomness come from the host: a plugin built for
//! `wasm32-unknown-unknown` has neither (`SystemTime::now()` panics there).

use crate::bindings::soxara::gateway::clock;

/// Milliseconds since the Unix epoch (UTC).
pub fn now_ms() -> u64 {
    clock::now_ms()
}

/// Seconds since the Unix epoch (UTC).
pub fn now_s() -> u64 {
    clock::now_ms() / 1_000
}

/// `len` bytes from the host's CSPRNG (at most 1024 per call).
pub fn random_bytes(len: u32) -> Vec<u8> {
    clock::random_bytes(len)
}
