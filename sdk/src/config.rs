//! This plugin's operator settings (`[plugins.<name>.config]` in the
//! gateway's config file), credentials included. No other plugin can read
//! them; never put a credential in a log line or a failure message.

use crate::Failure;
use crate::bindings::soxara::gateway::config;

/// The value of `key`, if the operator set it to something non-empty.
pub fn get(key: &str) -> Option<String> {
    config::get(key).filter(|value| !value.trim().is_empty())
}

/// The value of `key`, or a `NOT_CONFIGURED` failure naming the key (never
/// its value).
pub fn required(key: &str) -> Result<String, Failure> {
    get(key).ok_or_else(|| Failure::new("NOT_CONFIGURED", format!("the operator has not set `{key}` for this rail")))
}

/// Refuses credentials of the other mode. The gateway tells every plugin
/// the one mode it serves (`mode`: `test` or `live`); `sandbox` says
/// whether the credentials the plugin holds are the provider's sandbox
/// ones (as `what`, the setting that shows it, tells). Test keys must never
/// reach a provider's production, nor live keys its sandbox. A gateway too
/// old to say its mode is not checked.
pub fn check_mode(sandbox: bool, what: &str) -> Result<(), Failure> {
    match (get("mode").as_deref(), sandbox) {
        (Some("test"), false) => Err(Failure::new(
            "MODE_MISMATCH",
            format!("this rail is configured for test mode, but its {what} is a production one"),
        )),
        (Some("live"), true) => Err(Failure::new(
            "MODE_MISMATCH",
            format!("this rail is configured for live mode, but its {what} is a sandbox one"),
        )),
        _ => Ok(()),
    }
}

/// A comma-separated setting as a list (upper-cased, blanks dropped), or
/// `default` when unset: `currencies = "usd, LRD"` → `["USD", "LRD"]`.
pub fn list(key: &str, default: &str) -> Vec<String> {
    split_list(&get(key).unwrap_or_else(|| default.to_string()))
}

pub(crate) fn split_list(text: &str) -> Vec<String> {
    text.split(',').map(|item| item.trim().to_ascii_uppercase()).filter(|item| !item.is_empty()).collect()
}

/// A base URL setting without its trailing `/`, or `default` when unset.
pub fn base_url(key: &str, default: Option<&str>) -> Result<String, Failure> {
    let url = match (get(key), default) {
        (Some(url), _) => url,
        (None, Some(default)) => default.to_string(),
        (None, None) => required(key)?,
    };
    Ok(url.trim_end_matches('/').to_string())
}
