//! Stock records, reservations and the request bodies that change them, with validation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::services::http::ApiError;
use crate::services::validate;

/// The most stock one item may hold.
pub const MAX_QUANTITY: i64 = 1_000_000_000;

/// Stock of one menu item: `quantity` units are available to reserve.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Stock {
    pub menu_item_id: String,
    pub quantity: i64,
    pub updated_at: String,
}

/// `PUT /inventory/{menuItemId}`: sets the stock.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetQuantity {
    #[serde(deserialize_with = "validate::whole")]
    pub quantity: i64,
}

/// `POST /inventory` (the seed's update): sets the stock of `menuItemId`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetStock {
    pub menu_item_id: String,
    #[serde(deserialize_with = "validate::whole")]
    pub quantity: i64,
}

pub fn check_quantity(quantity: i64) -> Result<(), ApiError> {
    validate::range("quantity", quantity, 0, MAX_QUANTITY)
}

/// One line of a reservation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Line {
    pub menu_item_id: String,
    #[serde(deserialize_with = "validate::whole")]
    pub quantity: i64,
}

/// `POST /inventory/reservations`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReservationRequest {
    pub order_id: String,
    pub items: Vec<Line>,
}

impl ReservationRequest {
    /// Checks the request and merges repeated items, returning lines sorted by item id.
    pub fn validate(self) -> Result<(String, Vec<Line>), ApiError> {
        validate::id("orderId", &self.order_id)?;
        validate::line_count(self.items.len())?;
        let mut merged: BTreeMap<String, i64> = BTreeMap::new();
        for line in self.items {
            validate::line(&line.menu_item_id, line.quantity)?;
            *merged.entry(line.menu_item_id).or_default() += line.quantity;
        }
        let lines = merged
            .into_iter()
            .map(|(menu_item_id, quantity)| Line {
                menu_item_id,
                quantity,
            })
            .collect();
        Ok((self.order_id, lines))
    }
}

/// A reservation as stored: `held` keeps its stock taken, `released` gave it back (and
/// blocks a late repeat of the same `orderId` from taking it again).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub order_id: String,
    pub status: String,
    pub items: Vec<Line>,
    pub created_at: String,
    pub updated_at: String,
}

/// An item a reservation could not take.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Shortage {
    pub menu_item_id: String,
    pub requested: i64,
    pub available: i64,
}

/// `409 insufficient_stock`, naming each short item.
pub fn insufficient(shortages: &[Shortage]) -> ApiError {
    let named: Vec<String> = shortages
        .iter()
        .map(|s| {
            format!(
                "{} (requested {}, available {})",
                s.menu_item_id, s.requested, s.available
            )
        })
        .collect();
    ApiError::conflict(
        "insufficient_stock",
        format!("insufficient stock for {}", named.join(", ")),
    )
    .with_details(serde_json::json!({ "items": shortages }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_items_are_merged_and_sorted() {
        let request: ReservationRequest = serde_json::from_value(serde_json::json!({
            "orderId": "o1",
            "items": [{"menuItemId": "b", "quantity": 1}, {"menuItemId": "a", "quantity": 2},
                      {"menuItemId": "b", "quantity": 3}]
        }))
        .unwrap();
        let (_, lines) = request.validate().unwrap();
        let pairs: Vec<(&str, i64)> = lines
            .iter()
            .map(|l| (l.menu_item_id.as_str(), l.quantity))
            .collect();
        assert_eq!(pairs, [("a", 2), ("b", 4)]);
    }

    #[test]
    fn message_names_each_short_item() {
        let err = insufficient(&[
            Shortage {
                menu_item_id: "a".into(),
                requested: 3,
                available: 1,
            },
            Shortage {
                menu_item_id: "b".into(),
                requested: 1,
                available: 0,
            },
        ]);
        assert_eq!(err.status, axum::http::StatusCode::CONFLICT);
        assert!(
            err.message.contains("a (requested 3, available 1)"),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("b (requested 1, available 0)"),
            "{}",
            err.message
        );
        assert_eq!(err.details["items"][1]["menuItemId"], "b");
    }
}
