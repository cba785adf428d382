//! What the catalogue endpoints answer: whole lists (catalogues, plans,
//! channels, rates come whole, never paged) and a trader's rates per payout
//! currency.

use serde::Serialize;

use crate::domain::fx::{RateObject, Ratio};
use crate::plugins::traders::TradeRate;
use crate::values::status::ObjectType;

/// A list that never has more.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Listing<T: Serialize> {
    object: ObjectType,
    data: Vec<T>,
    has_more: bool,
}

impl<T: Serialize> Listing<T> {
    pub fn of(data: Vec<T>) -> axum::Json<Listing<T>> {
        axum::Json(Listing { object: ObjectType::List, data, has_more: false })
    }
}

/// What one unit of something (a gift card's face value, a coin) pays in
/// one currency.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PayoutRate {
    payout_currency: String,
    rate: RateObject,
}

impl PayoutRate {
    /// The trader's rates, as merchants see them (the plugin layer refused
    /// any with a zero term).
    pub fn all(rates: Vec<TradeRate>) -> Vec<PayoutRate> {
        rates
            .into_iter()
            .filter_map(|r| {
                let rate = Ratio::new(u128::from(r.numerator), u128::from(r.denominator))?;
                Some(PayoutRate { payout_currency: r.quote, rate: RateObject::from(rate) })
            })
            .collect()
    }
}

/// Refuses any query parameter: the listing takes none.
pub fn no_params(query: &[(String, String)]) -> Result<(), crate::values::error::ApiError> {
    match query.first() {
        Some((name, _)) => {
            Err(crate::values::error::ApiError::invalid(name, "is not a known parameter; this listing takes none"))
        }
        None => Ok(()),
    }
}
