//! Field checks shared by the services' request types: each returns a `422
//! validation_failed` naming the field, so a client learns exactly what to fix.

use serde::{Deserialize, Deserializer};

use super::http::{ApiError, MAX_ID_LEN};

/// The most lines one order (and so one reservation) may have.
pub const MAX_LINES: usize = 100;
/// The most units of one item per line; an order's lines become a reservation's lines.
pub const MAX_LINE_QUANTITY: i64 = 10_000;

/// The `items` of an order or a reservation: 1 to [`MAX_LINES`] lines.
pub fn line_count(count: usize) -> Result<(), ApiError> {
    if count == 0 {
        return Err(ApiError::validation("items", "must not be empty"));
    }
    if count > MAX_LINES {
        return Err(ApiError::validation(
            "items",
            format!("may have at most {MAX_LINES} lines"),
        ));
    }
    Ok(())
}

/// One line: a menu item id and 1 to [`MAX_LINE_QUANTITY`] units of it.
pub fn line(menu_item_id: &str, quantity: i64) -> Result<(), ApiError> {
    id("items[].menuItemId", menu_item_id)?;
    range("items[].quantity", quantity, 1, MAX_LINE_QUANTITY)
}

/// An id given in a body (`venueId`, `menuItemId`, `orderId`): 1 to [`MAX_ID_LEN`] chars.
pub fn id(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > MAX_ID_LEN {
        return Err(ApiError::validation(
            field,
            format!("must be 1 to {MAX_ID_LEN} characters"),
        ));
    }
    if value.chars().any(|c| c.is_control() || c == '/') {
        return Err(ApiError::validation(
            field,
            "must not contain `/` or control characters",
        ));
    }
    Ok(())
}

/// Free text with a length bound; `required` also forbids blank text.
pub fn text(field: &str, value: &str, max: usize, required: bool) -> Result<(), ApiError> {
    if required && value.trim().is_empty() {
        return Err(ApiError::validation(field, "must not be blank"));
    }
    if value.chars().count() > max {
        return Err(ApiError::validation(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

/// An integer within `min..=max`.
pub fn range(field: &str, value: i64, min: i64, max: i64) -> Result<(), ApiError> {
    if value < min || value > max {
        return Err(ApiError::validation(
            field,
            format!("must be from {min} to {max}, got {value}"),
        ));
    }
    Ok(())
}

/// For PATCH bodies: distinguishes an absent field (`None`) from an explicit `null`
/// (`Some(None)`). Use with `#[serde(default, deserialize_with = "validate::nullable")]`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A PATCH field that may be absent but never `null`.
pub fn not_null<T>(field: &str, value: Option<Option<T>>) -> Result<Option<T>, ApiError> {
    match value {
        None => Ok(None),
        Some(None) => Err(ApiError::validation(field, "must not be null")),
        Some(Some(v)) => Ok(Some(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_the_field() {
        assert!(id("venueId", "v-1").is_ok());
        for bad in ["", "a/b", "a\nb"] {
            let err = id("venueId", bad).unwrap_err();
            assert_eq!(err.details["field"], "venueId");
        }
        assert!(id("venueId", &"x".repeat(MAX_ID_LEN + 1)).is_err());
        assert!(text("name", "  ", 10, true).is_err());
        assert!(text("description", "", 10, false).is_ok());
        assert!(text("name", "ééé", 3, true).is_ok());
        assert!(range("quantity", -1, 0, 10).is_err());
        assert!(not_null::<i64>("priceCents", Some(None)).is_err());
    }
}
