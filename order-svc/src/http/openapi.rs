//! The OpenAPI document, generated from the handlers' annotations and the shapes' types, so
//! it cannot drift from what the code accepts and answers.

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

/// The document served at `/api/v1/openapi.json`.
pub fn document() -> Document {
    ApiDoc::openapi()
}
