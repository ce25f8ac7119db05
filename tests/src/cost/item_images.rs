//! What the cost ledger knows of a table's items: the last image of each item it saw written or
//! read (DynamoDB JSON), keyed by table and primary key, so that a write can be billed on the
//! larger of the item before and after it, a delete on the item it removes, and an index write
//! on the index entries before and after. Also the table's key schema and indexes, and the
//! after-image of an `UpdateItem` (its update expression applied to the before-image).
//!
//! Within a test run this is exact for every item written or read through a ledger; an item
//! written some other way is unknown, and a write to it is billed as if it were new (the
//! ledger counts those writes).

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// An item in DynamoDB JSON.
pub type Item = Map<String, Value>;

/// Which attributes an index holds besides its keys and the table's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    KeysOnly,
    Include(Vec<String>),
    All,
}

/// A global secondary index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSchema {
    pub name: String,
    /// The index's key attributes (partition key, then sort key if any).
    pub key: Vec<String>,
    pub projection: Projection,
}

/// A table's primary key attributes and its global secondary indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub key: Vec<String>,
    pub indexes: Vec<IndexSchema>,
}

impl TableSchema {
    /// crmflow's table, as the IaC template defines it: `PK`/`SK`, and `GSI1`
    /// (`GSI1PK`/`GSI1SK`, keys only).
    pub fn crmflow() -> Self {
        TableSchema {
            key: vec!["PK".into(), "SK".into()],
            indexes: vec![IndexSchema {
                name: "GSI1".into(),
                key: vec!["GSI1PK".into(), "GSI1SK".into()],
                projection: Projection::KeysOnly,
            }],
        }
    }

    /// The item's primary key attributes (`None` when one is missing).
    pub fn key_of(&self, item: &Item) -> Option<Item> {
        self.key
            .iter()
            .map(|k| item.get(k).map(|v| (k.clone(), v.clone())))
            .collect()
    }

    /// The item's entry in `index` (`None` when the item lacks one of the index's keys, so is
    /// not in the index).
    pub fn index_entry(&self, index: &IndexSchema, item: &Item) -> Option<Item> {
        if index.key.iter().any(|k| !item.contains_key(k)) {
            return None;
        }
        if index.projection == Projection::All {
            return Some(item.clone());
        }
        let extra: &[String] = match &index.projection {
            Projection::Include(names) => names,
            _ => &[],
        };
        let keep = |name: &String| self.key.contains(name) || index.key.contains(name) || extra.contains(name);
        Some(
            item.iter()
                .filter(|(name, _)| keep(name))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }
}

/// What is known of an item.
#[derive(Debug, Clone, PartialEq)]
pub enum Known {
    /// Never seen: it may or may not exist.
    Unknown,
    /// Seen absent (read and not found, or deleted).
    Absent,
    Present(Item),
}

impl Known {
    /// The image, if present.
    pub fn item(&self) -> Option<&Item> {
        match self {
            Known::Present(item) => Some(item),
            _ => None,
        }
    }
}

/// Images by (table, key text); `None`: seen absent.
type Images = HashMap<(String, String), Option<Item>>;

/// The item images, shared by clones (one set for all the functions of a deployment).
#[derive(Debug, Clone, Default)]
pub struct ItemImages {
    images: Arc<Mutex<Images>>,
}

/// A key as a stable text: the attributes sorted by name.
fn key_text(key: &Item) -> String {
    let mut parts: Vec<(&String, &Value)> = key.iter().collect();
    parts.sort_by(|a, b| a.0.cmp(b.0));
    serde_json::to_string(&parts).unwrap_or_default()
}

impl ItemImages {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Images> {
        self.images.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What is known of the item at `key` in `table`.
    pub fn get(&self, table: &str, key: &Item) -> Known {
        match self.lock().get(&(table.to_string(), key_text(key))) {
            None => Known::Unknown,
            Some(None) => Known::Absent,
            Some(Some(item)) => Known::Present(item.clone()),
        }
    }

    /// Records the item at `key` (`None`: absent).
    pub fn set(&self, table: &str, key: &Item, item: Option<Item>) {
        self.lock().insert((table.to_string(), key_text(key)), item);
    }
}

/// An update expression the ledger cannot apply (nested paths, unknown functions).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported update expression: {0}")]
pub struct UnsupportedUpdate(pub String);

/// The placeholders of an expression (`ExpressionAttributeNames`, `ExpressionAttributeValues`).
#[derive(Debug, Clone, Copy)]
pub struct Placeholders<'a> {
    pub names: &'a Map<String, Value>,
    pub values: &'a Map<String, Value>,
}

/// The item after `expression` (`SET`, `REMOVE`, `ADD`, `DELETE` on top-level attributes, with
/// `if_not_exists`, `list_append`, `+` and `-`) is applied to `before` (absent: a new item with
/// `key`).
pub fn apply_update(
    before: Option<&Item>,
    key: &Item,
    expression: &str,
    placeholders: Placeholders<'_>,
) -> Result<Item, UnsupportedUpdate> {
    let mut item = before.cloned().unwrap_or_else(|| key.clone());
    for (clause, body) in clauses(expression)? {
        for action in split_top_level(body, ',') {
            let action = action.trim();
            match clause.as_str() {
                "SET" => {
                    let (path, value) = action
                        .split_once('=')
                        .ok_or_else(|| UnsupportedUpdate(action.to_string()))?;
                    let name = attribute_name(path, placeholders)?;
                    let value = eval_sum(value.trim(), &item, placeholders)?;
                    item.insert(name, value);
                }
                "REMOVE" => {
                    item.remove(&attribute_name(action, placeholders)?);
                }
                "ADD" | "DELETE" => add_or_delete(&mut item, &clause, action, placeholders)?,
                other => return Err(UnsupportedUpdate(other.to_string())),
            }
        }
    }
    Ok(item)
}

/// The clauses of an update expression: (keyword, its text).
fn clauses(expression: &str) -> Result<Vec<(String, &str)>, UnsupportedUpdate> {
    let keywords = ["SET", "REMOVE", "ADD", "DELETE"];
    let mut starts = Vec::new();
    let mut depth = 0i32;
    let bytes = expression.as_bytes();
    for (i, c) in expression.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        let at_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b'_' | b'#' | b':'));
        if depth != 0 || !at_word {
            continue;
        }
        for k in keywords {
            let end = i + k.len();
            if expression.len() > end
                && expression[i..end].eq_ignore_ascii_case(k)
                && expression.as_bytes()[end].is_ascii_whitespace()
            {
                starts.push((i, k.to_string(), end));
            }
        }
    }
    if starts
        .first()
        .is_none_or(|s| s.0 != expression.len() - expression.trim_start().len())
    {
        return Err(UnsupportedUpdate(expression.to_string()));
    }
    Ok(starts
        .iter()
        .enumerate()
        .map(|(n, (_, k, body_start))| {
            let body_end = starts.get(n + 1).map_or(expression.len(), |s| s.0);
            (k.clone(), &expression[*body_start..body_end])
        })
        .collect())
}

/// Splits at `sep` outside parentheses.
fn split_top_level(text: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if c == sep && depth == 0 => {
                out.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// A top-level attribute name (`#name` resolved, or a plain name).
fn attribute_name(path: &str, placeholders: Placeholders<'_>) -> Result<String, UnsupportedUpdate> {
    let path = path.trim();
    if path.contains(['.', '[']) || path.is_empty() {
        return Err(UnsupportedUpdate(path.to_string()));
    }
    match path.strip_prefix('#') {
        Some(_) => placeholders
            .names
            .get(path)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| UnsupportedUpdate(path.to_string())),
        None => Ok(path.to_string()),
    }
}

/// `operand`, `operand + operand` or `operand - operand`.
fn eval_sum(text: &str, item: &Item, placeholders: Placeholders<'_>) -> Result<Value, UnsupportedUpdate> {
    for op in ['+', '-'] {
        let parts = split_top_level(text, op);
        if parts.len() == 2 {
            let a = eval_operand(parts[0].trim(), item, placeholders)?;
            let b = eval_operand(parts[1].trim(), item, placeholders)?;
            let sign = if op == '+' { 1.0 } else { -1.0 };
            return Ok(number(number_of(&a)? + sign * number_of(&b)?));
        }
    }
    eval_operand(text, item, placeholders)
}

fn eval_operand(text: &str, item: &Item, placeholders: Placeholders<'_>) -> Result<Value, UnsupportedUpdate> {
    let unsupported = || UnsupportedUpdate(text.to_string());
    if text.starts_with(':') {
        return placeholders.values.get(text).cloned().ok_or_else(unsupported);
    }
    if let Some((function, args)) = text.split_once('(') {
        let args = args.strip_suffix(')').ok_or_else(unsupported)?;
        let args = split_top_level(args, ',');
        return match (function.trim(), args.as_slice()) {
            ("if_not_exists", [path, fallback]) => match item.get(&attribute_name(path, placeholders)?) {
                Some(v) => Ok(v.clone()),
                None => eval_operand(fallback.trim(), item, placeholders),
            },
            ("list_append", [a, b]) => {
                let list = |v: Value| v.get("L").and_then(Value::as_array).cloned().ok_or_else(unsupported);
                let mut out = list(eval_operand(a.trim(), item, placeholders)?)?;
                out.extend(list(eval_operand(b.trim(), item, placeholders)?)?);
                Ok(serde_json::json!({ "L": out }))
            }
            _ => Err(unsupported()),
        };
    }
    item.get(&attribute_name(text, placeholders)?)
        .cloned()
        .ok_or_else(unsupported)
}

/// `ADD name :v` (a number added, or elements added to a set) or `DELETE name :v` (elements
/// taken from a set).
fn add_or_delete(
    item: &mut Item,
    clause: &str,
    action: &str,
    placeholders: Placeholders<'_>,
) -> Result<(), UnsupportedUpdate> {
    let unsupported = || UnsupportedUpdate(action.to_string());
    let mut words = action.split_whitespace();
    let (Some(path), Some(value), None) = (words.next(), words.next(), words.next()) else {
        return Err(unsupported());
    };
    let name = attribute_name(path, placeholders)?;
    let value = placeholders.values.get(value).ok_or_else(unsupported)?;
    let (kind, given) = value
        .as_object()
        .and_then(|o| o.iter().next())
        .ok_or_else(unsupported)?;
    if kind == "N" {
        let current = item.get(&name).map_or(Ok(0.0), number_of)?;
        item.insert(name, number(current + number_of(value)?));
        return Ok(());
    }
    let given = given.as_array().ok_or_else(unsupported)?;
    let mut elements: Vec<Value> = item
        .get(&name)
        .and_then(|v| v.get(kind))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if clause == "ADD" {
        elements.extend(
            given
                .iter()
                .filter(|e| !elements.contains(e))
                .cloned()
                .collect::<Vec<_>>(),
        );
    } else {
        elements.retain(|e| !given.contains(e));
    }
    if elements.is_empty() {
        item.remove(&name);
    } else {
        item.insert(name, serde_json::json!({ kind.as_str(): elements }));
    }
    Ok(())
}

fn number_of(value: &Value) -> Result<f64, UnsupportedUpdate> {
    value
        .get("N")
        .and_then(Value::as_str)
        .and_then(|n| n.parse::<f64>().ok())
        .ok_or_else(|| UnsupportedUpdate(value.to_string()))
}

fn number(n: f64) -> Value {
    let text = if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    };
    serde_json::json!({ "N": text })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Item {
        v.as_object().cloned().expect("an object")
    }

    fn apply(before: Option<Value>, expression: &str, names: Value, values: Value) -> Result<Item, UnsupportedUpdate> {
        let key = map(json!({"PK": {"S": "a"}, "SK": {"S": "b"}}));
        let before = before.map(map);
        let (names, values) = (map(names), map(values));
        apply_update(
            before.as_ref(),
            &key,
            expression,
            Placeholders {
                names: &names,
                values: &values,
            },
        )
    }

    #[test]
    fn set_and_remove_replace_and_drop_attributes() {
        let before = json!({"PK": {"S": "a"}, "SK": {"S": "b"}, "state": {"S": "claimed"}, "lease": {"N": "5"}});
        let after = apply(
            Some(before),
            "SET #state = :completed, #output = :output REMOVE #lease",
            json!({"#state": "state", "#output": "output", "#lease": "lease"}),
            json!({":completed": {"S": "done"}, ":output": {"S": "ok"}}),
        )
        .unwrap();
        assert_eq!(
            Value::Object(after),
            json!({"PK": {"S": "a"}, "SK": {"S": "b"}, "state": {"S": "done"}, "output": {"S": "ok"}})
        );
    }

    #[test]
    fn counters_sets_and_functions() {
        let before = json!({"PK": {"S": "a"}, "SK": {"S": "b"}, "active": {"SS": ["r1", "r2"]}});
        let after = apply(
            Some(before),
            "SET #v = if_not_exists(#v, :zero) + :one DELETE #active :run",
            json!({"#v": "v", "#active": "active"}),
            json!({":zero": {"N": "0"}, ":one": {"N": "1"}, ":run": {"SS": ["r1"]}}),
        )
        .unwrap();
        assert_eq!(after["v"], json!({"N": "1"}));
        assert_eq!(after["active"], json!({"SS": ["r2"]}));
        let again = apply(
            Some(Value::Object(after)),
            "SET #v = if_not_exists(#v, :zero) + :one ADD #active :run, #n :one",
            json!({"#v": "v", "#active": "active", "#n": "n"}),
            json!({":zero": {"N": "0"}, ":one": {"N": "1"}, ":run": {"SS": ["r3"]}}),
        )
        .unwrap();
        assert_eq!(again["v"], json!({"N": "2"}));
        assert_eq!(again["n"], json!({"N": "1"}));
        assert_eq!(again["active"], json!({"SS": ["r2", "r3"]}));
        let appended = apply(
            Some(json!({"l": {"L": [{"S": "x"}]}})),
            "set l = list_append(l, :more)",
            json!({}),
            json!({":more": {"L": [{"S": "y"}]}}),
        )
        .unwrap();
        assert_eq!(appended["l"], json!({"L": [{"S": "x"}, {"S": "y"}]}));
    }

    #[test]
    fn an_update_of_a_missing_item_starts_from_its_key() {
        let after = apply(None, "SET #m = :m", json!({"#m": "m"}), json!({":m": {"S": "x"}})).unwrap();
        assert_eq!(
            Value::Object(after),
            json!({"PK": {"S": "a"}, "SK": {"S": "b"}, "m": {"S": "x"}})
        );
    }

    #[test]
    fn nested_paths_are_refused() {
        assert!(apply(None, "SET a.b = :v", json!({}), json!({":v": {"S": "x"}})).is_err());
        assert!(apply(None, "SET a = :missing", json!({}), json!({})).is_err());
        assert!(apply(None, "nonsense", json!({}), json!({})).is_err());
    }

    #[test]
    fn index_entries_hold_the_keys_only() {
        let schema = TableSchema::crmflow();
        let item = map(
            json!({"PK": {"S": "a"}, "SK": {"S": "b"}, "GSI1PK": {"S": "g"}, "GSI1SK": {"S": "h"}, "big": {"S": "x"}}),
        );
        let entry = schema.index_entry(&schema.indexes[0], &item).unwrap();
        assert_eq!(entry.len(), 4);
        assert!(!entry.contains_key("big"));
        let outside = map(json!({"PK": {"S": "a"}, "SK": {"S": "b"}}));
        assert_eq!(schema.index_entry(&schema.indexes[0], &outside), None);
        assert_eq!(schema.key_of(&item).unwrap().len(), 2);
    }

    #[test]
    fn images_are_kept_by_table_and_key() {
        let images = ItemImages::new();
        let key = map(json!({"SK": {"S": "b"}, "PK": {"S": "a"}}));
        let same_key = map(json!({"PK": {"S": "a"}, "SK": {"S": "b"}}));
        assert_eq!(images.get("t", &key), Known::Unknown);
        images.set("t", &key, Some(key.clone()));
        assert_eq!(images.get("t", &same_key), Known::Present(key.clone()));
        assert_eq!(images.get("other", &same_key), Known::Unknown);
        images.set("t", &key, None);
        assert_eq!(images.get("t", &same_key), Known::Absent);
    }
}
