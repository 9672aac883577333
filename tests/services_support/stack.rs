//! A whole platform for the order tests: a registry, menu, inventory and order service,
//! each the real binary, sharing one temporary folder.

use serde_json::{Value, json};

use super::registry::Registry;
use super::{Service, get, json, send};

/// A registry, menu, inventory and order service, each in the same temp folder.
pub struct Stack {
    _dir: tempfile::TempDir,
    _registry: Registry,
    pub menu: Service,
    pub inventory: Service,
    pub order: Service,
}

impl Stack {
    pub fn start() -> Stack {
        Stack::start_with(&[])
    }

    pub fn start_with(order_env: &[(&str, &str)]) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::start();
        let menu = Service::start("menu", dir.path());
        let inventory = Service::start("inventory", dir.path());
        registry.add("menu-service", menu.port);
        registry.add("inventory-service", inventory.port);
        let mut env = vec![("SERVIO_ADMIN_URL", registry.url.as_str())];
        env.extend_from_slice(order_env);
        let order = Service::start_with("order", dir.path(), &env);
        Stack {
            _dir: dir,
            _registry: registry,
            menu,
            inventory,
            order,
        }
    }

    /// A menu item of `venue` priced `cents` with `stock` units in inventory; its id.
    pub fn item(&self, venue: &str, name: &str, cents: i64, stock: i64) -> String {
        let (status, item) = json(
            "POST",
            &self.menu.url("/menu-items"),
            &json!({ "venueId": venue, "name": name, "priceCents": cents }),
        );
        assert_eq!(status, 201, "{item}");
        let id = item["id"].as_str().unwrap().to_string();
        let (status, body) = json(
            "PUT",
            &self.inventory.url(&format!("/inventory/{id}")),
            &json!({ "quantity": stock }),
        );
        assert_eq!(status, 200, "{body}");
        id
    }

    pub fn stock(&self, id: &str) -> i64 {
        get(&self.inventory.url(&format!("/inventory/{id}"))).1["quantity"]
            .as_i64()
            .unwrap()
    }

    pub fn place(&self, venue: &str, items: &[(&str, i64)], key: Option<&str>) -> (u16, Value) {
        let items: Vec<Value> = items
            .iter()
            .map(|(id, q)| json!({ "menuItemId": id, "quantity": q }))
            .collect();
        let body = json!({ "venueId": venue, "items": items }).to_string();
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        send(
            "POST",
            &self.order.url("/orders"),
            Some(body.as_bytes()),
            &headers,
        )
    }

    pub fn orders(&self, venue: &str) -> Vec<Value> {
        let (_, page) = get(&self.order.url(&format!("/orders?venueId={venue}")));
        page["items"].as_array().cloned().unwrap_or_default()
    }

    pub fn set_status(&self, id: &str, status: &str) -> (u16, Value) {
        json(
            "PATCH",
            &self.order.url(&format!("/orders/{id}")),
            &json!({ "status": status }),
        )
    }
}
