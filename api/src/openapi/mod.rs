//! The OpenAPI 3.1 document of the API, generated from the route table.
//!
//! Every [`Route`](crate::Route) carries an [`Operation`]: what it takes (query parameters, body) and every
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
//!
//! Writing the document ([`document`]) takes the crate's `document` feature, which `crmflow
//! openapi`, `crmflow serve` and the tests turn on. The api function leaves it off: it serves
//! the committed document ([`serve`]), and without the feature an [`Operation`] keeps no schema
//! function, so the schema code of the types the API reads and writes is not linked into it
//! (0.2 MB, README "Figures").

use crate::problem::Problem;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Value, json};

#[cfg(any(feature = "document", doc))]
mod document;
#[cfg(any(feature = "document", doc))]
pub use document::{build, document};

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
    /// A POST that changes nothing (POST for its body): retrying it is harmless, and it takes no
    /// `Idempotency-Key`.
    pub safe: bool,
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

/// What an [`Operation`] keeps for the schema of `T`: [`schema_of`] with the `document` feature,
/// else [`unwritten`].
fn named<T: JsonSchema>() -> SchemaFn {
    if cfg!(feature = "document") {
        schema_of::<T>
    } else {
        unwritten
    }
}

/// [`inline_of`] with the `document` feature, else [`unwritten`].
fn inline<T: JsonSchema>() -> SchemaFn {
    if cfg!(feature = "document") {
        inline_of::<T>
    } else {
        unwritten
    }
}

/// `schema` with the `document` feature, else [`unwritten`].
fn kept(schema: SchemaFn) -> SchemaFn {
    if cfg!(feature = "document") { schema } else { unwritten }
}

/// The schema an [`Operation`] keeps without the `document` feature, where no document is
/// written: the empty schema.
fn unwritten(_: &mut SchemaGenerator) -> Schema {
    Schema::default()
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
            safe: false,
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

    /// A POST that changes nothing (see [`Operation::safe`](Operation#structfield.safe)).
    pub fn safe(self) -> Operation {
        Operation { safe: true, ..self }
    }

    /// The fields of `T` are the query parameters.
    pub fn query<T: JsonSchema>(self) -> Operation {
        Operation {
            query: Some(inline::<T>()),
            ..self
        }
    }

    /// A JSON body of type `T`.
    pub fn body<T: JsonSchema>(self, description: &'static str) -> Operation {
        self.body_schema(description, named::<T>())
    }

    /// A JSON body with the given schema.
    pub fn body_schema(self, description: &'static str, schema: SchemaFn) -> Operation {
        Operation {
            body: Some(RequestBody {
                description,
                schema: kept(schema),
            }),
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
        self.reply_schema(status, description, named::<T>())
    }

    /// The OpenAPI document itself.
    pub fn document_reply(self) -> Operation {
        self.reply_schema(200, "The OpenAPI document", openapi_object)
    }

    fn reply_schema(mut self, status: u16, description: &'static str, schema: SchemaFn) -> Operation {
        self.replies.push(Reply {
            status,
            description,
            schema: Some(kept(schema)),
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
            schema: Some(named::<Problem>()),
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

/// The document as committed (`docs/openapi.json`, which CI checks is exactly what [`document`]
/// writes), without its insignificant whitespace (`build.rs`: 85 KB in place of 158 KB). Served
/// as it is, so that the api function links no schema generation and computes nothing.
const COMMITTED: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// `GET /api/v1/openapi.json`: the document (public: it says what the API is, nothing of any
/// tenant's).
pub async fn serve() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], COMMITTED)
}
