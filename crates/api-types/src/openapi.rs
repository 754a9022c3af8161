//! A finishing touch for the OpenAPI document the HTTP crate assembles from its routes.

use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::{OpenApi, RefOr, Required};

/// utoipa documents an optional request body (`request_body(content = Option<T>)`) as
/// `oneOf: [null, T]`, but an absent or empty body is what "optional" means here: a body that
/// is sent must be the object (`null` is refused like any non-object). This rewrites the schema
/// of every body that is not required to plain `T`; the body stays optional.
pub fn optional_bodies_are_objects(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for op in operations.into_iter().flatten() {
            let Some(body) = op.request_body.as_mut() else {
                continue;
            };
            if matches!(body.required, Some(Required::True)) {
                continue;
            }
            for content in body.content.values_mut() {
                let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else {
                    continue;
                };
                let mut rest = one_of.items.iter().filter(|s| !is_null(s));
                if let (Some(only), None) = (rest.next(), rest.next()) {
                    if one_of.items.len() == 2 {
                        content.schema = Some(only.clone());
                    }
                }
            }
        }
    }
}

fn is_null(s: &RefOr<Schema>) -> bool {
    matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null))
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
    use utoipa::openapi::request_body::RequestBodyBuilder;
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder};
    use utoipa::openapi::{ContentBuilder, OpenApiBuilder, PathsBuilder, Ref};

    fn doc(required: Option<Required>) -> OpenApi {
        let schema = OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .item(Ref::from_schema_name("ReasonBody"))
            .build();
        let schema: RefOr<Schema> = Schema::OneOf(schema).into();
        let mut body = RequestBodyBuilder::new().content(
            "application/json",
            ContentBuilder::new().schema(Some(schema)).build(),
        );
        if let Some(r) = required {
            body = body.required(Some(r));
        }
        let op = OperationBuilder::new()
            .request_body(Some(body.build()))
            .build();
        OpenApiBuilder::new()
            .paths(PathsBuilder::new().path("/x", PathItem::new(HttpMethod::Post, op)))
            .build()
    }

    fn body_schema(d: &OpenApi) -> serde_json::Value {
        let v = serde_json::to_value(d).unwrap_or_default();
        v["paths"]["/x"]["post"]["requestBody"]["content"]["application/json"]["schema"].clone()
    }

    #[test]
    fn optional_bodies_lose_the_null() {
        let mut d = doc(None);
        optional_bodies_are_objects(&mut d);
        assert_eq!(
            body_schema(&d),
            serde_json::json!({"$ref": "#/components/schemas/ReasonBody"})
        );
        // A required body is left as it is.
        let mut d = doc(Some(Required::True));
        let before = body_schema(&d);
        optional_bodies_are_objects(&mut d);
        assert_eq!(body_schema(&d), before);
    }
}
