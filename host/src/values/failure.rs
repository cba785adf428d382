//! Why something failed, as objects show it.

use serde::Serialize;

/// A failure's stable code (`UPPER_SNAKE_CASE`) and what it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FailureReason {
    pub code: String,
    pub message: Option<String>,
}

impl FailureReason {
    /// From its stored columns (no code: no failure).
    pub fn from_columns(code: Option<String>, message: Option<String>) -> Option<FailureReason> {
        code.map(|code| FailureReason { code, message })
    }
}
