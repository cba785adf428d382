//! The Cloud API's request and answers, without I/O.

use serde_json::{Value, json};

use crate::exports::soxara::messaging::messenger::Message;
use crate::soxara::gateway::types::Failure;

/// Meta's code for a message that cannot be delivered to the number (not on
/// WhatsApp, terms not accepted, an old app).
pub const UNDELIVERABLE: i64 = 131_026;

/// A template message: WhatsApp wants the number as digits, no `+`.
pub fn template_body(message: &Message, language: &str) -> String {
    let parameters: Vec<Value> = message.parameters.iter().map(|p| json!({ "type": "text", "text": p })).collect();
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.to.trim_start_matches('+'),
        "type": "template",
        "template": {
            "name": message.template,
            "language": { "code": language },
            "components": [{ "type": "body", "parameters": parameters }],
        },
    })
    .to_string()
}

/// The message id (`wamid.…`) of an accepted message, or why not. Only an
/// undeliverable number is final: anything else (our token, a template
/// under review, rate limits, outages) may work later, and must not send a
/// customer's money back.
pub fn read_answer(status: u16, body: &[u8]) -> Result<String, Failure> {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return parsed["messages"][0]["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| failure("MESSENGER_UNAVAILABLE", "WhatsApp accepted the message but gave no id", true));
    }
    let code = parsed["error"]["code"].as_i64();
    let detail =
        parsed["error"]["message"].as_str().unwrap_or("no error message").chars().take(200).collect::<String>();
    match code {
        Some(UNDELIVERABLE) => {
            Err(failure("RECIPIENT_UNREACHABLE", &format!("WhatsApp cannot deliver to this number: {detail}"), false))
        }
        _ if status == 401 || code == Some(190) => {
            Err(failure("MESSENGER_NOT_CONFIGURED", &format!("WhatsApp refused the access token: {detail}"), true))
        }
        _ => Err(failure(
            "MESSENGER_UNAVAILABLE",
            &format!(
                "WhatsApp answered {status} (code {}): {detail}",
                code.map_or("none".to_string(), |c| c.to_string())
            ),
            true,
        )),
    }
}

pub fn failure(code: &str, message: &str, retryable: bool) -> Failure {
    Failure { code: code.to_string(), message: message.to_string(), retryable }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message {
            message_id: "msg_1".into(),
            to: "+231880001111".into(),
            template: "transfer_claim".into(),
            parameters: vec!["USD 25.00".into(), "482913".into()],
            text: "ignored".into(),
        }
    }

    #[test]
    fn a_template_message_carries_the_parameters_in_order_and_the_number_without_plus() {
        let body: Value = serde_json::from_str(&template_body(&message(), "en")).unwrap();
        assert_eq!(body["to"], "231880001111");
        assert_eq!(body["template"]["name"], "transfer_claim");
        assert_eq!(body["template"]["components"][0]["parameters"][1]["text"], "482913");
    }

    #[test]
    fn only_an_undeliverable_number_is_final() {
        assert_eq!(read_answer(200, br#"{"messages":[{"id":"wamid.X"}]}"#).unwrap(), "wamid.X");
        let undeliverable = read_answer(400, br#"{"error":{"code":131026,"message":"Message undeliverable"}}"#);
        assert_eq!(undeliverable.as_ref().unwrap_err().code, "RECIPIENT_UNREACHABLE");
        assert!(!undeliverable.unwrap_err().retryable);
        for (status, body) in
            [(401, &br#"{"error":{"code":190}}"#[..]), (429, br#"{"error":{"code":130429}}"#), (500, b"oops")]
        {
            assert!(read_answer(status, body).unwrap_err().retryable, "{status}");
        }
    }
}
