//! Messenger through the WhatsApp Business Cloud API: one template message
//! per `send` (`POST {base_url}/{api_version}/{phone_number_id}/messages`
//! with a bearer token). A business may only start a conversation with an
//! approved template, so the host's template name and parameters are sent,
//! not its free text.
//!
//! Delivery reports come back as webhooks to the gateway's callback URL for
//! this plugin (`callback`): undeliverable numbers are mostly reported there,
//! after the send was accepted.
//!
//! Config: `access_token`, `phone_number_id` (required to send); `app_secret`
//! and `verify_token` (required for webhooks); `base_url` (default
//! `https://graph.facebook.com`), `api_version` (default `v21.0`),
//! `template_language` (default `en`).

mod callback;
mod protocol;

wit_bindgen::generate!({
    world: "soxara:messaging/messenger-plugin",
    path: ["../../wit", "../../wit/messaging"],
    // The gateway package is a dependency here, not the main package.
    generate_all,
});

use exports::soxara::messaging::messenger::{Callback, CallbackAnswer, Guest, Message, MessengerInfo, Sent};
use soxara::gateway::http::{self, HttpError, Request};
use soxara::gateway::types::Failure;
use soxara::gateway::{config, log};

struct WhatsApp;

impl Guest for WhatsApp {
    fn describe() -> MessengerInfo {
        MessengerInfo { name: "whatsapp".to_string(), version: env!("CARGO_PKG_VERSION").to_string() }
    }

    fn send(message: Message) -> Result<Sent, Failure> {
        let setting = |key: &str| {
            config::get(key).filter(|v| !v.is_empty()).ok_or_else(|| {
                protocol::failure("MESSENGER_NOT_CONFIGURED", &format!("config key `{key}` is not set"), true)
            })
        };
        let token = setting("access_token")?;
        let phone_number_id = setting("phone_number_id")?;
        let base_url = config::get("base_url").unwrap_or_else(|| "https://graph.facebook.com".to_string());
        let api_version = config::get("api_version").unwrap_or_else(|| "v21.0".to_string());
        let language = config::get("template_language").unwrap_or_else(|| "en".to_string());
        let request = Request {
            method: "POST".to_string(),
            url: format!("{}/{api_version}/{phone_number_id}/messages", base_url.trim_end_matches('/')),
            headers: vec![
                ("authorization".to_string(), format!("Bearer {token}")),
                ("content-type".to_string(), "application/json".to_string()),
            ],
            body: protocol::template_body(&message, &language).into_bytes(),
        };
        match http::send(&request) {
            Ok(response) => {
                let answer = protocol::read_answer(response.status, &response.body);
                if let Err(failure) = &answer {
                    log::log(
                        log::Level::Warn,
                        &format!("WhatsApp refused message {}: {}", message.message_id, failure.message),
                    );
                }
                answer.map(|reference| Sent { provider_reference: Some(reference) })
            }
            Err(HttpError::Timeout) => {
                Err(protocol::failure("MESSENGER_UNAVAILABLE", "WhatsApp did not answer in time", true))
            }
            Err(HttpError::Denied(host)) => Err(protocol::failure(
                "MESSENGER_NOT_CONFIGURED",
                &format!("{host} is not in this plugin's allowed_hosts"),
                true,
            )),
            Err(HttpError::Transport(why)) => {
                Err(protocol::failure("MESSENGER_UNAVAILABLE", &format!("WhatsApp could not be reached: {why}"), true))
            }
        }
    }

    fn handle_callback(callback: Callback) -> Result<CallbackAnswer, Failure> {
        if callback.method == "GET" {
            return callback::verify_subscription(&callback.query, config::get("verify_token").as_deref());
        }
        callback::check_signature(&callback, config::get("app_secret").as_deref())?;
        let reports = callback::read_statuses(&callback.body)?;
        Ok(CallbackAnswer { status: 200, body: String::new(), reports })
    }
}

export!(WhatsApp);
