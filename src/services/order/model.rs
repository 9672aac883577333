//! Orders, their status machine and totals: pure data and functions, no I/O.
//!
//! Status machine (the only moves `PATCH /orders/{id}` accepts):
//!
//! ```text
//! pending → confirmed → preparing → ready → completed
//!    └──────────┴───────────┴─────────┴──→ cancelled   (releases the order's stock)
//! ```
//!
//! `placing` and `aborted` are internal and never listed nor set through the API: `placing`
//! is an order whose stock reservation is in flight; it becomes `pending` or disappears.
//! `aborted` is a failed placement whose reservation could not be released yet: its
//! idempotency key is freed for a retry and repair releases and deletes it (see `place`,
//! `repair`).

use serde::{Deserialize, Serialize};

use crate::services::http::ApiError;
use crate::services::validate::{self, MAX_LINE_QUANTITY};

/// Longest `Idempotency-Key` accepted.
pub const MAX_KEY_LEN: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Placing,
    Pending,
    Confirmed,
    Preparing,
    Ready,
    Completed,
    Cancelled,
    Aborted,
}

impl Status {
    pub const PUBLIC: [Status; 6] = [
        Status::Pending,
        Status::Confirmed,
        Status::Preparing,
        Status::Ready,
        Status::Completed,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Placing => "placing",
            Status::Pending => "pending",
            Status::Confirmed => "confirmed",
            Status::Preparing => "preparing",
            Status::Ready => "ready",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
            Status::Aborted => "aborted",
        }
    }

    /// Whether clients see orders in this status.
    pub fn is_public(self) -> bool {
        Status::PUBLIC.contains(&self)
    }

    /// A status a client may name (in a filter or a PATCH); `placing` is not one.
    pub fn parse_public(field: &str, text: &str) -> Result<Status, ApiError> {
        Status::PUBLIC
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Status::PUBLIC.iter().map(|s| s.as_str()).collect();
                ApiError::validation(field, format!("must be one of {}", names.join(", ")))
            })
    }

    /// Whether an order may move from `self` to `to`.
    pub fn can_move_to(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Pending, Confirmed)
                | (Confirmed, Preparing)
                | (Preparing, Ready)
                | (Ready, Completed)
                | (Pending | Confirmed | Preparing | Ready, Cancelled)
        )
    }
}

/// One line of an order, with the menu price snapshotted when it was placed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub menu_item_id: String,
    pub name: String,
    pub unit_price_cents: i64,
    pub quantity: i64,
    pub line_total_cents: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: String,
    pub venue_id: String,
    pub status: Status,
    pub items: Vec<OrderLine>,
    pub total_cents: i64,
    pub idempotency_key: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A requested line: which item, how many.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ItemRequest {
    pub menu_item_id: String,
    #[serde(deserialize_with = "validate::whole")]
    pub quantity: i64,
}

/// `POST /orders`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewOrder {
    pub venue_id: String,
    pub items: Vec<ItemRequest>,
}

impl NewOrder {
    pub fn validate(&self) -> Result<(), ApiError> {
        validate::id("venueId", &self.venue_id)?;
        validate::line_count(self.items.len())?;
        let mut per_item: std::collections::HashMap<&str, i64> = Default::default();
        for item in &self.items {
            validate::line(&item.menu_item_id, item.quantity)?;
            let total = per_item.entry(&item.menu_item_id).or_default();
            *total += item.quantity;
            if *total > MAX_LINE_QUANTITY {
                return Err(ApiError::validation(
                    "items[].quantity",
                    format!(
                        "adds up to more than {MAX_LINE_QUANTITY} of menu item {}",
                        item.menu_item_id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The request in a canonical text form, stored with the order so a retry with the same
    /// `Idempotency-Key` can be told apart from the key reused for a different order.
    pub fn fingerprint(&self) -> String {
        serde_json::json!({ "venueId": self.venue_id, "items": self.items }).to_string()
    }
}

/// `PATCH /orders/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub status: String,
}

/// Checks an `Idempotency-Key` header value: 1 to [`MAX_KEY_LEN`] visible ASCII characters.
pub fn check_key(key: &str) -> Result<(), ApiError> {
    let visible = key.bytes().all(|b| b.is_ascii_graphic());
    if key.is_empty() || key.len() > MAX_KEY_LEN || !visible {
        return Err(ApiError::validation(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        ));
    }
    Ok(())
}

/// The priced line for `quantity` units at `unit_price_cents`, and the order total; `None`
/// when a sum would overflow (impossible within the validation bounds, checked anyway).
pub fn price(lines: &[(String, String, i64, i64)]) -> Option<(Vec<OrderLine>, i64)> {
    let mut total: i64 = 0;
    let mut priced = Vec::with_capacity(lines.len());
    for (id, name, unit, quantity) in lines {
        let line_total = unit.checked_mul(*quantity)?;
        total = total.checked_add(line_total)?;
        priced.push(OrderLine {
            menu_item_id: id.clone(),
            name: name.clone(),
            unit_price_cents: *unit,
            quantity: *quantity,
            line_total_cents: line_total,
        });
    }
    Some((priced, total))
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use super::*;

    #[test]
    fn transition_table() {
        let all = [
            Placing, Pending, Confirmed, Preparing, Ready, Completed, Cancelled,
        ];
        let allowed = [
            (Pending, Confirmed),
            (Confirmed, Preparing),
            (Preparing, Ready),
            (Ready, Completed),
            (Pending, Cancelled),
            (Confirmed, Cancelled),
            (Preparing, Cancelled),
            (Ready, Cancelled),
        ];
        for from in all {
            for to in all {
                assert_eq!(
                    from.can_move_to(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn placing_is_not_public() {
        assert!(Status::parse_public("status", "placing").is_err());
        assert!(Status::parse_public("status", "aborted").is_err());
        assert!(!Aborted.is_public() && !Placing.is_public() && Pending.is_public());
        assert!(Status::parse_public("status", "Pending").is_err());
        assert_eq!(Status::parse_public("status", "ready").unwrap(), Ready);
    }

    #[test]
    fn totals_snapshot_each_line() {
        let (lines, total) = price(&[
            ("a".into(), "Tea".into(), 300, 2),
            ("b".into(), "Bun".into(), 125, 3),
        ])
        .unwrap();
        assert_eq!(total, 975);
        assert_eq!(lines[1].line_total_cents, 375);
        assert!(price(&[("a".into(), "x".into(), i64::MAX, 2)]).is_none());
    }

    #[test]
    fn repeated_items_are_bounded_in_total() {
        let order = |q: i64| NewOrder {
            venue_id: "v".into(),
            items: vec![
                ItemRequest {
                    menu_item_id: "a".into(),
                    quantity: MAX_LINE_QUANTITY,
                },
                ItemRequest {
                    menu_item_id: "a".into(),
                    quantity: q,
                },
            ],
        };
        assert!(order(1).validate().is_err());
        let mut fine = order(1);
        fine.items[0].quantity = MAX_LINE_QUANTITY - 1;
        assert!(fine.validate().is_ok());
    }

    #[test]
    fn keys_are_visible_ascii() {
        assert!(check_key("order-42_retry").is_ok());
        for bad in ["", "has space", "é", &"k".repeat(256)] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }
}
