//! The inventory service's OpenAPI 3.1 document.

use serde_json::{Value, json};

use super::MAX_FILTER_IDS;
use super::model::MAX_QUANTITY;
use crate::services::openapi::{
    document as envelope, id_schema, listing_schema, operation, page_params, path_param,
    repeated_ids_param, with_schemas,
};
use crate::services::validate::{MAX_LINE_QUANTITY, MAX_LINES};

pub fn document(version: &str) -> Value {
    let mut list = operation(
        "listStock",
        "Stock records, paged by menu item id",
        (200, "A page of stock records", Some("StockPage")),
        &[400, 422, 503],
        None,
    );
    let mut params = vec![repeated_ids_param(
        "menuItemId",
        MAX_FILTER_IDS,
        "Only these items; repeat up to 100 times",
    )];
    params.extend(page_params());
    list["parameters"] = Value::Array(params);
    let reservation = json!({ "orderId": "order-example",
        "items": [{ "menuItemId": "item-example", "quantity": 1 }] });
    let paths = json!({
        "/inventory": {
            "post": operation("setStockByBody", "Set the stock of `menuItemId`",
                (200, "The stock record", Some("Stock")), &[400, 413, 415, 422, 503],
                Some(("SetStock", json!({ "menuItemId": "item-example", "quantity": 10 })))),
            "get": list,
        },
        "/inventory/{menuItemId}": {
            "parameters": [path_param("menuItemId", "no-such-item")],
            "put": operation("setStock", "Set the stock of an item",
                (200, "The stock record", Some("Stock")), &[400, 413, 415, 422, 503],
                Some(("SetQuantity", json!({ "quantity": 10 })))),
            "get": operation("getStock", "The stock of an item",
                (200, "The stock record", Some("Stock")), &[404, 503], None),
        },
        "/inventory/reservations": {
            "post": {
                "operationId": "reserve",
                "summary": "Reserve stock for an order, all or nothing; idempotent by orderId",
                "requestBody": { "required": true, "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/ReservationRequest" },
                    "example": reservation } } },
                "responses": responses_for_reserve(),
            }
        },
        "/inventory/reservations/{orderId}": {
            "parameters": [path_param("orderId", "no-such-order")],
            "get": operation("getReservation", "An order's reservation",
                (200, "The reservation", Some("Reservation")), &[404, 503], None),
            "delete": operation("releaseReservation",
                "Give the reservation's stock back; idempotent (unknown orders too)",
                (204, "Released", None), &[422, 503], None),
        }
    });
    let doc = envelope(
        "inventory-service",
        version,
        "Stock per menu item and all-or-nothing reservations for orders.",
        paths,
    );
    with_schemas(doc, schemas())
}

fn responses_for_reserve() -> Value {
    let mut responses = crate::services::openapi::errors(&[400, 409, 413, 415, 422, 503]);
    let held = crate::services::openapi::body_ref("Reserved", "Reservation");
    responses.insert("201".into(), held.clone());
    responses.insert(
        "200".into(),
        crate::services::openapi::body_ref("Already reserved for this orderId", "Reservation"),
    );
    Value::Object(responses)
}

fn schemas() -> Value {
    let id = id_schema();
    let quantity = json!({ "type": "integer", "minimum": 0, "maximum": MAX_QUANTITY });
    json!({
        "Stock": {
            "type": "object",
            "required": ["menuItemId", "quantity", "updatedAt"],
            "properties": { "menuItemId": { "type": "string" }, "quantity": quantity,
                            "updatedAt": { "type": "string", "format": "date-time" } }
        },
        "SetQuantity": {
            "type": "object", "additionalProperties": false, "required": ["quantity"],
            "properties": { "quantity": quantity }
        },
        "SetStock": {
            "type": "object", "additionalProperties": false,
            "required": ["menuItemId", "quantity"],
            "properties": { "menuItemId": id, "quantity": quantity }
        },
        "Line": {
            "type": "object", "additionalProperties": false,
            "required": ["menuItemId", "quantity"],
            "properties": { "menuItemId": id,
                            "quantity": { "type": "integer", "minimum": 1,
                                          "maximum": MAX_LINE_QUANTITY } }
        },
        "ReservationRequest": {
            "type": "object", "additionalProperties": false, "required": ["orderId", "items"],
            "properties": { "orderId": id, "items": { "type": "array", "minItems": 1,
                "maxItems": MAX_LINES, "items": { "$ref": "#/components/schemas/Line" } } }
        },
        "Reservation": {
            "type": "object",
            "required": ["orderId", "status", "items", "createdAt", "updatedAt"],
            "properties": {
                "orderId": { "type": "string" },
                "status": { "enum": ["held", "released"] },
                "items": { "type": "array", "items": { "$ref": "#/components/schemas/Line" } },
                "createdAt": { "type": "string", "format": "date-time" },
                "updatedAt": { "type": "string", "format": "date-time" }
            }
        },
        "StockPage": listing_schema("Stock"),
    })
}
