//! The order service's OpenAPI 3.1 document.

use serde_json::{Value, json};

use super::model::MAX_KEY_LEN;
use crate::services::openapi::{
    document as envelope, id_schema, listing_schema, operation, page_params, path_param,
    query_param, with_schemas,
};
use crate::services::validate::{MAX_LINE_QUANTITY, MAX_LINES};

pub fn document(version: &str) -> Value {
    let mut list = operation(
        "listOrders",
        "Orders, filtered and paged by id",
        (200, "A page of orders", Some("OrderPage")),
        &[400, 422, 503],
        None,
    );
    let statuses = json!([
        "pending",
        "confirmed",
        "preparing",
        "ready",
        "completed",
        "cancelled"
    ]);
    let mut params = vec![
        query_param("venueId", id_schema(), "Only this venue's orders"),
        query_param(
            "status",
            json!({ "enum": statuses }),
            "Only orders in this status",
        ),
    ];
    params.extend(page_params());
    list["parameters"] = Value::Array(params);
    let mut create = operation(
        "placeOrder",
        "Place an order: checks menu, reserves stock, snapshots prices",
        (
            201,
            "Placed (or, with a reused Idempotency-Key, the order it placed)",
            Some("Order"),
        ),
        &[400, 409, 413, 415, 422, 502, 503],
        Some((
            "NewOrder",
            json!({ "venueId": "venue-1",
                    "items": [{ "menuItemId": "no-such-item", "quantity": 1 }] }),
        )),
    );
    create["description"] = json!(
        "422 also answers an order the schema cannot judge alone: a menu item that does not \
         exist or belongs to another venue (`unknown_menu_item`, `menu_item_wrong_venue`), \
         or lines of one item adding up to more than 10000."
    );
    create["parameters"] = json!([{
        "name": "Idempotency-Key", "in": "header", "required": false,
        "schema": { "type": "string", "minLength": 1, "maxLength": MAX_KEY_LEN,
                    "pattern": "^[!-~]+$" },
        "description": "Retrying with the same key (per venue) returns the first order"
    }]);
    let paths = json!({
        "/orders": { "post": create, "get": list },
        "/orders/{id}": {
            "parameters": [path_param("id", "no-such-order")],
            "get": operation("getOrder", "One order",
                (200, "The order", Some("Order")), &[404, 503], None),
            "patch": operation("updateOrderStatus",
                "pending → confirmed → preparing → ready → completed, or → cancelled",
                (200, "The updated order", Some("Order")), &[400, 404, 409, 413, 415, 422, 503],
                Some(("StatusChange", json!({ "status": "confirmed" })))),
        }
    });
    let doc = envelope(
        "order-service",
        version,
        "Orders with snapshotted prices and stock held in inventory-service.",
        paths,
    );
    with_schemas(doc, schemas(statuses))
}

fn schemas(statuses: Value) -> Value {
    let id = id_schema();
    json!({
        "OrderLine": {
            "type": "object",
            "required": ["menuItemId", "name", "unitPriceCents", "quantity", "lineTotalCents"],
            "properties": {
                "menuItemId": { "type": "string" }, "name": { "type": "string" },
                "unitPriceCents": { "type": "integer" }, "quantity": { "type": "integer" },
                "lineTotalCents": { "type": "integer" }
            }
        },
        "Order": {
            "type": "object",
            "required": ["id", "venueId", "status", "items", "totalCents", "idempotencyKey",
                         "createdAt", "updatedAt"],
            "properties": {
                "id": { "type": "string" }, "venueId": { "type": "string" },
                "status": { "enum": statuses },
                "items": { "type": "array", "items": { "$ref": "#/components/schemas/OrderLine" } },
                "totalCents": { "type": "integer" },
                "idempotencyKey": { "type": ["string", "null"] },
                "createdAt": { "type": "string", "format": "date-time" },
                "updatedAt": { "type": "string", "format": "date-time" }
            }
        },
        "NewOrder": {
            "type": "object", "additionalProperties": false, "required": ["venueId", "items"],
            "properties": {
                "venueId": id,
                "items": { "type": "array", "minItems": 1, "maxItems": MAX_LINES, "items": {
                    "type": "object", "additionalProperties": false,
                    "required": ["menuItemId", "quantity"],
                    "properties": { "menuItemId": id,
                        "quantity": { "type": "integer", "minimum": 1,
                                      "maximum": MAX_LINE_QUANTITY } } } }
            }
        },
        "StatusChange": {
            "type": "object", "additionalProperties": false, "required": ["status"],
            "properties": { "status": { "enum": statuses } }
        },
        "OrderPage": listing_schema("Order"),
    })
}
