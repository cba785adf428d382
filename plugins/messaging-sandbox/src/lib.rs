//! The sandbox messenger: no network. It accepts every message, so that
//! the gateway records it for the test-mode message list, except to numbers
//! ending in `0000`, which it treats as not on WhatsApp (so merchants can
//! see what a transfer does when its recipient cannot be reached).

wit_bindgen::generate!({
    world: "soxara:messaging/messenger-plugin",
    path: ["../../wit", "../../wit/messaging"],
    // The gateway package is a dependency here, not the main package.
    generate_all,
});

use exports::soxara::messaging::messenger::{Callback, CallbackAnswer, Guest, Message, MessengerInfo, Sent};
use soxara::gateway::types::Failure;

/// Numbers ending in this are not on WhatsApp.
const UNREACHABLE_SUFFIX: &str = "0000";

struct Sandbox;

impl Guest for Sandbox {
    fn describe() -> MessengerInfo {
        MessengerInfo { name: "sandbox".to_string(), version: env!("CARGO_PKG_VERSION").to_string() }
    }

    fn send(message: Message) -> Result<Sent, Failure> {
        if message.to.ends_with(UNREACHABLE_SUFFIX) {
            return Err(Failure {
                code: "RECIPIENT_UNREACHABLE".to_string(),
                message: format!("{} is not on WhatsApp (sandbox numbers ending in 0000)", message.to),
                retryable: false,
            });
        }
        Ok(Sent { provider_reference: Some(format!("sandbox_{}", message.message_id)) })
    }

    /// The sandbox sends nothing, so nothing reports back.
    fn handle_callback(_callback: Callback) -> Result<CallbackAnswer, Failure> {
        Err(Failure {
            code: "NOT_SUPPORTED".to_string(),
            message: "the sandbox messenger takes no callbacks".to_string(),
            retryable: false,
        })
    }
}

export!(Sandbox);
