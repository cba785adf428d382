//! The Reloadly Airtime API as pure functions: audiences, amounts, phone
//! numbers, operators and their data plans, the top-up body, and the
//! answers (top-up, status, report, error) read into outcomes and failure
//! codes. Nothing here touches a host import, so it is tested natively.
//!
//! Amounts cross the wire as decimals in major units (`150.00`). They are
//! read from the JSON text itself (`RawValue`) and converted with integer
//! arithmetic only: a float never holds money here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::exports::soxara::billing::biller::{Plan, PurchaseOutcome};
use crate::soxara::gateway::types::{Failure, Money, TransactionStatus};

/// The audience (and API host) of Reloadly's sandbox and of production.
pub const SANDBOX_AUDIENCE: &str = "https://topups-sandbox.reloadly.com";
pub const LIVE_AUDIENCE: &str = "https://topups.reloadly.com";
/// The token endpoint's host (the same for both audiences).
pub const AUTH_URL: &str = "https://auth.reloadly.com";
/// The media type every topups call is sent with.
pub const ACCEPT: &str = "application/com.reloadly.topups-v1+json";
/// The most characters of provider text kept in a message.
const PROVIDER_TEXT_CHARS_MAX: usize = 120;
/// The most plans listed for one provider (the host takes at most 500).
pub const PLANS_MAX: usize = 200;

/// Which of Reloadly's environments the credentials are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Sandbox,
    Live,
}

impl Environment {
    /// `sandbox`, or `live` (also `production`).
    pub fn parse(text: &str) -> Option<Environment> {
        match text.trim().to_ascii_lowercase().as_str() {
            "sandbox" => Some(Environment::Sandbox),
            "live" | "production" => Some(Environment::Live),
            _ => None,
        }
    }

    /// The environment an audience URL names (a trailing `/` is allowed).
    pub fn from_audience(audience: &str) -> Option<Environment> {
        match audience.trim().trim_end_matches('/') {
            SANDBOX_AUDIENCE => Some(Environment::Sandbox),
            LIVE_AUDIENCE => Some(Environment::Live),
            _ => None,
        }
    }

    /// The audience a token is asked for; also the topups API's base URL.
    pub fn audience(self) -> &'static str {
        match self {
            Environment::Sandbox => SANDBOX_AUDIENCE,
            Environment::Live => LIVE_AUDIENCE,
        }
    }
}

// ---------------------------------------------------------------- money --

/// Digits after the decimal point of a currency's minor unit; `None` for a
/// code this table does not know (refused rather than guessed).
pub fn minor_unit_digits(currency: &str) -> Option<u32> {
    match currency {
        "USD" | "LRD" | "EUR" | "GBP" | "GHS" | "NGN" | "SLE" | "KES" | "ZAR" => Some(2),
        "XOF" | "XAF" | "GNF" | "JPY" | "UGX" | "RWF" => Some(0),
        _ => None,
    }
}

/// Minor units as Reloadly's decimal: `(15000, "LRD")` → `"150.00"`.
pub fn to_decimal_text(minor: u64, currency: &str) -> Result<String, String> {
    let digits = minor_unit_digits(currency).ok_or_else(|| format!("currency {currency} is not supported"))?;
    if digits == 0 {
        return Ok(minor.to_string());
    }
    let scale = 10u64.pow(digits);
    Ok(format!("{}.{:0width$}", minor / scale, minor % scale, width = digits as usize))
}

/// A decimal Reloadly wrote (`150`, `150.5`, `150.00`, `"150.00"`) in minor
/// units of `currency`. Fraction digits beyond the currency's are accepted
/// only when they are zeros (`5.000` USD); signs, exponents and overflow are
/// refused.
pub fn from_decimal_text(text: &str, currency: &str) -> Result<u64, String> {
    let digits = minor_unit_digits(currency).ok_or_else(|| format!("currency {currency} is not supported"))? as usize;
    let bad = || format!("`{}` is not a {currency} amount", truncate(text));
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return Err(bad());
    }
    let (kept, rest) = fraction.split_at(fraction.len().min(digits));
    if rest.bytes().any(|b| b != b'0') {
        return Err(bad());
    }
    format!("{whole}{kept:0<digits$}").parse::<u64>().map_err(|_| bad())
}

/// The text of a JSON number or string holding a number, without quotes.
fn raw_text(raw: &RawValue) -> &str {
    let text = raw.get().trim();
    text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text)
}

// ---------------------------------------------------------------- phones --

/// The international dialling code of the countries this biller is likely
/// to be configured for (others take the `dial_code` setting).
pub fn dial_code_for(country: &str) -> Option<&'static str> {
    match country {
        "LR" => Some("231"),
        "SL" => Some("232"),
        "GH" => Some("233"),
        "NG" => Some("234"),
        "GN" => Some("224"),
        "CI" => Some("225"),
        _ => None,
    }
}

/// A merchant's phone (E.164 `+231880123456`, local `0880123456`, or the
/// national number `880123456`) as Reloadly takes it: the country's dialling
/// code and the national number, digits only (`231880123456`). A number of
/// another country is refused.
pub fn international_number(phone: &str, dial_code: &str) -> Result<String, String> {
    let compact: String = phone.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let (international, digits) = match compact.strip_prefix('+') {
        Some(rest) => (true, rest.to_string()),
        None => (false, compact.clone()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{phone} is not a phone number"));
    }
    let national = if international {
        digits.strip_prefix(dial_code).ok_or_else(|| format!("{phone} is not a +{dial_code} number"))?.to_string()
    } else if let Some(rest) = digits.strip_prefix('0') {
        // The national trunk prefix.
        rest.to_string()
    } else if digits.len() > 9 && digits.starts_with(dial_code) {
        digits[dial_code.len()..].to_string()
    } else {
        digits
    };
    if !(6..=12).contains(&national.len()) || national.starts_with('0') {
        return Err(format!("{phone} is not a valid +{dial_code} number"));
    }
    Ok(format!("{dial_code}{national}"))
}

// ------------------------------------------------------------- operators --

/// The networks this biller sells, by slug, with the names merchants see.
pub const NETWORKS: [(&str, &str); 2] = [("mtn", "Lonestar Cell MTN"), ("orange", "Orange Liberia")];

/// An operator as Reloadly describes it (auto-detect, country listing).
/// Everything but the name is optional: Reloadly leaves fields out or null.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operator {
    #[serde(default)]
    operator_id: Option<u64>,
    #[serde(default)]
    id: Option<u64>,
    pub name: String,
    #[serde(default)]
    data: Option<bool>,
    #[serde(default)]
    bundle: Option<bool>,
    #[serde(default)]
    supports_local_amounts: Option<bool>,
    #[serde(default)]
    sender_currency_code: Option<String>,
    #[serde(default)]
    destination_currency_code: Option<String>,
    #[serde(default)]
    fixed_amounts: Option<Vec<Box<RawValue>>>,
    #[serde(default)]
    local_fixed_amounts: Option<Vec<Box<RawValue>>>,
    #[serde(default)]
    fixed_amounts_descriptions: Option<Descriptions>,
    #[serde(default)]
    local_fixed_amounts_descriptions: Option<Descriptions>,
}

/// What each fixed amount buys, keyed by the amount's text (`"2.50"`).
type Descriptions = BTreeMap<String, Value>;

impl Operator {
    /// Its id (`operatorId`, or `id` in older answers).
    pub fn id(&self) -> Option<u64> {
        self.operator_id.or(self.id)
    }

    /// Whether it sells data (a data or bundle operator).
    pub fn sells_data(&self) -> bool {
        self.data == Some(true) || self.bundle == Some(true)
    }

    /// The network slug its name belongs to.
    pub fn slug(&self) -> Option<&'static str> {
        slug_of(&self.name)
    }

    /// Whether an amount in `currency` is sent with `useLocalAmount` (the
    /// operator's own currency) or without (the account's currency), or why
    /// it cannot be sent at all.
    pub fn uses_local_amount(&self, currency: &str) -> Result<bool, String> {
        if self.destination_currency_code.as_deref() == Some(currency) {
            if self.supports_local_amounts == Some(false) {
                return Err(format!("Reloadly's {} takes no amounts in {currency}", truncate(&self.name)));
            }
            return Ok(true);
        }
        if self.sender_currency_code.as_deref() == Some(currency) {
            return Ok(false);
        }
        Err(format!("Reloadly's {} sells in neither {currency} nor the account's currency", truncate(&self.name)))
    }

    /// The fixed amounts it sells in `currency` (major-unit texts) and their
    /// descriptions: `localFixedAmounts` in its own currency,
    /// `fixedAmounts` in the account's.
    fn amounts_in(&self, currency: &str) -> Result<(Vec<&str>, Option<&Descriptions>), String> {
        let (amounts, descriptions) = if self.uses_local_amount(currency)? {
            (&self.local_fixed_amounts, &self.local_fixed_amounts_descriptions)
        } else {
            (&self.fixed_amounts, &self.fixed_amounts_descriptions)
        };
        let texts = amounts.iter().flatten().map(|raw| raw_text(raw)).collect();
        Ok((texts, descriptions.as_ref()))
    }
}

/// The network an operator's name belongs to: Reloadly names them e.g.
/// "Lonestar Cell MTN Liberia", "MTN Liberia Data", "Orange Liberia Bundles".
pub fn slug_of(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    if name.contains("mtn") || name.contains("lonestar") {
        Some("mtn")
    } else if name.contains("orange") {
        Some("orange")
    } else {
        None
    }
}

/// The auto-detect answer.
pub fn parse_operator(body: &[u8]) -> Result<Operator, String> {
    serde_json::from_slice(body).map_err(|e| format!("Reloadly's operator answer is not the documented JSON: {e}"))
}

/// The country listing: an array of operators (or a page of them).
pub fn parse_operators(body: &[u8]) -> Result<Vec<Operator>, String> {
    #[derive(Deserialize)]
    struct Page {
        content: Vec<Operator>,
    }
    // Tried in turn, not as an untagged enum: serde buffers an untagged
    // enum's input, which loses the raw amount texts.
    serde_json::from_slice::<Vec<Operator>>(body)
        .or_else(|_| serde_json::from_slice::<Page>(body).map(|page| page.content))
        .map_err(|e| format!("Reloadly's operator listing is not the documented JSON: {e}"))
}

/// The data operator of network `slug`: the one with the lowest id when
/// Reloadly lists several, so plans and purchases always use the same one.
pub fn data_operator<'a>(operators: &'a [Operator], slug: &str) -> Option<&'a Operator> {
    operators.iter().filter(|o| o.sells_data() && o.slug() == Some(slug) && o.id().is_some()).min_by_key(|o| o.id())
}

/// A data plan's code: the network and the price in minor units, so a
/// purchase knows what to send (`mtn-data-15000`).
pub fn plan_code(slug: &str, price_minor: u64) -> String {
    format!("{slug}-data-{price_minor}")
}

/// The price a plan code names, if it is one of `slug`'s codes.
pub fn plan_price(code: &str, slug: &str) -> Option<u64> {
    let minor = code.strip_prefix(slug)?.strip_prefix("-data-")?;
    if minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) || minor.starts_with('0') {
        return None;
    }
    minor.parse().ok()
}

/// The data plans of `operator` in `currency`: its fixed amounts, deduped,
/// sorted, without zero or amounts the currency cannot hold exactly,
/// named by Reloadly's description where it gives one.
pub fn plans(operator: &Operator, slug: &str, currency: &str) -> Result<Vec<Plan>, String> {
    let (amounts, descriptions) = operator.amounts_in(currency)?;
    let mut prices: Vec<u64> = amounts.iter().filter_map(|text| from_decimal_text(text, currency).ok()).collect();
    prices.retain(|minor| *minor > 0);
    prices.sort_unstable();
    prices.dedup();
    prices.truncate(PLANS_MAX);
    let described = |minor: u64| -> Option<String> {
        let (_, text) = descriptions?.iter().find(|(key, _)| from_decimal_text(key, currency).ok() == Some(minor))?;
        let text: String = text.as_str()?.chars().filter(|c| !c.is_control()).take(PROVIDER_TEXT_CHARS_MAX).collect();
        Some(text.trim().to_string()).filter(|t| !t.is_empty())
    };
    prices
        .into_iter()
        .map(|minor| {
            let price = to_decimal_text(minor, currency)?;
            let name = described(minor).unwrap_or_else(|| format!("Data bundle, {currency} {price}"));
            Ok(Plan {
                code: plan_code(slug, minor),
                name,
                price: Money { amount: minor, currency: currency.to_string() },
            })
        })
        .collect()
}

// ----------------------------------------------------------------- token --

/// The client-credentials token request. Holds the secret: never log it.
pub fn token_body(client_id: &str, client_secret: &str, audience: &str) -> Vec<u8> {
    serde_json::json!({
        "client_id": client_id,
        "client_secret": client_secret,
        "grant_type": "client_credentials",
        "audience": audience,
    })
    .to_string()
    .into_bytes()
}

/// `access_token` and its lifetime in seconds (`expires_in`; a day when
/// Reloadly leaves it out).
pub fn parse_token(body: &[u8]) -> Result<(String, u64), String> {
    #[derive(Deserialize)]
    struct Answer {
        access_token: String,
        #[serde(default)]
        expires_in: Option<u64>,
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|_| "Reloadly's token answer has no access_token")?;
    if answer.access_token.is_empty() {
        return Err("Reloadly's token answer has an empty access_token".into());
    }
    Ok((answer.access_token, answer.expires_in.unwrap_or(86_400)))
}

// ---------------------------------------------------------------- top-up --

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TopupBody<'a> {
    operator_id: u64,
    /// The decimal's exact text, sent as a JSON number.
    amount: &'a RawValue,
    use_local_amount: bool,
    custom_identifier: &'a str,
    recipient_phone: RecipientPhone<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecipientPhone<'a> {
    country_code: &'a str,
    number: &'a str,
}

/// The `POST /topups` body. `custom_identifier` is the gateway's purchase
/// id: Reloadly refuses a second top-up under it, so a repeat never buys
/// twice. `amount` is a decimal text from [`to_decimal_text`].
pub fn topup_body(
    operator_id: u64,
    amount: &str,
    use_local_amount: bool,
    custom_identifier: &str,
    country: &str,
    number: &str,
) -> Result<Vec<u8>, String> {
    let amount = RawValue::from_string(amount.to_string()).map_err(|_| format!("`{amount}` is not a decimal"))?;
    let body = TopupBody {
        operator_id,
        amount: &amount,
        use_local_amount,
        custom_identifier,
        recipient_phone: RecipientPhone { country_code: country, number },
    };
    serde_json::to_vec(&body).map_err(|e| format!("the top-up body: {e}"))
}

/// Where a top-up stands at Reloadly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Successful,
    Pending,
    Refunded,
    /// With Reloadly's error code and message, when it gave them.
    Failed {
        code: Option<String>,
        message: Option<String>,
    },
}

/// A top-up Reloadly knows: its id and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub transaction_id: Option<String>,
    pub standing: Standing,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Transaction {
    #[serde(default)]
    transaction_id: Option<Value>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    custom_identifier: Option<String>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// An id Reloadly wrote as a number or a string.
fn id_text(value: &Option<Value>) -> Option<String> {
    match value {
        Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Reloadly's status word; `None` for one it has not documented.
fn standing_of(status: &str, code: Option<String>, message: Option<String>) -> Option<Standing> {
    Some(match status {
        "SUCCESSFUL" => Standing::Successful,
        "PENDING" | "PROCESSING" => Standing::Pending,
        "REFUNDED" => Standing::Refunded,
        "FAILED" => Standing::Failed { code, message },
        _ => return None,
    })
}

fn found(transaction: Transaction, status: Option<String>) -> Result<Found, String> {
    let status = status.or(transaction.status).ok_or("Reloadly's answer has no status")?;
    let standing = standing_of(&status, transaction.error_code, transaction.message)
        .ok_or_else(|| format!("Reloadly answered an unknown status {:?}", truncate(&status)))?;
    Ok(Found { transaction_id: id_text(&transaction.transaction_id), standing })
}

/// The synchronous `POST /topups` answer (a transaction).
pub fn parse_topup(body: &[u8]) -> Result<Found, String> {
    let transaction: Transaction = serde_json::from_slice(body)
        .map_err(|e| format!("Reloadly's top-up answer is not the documented JSON: {e}"))?;
    found(transaction, None)
}

/// The `GET /topups/{id}/status` answer: `{status, transaction: {…}}`,
/// with `errorCode` and `message` beside them when it failed.
pub fn parse_status(body: &[u8]) -> Result<Found, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        #[serde(default)]
        status: Option<String>,
        #[serde(default)]
        transaction: Option<Transaction>,
        #[serde(default)]
        error_code: Option<String>,
        #[serde(default)]
        message: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| format!("Reloadly's status answer is not the documented JSON: {e}"))?;
    let mut transaction = answer.transaction.unwrap_or(Transaction {
        transaction_id: None,
        status: None,
        custom_identifier: None,
        error_code: None,
        message: None,
    });
    transaction.error_code = transaction.error_code.or(answer.error_code);
    transaction.message = transaction.message.or(answer.message);
    found(transaction, answer.status)
}

/// The top-up made under `custom_identifier` in a transactions report
/// (`GET /topups/reports/transactions?customIdentifier=…`: a page, or a
/// bare list), or `None` when Reloadly has none. An entry without a status
/// is taken as pending: its transaction status is asked next.
pub fn parse_report(body: &[u8], custom_identifier: &str) -> Result<Option<Found>, String> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Report {
        List(Vec<Transaction>),
        Page { content: Vec<Transaction> },
    }
    let entries = match serde_json::from_slice(body) {
        Ok(Report::List(entries) | Report::Page { content: entries }) => entries,
        Err(e) => return Err(format!("Reloadly's transactions report is not the documented JSON: {e}")),
    };
    // The filter is Reloadly's; matching again keeps a report that ignored
    // it from settling another purchase.
    let Some(entry) = entries.into_iter().find(|t| t.custom_identifier.as_deref() == Some(custom_identifier)) else {
        return Ok(None);
    };
    // An entry without a status settles nothing: pending, it carries its
    // transaction id, whose status check then says.
    let status = Some(entry.status.clone().unwrap_or_else(|| "PENDING".to_string()));
    found(entry, status).map(Some)
}

/// A purchase outcome for what Reloadly says.
pub fn outcome(found: Found) -> PurchaseOutcome {
    let (status, failure) = match found.standing {
        Standing::Successful => (TransactionStatus::Completed, None),
        Standing::Pending => (TransactionStatus::Processing, None),
        Standing::Refunded => (
            TransactionStatus::Refunded,
            Some(failure(
                "PROVIDER_REVERSED",
                "Reloadly refunded the top-up: nothing was delivered".to_string(),
                false,
            )),
        ),
        Standing::Failed { code: Some(code), message } => {
            (TransactionStatus::Failed, Some(failure_for_error(&code, message.as_deref().unwrap_or(""))))
        }
        Standing::Failed { code: None, .. } => (
            TransactionStatus::Failed,
            Some(failure("TOPUP_FAILED", "Reloadly reported the top-up failed".to_string(), false)),
        ),
    };
    PurchaseOutcome { status, provider_reference: found.transaction_id, tokens: vec![], failure }
}

// ---------------------------------------------------------------- errors --

/// Reloadly's error body `{timeStamp, message, path, errorCode, …}`:
/// its code and message, when it has a code.
pub fn parse_error(body: &[u8]) -> Option<(String, String)> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Error {
        #[serde(default)]
        error_code: Option<String>,
        #[serde(default)]
        message: Option<String>,
    }
    let error: Error = serde_json::from_slice(body).ok()?;
    let code = error.error_code.filter(|c| !c.is_empty())?;
    Some((code, error.message.unwrap_or_default()))
}

/// Whether Reloadly refused a top-up because its `customIdentifier` was
/// used before: the top-up was already sent once.
pub fn is_duplicate(code: &str, message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    code == "CUSTOM_IDENTIFIER_ALREADY_USED"
        || code == "DUPLICATED_CUSTOM_IDENTIFIER"
        || ((message.contains("custom identifier") || message.contains("customidentifier"))
            && (message.contains("already") || message.contains("duplicate") || message.contains("used")))
}

/// Whether an error means Reloadly does not know the phone number (the
/// customer can fix it: another number).
pub fn is_unknown_phone(code: &str) -> bool {
    matches!(
        code,
        "INVALID_RECIPIENT_PHONE"
            | "INVALID_PHONE_NUMBER"
            | "COULD_NOT_AUTO_DETECT_OPERATOR"
            | "RECIPIENT_PHONE_INACTIVE"
            | "PHONE_BANNED_BY_OPERATOR"
    )
}

/// Whether a failure is Reloadly refusing a top-up for its own content
/// (the phone, the amount), which the same request sent earlier met too;
/// not one about the gateway's account or the moment.
pub fn refuses_the_request(failure: &Failure) -> bool {
    !failure.retryable && matches!(failure.code.as_str(), "VERIFICATION_FAILED" | "AMOUNT_NOT_SUPPORTED")
}

/// Our failure for a Reloadly error code. Only the customer's own mistakes
/// are `VERIFICATION_FAILED`; the gateway's account (balance, limits,
/// credentials) is the operator's to fix.
pub fn failure_for_error(code: &str, message: &str) -> Failure {
    let said = |what: &str| {
        let message = truncate(message);
        if message.is_empty() {
            format!("{what} (Reloadly: {code})")
        } else {
            format!("{what} (Reloadly: {code}: {message})")
        }
    };
    if is_unknown_phone(code) {
        return failure("VERIFICATION_FAILED", said("the phone number cannot be topped up"), false);
    }
    match code {
        "INSUFFICIENT_BALANCE" => failure(
            "PROVIDER_FUNDS_LOW",
            said("the gateway's Reloadly balance is too low; the operator must fund it"),
            false,
        ),
        "PHONE_RECENTLY_RECHARGED" => failure(
            "RECENTLY_RECHARGED",
            said("this phone was topped up moments ago; try again in a few minutes"),
            true,
        ),
        "INVALID_AMOUNT_FOR_OPERATOR"
        | "IMPOSSIBLE_AMOUNT"
        | "INVALID_AMOUNT"
        | "INVALID_AMOUNT_FOR_RECIPIENT_PHONE" => {
            failure("AMOUNT_NOT_SUPPORTED", said("the network does not sell this amount"), false)
        }
        "TRANSACTION_CANNOT_BE_PROCESSED_AT_THE_MOMENT"
        | "OPERATOR_UNAVAILABLE_OR_CURRENTLY_INACTIVE"
        | "OPERATOR_NOT_IN_SERVICE"
        | "SERVICE_TO_OPERATOR_TEMPORARILY_UNAVAILABLE"
        | "PROVIDER_INTERNAL_ERROR" => failure("PROVIDER_UNAVAILABLE", said("the network is unavailable"), true),
        "MAX_DAILY_TRANSACTION_COUNT_REACHED" | "MAX_DAILY_TRANSACTION_AMOUNT_REACHED" => {
            failure("PROVIDER_LIMIT_REACHED", said("the gateway's daily Reloadly limit is reached"), true)
        }
        "INVALID_TOKEN" | "TOKEN_EXPIRED" | "INACTIVE_ACCOUNT" | "ACCOUNT_NOT_FOUND" => {
            failure("PROVIDER_AUTH_FAILED", said("Reloadly refused the gateway's account"), false)
        }
        "TOPUP_TRANSACTION_FAILED" => failure("TOPUP_FAILED", said("Reloadly reported the top-up failed"), false),
        _ => failure("PROVIDER_REFUSED", said("Reloadly refused the top-up"), false),
    }
}

pub fn failure(code: &str, message: String, retryable: bool) -> Failure {
    Failure { code: code.to_string(), message, retryable }
}

/// At most 120 characters of provider text, without control characters.
pub fn truncate(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(PROVIDER_TEXT_CHARS_MAX).collect()
}

/// `text` percent-encoded for a query value or a path segment.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_follow_the_audience() {
        assert_eq!(Environment::from_audience("https://topups-sandbox.reloadly.com/"), Some(Environment::Sandbox));
        assert_eq!(Environment::from_audience(LIVE_AUDIENCE), Some(Environment::Live));
        assert_eq!(Environment::from_audience("https://topups.example.com"), None);
        assert_eq!(Environment::parse(" Production "), Some(Environment::Live));
        assert_eq!(Environment::parse("test"), None);
        assert_eq!(Environment::Sandbox.audience(), SANDBOX_AUDIENCE);
    }

    #[test]
    fn minor_units_become_exact_decimals_and_back() {
        assert_eq!(to_decimal_text(15_000, "LRD").unwrap(), "150.00");
        assert_eq!(to_decimal_text(5, "USD").unwrap(), "0.05");
        assert_eq!(to_decimal_text(700, "XOF").unwrap(), "700");
        assert!(to_decimal_text(1, "ABC").is_err());
        for (text, minor) in [("150", 15_000), ("150.5", 15_050), ("150.00", 15_000), ("0.1", 10), ("5.000", 500)] {
            assert_eq!(from_decimal_text(text, "LRD").unwrap(), minor, "{text}");
        }
        // 0.1 + 0.2 in floats is 0.30000000000000004: the text is kept exact.
        assert_eq!(from_decimal_text("0.30", "USD").unwrap(), 30);
        for bad in ["150.005", "-1", "1e2", "", ".5", "1,00", "99999999999999999999", "abc"] {
            assert!(from_decimal_text(bad, "USD").is_err(), "{bad}");
        }
        assert_eq!(from_decimal_text("700.0", "XOF").unwrap(), 700);
        assert!(from_decimal_text("700.5", "XOF").is_err());
    }

    #[test]
    fn phones_become_international_digits() {
        for phone in ["+231880123456", "0880123456", "880123456", "231880123456", "+231 88 012 3456"] {
            assert_eq!(international_number(phone, "231").unwrap(), "231880123456", "{phone}");
        }
        for bad in ["+2348012345678", "+231", "0880abc456", "", "+23100880123"] {
            assert!(international_number(bad, "231").is_err(), "{bad}");
        }
        assert_eq!(dial_code_for("LR"), Some("231"));
        assert_eq!(dial_code_for("US"), None);
    }

    const OPERATORS: &str = r#"[
        {"operatorId": 660, "name": "Lonestar Cell MTN Liberia", "data": false, "bundle": false,
         "denominationType": "RANGE", "senderCurrencyCode": "USD", "destinationCurrencyCode": "LRD",
         "supportsLocalAmounts": true, "minAmount": 0.1, "maxAmount": 50, "fixedAmounts": []},
        {"id": 662, "operatorId": 662, "name": "MTN Liberia Data", "data": true, "bundle": false,
         "denominationType": "FIXED", "senderCurrencyCode": "USD", "destinationCurrencyCode": "LRD",
         "supportsLocalAmounts": true,
         "fixedAmounts": [2.5, 0.5, 1.0, 0.50, 0, 2.505],
         "fixedAmountsDescriptions": {"0.50": "500MB, 1 day", "2.5": "3GB, 30 days"},
         "localFixedAmounts": ["450.00", 90, 180.0],
         "localFixedAmountsDescriptions": {"90.00": "500MB, 1 day"}},
        {"operatorId": 663, "name": "Orange Liberia Bundles", "data": null, "bundle": true,
         "senderCurrencyCode": "USD", "destinationCurrencyCode": "LRD", "fixedAmounts": null},
        {"operatorId": 661, "name": "Orange Liberia", "fixedAmountsDescriptions": null}
    ]"#;

    #[test]
    fn operators_are_read_whatever_fields_reloadly_leaves_out() {
        let operators = parse_operators(OPERATORS.as_bytes()).unwrap();
        assert_eq!(operators.len(), 4);
        assert_eq!(operators[0].slug(), Some("mtn"));
        assert_eq!(operators[3].slug(), Some("orange"));
        assert_eq!(slug_of("Cellcom Guinea"), None);
        assert_eq!(data_operator(&operators, "mtn").and_then(Operator::id), Some(662));
        assert_eq!(data_operator(&operators, "orange").and_then(Operator::id), Some(663));
        let paged = format!(r#"{{"content": {OPERATORS}, "totalElements": 4}}"#);
        assert_eq!(parse_operators(paged.as_bytes()).unwrap().len(), 4);
        assert!(parse_operators(b"<html>").is_err());
        let detected = parse_operator(br#"{"id": 660, "name": "Lonestar Cell MTN Liberia"}"#).unwrap();
        assert_eq!((detected.id(), detected.sells_data()), (Some(660), false));
    }

    #[test]
    fn amounts_go_local_only_in_the_operators_currency() {
        let operators = parse_operators(OPERATORS.as_bytes()).unwrap();
        assert_eq!(operators[0].uses_local_amount("LRD"), Ok(true));
        assert_eq!(operators[0].uses_local_amount("USD"), Ok(false));
        assert!(operators[0].uses_local_amount("EUR").is_err());
        let no_local = parse_operator(
            br#"{"operatorId":1,"name":"MTN","destinationCurrencyCode":"LRD","supportsLocalAmounts":false}"#,
        )
        .unwrap();
        assert!(no_local.uses_local_amount("LRD").is_err());
    }

    #[test]
    fn plans_are_the_fixed_amounts_deduped_sorted_and_exact() {
        let operators = parse_operators(OPERATORS.as_bytes()).unwrap();
        let mtn = data_operator(&operators, "mtn").unwrap();
        let usd = plans(mtn, "mtn", "USD").unwrap();
        let listed: Vec<(&str, u64, &str)> =
            usd.iter().map(|p| (p.code.as_str(), p.price.amount, p.name.as_str())).collect();
        // Zero and 2.505 (not a whole cent) dropped; 0.5 and 0.50 once.
        assert_eq!(
            listed,
            [
                ("mtn-data-50", 50, "500MB, 1 day"),
                ("mtn-data-100", 100, "Data bundle, USD 1.00"),
                ("mtn-data-250", 250, "3GB, 30 days"),
            ]
        );
        assert!(usd.iter().all(|p| p.price.currency == "USD"));
        let lrd = plans(mtn, "mtn", "LRD").unwrap();
        let prices: Vec<u64> = lrd.iter().map(|p| p.price.amount).collect();
        assert_eq!(prices, [9_000, 18_000, 45_000]);
        assert_eq!(lrd[0].name, "500MB, 1 day");
        assert!(plans(mtn, "mtn", "EUR").is_err());
        let orange = data_operator(&operators, "orange").unwrap();
        assert!(plans(orange, "orange", "USD").unwrap().is_empty());
    }

    #[test]
    fn plan_codes_carry_their_price() {
        assert_eq!(plan_code("orange", 45_000), "orange-data-45000");
        assert_eq!(plan_price("orange-data-45000", "orange"), Some(45_000));
        assert_eq!(plan_price("orange-data-45000", "mtn"), None);
        for bad in ["mtn-data-", "mtn-data-01", "mtn-data-1x", "mtn-1gb"] {
            assert_eq!(plan_price(bad, "mtn"), None, "{bad}");
        }
    }

    #[test]
    fn the_token_request_is_client_credentials_for_the_audience() {
        let body: Value = serde_json::from_slice(&token_body("id", "secret", SANDBOX_AUDIENCE)).unwrap();
        assert_eq!(body["grant_type"], "client_credentials");
        assert_eq!(body["audience"], SANDBOX_AUDIENCE);
        assert_eq!((body["client_id"].as_str(), body["client_secret"].as_str()), (Some("id"), Some("secret")));
        let answer = br#"{"access_token":"t","scope":"send-topups","expires_in":5184000,"token_type":"Bearer"}"#;
        assert_eq!(parse_token(answer).unwrap(), ("t".to_string(), 5_184_000));
        assert_eq!(parse_token(br#"{"access_token":"t"}"#).unwrap().1, 86_400);
        assert!(parse_token(br#"{"access_token":""}"#).is_err());
        assert!(parse_token(b"{}").is_err());
    }

    #[test]
    fn the_topup_body_follows_the_documented_shape() {
        let body = topup_body(662, "150.00", true, "bill_1", "LR", "231880123456").unwrap();
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(text.contains(r#""amount":150.00"#), "the decimal's exact text: {text}");
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["operatorId"], 662);
        assert_eq!(value["useLocalAmount"], true);
        assert_eq!(value["customIdentifier"], "bill_1");
        assert_eq!(value["recipientPhone"]["countryCode"], "LR");
        assert_eq!(value["recipientPhone"]["number"], "231880123456");
        assert!(topup_body(1, "1e", false, "x", "LR", "1").is_err());
    }

    #[test]
    fn answers_map_to_outcomes() {
        let ok = parse_topup(
            br#"{"transactionId": 4602843, "status": "SUCCESSFUL", "customIdentifier": "bill_1",
            "requestedAmount": 150.0, "deliveredAmount": 150}"#,
        )
        .unwrap();
        assert_eq!(ok, Found { transaction_id: Some("4602843".into()), standing: Standing::Successful });
        let done = outcome(ok);
        assert_eq!((done.status, done.provider_reference.as_deref()), (TransactionStatus::Completed, Some("4602843")));
        assert!(done.failure.is_none());

        let pending = outcome(parse_topup(br#"{"transactionId": "9", "status": "PENDING"}"#).unwrap());
        assert_eq!(pending.status, TransactionStatus::Processing);
        let refunded = outcome(parse_topup(br#"{"transactionId": 9, "status": "REFUNDED"}"#).unwrap());
        assert_eq!(refunded.status, TransactionStatus::Refunded);
        assert_eq!(refunded.failure.unwrap().code, "PROVIDER_REVERSED");
        let failed = outcome(parse_topup(br#"{"transactionId": 9, "status": "FAILED"}"#).unwrap());
        assert_eq!((failed.status, failed.failure.unwrap().code.as_str()), (TransactionStatus::Failed, "TOPUP_FAILED"));
        assert!(parse_topup(br#"{"transactionId": 9, "status": "MAYBE"}"#).is_err());
        assert!(parse_topup(br#"{"transactionId": 9}"#).is_err());
        assert!(parse_topup(b"<html>").is_err());
    }

    #[test]
    fn status_answers_carry_the_transaction_and_its_error() {
        let body = br#"{"code": null, "message": null, "status": "SUCCESSFUL",
            "transaction": {"transactionId": 77, "status": "SUCCESSFUL", "customIdentifier": "bill_1"}}"#;
        assert_eq!(
            parse_status(body).unwrap(),
            Found { transaction_id: Some("77".into()), standing: Standing::Successful }
        );
        let failed = br#"{"status": "FAILED", "errorCode": "INVALID_RECIPIENT_PHONE", "message": "bad",
            "transaction": {"transactionId": 78}}"#;
        let outcome = outcome(parse_status(failed).unwrap());
        assert_eq!(outcome.status, TransactionStatus::Failed);
        assert_eq!(outcome.failure.unwrap().code, "VERIFICATION_FAILED");
        assert!(parse_status(br#"{"code": null}"#).is_err());
    }

    #[test]
    fn reports_find_the_purchase_by_its_identifier_only() {
        let page = br#"{"content": [{"transactionId": 5, "customIdentifier": "bill_2", "status": "SUCCESSFUL"},
            {"transactionId": 6, "customIdentifier": "bill_1"}], "totalElements": 2}"#;
        let found = parse_report(page, "bill_1").unwrap().unwrap();
        // No status: pending until its transaction status says.
        assert_eq!(found, Found { transaction_id: Some("6".into()), standing: Standing::Pending });
        let found = parse_report(page, "bill_2").unwrap().unwrap();
        assert_eq!(found, Found { transaction_id: Some("5".into()), standing: Standing::Successful });
        assert_eq!(parse_report(page, "bill_3").unwrap(), None);
        assert_eq!(parse_report(br#"{"content": []}"#, "bill_1").unwrap(), None);
        let list = br#"[{"transactionId": 7, "customIdentifier": "bill_1", "status": "REFUNDED"}]"#;
        assert_eq!(parse_report(list, "bill_1").unwrap().unwrap().standing, Standing::Refunded);
        assert!(parse_report(b"nope", "bill_1").is_err());
    }

    #[test]
    fn errors_become_typed_failures() {
        let body = br#"{"timeStamp": "2026-01-01", "message": "Insufficient balance", "path": "/topups",
            "errorCode": "INSUFFICIENT_BALANCE", "infoLink": null, "details": []}"#;
        let (code, message) = parse_error(body).unwrap();
        let low = failure_for_error(&code, &message);
        assert_eq!((low.code.as_str(), low.retryable), ("PROVIDER_FUNDS_LOW", false));
        assert!(low.message.contains("INSUFFICIENT_BALANCE"), "{}", low.message);
        assert_eq!(failure_for_error("INVALID_RECIPIENT_PHONE", "").code, "VERIFICATION_FAILED");
        assert_eq!(failure_for_error("COULD_NOT_AUTO_DETECT_OPERATOR", "").code, "VERIFICATION_FAILED");
        assert!(failure_for_error("PHONE_RECENTLY_RECHARGED", "").retryable);
        assert_eq!(failure_for_error("INVALID_AMOUNT_FOR_OPERATOR", "").code, "AMOUNT_NOT_SUPPORTED");
        assert_eq!(failure_for_error("SOMETHING_NEW", "x").code, "PROVIDER_REFUSED");
        let long = "y".repeat(500);
        assert!(failure_for_error("SOMETHING_NEW", &long).message.chars().count() < 200);
        assert_eq!(parse_error(br#"{"message": "no code"}"#), None);
        assert_eq!(parse_error(b"<html>"), None);
    }

    #[test]
    fn duplicates_are_told_by_code_or_message() {
        assert!(is_duplicate("CUSTOM_IDENTIFIER_ALREADY_USED", ""));
        // Only refusals of the request's own content are final on a re-send.
        assert!(refuses_the_request(&failure_for_error("INVALID_RECIPIENT_PHONE", "")));
        assert!(refuses_the_request(&failure_for_error("INVALID_AMOUNT", "")));
        assert!(!refuses_the_request(&failure_for_error("INSUFFICIENT_BALANCE", "")));
        assert!(!refuses_the_request(&failure_for_error("PHONE_RECENTLY_RECHARGED", "")));
        assert!(!refuses_the_request(&failure_for_error("SOMETHING_NEW", "")));
        assert!(is_duplicate("INVALID_INPUT", "This custom identifier has already been used"));
        assert!(!is_duplicate("INSUFFICIENT_BALANCE", "Insufficient balance"));
    }

    #[test]
    fn identifiers_are_percent_encoded() {
        assert_eq!(url_encode("bill_0Ab-9.~"), "bill_0Ab-9.~");
        assert_eq!(url_encode("a b&c=d/e"), "a%20b%26c%3Dd%2Fe");
    }
}
