//! Log lines, tagged by the host with the plugin's name. Never log a
//! credential or a customer's card number.

use crate::bindings::soxara::gateway::log::{self, Level};

pub fn debug(message: &str) {
    log::log(Level::Debug, message);
}

pub fn info(message: &str) {
    log::log(Level::Info, message);
}

pub fn warn(message: &str) {
    log::log(Level::Warn, message);
}

pub fn error(message: &str) {
    log::log(Level::Error, message);
}
