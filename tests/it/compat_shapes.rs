//! Comparing result shapes: every key path of a JSON value with the JSON types found there (`[]` stands
//! for "any element of the array"), and the check that our result has every path of the earlier one.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// A JSON type name; integers and decimals are both `number`, as JSON has one number type.
fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key path of `value` with the set of types seen there.
pub fn paths(value: &Value) -> BTreeMap<String, BTreeSet<&'static str>> {
    let mut found = BTreeMap::new();
    walk(value, String::new(), &mut found);
    found
}

fn walk(value: &Value, path: String, found: &mut BTreeMap<String, BTreeSet<&'static str>>) {
    found
        .entry(path.clone())
        .or_default()
        .insert(type_of(value));
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(child, child_path, found);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, format!("{path}[]"), found);
            }
        }
        _ => {}
    }
}

/// The key paths of `earlier` that `ours` lacks or holds with another JSON type. A path where the
/// earlier system answered `null` only has to exist (the earlier value carries no type).
pub fn missing_or_retyped(earlier: &Value, ours: &Value) -> Vec<String> {
    let ours = paths(ours);
    let mut problems = Vec::new();
    for (path, earlier_types) in paths(earlier) {
        let Some(our_types) = ours.get(&path) else {
            problems.push(format!("{path}: missing"));
            continue;
        };
        for wanted in earlier_types.iter().filter(|t| **t != "null") {
            if !our_types.contains(wanted) {
                problems.push(format!("{path}: earlier {wanted}, ours {our_types:?}"));
            }
        }
    }
    problems
}

#[test]
fn paths_and_types_are_compared() {
    let earlier = serde_json::json!({"a": {"b": 1, "c": null}, "l": [{"x": "s"}], "n": 2.5});
    let same = serde_json::json!({"a": {"b": 2.0, "c": "now set"}, "l": [{"x": "t", "y": 1}], "n": 3, "extra": true});
    assert!(missing_or_retyped(&earlier, &same).is_empty());
    let moved = serde_json::json!({"b": 1, "a": {"c": null}, "l": [], "n": "2.5"});
    let problems = missing_or_retyped(&earlier, &moved);
    assert!(
        problems.contains(&"a.b: missing".to_owned()),
        "{problems:?}"
    );
    assert!(
        problems.contains(&"l[].x: missing".to_owned()),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("n: earlier number")),
        "{problems:?}"
    );
}
