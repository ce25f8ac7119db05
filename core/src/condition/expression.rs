//! CEL (Common Expression Language) conditions, through the `cel` crate.

use std::collections::HashMap;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, LazyLock};

use cel::ConvertToJsonError;
use cel::objects::{Key, Map};
use cel::{Context, Env, Program};
use serde_json::Value;

use super::error::{ConditionError, ConditionParseError};
use super::explain::truncate;
use super::path::SCOPE_ROOTS;
use super::scope::Scope;

/// A CEL value, as the `cel` crate represents it.
pub use cel::Value as CelValue;

/// The environment every expression is compiled and run in: the CEL standard library, with the
/// `strings` (`lowerAscii`, `split`, `trim`, ...), `lists` and `math` extensions.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    for extension in [
        cel::extensions::strings as fn(&mut Env) -> Result<(), cel::DeclarationError>,
        cel::extensions::lists,
        cel::extensions::math,
    ] {
        if let Err(error) = env.add_extension(extension) {
            tracing::warn!(%error, "CEL extension not available");
        }
    }
    Arc::new(env)
});

/// Turns an RFC 3339 string `t` into a CEL timestamp, for the `now` variable.
static TO_TIMESTAMP: LazyLock<Result<Program, cel::ParseErrors>> = LazyLock::new(|| ENV.compile("timestamp(t)"));

/// A compiled CEL expression, used as a condition (`{cel: "..."}`).
///
/// # Variables
///
/// Each top-level key of the [`Scope`] is a variable: `record`, `contact`, `event`, `trigger`,
/// `previous`, `steps`, `run` (each bound to an empty map when missing or null, so that
/// `has(record.x)` works), plus `now`, the scope's current instant as a CEL `timestamp`.
///
/// JSON values become CEL values as follows: an integral JSON number is an `int` (a `uint` when
/// above the `int` range), any other number a `double`; strings stay strings (use
/// `timestamp(record.closed_at)` to compare dates); objects become maps with string keys.
///
/// Selecting a field that is absent (`record.amount` when the record has no `amount`) is an
/// error, as CEL specifies: test with `has(record.amount)` first. CEL does not mix `int` and
/// `double` in arithmetic (`record.amount * 1.1` fails on an integral amount; write
/// `double(record.amount) * 1.1`), though comparisons across numeric types work.
///
/// The `strings`, `lists` and `math` extensions are available besides the standard library,
/// e.g. `record.email.lowerAscii().endsWith('@acme.com')`.
///
/// Clones share the compiled program; equality compares the source.
#[derive(Clone)]
pub struct CelExpression {
    source: String,
    program: Arc<Program>,
    /// The variables the expression names (comprehension variables included): only these are
    /// bound when it is evaluated against a scope.
    variables: Arc<[String]>,
}

impl CelExpression {
    /// Compiles `source`. The error's path is `cel`, its message the CEL parser's.
    pub fn new(source: impl Into<String>) -> Result<CelExpression, ConditionParseError> {
        let source = source.into();
        if source.trim().is_empty() {
            return Err(ConditionParseError::new("cel", "empty CEL expression"));
        }
        let compiled = std::panic::catch_unwind(|| ENV.compile(&source))
            .map_err(|_| ConditionParseError::new("cel", "invalid CEL expression: the parser panicked"))?;
        let program = compiled.map_err(|errors| {
            let messages: Vec<String> = errors
                .errors
                .iter()
                .map(|e| format!("{} (line {}, column {})", e.msg, e.pos.0, e.pos.1))
                .collect();
            let messages = if messages.is_empty() {
                vec![errors.to_string()]
            } else {
                messages
            };
            ConditionParseError::new(
                "cel",
                truncate(&format!("invalid CEL expression: {}", messages.join("; ")), 500),
            )
        })?;
        let mut variables: Vec<String> = program
            .references()
            .variables()
            .into_iter()
            .map(str::to_owned)
            .collect();
        variables.sort();
        Ok(CelExpression {
            source,
            program: Arc::new(program),
            variables: variables.into(),
        })
    }

    /// Whether evaluating may look up the scope's top-level value `root` (the expression names
    /// it).
    pub fn reads(&self, root: &str) -> bool {
        self.variables.iter().any(|v| v == root)
    }

    /// The source the expression was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the expression as a condition: it must return a bool.
    pub fn evaluate(&self, scope: &Scope) -> Result<bool, ConditionError> {
        match self.evaluate_value(scope)? {
            CelValue::Bool(b) => Ok(b),
            other => Err(ConditionError::NotBool {
                expression: self.source.clone(),
                found: describe(&other),
            }),
        }
    }

    /// Evaluates the expression against `scope` (see the type docs for the variables) and
    /// returns whatever it computes.
    ///
    /// Only the variables the expression names are converted and bound (a variable it does not
    /// name cannot change its result), so the cost follows the expression, not the scope.
    pub fn evaluate_value(&self, scope: &Scope) -> Result<CelValue, ConditionError> {
        let mut bindings: Vec<(String, CelValue)> = Vec::with_capacity(self.variables.len());
        for name in self.variables.iter() {
            // `now` is the scope's instant, whatever the scope object holds under that key.
            if name == "now" {
                bindings.push((name.clone(), self.timestamp(scope.now)?));
                continue;
            }
            let is_root = SCOPE_ROOTS.contains(&name.as_str());
            match scope.root.get(name.as_str()) {
                Some(value) if !(is_root && value.is_null()) => bindings.push((name.clone(), json_to_cel(value))),
                // A missing or null root is an empty map, so that `has(record.x)` works.
                _ if is_root => {
                    bindings.push((name.clone(), CelValue::Map(Map::from(HashMap::<Key, CelValue>::new()))))
                }
                _ => {}
            }
        }
        self.evaluate_with_bindings(bindings)
    }

    /// Evaluates the expression with exactly the given variables (no scope, no `now`), e.g. for
    /// conformance tests or previews.
    pub fn evaluate_with_bindings<I, K>(&self, bindings: I) -> Result<CelValue, ConditionError>
    where
        I: IntoIterator<Item = (K, CelValue)>,
        K: Into<String>,
    {
        // The interpreter is not expected to panic, but a condition must never take the engine
        // down: a panic (binding a value CEL cannot hold, or running) becomes an error.
        let run = || {
            let mut context = Context::with_env(Arc::clone(&ENV));
            for (name, value) in bindings {
                context.add_variable_from_value(name, value);
            }
            self.program.execute(&context)
        };
        let result = std::panic::catch_unwind(AssertUnwindSafe(run)).map_err(|_| ConditionError::Cel {
            expression: self.source.clone(),
            message: "the CEL interpreter panicked".to_owned(),
        })?;
        result.map_err(|error| self.runtime_error(&error))
    }

    fn runtime_error(&self, error: &cel::ExecutionError) -> ConditionError {
        let mut message = error.to_string();
        if matches!(error, cel::ExecutionError::NoSuchKey(_)) {
            message.push_str(" (test with has(...) whether a field is set)");
        }
        ConditionError::Cel {
            expression: self.source.clone(),
            message,
        }
    }

    /// `now` as a CEL timestamp.
    fn timestamp(&self, now: jiff::Timestamp) -> Result<CelValue, ConditionError> {
        let program = TO_TIMESTAMP.as_ref().map_err(|message| ConditionError::Cel {
            expression: self.source.clone(),
            message: format!("cannot build `now`: {message}"),
        })?;
        let mut context = Context::with_env(Arc::clone(&ENV));
        context.add_variable_from_value("t", now.to_string());
        program.execute(&context).map_err(|e| ConditionError::Cel {
            expression: self.source.clone(),
            message: format!("cannot build `now` from {now}: {e}"),
        })
    }
}

/// A JSON value as a CEL value: integral numbers become `int` (`uint` above the `int` range),
/// other numbers `double`, objects maps with string keys.
pub fn json_to_cel(value: &Value) -> CelValue {
    match value {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                CelValue::Int(i)
            } else if let Some(u) = n.as_u64() {
                CelValue::UInt(u)
            } else {
                CelValue::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => CelValue::String(Arc::new(s.clone())),
        Value::Array(items) => CelValue::List(Arc::new(items.iter().map(json_to_cel).collect())),
        Value::Object(map) => {
            let entries: HashMap<Key, CelValue> = map
                .iter()
                .map(|(k, v)| (Key::from(k.as_str()), json_to_cel(v)))
                .collect();
            CelValue::Map(Map::from(entries))
        }
    }
}

/// Why a CEL value has no JSON form. The values are shown as the `cel` crate debugs them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CelToJsonError {
    /// A value JSON cannot hold (a function, an opaque value).
    #[error("unable to convert value to json: {value}")]
    Unrepresentable { value: String },
    /// A duration of 2^63 nanoseconds or more.
    #[error("duration too large to convert to nanoseconds: {duration}")]
    DurationOverflow { duration: String },
}

/// A CEL value as JSON: timestamps as RFC 3339 strings, durations as nanoseconds, bytes as
/// base64. Fails for values JSON cannot hold (functions, some opaque values).
pub fn cel_to_json(value: &CelValue) -> Result<Value, CelToJsonError> {
    value.json().map_err(|e| match e {
        ConvertToJsonError::Value(value) => CelToJsonError::Unrepresentable {
            value: format!("{value:?}"),
        },
        ConvertToJsonError::DurationOverflow(duration) => CelToJsonError::DurationOverflow {
            duration: format!("{duration:?}"),
        },
    })
}

/// `type value`, cut short, for error messages.
fn describe(value: &CelValue) -> String {
    let shown = match cel_to_json(value) {
        Ok(json) => json.to_string(),
        Err(_) => format!("{value:?}"),
    };
    format!("{} {}", value.type_of(), truncate(&shown, 60))
}

impl fmt::Debug for CelExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CelExpression").field(&self.source).finish()
    }
}

impl PartialEq for CelExpression {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for CelExpression {}
