//! Pure pricing for a new order: checking its items against the menu, snapshotting prices
//! and totals, and the merged lines to reserve. No I/O, so it is tested directly.

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use serde_json::json;

use super::deps::{Line, MenuItem};
use super::model::{NewOrder, OrderLine, price};
use crate::services::http::ApiError;

/// Prices `new` from `menu`, or names the items that do not exist (422), belong to
/// another venue (422) or are not available (409), in that order of precedence.
pub fn snapshot(
    new: &NewOrder,
    menu: &HashMap<String, MenuItem>,
) -> Result<(Vec<OrderLine>, i64), ApiError> {
    let (mut unknown, mut foreign, mut unavailable) = (Vec::new(), Vec::new(), Vec::new());
    let mut lines = Vec::with_capacity(new.items.len());
    for wanted in &new.items {
        let id = wanted.menu_item_id.as_str();
        match menu.get(id) {
            None => unknown.push(id),
            Some(item) if item.venue_id != new.venue_id => foreign.push(id),
            Some(item) if !item.available => unavailable.push(id),
            Some(item) => lines.push((
                item.id.clone(),
                item.name.clone(),
                item.price_cents,
                wanted.quantity,
            )),
        }
    }
    let problem = |code: &'static str, status: StatusCode, what: String, mut bad: Vec<&str>| {
        bad.sort_unstable();
        bad.dedup();
        ApiError::new(status, code, format!("{what}: {}", bad.join(", ")))
            .with_details(json!({ "items": bad }))
    };
    if !unknown.is_empty() {
        let what = "these menu items do not exist".to_string();
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return Err(problem("unknown_menu_item", status, what, unknown));
    }
    if !foreign.is_empty() {
        let what = format!("these menu items do not belong to venue {}", new.venue_id);
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return Err(problem("menu_item_wrong_venue", status, what, foreign));
    }
    if !unavailable.is_empty() {
        let what = "these menu items are not available".to_string();
        return Err(problem(
            "menu_item_unavailable",
            StatusCode::CONFLICT,
            what,
            unavailable,
        ));
    }
    price(&lines).ok_or_else(|| {
        ApiError::validation(
            "items",
            "add up to more than the largest representable total",
        )
    })
}

/// One reservation line per distinct item.
pub fn reservation_lines(new: &NewOrder) -> Vec<Line> {
    let mut merged: BTreeMap<&str, i64> = BTreeMap::new();
    for item in &new.items {
        *merged.entry(&item.menu_item_id).or_default() += item.quantity;
    }
    merged
        .into_iter()
        .map(|(id, quantity)| Line {
            menu_item_id: id.to_string(),
            quantity,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn menu() -> HashMap<String, MenuItem> {
        let item = |id: &str, venue: &str, price, available| MenuItem {
            id: id.into(),
            venue_id: venue.into(),
            name: id.to_uppercase(),
            price_cents: price,
            available,
        };
        [
            item("tea", "v1", 300, true),
            item("bun", "v1", 125, true),
            item("pie", "v2", 500, true),
            item("off", "v1", 100, false),
        ]
        .into_iter()
        .map(|i| (i.id.clone(), i))
        .collect()
    }

    fn order(items: &[(&str, i64)]) -> NewOrder {
        serde_json::from_value(json!({
            "venueId": "v1",
            "items": items.iter().map(|(id, q)| json!({"menuItemId": id, "quantity": q}))
                .collect::<Vec<_>>()
        }))
        .unwrap()
    }

    #[test]
    fn prices_are_snapshotted_per_line() {
        let (lines, total) =
            snapshot(&order(&[("tea", 2), ("bun", 1), ("tea", 1)]), &menu()).unwrap();
        assert_eq!(total, 1025);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].name, "TEA");
    }

    #[test]
    fn problems_name_every_offending_item_by_precedence() {
        let err = snapshot(&order(&[("pie", 1), ("ghost", 1), ("off", 1)]), &menu()).unwrap_err();
        assert_eq!(
            (err.code, &err.details["items"]),
            ("unknown_menu_item", &json!(["ghost"]))
        );
        let err = snapshot(&order(&[("off", 1), ("pie", 1), ("pie", 2)]), &menu()).unwrap_err();
        assert_eq!(
            (err.code, &err.details["items"]),
            ("menu_item_wrong_venue", &json!(["pie"]))
        );
        let err = snapshot(&order(&[("off", 1), ("tea", 1)]), &menu()).unwrap_err();
        assert_eq!(err.status, StatusCode::CONFLICT);
        assert_eq!(err.details["items"], json!(["off"]));
    }

    #[test]
    fn reservation_merges_repeated_items() {
        let lines = reservation_lines(&order(&[("tea", 2), ("bun", 1), ("tea", 1)]));
        let pairs: Vec<(&str, i64)> = lines
            .iter()
            .map(|l| (l.menu_item_id.as_str(), l.quantity))
            .collect();
        assert_eq!(pairs, [("bun", 1), ("tea", 3)]);
    }
}
