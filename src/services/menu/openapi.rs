//! The menu service's OpenAPI 3.1 document.

use serde_json::{Value, json};

use super::MAX_BATCH_IDS;
use super::model::{MAX_CATEGORY, MAX_DESCRIPTION, MAX_NAME, MAX_PRICE_CENTS};
use crate::services::openapi::{
    document as envelope, id_schema, listing_schema, operation, or_null, page_params, path_param,
    query_param, repeated_ids_param, text_schema, with_schemas,
};

pub fn document(version: &str) -> Value {
    let new_item = json!({ "venueId": "venue-1", "name": "Flat white", "priceCents": 450,
                           "category": "coffee" });
    let mut list = operation(
        "listMenuItems",
        "Menu items, filtered and paged by id",
        (200, "A page of items", Some("MenuItemPage")),
        &[400, 422, 503],
        None,
    );
    let mut params = vec![
        query_param("venueId", id_schema(), "Only this venue's items"),
        query_param(
            "available",
            json!({ "type": "boolean" }),
            "Only (un)available items",
        ),
        repeated_ids_param(
            "id",
            MAX_BATCH_IDS,
            "Only these ids; repeat up to 100 times (batch lookup)",
        ),
    ];
    params.extend(page_params());
    list["parameters"] = Value::Array(params);
    let paths = json!({
        "/menu-items": {
            "post": operation("createMenuItem", "Create a menu item",
                (201, "Created", Some("MenuItem")), &[400, 413, 415, 422, 503],
                Some(("NewMenuItem", new_item))),
            "get": list,
        },
        "/menu-items/{id}": {
            "parameters": [path_param("id", "no-such-item")],
            "get": operation("getMenuItem", "One menu item",
                (200, "The item", Some("MenuItem")), &[404, 503], None),
            "patch": operation("updateMenuItem", "Change some fields of a menu item",
                (200, "The updated item", Some("MenuItem")), &[400, 404, 413, 415, 422, 503],
                Some(("MenuItemPatch", json!({ "priceCents": 500 })))),
            "delete": operation("deleteMenuItem", "Delete a menu item",
                (204, "Deleted", None), &[404, 503], None),
        }
    });
    let doc = envelope(
        "menu-service",
        version,
        "Menu items of each venue; prices are integer cents.",
        paths,
    );
    with_schemas(doc, schemas())
}

fn schemas() -> Value {
    let price = json!({ "type": "integer", "minimum": 0, "maximum": MAX_PRICE_CENTS });
    json!({
        "MenuItem": {
            "type": "object",
            "required": ["id", "venueId", "name", "description", "category", "priceCents",
                         "available", "createdAt", "updatedAt"],
            "properties": {
                "id": { "type": "string" },
                "venueId": { "type": "string" },
                "name": { "type": "string" },
                "description": { "type": ["string", "null"] },
                "category": { "type": ["string", "null"] },
                "priceCents": { "type": "integer", "minimum": 0 },
                "available": { "type": "boolean" },
                "createdAt": { "type": "string", "format": "date-time" },
                "updatedAt": { "type": "string", "format": "date-time" }
            }
        },
        "NewMenuItem": {
            "type": "object",
            "additionalProperties": false,
            "required": ["venueId", "name", "priceCents"],
            "properties": {
                "venueId": id_schema(),
                "name": text_schema(MAX_NAME, true),
                "priceCents": price,
                "description": or_null(text_schema(MAX_DESCRIPTION, false)),
                "category": or_null(text_schema(MAX_CATEGORY, true)),
                "available": { "type": "boolean", "default": true }
            }
        },
        "MenuItemPatch": {
            "type": "object",
            "additionalProperties": false,
            "minProperties": 1,
            "properties": {
                "name": text_schema(MAX_NAME, true),
                "priceCents": price,
                "description": or_null(text_schema(MAX_DESCRIPTION, false)),
                "category": or_null(text_schema(MAX_CATEGORY, true)),
                "available": { "type": "boolean" }
            }
        },
        "MenuItemPage": listing_schema("MenuItem"),
    })
}
