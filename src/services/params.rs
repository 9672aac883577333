//! Query-string parameters and pagination shared by the list routes.
//!
//! Parameters are read by name from the raw pairs so errors can name them, repeated keys
//! work (`?menuItemId=a&menuItemId=b`), and an unknown parameter is a `422` instead of a
//! silently ignored typo.
//!
//! Pagination is keyset-based: results are ordered by id (uuid v7 ids sort by creation
//! time), `limit` defaults to [`DEFAULT_LIMIT`] and is capped at [`MAX_LIMIT`], and
//! `nextCursor` is an opaque token to pass back as `cursor` (today it is the last id
//! returned; clients must not rely on that).

use axum::extract::{FromRequestParts, Query};
use axum::http::{StatusCode, request::Parts};
use serde::Serialize;

use super::http::{ApiError, MAX_ID_LEN};
use super::validate;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// The query string of a request as name/value pairs, consumed by name.
pub struct QueryParams(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
        Ok(QueryParams(pairs))
    }
}

impl QueryParams {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        QueryParams(pairs)
    }

    /// Every value given for `name`, removed from the set.
    pub fn take_all(&mut self, name: &str) -> Vec<String> {
        let (taken, kept) = std::mem::take(&mut self.0)
            .into_iter()
            .partition(|(key, _)| key == name);
        self.0 = kept;
        taken.into_iter().map(|(_, value)| value).collect()
    }

    /// The single value of `name`, if given; given twice is a 422.
    pub fn take(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        let mut values = self.take_all(name);
        match values.len() {
            0 => Ok(None),
            1 => Ok(values.pop()),
            _ => Err(ApiError::validation(name, "may be given only once")),
        }
    }

    /// An id (`venueId`, ...), checked as ids are everywhere ([`validate::id`]).
    pub fn take_id(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        let value = self.take(name)?;
        if let Some(id) = &value {
            validate::id(name, id)?;
        }
        Ok(value)
    }

    /// `true` or `false`.
    pub fn take_bool(&mut self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.take(name)?.as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(ApiError::validation(name, "must be `true` or `false`")),
        }
    }

    /// `limit` and `cursor`.
    pub fn take_page(&mut self) -> Result<Page, ApiError> {
        let limit = match self.take("limit")? {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::validation(
                        "limit",
                        format!("must be an integer from 1 to {MAX_LIMIT}"),
                    ));
                }
            },
        };
        let after = match self.take("cursor")? {
            Some(c) if c.is_empty() || c.chars().count() > MAX_ID_LEN => {
                return Err(ApiError::validation(
                    "cursor",
                    "is not a cursor this service issued; pass `nextCursor` back unchanged",
                ));
            }
            other => other,
        };
        Ok(Page { limit, after })
    }

    /// Fails with a 422 naming every parameter nobody consumed.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let mut names: Vec<&str> = self.0.iter().map(|(k, _)| k.as_str()).collect();
        names.dedup();
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_parameter",
            format!("unknown query parameter(s): {}", names.join(", ")),
        )
        .with_details(serde_json::json!({ "parameters": names })))
    }
}

/// Which slice of a list to return.
#[derive(Debug, Clone)]
pub struct Page {
    pub limit: u32,
    /// Return ids strictly greater than this one.
    pub after: Option<String>,
}

impl Page {
    /// How many rows to fetch: one more than `limit`, to know whether a next page exists.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// Cuts a fetched batch to `limit` and computes the next cursor from the last id kept.
    pub fn finish<T: Serialize>(&self, mut rows: Vec<T>, id: impl Fn(&T) -> &str) -> Listing<T> {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        let next_cursor = if more {
            rows.last().map(|row| id(row).to_string())
        } else {
            None
        };
        Listing {
            items: rows,
            next_cursor,
        }
    }
}

/// One page of a list: `{"items": [...], "nextCursor": "..." | null}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing<T: Serialize> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> QueryParams {
        QueryParams::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn limits_are_bounded_and_unknown_names_rejected() {
        assert_eq!(params(&[]).take_page().unwrap().limit, DEFAULT_LIMIT);
        for bad in ["0", "501", "-1", "x", ""] {
            let err = params(&[("limit", bad)]).take_page().unwrap_err();
            assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
        let mut p = params(&[("limit", "2"), ("lmit", "3")]);
        assert_eq!(p.take_page().unwrap().limit, 2);
        assert_eq!(p.finish().unwrap_err().code, "unknown_parameter");
    }

    #[test]
    fn next_cursor_only_when_more_rows_exist() {
        let page = Page {
            limit: 2,
            after: None,
        };
        let listing = page.finish(vec!["a", "b", "c"], |s| s);
        assert_eq!(listing.next_cursor.as_deref(), Some("b"));
        let listing = page.finish(vec!["a", "b"], |s| s);
        assert_eq!(listing.next_cursor, None);
    }
}
