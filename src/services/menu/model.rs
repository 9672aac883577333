//! Menu item records and the request bodies that create and change them, with validation.

use serde::{Deserialize, Serialize};

use crate::services::http::ApiError;
use crate::services::validate::{self, nullable};

pub const MAX_NAME: usize = 200;
pub const MAX_DESCRIPTION: usize = 2000;
pub const MAX_CATEGORY: usize = 100;
/// The highest price accepted: 10 million in the currency's major unit.
pub const MAX_PRICE_CENTS: i64 = 1_000_000_000;

/// A menu item as stored and returned.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MenuItem {
    pub id: String,
    pub venue_id: String,
    pub name: String,
    pub description: Option<String>,
    pub category: Option<String>,
    pub price_cents: i64,
    pub available: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /menu-items`. `openapi.rs` states the same rules as [`NewMenuItem::validate`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewMenuItem {
    pub venue_id: String,
    pub name: String,
    #[serde(deserialize_with = "validate::whole")]
    pub price_cents: i64,
    /// `null` or absent: no description.
    #[serde(default)]
    pub description: Option<String>,
    /// `null` or absent: no category.
    #[serde(default)]
    pub category: Option<String>,
    /// Absent: available; `null` is refused, as in a PATCH.
    #[serde(default = "available_by_default")]
    pub available: bool,
}

fn available_by_default() -> bool {
    true
}

impl NewMenuItem {
    pub fn validate(&self) -> Result<(), ApiError> {
        validate::id("venueId", &self.venue_id)?;
        validate::text("name", &self.name, MAX_NAME, true)?;
        validate::range("priceCents", self.price_cents, 0, MAX_PRICE_CENTS)?;
        if let Some(d) = &self.description {
            validate::text("description", d, MAX_DESCRIPTION, false)?;
        }
        if let Some(c) = &self.category {
            validate::text("category", c, MAX_CATEGORY, true)?;
        }
        Ok(())
    }
}

/// `PATCH /menu-items/{id}`: every field optional; `description`/`category` may be `null`
/// to clear them. The venue of an item never changes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MenuItemPatch {
    #[serde(default, deserialize_with = "nullable")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::nullable_whole")]
    pub price_cents: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub category: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub available: Option<Option<bool>>,
}

/// A checked patch, ready to apply.
#[derive(Debug, Default)]
pub struct Changes {
    pub name: Option<String>,
    pub price_cents: Option<i64>,
    pub description: Option<Option<String>>,
    pub category: Option<Option<String>>,
    pub available: Option<bool>,
}

impl MenuItemPatch {
    pub fn validate(self) -> Result<Changes, ApiError> {
        if self.name.is_none()
            && self.price_cents.is_none()
            && self.description.is_none()
            && self.category.is_none()
            && self.available.is_none()
        {
            return Err(ApiError::validation(
                "body",
                "changes nothing; give at least one of name, priceCents, description, \
                 category, available",
            ));
        }
        let changes = Changes {
            name: validate::not_null("name", self.name)?,
            price_cents: validate::not_null("priceCents", self.price_cents)?,
            description: self.description,
            category: self.category,
            available: validate::not_null("available", self.available)?,
        };
        if let Some(name) = &changes.name {
            validate::text("name", name, MAX_NAME, true)?;
        }
        if let Some(price) = changes.price_cents {
            validate::range("priceCents", price, 0, MAX_PRICE_CENTS)?;
        }
        if let Some(Some(d)) = &changes.description {
            validate::text("description", d, MAX_DESCRIPTION, false)?;
        }
        if let Some(Some(c)) = &changes.category {
            validate::text("category", c, MAX_CATEGORY, true)?;
        }
        Ok(changes)
    }
}

impl Changes {
    /// Applies the changes to `item` (the timestamp is the caller's).
    pub fn apply(self, item: &mut MenuItem) {
        if let Some(name) = self.name {
            item.name = name;
        }
        if let Some(price) = self.price_cents {
            item.price_cents = price;
        }
        if let Some(d) = self.description {
            item.description = d;
        }
        if let Some(c) = self.category {
            item.category = c;
        }
        if let Some(a) = self.available {
            item.available = a;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_tells_null_from_absent() {
        let patch: MenuItemPatch = serde_json::from_str(r#"{"description":null}"#).unwrap();
        let changes = patch.validate().unwrap();
        assert_eq!(changes.description, Some(None));
        assert_eq!(changes.category, None);
        let patch: MenuItemPatch = serde_json::from_str(r#"{"name":null}"#).unwrap();
        assert_eq!(patch.validate().unwrap_err().details["field"], "name");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<NewMenuItem>(
            r#"{"venueId":"v","name":"n","priceCents":1,"price_cents":2}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
