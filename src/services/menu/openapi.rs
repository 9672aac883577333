//! The menu service's OpenAPI 3.1 document.

use serde_json::{Value, json};

use crate::services::openapi::{
    document as envelope, listing_schema, operation, page_params, path_param, query_param,
    with_schemas,
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
        query_param(
            "venueId",
            json!({ "type": "string" }),
            "Only this venue's items",
        ),
        query_param(
            "available",
            json!({ "type": "boolean" }),
            "Only (un)available items",
        ),
        query_param(
            "id",
            json!({ "type": "string" }),
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
    let text = |max: u32| json!({ "type": "string", "maxLength": max });
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
                "venueId": { "type": "string", "minLength": 1, "maxLength": 128 },
                "name": text(200),
                "priceCents": { "type": "integer", "minimum": 0, "maximum": 1_000_000_000i64 },
                "description": text(2000),
                "category": text(100),
                "available": { "type": "boolean", "default": true }
            }
        },
        "MenuItemPatch": {
            "type": "object",
            "additionalProperties": false,
            "minProperties": 1,
            "properties": {
                "name": text(200),
                "priceCents": { "type": "integer", "minimum": 0, "maximum": 1_000_000_000i64 },
                "description": { "type": ["string", "null"], "maxLength": 2000 },
                "category": { "type": ["string", "null"], "maxLength": 100 },
                "available": { "type": "boolean" }
            }
        },
        "MenuItemPage": listing_schema("MenuItem"),
    })
}
