//! The OpenAPI 3.1 document of the API, generated from the route table.
//!
//! Every [`Route`] carries an [`Operation`]: what it takes (query parameters, body) and every
//! status it answers, with their schemas. [`document`] walks [`crate::routes`] and writes the
//! document; a route cannot be registered without its operation, so none goes undocumented.
//! What every route of a kind shares is added here, not repeated in each operation:
//! - the path parameters, from the path (`{id}`, `{version}`, `{run_id}`);
//! - 401 on every route that needs an API key (all but the public ones), and 500 and 503 for
//!   the store behind it;
//! - on POST routes, the `Idempotency-Key` header and its answers (400, 409, 422, 413), and the
//!   `Idempotent-Replayed` header of a replayed response;
//! - 400 for a route with parameters or a body, and 413 for one with a body.
//!
//! Schemas come from the Rust types themselves (schemars, JSON Schema 2020-12, which OpenAPI
//! 3.1 uses as is). Request schemas describe what is read, response schemas what is written.
//! An automation definition is the schema `crmflow schema` prints
//! ([`crmflow_core::definition::automation_schema`]), its `$defs` moved under
//! `components/schemas`.

use crate::Route;
use crate::problem::{PROBLEM_JSON, Problem};
use axum::http::Method;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Where the document keeps named schemas, as a `$ref` prefix.
pub const SCHEMAS: &str = "#/components/schemas/";
/// The name of the security scheme: an API key as a bearer token.
pub const SECURITY_SCHEME: &str = "apiKey";
/// The route that serves the document.
pub const PATH: &str = "/api/v1/openapi.json";

/// Writes a schema into a generator (named subschemas become `$ref`s to `components`).
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// What one route takes and answers: its OpenAPI operation.
pub struct Operation {
    /// `operationId`: unique in the document.
    pub id: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
    /// Served without an API key.
    pub public: bool,
    /// A struct whose fields are the query parameters.
    pub query: Option<SchemaFn>,
    pub body: Option<RequestBody>,
    /// The answers particular to this route (the shared ones are added by [`document`]).
    pub replies: Vec<Reply>,
}

/// A JSON request body.
pub struct RequestBody {
    pub description: &'static str,
    pub schema: SchemaFn,
}

/// One answer: a status, what it means, its JSON body (a problem document for 4xx and 5xx) and
/// the headers it carries.
pub struct Reply {
    pub status: u16,
    pub description: &'static str,
    pub schema: Option<SchemaFn>,
    pub headers: Vec<&'static str>,
    pub links: Vec<Link>,
}

/// An OpenAPI link: how an answer's values feed another operation's parameters (for clients,
/// and for schemathesis's stateful phase, which follows them).
pub struct Link {
    pub operation_id: &'static str,
    /// (parameter, runtime expression), e.g. `("id", "$response.body#/id")`.
    pub parameters: &'static [(&'static str, &'static str)],
}

/// The schema of `T`, named (a `$ref`) when `T` has a name.
pub fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// The schema of `T` itself, inline (for query structs, whose properties become parameters).
fn inline_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    T::json_schema(generator)
}

/// An automation definition: the schema `crmflow schema` prints (see [`document`]).
pub fn automation_ref(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({ "$ref": "#/components/schemas/Automation" })
}

/// A CRM event in any of the three envelopes intake reads: their required fields and types.
/// Intake's other rules (a subject's shape inside `data`, a tenant other than the key's) are the
/// handler's; it answers 400 naming the field.
fn event_envelope(_: &mut SchemaGenerator) -> Schema {
    let event_type = json!({ "type": "string", "pattern": "^[A-Za-z0-9_.:-]+$" });
    let time = json!({ "type": "string", "format": "date-time" });
    let id = json!({ "type": "string", "minLength": 1 });
    let object = json!({ "type": "object" });
    let subject = json!({ "oneOf": [
        { "type": "string", "pattern": "^[^/]+/.+$", "description": "`<record type>/<record id>`" },
        { "type": "object", "required": ["type", "id"], "properties": {
            "type": { "type": "string", "minLength": 1 }, "id": { "type": "string", "minLength": 1 },
            "contact_id": { "type": "string" } } },
    ] });
    let native = json!({
        "title": "Native envelope",
        "type": "object",
        "required": ["id", "type", "time", "subject"],
        "properties": { "id": id, "type": event_type, "tenant": { "type": "string" }, "time": time,
                        "subject": subject, "data": object, "previous": object, "contact": object },
    });
    let cloudevents = json!({
        "title": "CloudEvents 1.0, structured JSON mode",
        "type": "object",
        "required": ["specversion", "id", "source", "type", "time"],
        "properties": { "specversion": { "const": "1.0" }, "id": id, "source": { "type": "string" },
                        "type": event_type, "time": time, "subject": { "type": "string" },
                        "tenant": { "type": "string" }, "contactid": { "type": "string" }, "data": object },
    });
    let eventbridge = json!({
        "title": "EventBridge event",
        "type": "object",
        "required": ["id", "detail-type", "time", "detail"],
        "properties": { "id": id, "detail-type": event_type, "source": { "type": "string" }, "time": time,
                        "detail": object },
    });
    schemars::json_schema!({
        "description": "One CRM event, in crmflow's native envelope, CloudEvents 1.0 (structured JSON mode, \
                        with `specversion`) or an EventBridge event (with `detail-type`). See the README's \
                        \"Events\".",
        "anyOf": [native, cloudevents, eventbridge],
        "examples": [{
            "id": "evt-1", "type": "case.created", "time": "2026-11-30T01:00:00Z",
            "subject": "case/K1", "data": { "priority": "critical" }
        }]
    })
}

/// Any OpenAPI document.
fn openapi_object(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({ "description": "An OpenAPI 3.1 document.", "type": "object" })
}

impl Operation {
    pub fn new(id: &'static str, summary: &'static str) -> Operation {
        Operation {
            id,
            summary,
            description: "",
            public: false,
            query: None,
            body: None,
            replies: Vec::new(),
        }
    }

    pub fn describe(self, description: &'static str) -> Operation {
        Operation { description, ..self }
    }

    /// Served without an API key.
    pub fn public(self) -> Operation {
        Operation { public: true, ..self }
    }

    /// The fields of `T` are the query parameters.
    pub fn query<T: JsonSchema>(self) -> Operation {
        Operation {
            query: Some(inline_of::<T>),
            ..self
        }
    }

    /// A JSON body of type `T`.
    pub fn body<T: JsonSchema>(self, description: &'static str) -> Operation {
        self.body_schema(description, schema_of::<T>)
    }

    /// A JSON body with the given schema.
    pub fn body_schema(self, description: &'static str, schema: SchemaFn) -> Operation {
        Operation {
            body: Some(RequestBody { description, schema }),
            ..self
        }
    }

    /// A body that is an automation definition (either form).
    pub fn definition_body(self, description: &'static str) -> Operation {
        self.body_schema(description, automation_ref)
    }

    /// A body that is one CRM event.
    pub fn event_body(self, description: &'static str) -> Operation {
        self.body_schema(description, event_envelope)
    }

    /// A success: `status` with a JSON body of type `T`.
    pub fn reply<T: JsonSchema>(self, status: u16, description: &'static str) -> Operation {
        self.reply_schema(status, description, schema_of::<T>)
    }

    /// The OpenAPI document itself.
    pub fn document_reply(self) -> Operation {
        self.reply_schema(200, "The OpenAPI document", openapi_object)
    }

    fn reply_schema(mut self, status: u16, description: &'static str, schema: SchemaFn) -> Operation {
        self.replies.push(Reply {
            status,
            description,
            schema: Some(schema),
            headers: Vec::new(),
            links: Vec::new(),
        });
        self
    }

    /// An error particular to this route: a problem document.
    pub fn problem(mut self, status: u16, description: &'static str) -> Operation {
        self.replies.push(Reply {
            status,
            description,
            schema: Some(schema_of::<Problem>),
            headers: Vec::new(),
            links: Vec::new(),
        });
        self
    }

    /// The last reply carries this header: `Location`, `Idempotent-Replayed` or
    /// `WWW-Authenticate`.
    pub fn header(mut self, name: &'static str) -> Operation {
        if let Some(last) = self.replies.last_mut() {
            last.headers.push(name);
        }
        self
    }

    /// The last reply's values feed the operation `operation_id` (see [`Link`]).
    pub fn link(
        mut self,
        operation_id: &'static str,
        parameters: &'static [(&'static str, &'static str)],
    ) -> Operation {
        if let Some(last) = self.replies.last_mut() {
            last.links.push(Link {
                operation_id,
                parameters,
            });
        }
        self
    }
}

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

/// The description and schema of a path parameter, by name.
fn path_parameter(name: &str) -> (&'static str, Value) {
    match name {
        "id" => ("The automation's id", json!({ "type": "string" })),
        "version" => (
            "A version of the automation",
            json!({ "type": "integer", "format": "uint32", "minimum": 0, "maximum": u32::MAX }),
        ),
        "run_id" => ("The run's id", json!({ "type": "string" })),
        _ => ("", json!({ "type": "string" })),
    }
}

/// The names of the parameters in a path template (`{id}`), in order.
pub fn path_parameter_names(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// Whether the document describes a path parameter of this name (a test holds every route to
/// it).
pub fn path_parameter_known(name: &str) -> bool {
    !path_parameter(name).0.is_empty()
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
    if route.method == Method::POST {
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
        if route.method == Method::POST && status < 300 {
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
    if route.method == Method::POST {
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

/// The document as committed (`docs/openapi.json`, which CI checks is exactly what [`document`]
/// generates). Served as it is, so that the api function does not link the schema generation.
const COMMITTED: &str = include_str!("../../docs/openapi.json");

/// `GET /api/v1/openapi.json`: the document (public: it says what the API is, nothing of any
/// tenant's).
pub async fn serve() -> impl axum::response::IntoResponse {
    static COMPACT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let compact = COMPACT.get_or_init(|| {
        serde_json::from_str::<Value>(COMMITTED).map_or_else(|_| COMMITTED.to_owned(), |doc| doc.to_string())
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        compact.as_str(),
    )
}

#[cfg(test)]
mod tests {
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
