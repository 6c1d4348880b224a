//! The OpenAPI document, generated from the handlers' annotations and the shapes' types, so
//! it cannot drift from what the code accepts and answers. Two things are added at run time:
//! the links between operations (an order created leads to reading, paying and cancelling
//! it), and the current price list as the set of skus an order may name.

use serde_json::{Value, json};
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Minipay order-svc",
        description = "The Mini Program's API: sessions, the price list, orders and their payment. Errors are `{\"code\", \"message\"}`; another user's order answers 404.",
        version = "1"
    ),
    paths(
        super::login,
        super::products,
        super::create_order,
        super::list_orders,
        super::get_order,
        super::pay_order,
        super::cancel_order,
        super::openapi_json,
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The token of POST /api/v1/sessions"))
                    .build(),
            ),
        );
    }
}

/// A created order's id leads to the operations on it. Written as JSON: utoipa 5 spells the
/// Link object's fields in snake case (`operation_id`), which OpenAPI tools do not read.
fn add_order_links(document: &mut Value) {
    let created = &mut document["paths"]["/api/v1/orders"]["post"]["responses"]["201"];
    if !created.is_object() {
        return;
    }
    let links: serde_json::Map<String, Value> = ["get_order", "pay_order", "cancel_order"]
        .into_iter()
        .map(|operation| {
            let link =
                json!({ "operationId": operation, "parameters": { "id": "$response.body#/id" } });
            (operation.to_owned(), link)
        })
        .collect();
    created["links"] = Value::Object(links);
}

/// Narrows `ItemBody.sku` to the skus on sale.
fn restrict_skus(document: &mut Value, skus: &[String]) {
    let sku = &mut document["components"]["schemas"]["ItemBody"]["properties"]["sku"];
    if sku.is_object() {
        sku["enum"] = json!(skus);
    }
}

/// The document served at `/api/v1/openapi.json`; with `skus` (the current price list),
/// an order's `sku` is one of them.
pub fn document(skus: Option<&[String]>) -> Value {
    let mut document = serde_json::to_value(ApiDoc::openapi())
        .unwrap_or_else(|e| unreachable!("the generated OpenAPI document always serializes: {e}"));
    add_order_links(&mut document);
    if let Some(skus) = skus {
        restrict_skus(&mut document, skus);
    }
    document
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Cursor;

    fn json(skus: Option<&[String]>) -> Value {
        document(skus)
    }

    #[test]
    fn the_cursor_schema_is_exactly_what_parses() {
        let doc = json(None);
        let params = doc["paths"]["/api/v1/orders"]["get"]["parameters"]
            .as_array()
            .unwrap();
        let cursor = params.iter().find(|p| p["name"] == "cursor").unwrap();
        assert_eq!(cursor["schema"]["pattern"], Cursor::PATTERN);
    }

    #[test]
    fn every_route_is_documented_with_its_errors() {
        let doc = json(None);
        let cancel = &doc["paths"]["/api/v1/orders/{id}/cancel"]["post"];
        for status in ["200", "401", "404", "409", "503"] {
            assert!(cancel["responses"][status].is_object(), "{status}");
        }
        let links = &doc["paths"]["/api/v1/orders"]["post"]["responses"]["201"]["links"];
        assert_eq!(links["pay_order"]["operationId"], "pay_order");
        assert_eq!(links["pay_order"]["parameters"]["id"], "$response.body#/id");
    }

    #[test]
    fn the_served_document_names_the_skus_on_sale() {
        let doc = json(Some(&["TEA".to_owned()]));
        assert_eq!(
            doc["components"]["schemas"]["ItemBody"]["properties"]["sku"]["enum"],
            serde_json::json!(["TEA"])
        );
    }
}
