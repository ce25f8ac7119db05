//! Text and HTML templates (Jinja syntax, rendered by minijinja).
//!
//! A [`Template`] is compiled when it is parsed or deserialized, so a syntax
//! error is reported with the definition's path before the automation ever
//! runs, e.g. `steps[1].email.subject: template syntax error: unexpected end
//! of input, expected end of variable block (line 1)`. A plain string without
//! `{{`/`{%` is a valid template that renders as itself.
//!
//! Compiling also checks every filter (`| name`) and test (`is name`) against
//! the ones the renderer has, in every branch, so a misspelt filter in an
//! `{% if %}` branch that a test contact never reaches is still caught when
//! the definition loads: `steps[0].action.params.body: unknown template
//! filter `uppr` (line 3)`. Jinja2 makes the same check at compile time;
//! minijinja itself would only fail when the branch renders. A name passed
//! as a string (`map('upper')`, `select('odd')`) is data, not syntax: it is
//! checked only when it renders.
//!
//! # Variables
//!
//! The top-level keys of the scope object are the variables: `contact`,
//! `record`, `event`, `trigger`, `steps`, `run`, `previous` and `now` (an
//! RFC 3339 UTC string) when the caller puts them in the scope.
//!
//! # Strict undefined
//!
//! Rendering uses minijinja's strict undefined behaviour: printing, testing
//! (`{% if %}`) or iterating over a variable or field that does not exist is
//! an **error**, so a misspelt `{{ contact.frist_name }}` fails the step
//! instead of sending "Hello ," to a customer. For optional fields write
//!
//! ```jinja
//! Hello {{ contact.first_name | default("there") }}
//! {% if contact.vip is defined and contact.vip %}...{% endif %}
//! ```
//!
//! Differences from stock Jinja, chosen for CRM data where absent fields are
//! often `null`:
//! - `default(x)` also replaces `null` (not only undefined); `default(x, true)`
//!   replaces any falsy value (`""`, `0`, `false`, empty list) as in Jinja.
//! - `null` prints as the empty string, not `none`.
//!
//! # Escaping
//!
//! [`Template::render_text`] never escapes. [`Template::render_html`]
//! HTML-escapes every interpolated value (`<script>` becomes `&lt;script&gt;`);
//! use `| safe` only for values you trust.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use minijinja::value::{Rest, Value};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Errors from compiling or rendering a template. Messages carry the
/// minijinja detail and the 1-based line within the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template does not compile.
    #[error("template syntax error: {message}")]
    Syntax { message: String },
    /// Rendering failed (undefined variable, bad filter argument, ...).
    #[error("template error: {message}")]
    Render { message: String },
    /// A filter or test name the renderer does not have.
    #[error("unknown template {kind} `{name}` (line {line})")]
    UnknownName {
        /// `filter` or `test`.
        kind: &'static str,
        name: String,
        /// 1-based line within the template.
        line: usize,
    },
    /// The scope passed to a render call is not a JSON object.
    #[error("template scope must be a JSON object, got {got}")]
    InvalidScope { got: &'static str },
}

/// A template source string, compiled (validated) when parsed.
///
/// Serializes as its source; deserializes from a string and fails with the
/// syntax error. Two templates are equal when their sources are. Rendering
/// compiles a source once and keeps it (a bounded cache shared by all
/// templates), except for templates that `include` or `extend` others.
#[derive(Clone)]
pub struct Template {
    source: String,
    /// The variables the template looks up (every name it reads, a superset of the scope keys
    /// it needs), or `None` when it may see the whole context (`debug()`, `include`,
    /// `extends`). Rendering passes only these scope keys to minijinja.
    names: Option<Arc<[String]>>,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Template").field(&self.source).finish()
    }
}

impl PartialEq for Template {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Template {}

/// The minijinja `default` filter, extended so that `null` also counts as
/// missing (see the module docs).
fn default_filter(value: &Value, args: Rest<Value>) -> Result<Value, minijinja::Error> {
    if args.len() > 2 {
        return Err(minijinja::Error::new(
            ErrorKind::TooManyArguments,
            "default takes at most 2 arguments",
        ));
    }
    let other = args.first().cloned().unwrap_or_else(|| Value::from(""));
    let lax = match args.get(1) {
        Some(lax) if lax.is_undefined() => {
            return Err(minijinja::Error::new(
                ErrorKind::UndefinedError,
                "the second argument of default is undefined",
            ));
        }
        Some(lax) => lax.is_true(),
        None => false,
    };
    if value.is_undefined() || value.is_none() || (lax && !value.is_true()) {
        Ok(other)
    } else {
        Ok(value.clone())
    }
}

fn build_env(escape: AutoEscape) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(move |_| escape);
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            Ok(())
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    env.add_filter("default", default_filter);
    env.add_filter("d", default_filter);
    env
}

fn text_env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| build_env(AutoEscape::None))
}

fn html_env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| build_env(AutoEscape::Html))
}

/// Templates compiled by the renderer, by source, per escaping mode, so that a template is
/// compiled once rather than on every render. Bounded: past [`MAX_COMPILED`] templates the
/// cache starts again empty.
struct Compiled {
    env: RwLock<(Environment<'static>, usize)>,
}

/// How many compiled templates [`Compiled`] keeps at most, per escaping mode.
const MAX_COMPILED: usize = 4096;

impl Compiled {
    fn text() -> &'static Compiled {
        static CACHE: OnceLock<Compiled> = OnceLock::new();
        CACHE.get_or_init(|| Compiled::new(AutoEscape::None))
    }

    fn html() -> &'static Compiled {
        static CACHE: OnceLock<Compiled> = OnceLock::new();
        CACHE.get_or_init(|| Compiled::new(AutoEscape::Html))
    }

    fn new(escape: AutoEscape) -> Compiled {
        Compiled {
            env: RwLock::new((build_env(escape), 0)),
        }
    }

    /// Renders `source` as `env.render_str(source, ctx)` would (same environment settings),
    /// compiling it on its first render only.
    fn render(&self, source: &str, ctx: &Value) -> Result<String, minijinja::Error> {
        {
            let env = self.env.read().unwrap_or_else(PoisonError::into_inner);
            if let Ok(template) = env.0.get_template(source) {
                return template.render(ctx);
            }
        }
        let mut env = self.env.write().unwrap_or_else(PoisonError::into_inner);
        if env.1 >= MAX_COMPILED {
            env.0.clear_templates();
            env.1 = 0;
        }
        if env.0.get_template(source).is_err() {
            env.0.add_template_owned(source.to_string(), source.to_string())?;
            env.1 += 1;
        }
        env.0.get_template(source)?.render(ctx)
    }
}

/// One-line description of a minijinja error: detail, the failing expression
/// when known, and the line.
fn describe_error(err: &minijinja::Error, source: &str) -> String {
    let mut msg = match err.detail() {
        Some(detail) => match err.kind() {
            ErrorKind::SyntaxError => detail.to_string(),
            kind => format!("{kind}: {detail}"),
        },
        None => err.kind().to_string(),
    };
    if err.kind() != ErrorKind::SyntaxError
        && let Some(range) = err.range()
        && let Some(snippet) = source.get(range)
    {
        let snippet = snippet.trim();
        if !snippet.is_empty() && snippet.len() <= 80 && !snippet.contains('\n') {
            msg.push_str(&format!(" in `{snippet}`"));
        }
    }
    if let Some(line) = err.line() {
        msg.push_str(&format!(" (line {line})"));
    }
    msg
}

/// Compiles `source` with the renderer's (default) syntax and whitespace
/// settings, then fails on the first filter or test that the renderer does
/// not have, in source order. Returns the names the template looks up (see
/// [`Template`]'s `names`).
///
/// minijinja looks filters and tests up only when an instruction runs, so
/// this walks the compiled instructions of the whole template (every branch,
/// block and macro). It uses minijinja's `unstable_machinery` API, which may
/// change in a minor release; the exact version is pinned in `Cargo.lock`.
fn compile_and_check_names(source: &str) -> Result<Option<Arc<[String]>>, TemplateError> {
    use minijinja::machinery::{CodeGenerator, Instruction, Instructions, WhitespaceConfig, parse};
    const NAME: &str = "<template>";
    let ast =
        parse(source, NAME, Default::default(), WhitespaceConfig::default()).map_err(|e| TemplateError::Syntax {
            message: describe_error(&e, source),
        })?;
    let mut generator = CodeGenerator::new(NAME, source);
    generator.compile_stmt(&ast);
    let (root, blocks) = generator.finish();
    let check = |instructions: &Instructions<'_>| -> Result<(), TemplateError> {
        for index in 0..instructions.len() as u32 {
            let (kind, name, known) = match instructions.get(index) {
                Some(Instruction::ApplyFilter(name, ..)) => ("filter", *name, has_filter(name)),
                Some(Instruction::PerformTest(name, ..)) => ("test", *name, has_test(name)),
                _ => continue,
            };
            if !known {
                return Err(TemplateError::UnknownName {
                    kind,
                    name: name.to_string(),
                    line: instructions.get_line(index).unwrap_or(1),
                });
            }
        }
        Ok(())
    };
    check(&root)?;
    blocks.values().try_for_each(check)?;
    let mut names = std::collections::BTreeSet::new();
    for instructions in std::iter::once(&root).chain(blocks.values()) {
        for index in 0..instructions.len() as u32 {
            match instructions.get(index) {
                Some(Instruction::Lookup(name) | Instruction::Enclose(name) | Instruction::CallFunction(name, _)) => {
                    if *name == "debug" {
                        return Ok(None);
                    }
                    names.insert(name.to_string());
                }
                Some(Instruction::Include(_) | Instruction::LoadBlocks | Instruction::FastSuper) => return Ok(None),
                _ => {}
            }
        }
    }
    Ok(Some(names.into_iter().collect()))
}

/// A scope object given by parts: its top-level values by name, borrowed from where they live
/// (a run's data), so that rendering need not build the object first. A part serializes, and
/// renders, as that value in the scope object would.
pub trait ScopeParts {
    /// The top-level value `name`, if the scope has it.
    fn part(&self, name: &str) -> Option<ScopePart<'_>>;
    /// Every top-level `(name, value)`, in the scope object's order.
    fn parts(&self) -> Vec<(&str, ScopePart<'_>)>;
    /// What the scope is when it is not an object (nor `null`, no variables): rendering
    /// against it fails with [`TemplateError::InvalidScope`].
    fn not_an_object(&self) -> Option<&'static str> {
        None
    }
}

/// A top-level value of a [`ScopeParts`]: a JSON value, or an object given by its map.
#[derive(Debug, Clone, Copy)]
pub enum ScopePart<'a> {
    Value(&'a serde_json::Value),
    Map(&'a serde_json::Map<String, serde_json::Value>),
}

impl<'a> ScopePart<'a> {
    /// The field `key` of an object part (`None` for other values).
    pub fn get(&self, key: &str) -> Option<&'a serde_json::Value> {
        match *self {
            ScopePart::Value(value) => value.get(key),
            ScopePart::Map(map) => map.get(key),
        }
    }
}

impl Serialize for ScopePart<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ScopePart::Value(value) => value.serialize(serializer),
            ScopePart::Map(map) => map.serialize(serializer),
        }
    }
}

/// A scope object's parts are its entries; `null` has none.
impl ScopeParts for serde_json::Value {
    fn part(&self, name: &str) -> Option<ScopePart<'_>> {
        self.as_object()?.get(name).map(ScopePart::Value)
    }
    fn parts(&self) -> Vec<(&str, ScopePart<'_>)> {
        let entries = self.as_object().into_iter().flatten();
        entries.map(|(k, v)| (k.as_str(), ScopePart::Value(v))).collect()
    }
    fn not_an_object(&self) -> Option<&'static str> {
        match self {
            serde_json::Value::Object(_) | serde_json::Value::Null => None,
            other => Some(json_kind(other)),
        }
    }
}

/// The part of a scope a template looks up, as minijinja's context (serialized like the
/// whole scope, entry by entry), or the whole scope when `names` is `None`.
struct Context<'a> {
    scope: &'a dyn ScopeParts,
    names: Option<&'a [String]>,
}

impl Serialize for Context<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        match self.names {
            Some(names) => {
                for name in names {
                    if let Some(value) = self.scope.part(name) {
                        map.serialize_entry(name, &value)?;
                    }
                }
            }
            None => {
                for (name, value) in self.scope.parts() {
                    map.serialize_entry(name, &value)?;
                }
            }
        }
        map.end()
    }
}

/// `true` when the renderer has a filter called `name`. minijinja has no
/// public lookup, so this applies it to `none` and asks whether the error, if
/// any, is "unknown filter". Both environments share their filters.
fn has_filter(name: &str) -> bool {
    is_known(&format!("none | {name}"), ErrorKind::UnknownFilter)
}

/// `true` when the renderer has a test called `name` (see [`has_filter`]).
fn has_test(name: &str) -> bool {
    is_known(&format!("none is {name}"), ErrorKind::UnknownTest)
}

fn is_known(expression: &str, unknown: ErrorKind) -> bool {
    match text_env().compile_expression(expression) {
        Ok(compiled) => !matches!(compiled.eval(()), Err(e) if e.kind() == unknown),
        Err(_) => false,
    }
}

impl Template {
    /// Compiles `source`, failing with [`TemplateError::Syntax`], or with
    /// [`TemplateError::UnknownName`] for a filter or test that does not exist.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let names = compile_and_check_names(source)?;
        Ok(Template {
            source: source.to_string(),
            names,
        })
    }

    /// Whether rendering may look up the scope's top-level value `root` (`record`, `trigger`,
    /// ...): it names it, or it may reach the whole scope.
    pub fn reads(&self, root: &str) -> bool {
        self.names.as_ref().is_none_or(|names| names.iter().any(|n| n == root))
    }

    /// The source text.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// `true` when the source has no `{{`, `{%` or `{#` (renders as itself).
    pub fn is_literal(&self) -> bool {
        !(self.source.contains("{{") || self.source.contains("{%") || self.source.contains("{#"))
    }

    /// Renders as plain text (nothing is escaped). `scope` must be a JSON
    /// object (its keys become variables) or `null` (no variables).
    pub fn render_text(&self, scope: &serde_json::Value) -> Result<String, TemplateError> {
        self.render_text_in(scope)
    }

    /// Renders as HTML: every interpolated value is HTML-escaped unless
    /// marked `| safe`. The template's own text is not touched.
    pub fn render_html(&self, scope: &serde_json::Value) -> Result<String, TemplateError> {
        self.render_html_in(scope)
    }

    /// [`Template::render_text`] against a scope given by parts.
    pub fn render_text_in(&self, scope: &dyn ScopeParts) -> Result<String, TemplateError> {
        self.render(text_env(), Compiled::text(), scope)
    }

    /// [`Template::render_html`] against a scope given by parts.
    pub fn render_html_in(&self, scope: &dyn ScopeParts) -> Result<String, TemplateError> {
        self.render(html_env(), Compiled::html(), scope)
    }

    /// Renders with `env`'s settings; through `compiled` unless the template may reach beyond
    /// itself (`include`, `extends`: the compiled templates must not be found by name).
    fn render(
        &self,
        env: &Environment<'static>,
        compiled: &Compiled,
        scope: &dyn ScopeParts,
    ) -> Result<String, TemplateError> {
        if let Some(got) = scope.not_an_object() {
            return Err(TemplateError::InvalidScope { got });
        }
        // Only what the template looks up: converting the whole scope would cost more than
        // rendering.
        let names = self.names.as_deref();
        let ctx = Value::from_serialize(Context { scope, names });
        let rendered = match names {
            Some(_) => compiled.render(&self.source, &ctx),
            None => env.render_str(&self.source, ctx),
        };
        rendered.map_err(|e| TemplateError::Render {
            message: describe_error(&e, &self.source),
        })
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for Template {
    type Err = TemplateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Template;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a template string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Template, E> {
                Template::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

impl JsonSchema for Template {
    fn schema_name() -> Cow<'static, str> {
        "Template".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A Jinja template (minijinja). Variables: contact, record, event, trigger, steps, run, previous, now. Undefined variables are errors; use `| default(\"...\")` for optional fields.",
            "examples": ["Hello {{ contact.first_name | default(\"there\") }}"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> serde_json::Value {
        json!({
            "contact": {"first_name": "Ada", "last_name": null, "tags": ["vip", "beta"], "note": "<script>alert(1)</script>"},
            "record": {"id": "L1", "amount": 1200},
            "now": "2026-03-08T09:00:00Z"
        })
    }

    #[test]
    fn renders_variables_loops_and_plain_text() {
        let t = Template::parse("Hi {{ contact.first_name }}, lead {{ record.id }} ({{ record.amount }})").unwrap();
        assert_eq!(t.render_text(&scope()).unwrap(), "Hi Ada, lead L1 (1200)");
        let t = Template::parse("{% for t in contact.tags %}{{ t }}{% if not loop.last %}, {% endif %}{% endfor %}")
            .unwrap();
        assert_eq!(t.render_text(&scope()).unwrap(), "vip, beta");
        let t = Template::parse("No placeholders & <b>here</b>").unwrap();
        assert!(t.is_literal());
        assert_eq!(t.render_html(&scope()).unwrap(), "No placeholders & <b>here</b>");
        assert_eq!(t.render_text(&json!(null)).unwrap(), "No placeholders & <b>here</b>");
        let t = Template::parse("at {{ now }}").unwrap();
        assert_eq!(t.render_text(&scope()).unwrap(), "at 2026-03-08T09:00:00Z");
    }

    #[test]
    fn html_mode_escapes_values_text_mode_does_not() {
        let t = Template::parse("<p>{{ contact.note }}</p>").unwrap();
        assert_eq!(
            t.render_html(&scope()).unwrap(),
            "<p>&lt;script&gt;alert(1)&lt;&#x2f;script&gt;</p>"
        );
        assert_eq!(t.render_text(&scope()).unwrap(), "<p><script>alert(1)</script></p>");
        let t = Template::parse("{{ contact.note | safe }}").unwrap();
        assert_eq!(t.render_html(&scope()).unwrap(), "<script>alert(1)</script>");
    }

    #[test]
    fn strict_undefined_is_an_error() {
        let t = Template::parse("Hello {{ contact.frist_name }}").unwrap();
        let e = t.render_text(&scope()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("template error: undefined value"), "{msg}");
        assert!(msg.contains("contact.frist_name"), "{msg}");
        assert!(msg.contains("(line 1)"), "{msg}");
        let t = Template::parse("line one\n{{ nope }}").unwrap();
        let msg = t.render_html(&scope()).unwrap_err().to_string();
        assert!(msg.contains("(line 2)"), "{msg}");
        let t = Template::parse("{% if contact.vip %}x{% endif %}").unwrap();
        assert!(t.render_text(&scope()).is_err());
        // a missing top-level object is an error too
        let t = Template::parse("{{ deal.name }}").unwrap();
        assert!(t.render_text(&scope()).is_err());
    }

    #[test]
    fn default_filter_works_under_strict_mode() {
        let t = Template::parse(r#"Hello {{ contact.nickname | default("there") }}"#).unwrap();
        assert_eq!(t.render_text(&scope()).unwrap(), "Hello there");
        let t = Template::parse(r#"Hello {{ contact.first_name | default("there") }}"#).unwrap();
        assert_eq!(t.render_text(&scope()).unwrap(), "Hello Ada");
        // null counts as missing
        let t = Template::parse(r#"{{ contact.last_name | default("?") }}"#).unwrap();
        assert_eq!(t.render_text(&scope()).unwrap(), "?");
        // lax mode also replaces empty strings
        let t = Template::parse(r#"{{ "" | default("empty", true) }}|{{ "" | default("kept") }}"#).unwrap();
        assert_eq!(t.render_text(&scope()).unwrap(), "empty|");
        let t = Template::parse(r#"{% if contact.vip is defined and contact.vip %}VIP{% else %}regular{% endif %}"#)
            .unwrap();
        assert_eq!(t.render_text(&scope()).unwrap(), "regular");
        // null prints as nothing
        let t = Template::parse("[{{ contact.last_name }}]").unwrap();
        assert_eq!(t.render_text(&scope()).unwrap(), "[]");
    }

    #[test]
    fn syntax_errors_at_parse_and_deserialize() {
        let e = Template::parse("Hello {{ contact.first_name").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("template syntax error: unexpected end of input"),
            "{msg}"
        );
        assert!(msg.ends_with("(line 1)"), "{msg}");
        let e = Template::parse("a\n{% if x %}unclosed").unwrap_err();
        assert!(matches!(e, TemplateError::Syntax { .. }));

        #[derive(Debug, Deserialize, Serialize)]
        struct Email {
            subject: Template,
        }
        let e = serde_json::from_value::<Email>(json!({"subject": "Hi {{ x"})).unwrap_err();
        assert!(e.to_string().contains("template syntax error"), "{e}");
        let ok: Email = serde_json::from_value(json!({"subject": "Hi {{ x }}"})).unwrap();
        assert_eq!(serde_json::to_value(&ok).unwrap(), json!({"subject": "Hi {{ x }}"}));
    }

    #[test]
    fn unknown_filters_and_tests_fail_at_parse_in_every_branch() {
        // a branch the test contact never takes: minijinja alone would render "ok"
        let e = Template::parse("{% if false %}\n{{ contact.first_name | uppr }}{% endif %}ok").unwrap_err();
        assert_eq!(
            e,
            TemplateError::UnknownName {
                kind: "filter",
                name: "uppr".into(),
                line: 2
            }
        );
        assert_eq!(e.to_string(), "unknown template filter `uppr` (line 2)");
        let e = Template::parse("{% if contact.vip is truthy %}VIP{% endif %}").unwrap_err();
        assert_eq!(e.to_string(), "unknown template test `truthy` (line 1)");
        // filter blocks, macros, loops and filters chained after a known one
        for source in [
            "{% filter shout %}hi{% endfilter %}",
            "{% macro m(x) %}{{ x | nope }}{% endmacro %}",
            "{% for t in contact.tags %}{{ t | trim | nope }}{% endfor %}",
            "{{ contact.tags | map('upper') | join(', ') | nope }}",
        ] {
            assert!(
                matches!(Template::parse(source), Err(TemplateError::UnknownName { ref name, .. }) if name == "nope" || name == "shout"),
                "{source}"
            );
        }
        // built-in filters and tests, and our own `default`/`d`, are accepted
        let t = Template::parse(
            r#"{{ contact.first_name | upper | trim }} {{ contact.nickname | d("x") | title }}{% if contact.tags is defined and 3 is odd %}{{ contact.tags | length }}{% endif %}"#,
        )
        .unwrap();
        assert_eq!(t.render_text(&scope()).unwrap(), "ADA X2");
        let e = serde_json::from_value::<Template>(json!("{{ x | nope }}")).unwrap_err();
        assert!(e.to_string().contains("unknown template filter `nope`"), "{e}");
    }

    #[test]
    fn non_object_scope_is_rejected() {
        let t = Template::parse("x").unwrap();
        let e = t.render_text(&json!([1])).unwrap_err();
        assert_eq!(e.to_string(), "template scope must be a JSON object, got an array");
    }

    #[test]
    fn renders_as_with_the_whole_scope() {
        // Rendering passes only the names a template looks up; the output, and the error when
        // there is one, is what the whole scope gives.
        for source in [
            "Hi {{ contact.first_name }} {{ record.amount }} {{ now }}",
            "{% set who = contact %}{{ who.first_name }}",
            "{% macro m() %}{{ record.id }}{% endmacro %}{{ m() }}",
            "{% for t in contact.tags %}{{ loop.index }}{{ t }}{% endfor %}",
            "{{ contact.nickname | default(record.id) }}",
            "{% if record is defined and steps is not defined %}{{ range(2) | list }}{% endif %}",
            "{{ nowhere }}",
            "{{ contact.frist_name }}",
            "{{ debug() | length > 0 }}",
            "plain",
        ] {
            let t = Template::parse(source).unwrap();
            let whole = Template {
                names: None,
                ..t.clone()
            };
            assert_eq!(t.render_text(&scope()), whole.render_text(&scope()), "{source}");
            assert_eq!(t.render_html(&scope()), whole.render_html(&scope()), "{source}");
            // Again, now compiled.
            assert_eq!(t.render_text(&scope()), whole.render_text(&scope()), "{source}");
        }
        // A compiled template is not a template `include` can find.
        assert_eq!(
            Template::parse("plain").unwrap().render_text(&scope()).unwrap(),
            "plain"
        );
        let including = Template::parse("{% include 'plain' %}").unwrap();
        assert!(including.names.is_none());
        let e = including.render_text(&scope()).unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
        let names = |source: &str| Template::parse(source).unwrap().names.map(|n| n.to_vec());
        assert_eq!(
            names("{{ contact.first_name | default(record.id) }}"),
            Some(vec!["contact".to_string(), "record".to_string()])
        );
        assert_eq!(names("{{ debug() }}"), None, "debug() shows the whole context");
    }
}
