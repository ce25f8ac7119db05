//! Writes the OpenAPI document from the route table (the `document` feature; see [`super`]).

use super::{SCHEMAS, SECURITY_SCHEME, path_parameter, path_parameter_names, schema_of};
use crate::Route;
use crate::problem::{PROBLEM_JSON, Problem};
use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The response headers the API sets.
fn header_object(name: &str) -> Value {
    let (description, schema) = match name {
        "Location" => ("The created resource's path", json!({ "type": "string" })),
        "Idempotent-Replayed" => (
            "`true` when this is the kept response to an earlier request with the same `Idempotency-Key`",
            json!({ "type": "string", "enum": ["true"] }),
        ),
        "WWW-Authenticate" => ("`Bearer`", json!({ "type": "string" })),
        _ => ("", json!({ "type": "string" })),
    };
    json!({ "description": description, "schema": schema })
}

/// The schema of an optional query field without its `null`: a query parameter is either
/// absent or a value.
fn without_null(mut schema: Value) -> Value {
    if let Some(Value::Array(types)) = schema.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            schema["type"] = only;
        }
    }
    let any_of = schema.get_mut("anyOf").and_then(Value::as_array_mut).map(|variants| {
        variants.retain(|v| v.get("type").and_then(Value::as_str) != Some("null"));
        std::mem::take(variants)
    });
    if let (Some(mut variants), Some(fields)) = (any_of, schema.as_object_mut()) {
        fields.remove("anyOf");
        if variants.len() == 1 {
            if let Value::Object(inner) = variants.remove(0) {
                fields.extend(inner);
            }
        } else {
            fields.insert("anyOf".into(), Value::Array(variants));
        }
    }
    schema
}

/// The query parameters of a query struct's schema: its properties.
fn query_parameters(schema: &Value) -> Vec<Value> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let mut property = without_null(property.clone());
            let description = property
                .as_object_mut()
                .and_then(|p| p.remove("description"))
                .unwrap_or_else(|| json!(""));
            json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "description": description,
                "schema": property,
            })
        })
        .collect()
}

fn idempotency_key_parameter() -> Value {
    json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "Makes a retry safe: a request with a key already used (by this tenant) for the same \
                        request gets the first response again, with `Idempotent-Replayed: true`, and does \
                        nothing more.",
        "schema": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7E]+$" },
    })
}

/// The generators of request schemas (what is read) and response schemas (what is written).
struct Generators {
    input: SchemaGenerator,
    output: SchemaGenerator,
}

impl Generators {
    fn new() -> Generators {
        let settings = SchemaSettings::draft2020_12().with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        });
        Generators {
            input: settings.clone().for_deserialize().into_generator(),
            output: settings.for_serialize().into_generator(),
        }
    }
}

/// One entry of `responses`: the descriptions of every reason for the status, joined.
#[derive(Default)]
struct Answer {
    descriptions: Vec<&'static str>,
    schema: Option<Value>,
    headers: Vec<&'static str>,
    links: Map<String, Value>,
}

/// The answers every route of a kind shares (see the module's documentation).
fn shared_replies(route: &Route) -> Vec<(u16, &'static str)> {
    let op = &route.doc;
    let mut shared = Vec::new();
    if !op.public {
        shared.push((
            401,
            "No API key, or one the API does not know (`WWW-Authenticate: Bearer`)",
        ));
    }
    if !path_parameter_names(route.path).is_empty() || op.query.is_some() {
        shared.push((400, "A path or query parameter is not valid: `errors` names it"));
    }
    if op.body.is_some() {
        shared.push((
            400,
            "The body is not JSON, or not a valid one: `errors` names each field",
        ));
        shared.push((413, "The body is too large"));
    }
    if route.is_idempotent() {
        shared.extend([
            (400, "`Idempotency-Key` is not 1 to 255 visible ASCII characters"),
            (409, "A request with this `Idempotency-Key` is still being processed"),
            (422, "This `Idempotency-Key` was used with another request"),
            (413, "The body is too large"),
        ]);
    }
    if !op.public {
        shared.extend([(500, "The store failed"), (503, "The store is busy: try again")]);
    }
    shared
}

fn responses(route: &Route, generators: &mut Generators) -> Value {
    let mut answers: BTreeMap<u16, Answer> = BTreeMap::new();
    for reply in &route.doc.replies {
        let answer = answers.entry(reply.status).or_default();
        answer.descriptions.push(reply.description);
        answer.schema = reply.schema.map(|f| f(&mut generators.output).to_value());
        answer.headers.extend(&reply.headers);
        for link in &reply.links {
            let parameters: Map<String, Value> = link
                .parameters
                .iter()
                .map(|(p, e)| ((*p).to_owned(), json!(e)))
                .collect();
            answer.links.insert(
                link.operation_id.to_owned(),
                json!({ "operationId": link.operation_id, "parameters": parameters }),
            );
        }
    }
    for (status, description) in shared_replies(route) {
        let answer = answers.entry(status).or_default();
        if !answer.descriptions.contains(&description) {
            answer.descriptions.push(description);
        }
        if answer.schema.is_none() {
            answer.schema = Some(schema_of::<Problem>(&mut generators.output).to_value());
        }
        if status == 401 && !answer.headers.contains(&"WWW-Authenticate") {
            answer.headers.push("WWW-Authenticate");
        }
    }
    let mut out = Map::new();
    for (status, answer) in answers {
        let mut entry = json!({ "description": answer.descriptions.join("; ") });
        let media_type = if status >= 400 {
            PROBLEM_JSON
        } else {
            "application/json"
        };
        if let Some(schema) = answer.schema {
            entry["content"] = json!({ media_type: { "schema": schema } });
        }
        let mut headers = answer.headers;
        if route.is_idempotent() && status < 300 {
            headers.push("Idempotent-Replayed");
        }
        if !headers.is_empty() {
            let headers: Map<String, Value> = headers.iter().map(|h| ((*h).to_owned(), header_object(h))).collect();
            entry["headers"] = Value::Object(headers);
        }
        if !answer.links.is_empty() {
            entry["links"] = Value::Object(answer.links);
        }
        out.insert(status.to_string(), entry);
    }
    Value::Object(out)
}

/// The tag of a path: `runs` under a run, else its first segment after `/api/v1/`.
fn tag(path: &str) -> &str {
    if path.contains("/runs") {
        return "runs";
    }
    let rest = path.trim_start_matches("/api/v1/");
    let first = rest.split('/').next().unwrap_or(rest);
    first.strip_suffix(".json").unwrap_or(first)
}

fn operation(route: &Route, generators: &mut Generators) -> Value {
    let op = &route.doc;
    let mut parameters: Vec<Value> = path_parameter_names(route.path)
        .into_iter()
        .map(|name| {
            let (description, schema) = path_parameter(name);
            json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
        })
        .collect();
    if let Some(query) = op.query {
        parameters.extend(query_parameters(&query(&mut generators.input).to_value()));
    }
    if route.is_idempotent() {
        parameters.push(idempotency_key_parameter());
    }
    let mut out = json!({ "operationId": op.id, "summary": op.summary, "tags": [tag(route.path)] });
    if !op.description.is_empty() {
        out["description"] = json!(op.description);
    }
    if !parameters.is_empty() {
        out["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = &op.body {
        let schema = (body.schema)(&mut generators.input).to_value();
        out["requestBody"] = json!({
            "description": body.description,
            "required": true,
            "content": { "application/json": { "schema": schema } },
        });
    }
    out["responses"] = responses(route, generators);
    if op.public {
        out["security"] = json!([]);
    }
    out
}

/// Rewrites every `$ref` that starts with `from` to start with `to`.
fn rewrite_refs(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                match field {
                    Value::String(r) if key == "$ref" && r.starts_with(from) => {
                        *r = format!("{to}{}", &r[from.len()..]);
                    }
                    _ => rewrite_refs(field, from, to),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rewrite_refs(item, from, to)),
        _ => {}
    }
}

/// `Automation` (the schema `crmflow schema` prints) and its `$defs`, as components.
fn automation_components() -> Map<String, Value> {
    let mut schema = crmflow_core::definition::automation_schema();
    rewrite_refs(&mut schema, "#/$defs/", SCHEMAS);
    let mut components = Map::new();
    if let Some(root) = schema.as_object_mut() {
        root.remove("$schema");
        if let Some(Value::Object(defs)) = root.remove("$defs") {
            components.extend(defs);
        }
    }
    components.insert("Automation".into(), schema);
    components
}

/// Adds `more` to `into`; returns the names that were there already with another schema (the
/// first one is kept).
fn merge(into: &mut Map<String, Value>, more: Map<String, Value>) -> Vec<String> {
    let mut conflicts = Vec::new();
    for (name, schema) in more {
        match into.get(&name) {
            Some(kept) if *kept != schema => conflicts.push(name),
            Some(_) => {}
            None => {
                into.insert(name, schema);
            }
        }
    }
    conflicts
}

/// The document of `routes`, and the names of schemas that two sources define differently
/// (none, a test says; the document keeps the definition schema's).
pub fn build(routes: &[Route]) -> (Value, Vec<String>) {
    let mut generators = Generators::new();
    let mut paths = Map::new();
    for route in routes {
        let item = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        item[route.method.as_str().to_ascii_lowercase()] = operation(route, &mut generators);
    }
    let mut schemas = automation_components();
    let mut conflicts = merge(&mut schemas, generators.output.take_definitions(true));
    conflicts.extend(merge(&mut schemas, generators.input.take_definitions(true)));
    let document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "crmflow management API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Automations, their runs, and CRM events over HTTP. Every request but this \
                            document's carries `Authorization: Bearer <API key>`; the key's tenant is the \
                            tenant of every read and write. Errors are RFC 9457 problem documents.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A per-tenant API key (`cfk_` and 64 hex digits), as a bearer token.",
                },
            },
        },
        "security": [{ SECURITY_SCHEME: [] }],
    });
    (document, conflicts)
}

/// The document of [`crate::routes`].
pub fn document() -> Value {
    build(&crate::routes()).0
}

#[cfg(test)]
mod tests {
    use super::super::path_parameter_known;
    use super::*;

    #[test]
    fn no_two_sources_define_a_schema_differently() {
        let (_, conflicts) = build(&crate::routes());
        assert_eq!(conflicts, Vec::<String>::new());
    }

    #[test]
    fn every_path_parameter_is_described() {
        for route in crate::routes() {
            for name in path_parameter_names(route.path) {
                assert!(
                    path_parameter_known(name),
                    "{} {}: {{{name}}}",
                    route.method,
                    route.path
                );
            }
        }
    }

    #[test]
    fn every_link_names_an_operation_and_its_parameters() {
        let routes = crate::routes();
        for route in &routes {
            for link in route.doc.replies.iter().flat_map(|r| &r.links) {
                let target = routes.iter().find(|r| r.doc.id == link.operation_id);
                let target = target.unwrap_or_else(|| panic!("{}: no operation {}", route.path, link.operation_id));
                let names = path_parameter_names(target.path);
                for (name, _) in link.parameters {
                    assert!(
                        names.contains(name),
                        "{} → {}: no parameter {name}",
                        route.path,
                        target.path
                    );
                }
                assert_eq!(names.len(), link.parameters.len(), "{} → {}", route.path, target.path);
            }
        }
    }

    #[test]
    fn operation_ids_are_unique() {
        let mut ids: Vec<&str> = crate::routes().iter().map(|r| r.doc.id).collect::<Vec<_>>();
        let all = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), all);
    }

    #[test]
    fn optional_query_fields_lose_their_null() {
        assert_eq!(
            without_null(json!({"type": ["string", "null"]})),
            json!({"type": "string"})
        );
        assert_eq!(
            without_null(json!({"anyOf": [{"$ref": "#/x"}, {"type": "null"}], "description": "d"})),
            json!({"$ref": "#/x", "description": "d"})
        );
    }

    #[test]
    fn the_definition_schema_is_the_automation_component() {
        let document = document();
        let mut printed = crmflow_core::definition::automation_schema();
        let defs = printed
            .as_object_mut()
            .and_then(|o| o.remove("$defs"))
            .unwrap_or_default();
        rewrite_refs(&mut printed, "#/$defs/", SCHEMAS);
        printed.as_object_mut().map(|o| o.remove("$schema"));
        assert_eq!(document["components"]["schemas"]["Automation"], printed);
        for (name, mut schema) in defs.as_object().cloned().unwrap_or_default() {
            rewrite_refs(&mut schema, "#/$defs/", SCHEMAS);
            assert_eq!(document["components"]["schemas"][&name], schema, "{name}");
        }
        let create = &document["paths"]["/api/v1/automations"]["post"];
        assert_eq!(
            create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Automation"
        );
    }
}
