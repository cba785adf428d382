//! A small per-plugin cache the host keeps between calls (every call runs in
//! a fresh instance). Entries may vanish at any time; a rail must work
//! without them. Limits: keys up to 128 bytes, values up to 16 KiB, 64
//! entries, 24 hours; larger entries are silently not kept.

use crate::bindings::soxara::gateway::cache;

pub fn get(key: &str) -> Option<Vec<u8>> {
    cache::get(key)
}

/// A cached UTF-8 value, e.g. an access token.
pub fn get_text(key: &str) -> Option<String> {
    cache::get(key).and_then(|bytes| String::from_utf8(bytes).ok())
}

pub fn set(key: &str, value: &[u8], ttl_ms: u64) {
    cache::set(key, value, ttl_ms);
}

pub fn remove(key: &str) {
    cache::remove(key);
}
