//! Field checks shared by the services' request types: each returns a `422
//! validation_failed` naming the field, so a client learns exactly what to fix.
//!
//! The OpenAPI documents state the same rules: [`ID_PATTERN`] and [`NON_BLANK_PATTERN`] are
//! the regular expressions the documents carry, and the unit tests below check that each
//! accepts exactly what the check it mirrors accepts.

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

/// What an id may be, as a regular expression (ECMA-262, as JSON Schema's `pattern`): no
/// `/`, backslash or control character, and not starting with `.`: every id must be usable as one
/// URL path segment, and the gateway refuses `.`/`..` segments and backslashes.
pub const ID_PATTERN: &str =
    r"^[^./\\\u0000-\u001f\u007f-\u009f][^/\\\u0000-\u001f\u007f-\u009f]*$";

/// Text with at least one character that is not white space (Unicode `White_Space`, what
/// [`str::trim`] removes), as a regular expression.
pub const NON_BLANK_PATTERN: &str =
    r"[^\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// An id (`venueId`, `menuItemId`, `orderId`, in a body, a query or a path): 1 to
/// [`MAX_ID_LEN`] characters matching [`ID_PATTERN`].
pub fn id(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.chars().count() > MAX_ID_LEN {
        return Err(ApiError::validation(
            field,
            format!("must be 1 to {MAX_ID_LEN} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(ApiError::validation(
            field,
            "must not contain `/`, `\\` or control characters",
        ));
    }
    if value.starts_with('.') {
        return Err(ApiError::validation(
            field,
            "must not start with `.` (it must work as a URL path segment)",
        ));
    }
    Ok(())
}

/// Free text with a length bound; `required` also forbids blank text ([`NON_BLANK_PATTERN`]).
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

/// A whole number, however JSON writes it: `2`, `2.0` and `2e0` are all 2, as JSON Schema's
/// `"type": "integer"` (which the documents use) counts them; `2.5` and numbers past the
/// `i64` range are a type error (422 invalid_body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Whole(pub i64);

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Whole;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a whole number")
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Whole, E> {
                Ok(Whole(v))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Whole, E> {
                i64::try_from(v).map(Whole).map_err(|_| {
                    E::invalid_value(serde::de::Unexpected::Unsigned(v), &"a 64-bit integer")
                })
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Whole, E> {
                // 2^63 is exactly representable; every f64 below it and at least -2^63 fits.
                const LIMIT: f64 = 9_223_372_036_854_775_808.0;
                if v.fract() == 0.0 && (-LIMIT..LIMIT).contains(&v) {
                    Ok(Whole(v as i64))
                } else {
                    Err(E::invalid_value(
                        serde::de::Unexpected::Float(v),
                        &"a whole number",
                    ))
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// An `i64` field written as any whole number ([`Whole`]). Use with
/// `#[serde(deserialize_with = "validate::whole")]`.
pub fn whole<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    Whole::deserialize(deserializer).map(|w| w.0)
}

/// [`nullable`] for a [`Whole`] number field of a PATCH body.
pub fn nullable_whole<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<i64>>, D::Error> {
    nullable::<D, Whole>(deserializer).map(|v| v.map(|n| n.map(|w| w.0)))
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

    #[test]
    fn ids_are_one_path_segment() {
        for good in ["v-1", "a.b", "é".repeat(MAX_ID_LEN).as_str(), "x%2F", "a b"] {
            assert!(id("venueId", good).is_ok(), "{good}");
        }
        let long = "é".repeat(MAX_ID_LEN + 1);
        for bad in [
            ".",
            "..",
            ".x",
            "a\\b",
            "a\u{85}b",
            "a\u{7f}",
            long.as_str(),
        ] {
            assert!(id("venueId", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn whole_numbers_however_written() {
        let parse = |text: &str| serde_json::from_str::<Whole>(text).map(|w| w.0);
        for (text, value) in [
            ("2", 2),
            ("-3", -3),
            ("191.0", 191),
            ("2e3", 2000),
            ("-0.0", 0),
        ] {
            assert_eq!(parse(text).unwrap(), value, "{text}");
        }
        for bad in [
            "2.5",
            "1e19",
            "-1e19",
            "9223372036854775808",
            "\"2\"",
            "null",
            "true",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse("-9223372036854775808").unwrap(), i64::MIN);
    }

    /// The `\uXXXX` and `\uXXXX-\uXXXX` items of a regex character class, as ranges.
    fn ranges(mut class: &str) -> Vec<(u32, u32)> {
        let code = |item: &str| u32::from_str_radix(&item[2..6], 16).unwrap();
        let mut ranges = Vec::new();
        while !class.is_empty() {
            let from = code(class);
            class = &class[6..];
            let to = match class.strip_prefix('-') {
                Some(rest) => {
                    class = &rest[6..];
                    code(rest)
                }
                None => from,
            };
            ranges.push((from, to));
        }
        ranges
    }

    fn same_characters(ranges: &[(u32, u32)], check: impl Fn(char) -> bool) {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let listed = ranges.iter().any(|(a, b)| (*a..=*b).contains(&(c as u32)));
            assert_eq!(listed, check(c), "U+{:04X}", c as u32);
        }
    }

    /// The blank check (`str::trim`) and [`NON_BLANK_PATTERN`] agree on every character.
    #[test]
    fn non_blank_pattern_is_what_trim_removes() {
        let class = NON_BLANK_PATTERN.strip_prefix("[^").unwrap();
        same_characters(
            &ranges(class.strip_suffix(']').unwrap()),
            char::is_whitespace,
        );
    }

    /// [`ID_PATTERN`] refuses exactly the control characters [`id`] refuses.
    #[test]
    fn id_pattern_names_the_control_characters() {
        let controls = r"\u0000-\u001f\u007f-\u009f";
        assert_eq!(ID_PATTERN.matches(controls).count(), 2, "{ID_PATTERN}");
        same_characters(&ranges(controls), char::is_control);
    }
}
