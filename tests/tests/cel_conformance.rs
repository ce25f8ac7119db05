//! Runs the CEL conformance tests of google/cel-spec (`tests/data/cel`, see its ORIGIN.md)
//! through `crmflow_core::condition::CelExpression`, and fails if the pass rate drops below a floor.
//!
//! `cargo test -p crmflow-tests --test cel_conformance -- --nocapture` shows the per-file rates; set
//! `CEL_CONFORMANCE_VERBOSE=1` to list every failing test as well.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use cel::objects::Key;
use crmflow_core::condition::{CelExpression, CelValue};

/// The files run, in order.
const FILES: [&str; 10] = [
    "basic",
    "logic",
    "comparisons",
    "integer_math",
    "fp_math",
    "string",
    "lists",
    "macros",
    "conversions",
    "timestamps",
];

/// The lowest acceptable pass rate, in percent of the tests run (skipped ones excluded): the
/// rate measured when this test was written (821/822 = 99.9%), minus a small margin.
const PASS_RATE_FLOOR: f64 = 99.5;
/// The fewest tests that must run (not be skipped): 822 when this test was written.
const MIN_TESTS_RUN: usize = 815;

// ============================================================================ text format

/// A protobuf text-format message: its fields in order (repeated fields appear repeatedly).
#[derive(Debug, Clone, Default)]
struct Message {
    fields: Vec<(String, Field)>,
}

#[derive(Debug, Clone)]
enum Field {
    Message(Message),
    /// A string or bytes literal (adjacent literals concatenated), as raw bytes.
    Bytes(Vec<u8>),
    /// A number, enum value or identifier (`true`, `NULL_VALUE`, `inf`, ...), as written.
    Word(String),
}

impl Message {
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Field> + 'a {
        self.fields.iter().filter(move |(n, _)| n == name).map(|(_, f)| f)
    }

    fn get(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, f)| f)
    }

    fn message(&self, name: &str) -> Option<&Message> {
        match self.get(name)? {
            Field::Message(m) => Some(m),
            _ => None,
        }
    }

    fn messages<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Message> + 'a {
        self.all(name).filter_map(|f| match f {
            Field::Message(m) => Some(m),
            _ => None,
        })
    }

    fn string(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            Field::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Field::Word(w) => Some(w.clone()),
            Field::Message(_) => None,
        }
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Field::Word(w)) if w == "true" || w == "1")
    }

    /// The single field of a message such as `{ int64_value: 1 }`.
    fn only(&self) -> Option<&(String, Field)> {
        self.fields.first()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open(char),
    Close(char),
    Colon,
    Separator,
    ListOpen,
    ListClose,
    Name(String),
    Str(Vec<u8>),
}

struct Lexer<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer {
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    fn peek_byte(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while let Some(b) = self.peek_byte() {
            if b.is_ascii_whitespace() {
                self.pos += 1;
            } else if b == b'#' {
                while let Some(c) = self.peek_byte() {
                    self.pos += 1;
                    if c == b'\n' {
                        break;
                    }
                }
            } else {
                break;
            }
        }
    }

    fn tokens(mut self) -> Result<Vec<Token>, String> {
        let mut out = Vec::new();
        loop {
            self.skip_space();
            let Some(b) = self.peek_byte() else {
                return Ok(out);
            };
            let token = match b {
                b'{' | b'<' => {
                    self.pos += 1;
                    Token::Open(b as char)
                }
                b'}' | b'>' => {
                    self.pos += 1;
                    Token::Close(b as char)
                }
                b':' => {
                    self.pos += 1;
                    Token::Colon
                }
                b',' | b';' => {
                    self.pos += 1;
                    Token::Separator
                }
                b'[' => {
                    // `[type.googleapis.com/x.Y]` (an extension or Any type URL) is a name;
                    // otherwise it opens a list.
                    let rest = &self.bytes[self.pos + 1..];
                    let end = rest.iter().position(|c| *c == b']');
                    match end {
                        Some(end)
                            if rest[..end].iter().any(|c| c.is_ascii_alphabetic())
                                && rest[..end]
                                    .iter()
                                    .all(|c| c.is_ascii_alphanumeric() || b"._/".contains(c)) =>
                        {
                            let name = String::from_utf8_lossy(&rest[..end]).into_owned();
                            self.pos += end + 2;
                            Token::Name(format!("[{name}]"))
                        }
                        _ => {
                            self.pos += 1;
                            Token::ListOpen
                        }
                    }
                }
                b']' => {
                    self.pos += 1;
                    Token::ListClose
                }
                b'"' | b'\'' => Token::Str(self.string(b)?),
                _ => {
                    let start = self.pos;
                    while let Some(c) = self.peek_byte() {
                        if c.is_ascii_alphanumeric() || b"_.-+".contains(&c) {
                            self.pos += 1;
                        } else {
                            break;
                        }
                    }
                    if start == self.pos {
                        return Err(format!("unexpected character {:?} at {start}", b as char));
                    }
                    Token::Name(String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned())
                }
            };
            // Adjacent string literals are one string.
            if let (Token::Str(more), Some(Token::Str(previous))) = (&token, out.last_mut()) {
                previous.extend_from_slice(more);
            } else {
                out.push(token);
            }
        }
    }

    fn string(&mut self, quote: u8) -> Result<Vec<u8>, String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek_byte() else {
                return Err(format!("unterminated string at {start}"));
            };
            self.pos += 1;
            if b == quote {
                return Ok(out);
            }
            if b != b'\\' {
                out.push(b);
                continue;
            }
            let Some(e) = self.peek_byte() else {
                return Err(format!("unterminated escape at {}", self.pos));
            };
            self.pos += 1;
            match e {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'a' => out.push(0x07),
                b'b' => out.push(0x08),
                b'f' => out.push(0x0c),
                b'v' => out.push(0x0b),
                b'\\' | b'\'' | b'"' | b'?' => out.push(e),
                b'0'..=b'7' => {
                    let mut value = u32::from(e - b'0');
                    for _ in 0..2 {
                        match self.peek_byte() {
                            Some(d @ b'0'..=b'7') => {
                                value = value * 8 + u32::from(d - b'0');
                                self.pos += 1;
                            }
                            _ => break,
                        }
                    }
                    out.push(u8::try_from(value).map_err(|_| "octal escape above \\377")?);
                }
                b'x' | b'X' => {
                    let value = self.hex_digits(1, 2)?;
                    out.push(u8::try_from(value).map_err(|_| "bad hex escape")?);
                }
                b'u' | b'U' => {
                    let count = if e == b'u' { 4 } else { 8 };
                    let value = self.hex_digits(count, count)?;
                    let c = char::from_u32(value).ok_or_else(|| format!("invalid unicode escape {value:x}"))?;
                    let mut buffer = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                }
                other => return Err(format!("unknown escape \\{}", other as char)),
            }
        }
    }

    fn hex_digits(&mut self, min: usize, max: usize) -> Result<u32, String> {
        let mut value = 0u32;
        let mut count = 0;
        while count < max {
            match self.peek_byte().and_then(|d| (d as char).to_digit(16)) {
                Some(d) => {
                    value = value * 16 + d;
                    self.pos += 1;
                    count += 1;
                }
                None => break,
            }
        }
        if count < min {
            return Err(format!("expected {min} hex digits at {}", self.pos));
        }
        Ok(value)
    }
}

struct TextParser {
    tokens: Vec<Token>,
    pos: usize,
}

impl TextParser {
    fn parse(text: &str) -> Result<Message, String> {
        let mut parser = TextParser {
            tokens: Lexer::new(text).tokens()?,
            pos: 0,
        };
        let message = parser.message(None)?;
        if parser.pos != parser.tokens.len() {
            return Err(format!("unexpected token {:?}", parser.tokens[parser.pos]));
        }
        Ok(message)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    /// Fields until the closing `close` (or the end, for the top level).
    fn message(&mut self, close: Option<char>) -> Result<Message, String> {
        let mut message = Message::default();
        loop {
            match self.peek() {
                None if close.is_none() => return Ok(message),
                None => return Err("unexpected end of input".to_owned()),
                Some(Token::Close(c)) if Some(*c) == close => {
                    self.pos += 1;
                    return Ok(message);
                }
                Some(Token::Separator) => {
                    self.pos += 1;
                }
                Some(Token::Name(_)) => {
                    let Some(Token::Name(name)) = self.next() else {
                        unreachable!("peeked a name");
                    };
                    if self.peek() == Some(&Token::Colon) {
                        self.pos += 1;
                    }
                    if self.peek() == Some(&Token::ListOpen) {
                        self.pos += 1;
                        loop {
                            match self.peek() {
                                Some(Token::ListClose) => {
                                    self.pos += 1;
                                    break;
                                }
                                Some(Token::Separator) => self.pos += 1,
                                _ => {
                                    let value = self.value()?;
                                    message.fields.push((name.clone(), value));
                                }
                            }
                        }
                    } else {
                        let value = self.value()?;
                        message.fields.push((name, value));
                    }
                }
                Some(other) => return Err(format!("unexpected token {other:?}")),
            }
        }
    }

    fn value(&mut self) -> Result<Field, String> {
        match self.next() {
            Some(Token::Open(c)) => {
                let close = if c == '{' { '}' } else { '>' };
                self.message(Some(close)).map(Field::Message)
            }
            Some(Token::Str(bytes)) => Ok(Field::Bytes(bytes)),
            Some(Token::Name(word)) => Ok(Field::Word(word)),
            other => Err(format!("expected a value, found {other:?}")),
        }
    }
}

// ============================================================================ expected values

/// An expected result, as `cel.expr.Value` describes it.
#[derive(Debug, Clone)]
enum Expected {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    String(String),
    Bytes(Vec<u8>),
    List(Vec<Expected>),
    Map(Vec<(Expected, Expected)>),
    /// A type value, by name (`int`, `list`, `google.protobuf.Timestamp`).
    Type(String),
    /// A `google.protobuf.Duration` or `Timestamp` object: built by evaluating this CEL source.
    Built(String),
}

/// Why a test cannot be expressed through our API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum SkipReason {
    /// Needs a protobuf container / message types (`TestAllTypes{...}`, `google.protobuf.Value{}`).
    MessageTypes,
    /// Expects a value kind we cannot represent (enum, arbitrary object).
    UnsupportedValue,
    /// Only checks types, or expects a typed result / unknowns.
    TypeCheckOnly,
}

fn word(field: &Field) -> Result<&str, SkipReason> {
    match field {
        Field::Word(w) => Ok(w),
        _ => Err(SkipReason::UnsupportedValue),
    }
}

fn text(field: &Field) -> Result<Vec<u8>, SkipReason> {
    match field {
        Field::Bytes(b) => Ok(b.clone()),
        _ => Err(SkipReason::UnsupportedValue),
    }
}

fn parse_double(w: &str) -> Option<f64> {
    match w.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        other => other.trim_end_matches('f').parse().ok(),
    }
}

/// A `cel.expr.Value` message.
fn expected(message: &Message) -> Result<Expected, SkipReason> {
    let Some((kind, field)) = message.only() else {
        return Err(SkipReason::UnsupportedValue);
    };
    fn bad<E>(_: E) -> SkipReason {
        SkipReason::UnsupportedValue
    }
    Ok(match kind.as_str() {
        "null_value" => Expected::Null,
        "bool_value" => Expected::Bool(word(field)? == "true"),
        "int64_value" => Expected::Int(word(field)?.parse().map_err(bad)?),
        "uint64_value" => Expected::UInt(word(field)?.parse().map_err(bad)?),
        "double_value" => Expected::Double(parse_double(word(field)?).ok_or(SkipReason::UnsupportedValue)?),
        "string_value" => Expected::String(String::from_utf8(text(field)?).map_err(bad)?),
        "bytes_value" => Expected::Bytes(text(field)?),
        "type_value" => Expected::Type(String::from_utf8(text(field)?).map_err(bad)?),
        "list_value" => {
            let Field::Message(list) = field else {
                return Err(SkipReason::UnsupportedValue);
            };
            Expected::List(list.messages("values").map(expected).collect::<Result<_, _>>()?)
        }
        "map_value" => {
            let Field::Message(map) = field else {
                return Err(SkipReason::UnsupportedValue);
            };
            let mut entries = Vec::new();
            for entry in map.messages("entries") {
                let key = entry.message("key").ok_or(SkipReason::UnsupportedValue)?;
                let value = entry.message("value").ok_or(SkipReason::UnsupportedValue)?;
                entries.push((expected(key)?, expected(value)?));
            }
            Expected::Map(entries)
        }
        "object_value" => {
            let Field::Message(object) = field else {
                return Err(SkipReason::UnsupportedValue);
            };
            well_known(object)?
        }
        _ => return Err(SkipReason::UnsupportedValue),
    })
}

/// A `google.protobuf.Any` holding a Duration or Timestamp, as a CEL source building it.
fn well_known(any: &Message) -> Result<Expected, SkipReason> {
    let Some((type_url, Field::Message(body))) = any.only() else {
        return Err(SkipReason::UnsupportedValue);
    };
    let number = |name: &str| -> Result<i64, SkipReason> {
        match body.get(name) {
            None => Ok(0),
            Some(f) => word(f)?.parse().map_err(|_| SkipReason::UnsupportedValue),
        }
    };
    let (seconds, nanos) = (number("seconds")?, number("nanos")?);
    let span = format!("duration('{seconds}s') + duration('{nanos}ns')");
    match type_url.as_str() {
        "[type.googleapis.com/google.protobuf.Duration]" => Ok(Expected::Built(span)),
        "[type.googleapis.com/google.protobuf.Timestamp]" => Ok(Expected::Built(format!("timestamp(0) + {span}"))),
        _ => Err(SkipReason::MessageTypes),
    }
}

/// The CEL value an expected value stands for, for bindings.
fn to_cel(expected: &Expected) -> Result<CelValue, String> {
    Ok(match expected {
        Expected::Null => CelValue::Null,
        Expected::Bool(b) => CelValue::Bool(*b),
        Expected::Int(i) => CelValue::Int(*i),
        Expected::UInt(u) => CelValue::UInt(*u),
        Expected::Double(d) => CelValue::Float(*d),
        Expected::String(s) => CelValue::String(Arc::new(s.clone())),
        Expected::Bytes(b) => CelValue::Bytes(Arc::new(b.clone())),
        Expected::List(items) => CelValue::List(Arc::new(items.iter().map(to_cel).collect::<Result<_, _>>()?)),
        Expected::Map(entries) => {
            let mut map = HashMap::new();
            for (k, v) in entries {
                map.insert(to_key(k).ok_or("unsupported map key")?, to_cel(v)?);
            }
            CelValue::from(map)
        }
        Expected::Type(name) => return Err(format!("cannot bind the type {name}")),
        Expected::Built(source) => evaluate(source, &[])?,
    })
}

fn to_key(expected: &Expected) -> Option<Key> {
    Some(match expected {
        Expected::Int(i) => Key::Int(*i),
        Expected::UInt(u) => Key::Uint(*u),
        Expected::Bool(b) => Key::Bool(*b),
        Expected::String(s) => Key::String(Arc::new(s.clone())),
        _ => return None,
    })
}

/// Evaluates `source` through crmflow's expression API.
fn evaluate(source: &str, bindings: &[(String, CelValue)]) -> Result<CelValue, String> {
    let expression = CelExpression::new(source).map_err(|e| e.to_string())?;
    let bindings = bindings.to_vec();
    catch_unwind(AssertUnwindSafe(|| expression.evaluate_with_bindings(bindings)))
        .map_err(|_| "panicked".to_owned())?
        .map_err(|e| e.to_string())
}

/// Whether `actual` is `expected`, types included (`1` is not `1u`), NaN matching NaN.
fn same(actual: &CelValue, expected: &Expected) -> bool {
    match (actual, expected) {
        (CelValue::Null, Expected::Null) => true,
        (CelValue::Bool(a), Expected::Bool(e)) => a == e,
        (CelValue::Int(a), Expected::Int(e)) => a == e,
        (CelValue::UInt(a), Expected::UInt(e)) => a == e,
        (CelValue::Float(a), Expected::Double(e)) => a == e || (a.is_nan() && e.is_nan()),
        (CelValue::String(a), Expected::String(e)) => a.as_str() == e,
        (CelValue::Bytes(a), Expected::Bytes(e)) => a.as_slice() == e.as_slice(),
        (CelValue::List(a), Expected::List(e)) => a.len() == e.len() && a.iter().zip(e).all(|(a, e)| same(a, e)),
        (CelValue::Map(a), Expected::Map(e)) => {
            a.map.len() == e.len()
                && e.iter()
                    .all(|(k, v)| to_key(k).and_then(|k| a.map.get(&k)).is_some_and(|a| same(a, v)))
        }
        // The crate hands type values out as their names; whether the result really is a type
        // is checked separately (see `run_test`).
        (CelValue::String(a), Expected::Type(e)) => a.as_str() == e,
        (actual, Expected::Built(source)) => evaluate(source, &[]).is_ok_and(|built| actual == &built),
        _ => false,
    }
}

// ============================================================================ running

enum Outcome {
    Pass,
    Fail(String),
    Skip(SkipReason),
}

fn needs_message_types(test: &Message, expr: &str) -> bool {
    if test.get("container").is_some() || expr.contains("TestAllTypes") {
        return true;
    }
    // A message literal such as `google.protobuf.Value{}`.
    let mut rest = expr;
    while let Some(at) = rest.find("google.protobuf.") {
        rest = &rest[at + "google.protobuf.".len()..];
        let name_end = rest
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(rest.len());
        if rest[name_end..].trim_start().starts_with('{') {
            return true;
        }
    }
    false
}

fn run_test(test: &Message) -> Outcome {
    let Some(expr) = test.string("expr") else {
        return Outcome::Fail("no expr".to_owned());
    };
    if needs_message_types(test, &expr) {
        return Outcome::Skip(SkipReason::MessageTypes);
    }
    if test.flag("check_only")
        || test.get("typed_result").is_some()
        || test.get("unknown").is_some()
        || test.get("any_unknowns").is_some()
    {
        return Outcome::Skip(SkipReason::TypeCheckOnly);
    }

    let mut bindings = Vec::new();
    for binding in test.messages("bindings") {
        let Some(name) = binding.string("key") else {
            return Outcome::Fail("binding without key".to_owned());
        };
        let Some(value) = binding.message("value").and_then(|v| v.message("value")) else {
            return Outcome::Skip(SkipReason::UnsupportedValue);
        };
        let value = match expected(value) {
            Ok(v) => v,
            Err(reason) => return Outcome::Skip(reason),
        };
        match to_cel(&value) {
            Ok(v) => bindings.push((name, v)),
            Err(e) => return Outcome::Fail(format!("binding {name}: {e}")),
        }
    }

    let expecting_error = test.get("eval_error").is_some() || test.get("any_eval_errors").is_some();
    let want = if expecting_error {
        None
    } else {
        match test.message("value") {
            Some(v) => match expected(v) {
                Ok(e) => Some(e),
                Err(reason) => return Outcome::Skip(reason),
            },
            // No matcher: the result must be `true`.
            None => Some(Expected::Bool(true)),
        }
    };

    let result = evaluate(&expr, &bindings);
    match (want, result) {
        (None, Err(_)) => Outcome::Pass,
        (None, Ok(v)) => Outcome::Fail(format!("expected an error, got {v:?}")),
        (Some(want), Err(e)) => Outcome::Fail(format!("expected {want:?}, got error: {e}")),
        (Some(want), Ok(got)) => {
            if !same(&got, &want) {
                return Outcome::Fail(format!("expected {want:?}, got {got:?}"));
            }
            if let Expected::Type(_) = want {
                // The name alone would also match a string: make sure it is a type.
                let check = format!("type({expr}) == type");
                if evaluate(&check, &bindings).ok() != Some(CelValue::Bool(true)) {
                    return Outcome::Fail(format!("expected a type, got the string {got:?}"));
                }
            }
            Outcome::Pass
        }
    }
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: HashMap<SkipReason, usize>,
}

impl Tally {
    fn run(&self) -> usize {
        self.passed + self.failed
    }

    fn skipped(&self) -> usize {
        self.skipped.values().sum()
    }

    fn rate(&self) -> f64 {
        if self.run() == 0 {
            0.0
        } else {
            #[allow(clippy::cast_precision_loss)]
            let rate = 100.0 * self.passed as f64 / self.run() as f64;
            rate
        }
    }
}

#[test]
fn cel_conformance() {
    let verbose = std::env::var_os("CEL_CONFORMANCE_VERBOSE").is_some();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/cel");
    let mut total = Tally::default();
    let mut report = String::new();
    let mut failures = String::new();

    for file in FILES {
        let path = dir.join(format!("{file}.textproto"));
        let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let root = TextParser::parse(&source).unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));
        let mut tally = Tally::default();
        for section in root.messages("section") {
            let section_name = section.string("name").unwrap_or_default();
            for test in section.messages("test") {
                let name = test.string("name").unwrap_or_default();
                match run_test(test) {
                    Outcome::Pass => tally.passed += 1,
                    Outcome::Fail(why) => {
                        tally.failed += 1;
                        let expr = test.string("expr").unwrap_or_default();
                        let _ = writeln!(failures, "  {file}/{section_name}/{name}: `{expr}`: {why}");
                    }
                    Outcome::Skip(reason) => *tally.skipped.entry(reason).or_default() += 1,
                }
            }
        }
        let _ = writeln!(
            report,
            "  {file:<13} {:>4}/{:<4} passed ({:5.1}%), {} skipped",
            tally.passed,
            tally.run(),
            tally.rate(),
            tally.skipped()
        );
        total.passed += tally.passed;
        total.failed += tally.failed;
        for (reason, count) in tally.skipped {
            *total.skipped.entry(reason).or_default() += count;
        }
    }

    let mut reasons: Vec<_> = total.skipped.iter().collect();
    reasons.sort();
    let reasons: Vec<String> = reasons.iter().map(|(r, n)| format!("{r:?}: {n}")).collect();
    println!(
        "CEL conformance: {}/{} passed ({:.1}%), {} skipped ({})\n{report}",
        total.passed,
        total.run(),
        total.rate(),
        total.skipped(),
        reasons.join(", ")
    );
    if verbose {
        println!("failures:\n{failures}");
    }
    assert!(
        total.run() >= MIN_TESTS_RUN,
        "only {} CEL conformance tests ran (at least {MIN_TESTS_RUN} expected); more are skipped",
        total.run()
    );
    assert!(
        total.rate() >= PASS_RATE_FLOOR,
        "CEL conformance pass rate {:.1}% fell below the floor of {PASS_RATE_FLOOR}%; \
         run with CEL_CONFORMANCE_VERBOSE=1 -- --nocapture to list the failures",
        total.rate()
    );
}

// ============================================================================ reader tests

#[test]
fn text_format_reader_handles_the_syntax() {
    let source = r#"
        # comment
        name: "a\"b" 'c\'d'
        section {
          test { name: "t1" value: { int64_value: -3 } }
          test < name: 't2', value { list_value: { values: [{ bool_value: true }, { null_value: NULL_VALUE }] } } >
        }
        bytes: "\303\277\x41\u00e9\U0001F431\n"
        ext { [type.googleapis.com/google.protobuf.Duration] { seconds: 1 } }
        inf: -inf ; nums: [1, 2]
    "#;
    let root = TextParser::parse(source).unwrap();
    assert_eq!(root.string("name").unwrap(), "a\"bc'd");
    let tests: Vec<&Message> = root.message("section").unwrap().messages("test").collect();
    assert_eq!(tests.len(), 2);
    assert!(matches!(
        expected(tests[0].message("value").unwrap()),
        Ok(Expected::Int(-3))
    ));
    match expected(tests[1].message("value").unwrap()) {
        Ok(Expected::List(items)) => {
            assert!(matches!(items.as_slice(), [Expected::Bool(true), Expected::Null]));
        }
        other => panic!("expected a list, got {other:?}"),
    }
    let Some(Field::Bytes(bytes)) = root.get("bytes") else {
        panic!("bytes field");
    };
    assert_eq!(bytes.as_slice(), "ÿAé🐱\n".as_bytes());
    assert!(
        root.message("ext")
            .unwrap()
            .get("[type.googleapis.com/google.protobuf.Duration]")
            .is_some()
    );
    assert_eq!(root.string("inf").unwrap(), "-inf");
    assert_eq!(root.all("nums").count(), 2);
    assert_eq!(parse_double("-inf"), Some(f64::NEG_INFINITY));
    assert!(parse_double("nan").unwrap().is_nan());
}
