//! The order service's calls to menu-service and inventory-service: the one place that
//! knows their paths and answers, through [`crate::client::ServiceClient`].
//!
//! Failures become [`ApiError`]s naming the dependency: an unreachable service or a 5xx is
//! `503 dependency_unavailable`; an answer that breaks the contract is
//! `502 dependency_error`.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::client::{Call, ClientError, Reply, ServiceClient};
use crate::services::http::ApiError;

/// What the order service needs of a menu item.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MenuItem {
    pub id: String,
    pub venue_id: String,
    pub name: String,
    pub price_cents: i64,
    pub available: bool,
}

#[derive(Deserialize)]
struct MenuPage {
    items: Vec<MenuItem>,
}

/// One line of a reservation (the inventory contract).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub menu_item_id: String,
    pub quantity: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReservationRequest<'a> {
    order_id: &'a str,
    items: &'a [Line],
}

/// How a reservation attempt ended when it did not succeed.
#[derive(Debug)]
pub enum ReserveError {
    /// Inventory answered and took nothing (e.g. insufficient stock).
    Refused(ApiError),
    /// No definite answer: stock may be held, so the caller must release it.
    Unknown(ApiError),
}

/// Clients and names of the services the order service calls.
#[derive(Clone)]
pub struct Deps {
    client: Result<ServiceClient, String>,
    menu: String,
    inventory: String,
}

impl Deps {
    /// Reads `SERVIO_MENU_SERVICE`, `SERVIO_INVENTORY_SERVICE` and the client's own
    /// settings. A client that cannot be built makes every call a 503 instead of stopping
    /// the service: orders can still be read and moved along.
    pub fn from_env() -> Deps {
        let name = |key: &str, default: &str| {
            std::env::var(key)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        let client = ServiceClient::from_env().map_err(|e| {
            tracing::warn!(error = %e, "service client unavailable; placing orders will fail");
            e.to_string()
        });
        Deps {
            client,
            menu: name("SERVIO_MENU_SERVICE", "menu-service"),
            inventory: name("SERVIO_INVENTORY_SERVICE", "inventory-service"),
        }
    }

    async fn call(&self, service: &str, call: Call) -> Result<Reply, ApiError> {
        let client = self
            .client
            .as_ref()
            .map_err(|reason| ApiError::dependency(service, reason))?;
        client
            .call(service, call)
            .await
            .map_err(|e| unavailable(service, &e))
    }

    /// The menu items with these ids (missing ids are simply absent), in one batch call.
    pub async fn menu_items(&self, ids: &[&str]) -> Result<Vec<MenuItem>, ApiError> {
        let mut path = format!("/menu-items?limit={}", ids.len().max(1));
        for id in ids {
            path.push_str("&id=");
            path.push_str(&encode(id));
        }
        let reply = self.call(&self.menu, Call::get(path)).await?;
        if reply.status != StatusCode::OK {
            return Err(bad_answer(&self.menu, &reply));
        }
        let page: MenuPage = reply
            .json()
            .map_err(|e| contract(&self.menu, &e.to_string()))?;
        Ok(page.items)
    }

    /// Reserves `lines` for `order_id`, all or nothing; repeating it is safe.
    pub async fn reserve(&self, order_id: &str, lines: &[Line]) -> Result<(), ReserveError> {
        let body = ReservationRequest {
            order_id,
            items: lines,
        };
        let call = Call::post_json("/inventory/reservations", &body).idempotent(true);
        let reply = self
            .call(&self.inventory, call)
            .await
            .map_err(ReserveError::Unknown)?;
        match reply.status {
            s if s.is_success() => Ok(()),
            s if s.is_server_error() => Err(ReserveError::Unknown(ApiError::dependency(
                &self.inventory,
                format!("it answered {s}"),
            ))),
            StatusCode::CONFLICT if error_code(&reply).as_deref() == Some("insufficient_stock") => {
                Err(ReserveError::Refused(passthrough(&reply)))
            }
            _ => Err(ReserveError::Refused(bad_answer(&self.inventory, &reply))),
        }
    }

    /// Gives back the stock held for `order_id`; idempotent, including for orders that
    /// never reserved.
    pub async fn release(&self, order_id: &str) -> Result<(), ApiError> {
        let path = format!("/inventory/reservations/{}", encode(order_id));
        let reply = self
            .call(&self.inventory, Call::delete(path).idempotent(true))
            .await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(bad_answer(&self.inventory, &reply))
        }
    }

    pub fn inventory_name(&self) -> &str {
        &self.inventory
    }
}

fn unavailable(service: &str, error: &ClientError) -> ApiError {
    let service = error.service().unwrap_or(service);
    ApiError::dependency(service, error)
}

fn contract(service: &str, reason: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "dependency_error",
        format!("{service} gave an unexpected answer: {reason}"),
    )
    .with_details(serde_json::json!({ "service": service }))
}

fn bad_answer(service: &str, reply: &Reply) -> ApiError {
    if reply.status.is_server_error() {
        return ApiError::dependency(service, format!("it answered {}", reply.status));
    }
    let code = error_code(reply).unwrap_or_else(|| "no error code".into());
    contract(service, &format!("{} ({code})", reply.status))
}

fn error_code(reply: &Reply) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(&reply.body).ok()?;
    value["error"]["code"].as_str().map(str::to_string)
}

/// The dependency's own 409 error, passed on to the caller with its message and details.
fn passthrough(reply: &Reply) -> ApiError {
    let value: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    let error = &value["error"];
    ApiError::conflict(
        "insufficient_stock",
        error["message"]
            .as_str()
            .unwrap_or("insufficient stock")
            .to_string(),
    )
    .with_details(error["details"].clone())
}

/// Percent-encodes `text` for a path segment or query value (RFC 3986 unreserved kept).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_everything_but_unreserved() {
        assert_eq!(super::encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(super::encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
