//! Test or live: chosen by the key's prefix, and kept apart everywhere (keys,
//! objects, ledger accounts, rails). A [`Tenant`] is a merchant in one mode:
//! the unit every object belongs to.

use super::text::text_enum;

text_enum! {
    pub enum Mode {
        Test => "test",
        Live => "live",
    }
}

impl Mode {
    /// What objects show as `livemode`.
    pub fn is_live(self) -> bool {
        self == Mode::Live
    }
}

/// A merchant in one mode: whose objects a key may see and change. Another
/// merchant's objects, and the same merchant's in the other mode, do not
/// exist for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tenant {
    pub merchant_id: String,
    pub mode: Mode,
}

impl Tenant {
    pub fn new(merchant_id: impl Into<String>, mode: Mode) -> Tenant {
        Tenant { merchant_id: merchant_id.into(), mode }
    }

    /// Whether a record of `merchant_id` in `mode` is this tenant's.
    pub fn owns(&self, merchant_id: &str, mode: Mode) -> bool {
        self.merchant_id == merchant_id && self.mode == mode
    }
}
