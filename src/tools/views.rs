//! Compact views for LLM clients. The list tools accept `fields` (the keys of each item to return) and a
//! `cursor`; every result fits a size budget ([`ResultBudget`], `EHR_MCP_RESULT_BUDGET_BYTES`, default
//! 64 KiB of JSON). A result over the budget is cut at an item boundary and says so: `truncated: true`, a
//! `message` naming the budget and how to narrow the query, and for a list tool a `next_cursor` that
//! continues where the cut was made.
//!
//! Invariants: without `fields` and under the budget a result is exactly the tool's own shape (the earlier
//! system's); a view only ever removes data the policy already let through, never adds any; a cursor names
//! its tool, so it cannot be replayed on another one.

use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::ToolError;
use crate::auth::Tool;

/// The default result budget: 64 KiB of JSON, about 16k tokens.
pub const DEFAULT_RESULT_BUDGET_BYTES: usize = 65_536;
/// The smallest budget an operator may set (one list item must always fit).
pub const MIN_RESULT_BUDGET_BYTES: usize = 4_096;
/// Longest `cursor` accepted.
const MAX_CURSOR_CHARS: usize = 512;
/// Most `fields` in one call.
const MAX_FIELDS: usize = 64;
/// Room kept for the keys a cut adds (`truncated`, `message`, `next_cursor`).
const CUT_NOTE_BYTES: usize = 640;
/// Marks a cursor made by a view (as opposed to a store cursor of `search_patients`).
const VIEW_CURSOR_PREFIX: &str = "v1.";

/// The size budget of one result, in bytes of JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultBudget {
    bytes: usize,
}

impl ResultBudget {
    /// A budget of `bytes`, at least [`MIN_RESULT_BUDGET_BYTES`].
    pub fn new(bytes: usize) -> Self {
        Self {
            bytes: bytes.max(MIN_RESULT_BUDGET_BYTES),
        }
    }

    pub fn bytes(self) -> usize {
        self.bytes
    }
}

impl Default for ResultBudget {
    fn default() -> Self {
        Self::new(DEFAULT_RESULT_BUDGET_BYTES)
    }
}

/// A tool whose result is a list: the key of the list, and whether the tool pages through the store
/// itself with its own `cursor` argument.
#[derive(Debug)]
struct ListTool {
    tool: Tool,
    key: &'static str,
    store_cursor: bool,
}

const LIST_TOOLS: &[ListTool] = &[
    ListTool {
        tool: Tool::SearchPatients,
        key: "patients",
        store_cursor: true,
    },
    ListTool {
        tool: Tool::SearchProviders,
        key: "providers",
        store_cursor: false,
    },
    ListTool {
        tool: Tool::GetAppointments,
        key: "appointments",
        store_cursor: false,
    },
    ListTool {
        tool: Tool::GetMedications,
        key: "medications",
        store_cursor: false,
    },
    ListTool {
        tool: Tool::GetAllergies,
        key: "allergies",
        store_cursor: false,
    },
    ListTool {
        tool: Tool::GetVitalSigns,
        key: "vital_signs",
        store_cursor: false,
    },
    ListTool {
        tool: Tool::GetLabResults,
        key: "lab_results",
        store_cursor: false,
    },
    ListTool {
        tool: Tool::QueryAuditLog,
        key: "entries",
        store_cursor: false,
    },
];

fn list_tool(tool: Tool) -> Option<&'static ListTool> {
    LIST_TOOLS.iter().find(|list| list.tool == tool)
}

/// The keys of each list item, per list tool, read from the tool's output schema.
static ITEM_FIELDS: LazyLock<HashMap<Tool, Vec<String>>> = LazyLock::new(|| {
    let tools = super::tool_definitions();
    LIST_TOOLS
        .iter()
        .filter_map(|list| {
            let definition = tools.iter().find(|tool| tool.name == list.tool.name())?;
            let schema = definition.output_schema.as_deref()?;
            let fields = item_schema(schema, list.key)
                .and_then(|item| item.get("properties"))
                .and_then(Value::as_object)
                .map(|properties| properties.keys().cloned().collect())?;
            Some((list.tool, fields))
        })
        .collect()
});

/// The schema of one item of `schema`'s list `key` (following a `$ref` into `$defs`).
fn item_schema<'s>(schema: &'s JsonObject, key: &str) -> Option<&'s Value> {
    let items = schema.get("properties")?.get(key)?.get("items")?;
    match items.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.strip_prefix("#/$defs/")?;
            schema.get("$defs")?.get(name)
        }
        None => Some(items),
    }
}

/// What a call asked of its result's view.
#[derive(Debug, Default)]
pub struct View {
    list: Option<&'static ListTool>,
    fields: Option<Vec<String>>,
    /// Items of the tool's page already returned by earlier cut pages.
    skip: usize,
    /// The store cursor the page was read with (`search_patients`).
    store_cursor: Option<String>,
}

/// A view cursor: which tool, the store cursor of the page, and how many of its items were returned.
#[derive(Debug, Serialize, Deserialize)]
struct ViewCursor {
    t: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<String>,
    s: usize,
}

impl View {
    /// Takes `fields` and `cursor` out of a list tool's arguments; a store cursor (of a tool that pages
    /// the store itself) goes back in for the tool. Other tools' arguments are left as they are.
    pub fn take(tool: Tool, arguments: &mut JsonObject) -> Result<Self, ToolError> {
        let Some(list) = list_tool(tool) else {
            return Ok(Self::default());
        };
        let fields = take_fields(tool, arguments)?;
        let mut view = Self {
            list: Some(list),
            fields,
            ..Self::default()
        };
        let cursor = match arguments.remove("cursor") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) if text.trim().is_empty() => None,
            Some(Value::String(text)) if text.chars().count() <= MAX_CURSOR_CHARS => {
                Some(text.trim().to_owned())
            }
            Some(Value::String(_)) => {
                return Err(ToolError::invalid(
                    "cursor",
                    format!("must be at most {MAX_CURSOR_CHARS} characters"),
                ));
            }
            Some(_) => return Err(ToolError::invalid("cursor", "expected a string")),
        };
        match cursor {
            Some(text) if text.starts_with(VIEW_CURSOR_PREFIX) => {
                let decoded = decode_cursor(&text)
                    .filter(|cursor| cursor.t == tool.name())
                    .ok_or_else(|| {
                        ToolError::invalid(
                            "cursor",
                            format!(
                                "not a cursor of {tool}: pass the `next_cursor` of the previous {tool} result"
                            ),
                        )
                    })?;
                view.skip = decoded.s;
                view.store_cursor = decoded.c;
            }
            Some(text) if list.store_cursor => view.store_cursor = Some(text),
            Some(_) => {
                return Err(ToolError::invalid(
                    "cursor",
                    format!("pass the `next_cursor` of the previous {tool} result"),
                ));
            }
            None => {}
        }
        if let Some(store_cursor) = &view.store_cursor {
            arguments.insert("cursor".into(), Value::String(store_cursor.clone()));
        }
        Ok(view)
    }
}

fn take_fields(tool: Tool, arguments: &mut JsonObject) -> Result<Option<Vec<String>>, ToolError> {
    let names = match arguments.remove("fields") {
        None | Some(Value::Null) => return Ok(None),
        // "mrn,name" as some form-based clients send lists.
        Some(Value::String(text)) => text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(name) => Ok(name.trim().to_owned()),
                _ => Err(ToolError::invalid("fields", "expected a list of key names")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(ToolError::invalid("fields", "expected a list of key names")),
    };
    if names.is_empty() {
        return Ok(None);
    }
    if names.len() > MAX_FIELDS {
        return Err(ToolError::invalid(
            "fields",
            format!("at most {MAX_FIELDS} names"),
        ));
    }
    let known = ITEM_FIELDS
        .get(&tool)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if let Some(unknown) = names.iter().find(|name| !known.contains(name)) {
        let shown: String = unknown.chars().take(40).collect();
        return Err(ToolError::invalid(
            "fields",
            format!(
                "`{shown}` is not a key of {tool}'s items; known: {}",
                known.join(", ")
            ),
        ));
    }
    Ok(Some(names))
}

fn encode_cursor(cursor: &ViewCursor) -> String {
    let json = serde_json::to_vec(cursor).unwrap_or_default();
    format!("{VIEW_CURSOR_PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
}

fn decode_cursor(text: &str) -> Option<ViewCursor> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text.strip_prefix(VIEW_CURSOR_PREFIX)?)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn json_len(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len())
}

/// [`fit`], as the MCP result: a result the view leaves whole and the budget holds is serialised once,
/// the same text serving as the text content beside `structuredContent`.
pub fn fit_result(
    view: &View,
    budget: ResultBudget,
    value: Value,
) -> Result<CallToolResult, ToolError> {
    let whole = view.skip == 0 && view.fields.is_none();
    let text = whole
        .then(|| value.to_string())
        .filter(|text| text.len() <= budget.bytes());
    let (value, text) = match text {
        Some(text) => (value, text),
        None => {
            let value = fit(view, budget, value)?;
            let text = value.to_string();
            (value, text)
        }
    };
    let mut result = CallToolResult::structured(Value::Null);
    result.content = vec![ContentBlock::text(text)];
    result.structured_content = Some(value);
    Ok(result)
}

/// Fits a tool's result to its view and the budget. `Err` when even the smallest cut is over the budget.
pub fn fit(view: &View, budget: ResultBudget, value: Value) -> Result<Value, ToolError> {
    match view.list {
        Some(list) => fit_list(view, list, budget, value),
        None => fit_any(budget, value),
    }
}

fn fit_list(
    view: &View,
    list: &ListTool,
    budget: ResultBudget,
    value: Value,
) -> Result<Value, ToolError> {
    let untouched = view.skip == 0 && view.fields.is_none();
    if untouched && json_len(&value) <= budget.bytes() {
        return Ok(value);
    }
    let Value::Object(mut object) = value else {
        return Ok(value);
    };
    let Some(Value::Array(items)) = object.remove(list.key) else {
        return fit_any(budget, Value::Object(object));
    };
    let fetched = items.len();
    let items: Vec<Value> = items
        .into_iter()
        .skip(view.skip)
        .map(|item| project(item, view.fields.as_deref()))
        .collect();
    let remaining = items.len();
    object.insert(list.key.into(), Value::Array(Vec::new()));
    let room = budget
        .bytes()
        .saturating_sub(json_len(&Value::Object(object.clone())) + CUT_NOTE_BYTES);
    let mut used = 0;
    let mut shown = Vec::with_capacity(remaining);
    for item in items {
        let size = json_len(&item) + 1;
        if used + size > room {
            break;
        }
        used += size;
        shown.push(item);
    }
    let cut = shown.len() < remaining;
    if cut && shown.is_empty() {
        return Err(over_budget(budget));
    }
    let count = shown.len();
    object.insert(list.key.into(), Value::Array(shown));
    if object.contains_key("count") {
        object.insert("count".into(), json!(count));
    }
    if cut {
        let first = view.skip + 1;
        let last = view.skip + count;
        object.insert("truncated".into(), json!(true));
        object.insert(
            "next_cursor".into(),
            json!(encode_cursor(&ViewCursor {
                t: list.tool.name().to_owned(),
                c: view.store_cursor.clone(),
                s: view.skip + count,
            })),
        );
        object.insert(
            "message".into(),
            json!(format!(
                "showing {} {first}-{last} of {fetched}: the result was cut to its {}-byte budget \
                 (EHR_MCP_RESULT_BUDGET_BYTES). Pass `cursor` = `next_cursor` with the same arguments for \
                 the rest, `fields` to ask for fewer keys per item, or narrow the query (limit, status, \
                 dates, search terms).",
                list.key,
                budget.bytes()
            )),
        );
    }
    Ok(Value::Object(object))
}

/// Only `fields` of an object item (all of it when `fields` is `None`).
fn project(item: Value, fields: Option<&[String]>) -> Value {
    match (item, fields) {
        (Value::Object(members), Some(fields)) => Value::Object(
            members
                .into_iter()
                .filter(|(key, _)| fields.contains(key))
                .collect(),
        ),
        (item, _) => item,
    }
}

/// A result that is not a list tool's: over the budget, its longest lists are shortened from the end
/// until it fits, and the result names them.
fn fit_any(budget: ResultBudget, value: Value) -> Result<Value, ToolError> {
    if json_len(&value) <= budget.bytes() {
        return Ok(value);
    }
    let Value::Object(mut object) = value else {
        return Err(over_budget(budget));
    };
    // A FHIR resource (fhir_read, fhir_search) is never reshaped: it pages with `_count` instead.
    if object.contains_key("resourceType") {
        return Err(ToolError::InvalidInput(format!(
            "the FHIR result is larger than the {}-byte result budget (EHR_MCP_RESULT_BUDGET_BYTES); \
             ask for fewer resources per page (`_count`)",
            budget.bytes()
        )));
    }
    let mut shortened: Vec<String> = Vec::new();
    while json_len(&Value::Object(object.clone())) + CUT_NOTE_BYTES > budget.bytes() {
        let longest = object
            .iter()
            .filter_map(|(key, member)| {
                member
                    .as_array()
                    .filter(|items| !items.is_empty())
                    .map(|_| (key.clone(), json_len(member)))
            })
            .max_by_key(|(_, size)| *size)
            .map(|(key, _)| key);
        let Some(key) = longest else {
            return Err(over_budget(budget));
        };
        if let Some(Value::Array(items)) = object.get_mut(&key) {
            items.pop();
        }
        if !shortened.contains(&key) {
            shortened.push(key);
        }
    }
    object.insert("truncated".into(), json!(true));
    object.insert(
        "message".into(),
        json!(format!(
            "cut to the {}-byte result budget (EHR_MCP_RESULT_BUDGET_BYTES): {} shortened; ask the list \
             tools for those records, with `fields` and `cursor`",
            budget.bytes(),
            shortened.join(", ")
        )),
    );
    Ok(Value::Object(object))
}

fn over_budget(budget: ResultBudget) -> ToolError {
    ToolError::InvalidInput(format!(
        "the result is larger than the {}-byte result budget (EHR_MCP_RESULT_BUDGET_BYTES) even when cut; \
         narrow the query (fewer records, `fields`)",
        budget.bytes()
    ))
}

/// Fits a text (Markdown) to the budget, cutting at a line end and saying so in a last line.
pub fn fit_text(budget: ResultBudget, text: String, narrower: &str) -> String {
    if text.len() <= budget.bytes() {
        return text;
    }
    let room = budget.bytes().saturating_sub(CUT_NOTE_BYTES);
    let mut end = room.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let end = text[..end].rfind('\n').unwrap_or(end);
    format!(
        "{}\n\n_(cut to the {}-byte result budget, EHR_MCP_RESULT_BUDGET_BYTES; {narrower})_\n",
        &text[..end],
        budget.bytes()
    )
}

/// Adds `fields` and `cursor` to the list tools' input schemas, and to their output schemas the keys a
/// cut adds; items of a list may then carry only some of their keys.
pub fn describe(tool: &mut rmcp::model::Tool) {
    let Some(list) = Tool::from_name(&tool.name).and_then(list_tool) else {
        return;
    };
    let fields = ITEM_FIELDS.get(&list.tool).cloned().unwrap_or_default();
    let mut input = tool.input_schema.as_ref().clone();
    if let Some(properties) = input.get_mut("properties").and_then(Value::as_object_mut) {
        properties.insert(
            "fields".into(),
            json!({
                "type": "array",
                "items": {"type": "string", "enum": fields},
                "uniqueItems": true,
                "maxItems": MAX_FIELDS,
                "description": format!(
                    "Compact view: only these keys of each of `{}` (all when omitted), e.g. [\"{}\"].",
                    list.key,
                    fields.iter().take(2).cloned().collect::<Vec<_>>().join("\", \"")
                ),
            }),
        );
        properties.entry("cursor").or_insert_with(|| {
            json!({
                "type": "string",
                "maxLength": MAX_CURSOR_CHARS,
                "description": "`next_cursor` of the previous result (same arguments), to get the rest of a cut list.",
            })
        });
    }
    tool.input_schema = std::sync::Arc::new(input);
    if let Some(output) = tool.output_schema.as_deref() {
        let mut output = output.clone();
        relax_items(&mut output, list.key);
        if let Some(properties) = output.get_mut("properties").and_then(Value::as_object_mut) {
            properties
                .entry("truncated")
                .or_insert_with(|| json!({"type": "boolean"}));
            properties
                .entry("message")
                .or_insert_with(|| json!({"type": ["string", "null"]}));
            properties.entry("next_cursor").or_insert_with(
                || json!({"type": ["string", "null"], "description": "Pass as `cursor` for the rest."}),
            );
        }
        tool.output_schema = Some(std::sync::Arc::new(output));
    }
}

/// Items of `key` may carry only the `fields` asked for: their keys are no longer required.
fn relax_items(schema: &mut JsonObject, key: &str) {
    let reference = schema
        .get("properties")
        .and_then(|p| p.get(key))
        .and_then(|p| p.get("items"))
        .and_then(|items| items.get("$ref"))
        .and_then(Value::as_str)
        .and_then(|reference| reference.strip_prefix("#/$defs/"))
        .map(str::to_owned);
    let item = match reference {
        Some(name) => schema.get_mut("$defs").and_then(|defs| defs.get_mut(&name)),
        None => schema
            .get_mut("properties")
            .and_then(|p| p.get_mut(key))
            .and_then(|p| p.get_mut("items")),
    };
    if let Some(Value::Object(item)) = item {
        item.remove("required");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arguments(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap_or_default()
    }

    fn medications(count: usize) -> Value {
        let items: Vec<Value> = (0..count)
            .map(|i| json!({"medication_id": format!("MED{i:04}"), "name": "Metformin", "notes": "x".repeat(200)}))
            .collect();
        json!({"status": "success", "mrn": "MRN001", "count": count, "medications": items})
    }

    #[test]
    fn an_untouched_result_under_the_budget_is_unchanged() {
        let value = medications(3);
        let view = View::take(Tool::GetMedications, &mut JsonObject::new()).unwrap_or_default();
        assert_eq!(
            fit(&view, ResultBudget::default(), value.clone()),
            Ok(value)
        );
    }

    #[test]
    fn a_cut_list_says_so_and_its_cursor_continues_it() {
        let budget = ResultBudget::new(MIN_RESULT_BUDGET_BYTES);
        let view = View::take(Tool::GetMedications, &mut JsonObject::new()).unwrap_or_default();
        let first = fit(&view, budget, medications(60)).unwrap_or_default();
        let shown = first["count"].as_u64().unwrap_or_default() as usize;
        assert!(shown > 0 && shown < 60, "{first}");
        assert_eq!(first["truncated"], true);
        assert!(json_len(&first) <= budget.bytes());
        let cursor = first["next_cursor"].as_str().unwrap_or_default().to_owned();
        let mut args = arguments(json!({"cursor": cursor}));
        let view = View::take(Tool::GetMedications, &mut args).unwrap_or_default();
        assert!(args.get("cursor").is_none());
        let second = fit(&view, budget, medications(60)).unwrap_or_default();
        assert_eq!(
            second["medications"][0]["medication_id"],
            format!("MED{shown:04}")
        );
        // A cursor of one tool is refused by another.
        let mut args = arguments(json!({"cursor": cursor}));
        assert!(View::take(Tool::GetAllergies, &mut args).is_err());
    }

    #[test]
    fn fields_pick_keys_and_unknown_fields_are_refused() {
        let mut args = arguments(json!({"fields": ["medication_id", "name"]}));
        let view = View::take(Tool::GetMedications, &mut args).unwrap_or_default();
        let compact = fit(&view, ResultBudget::default(), medications(2)).unwrap_or_default();
        assert_eq!(
            compact["medications"][1],
            json!({"medication_id": "MED0001", "name": "Metformin"})
        );
        let mut bad = arguments(json!({"fields": ["ssn"]}));
        let error = View::take(Tool::GetMedications, &mut bad).err();
        assert!(error.is_some_and(|e| e.to_string().contains("not a key")));
    }

    #[test]
    fn other_results_shorten_their_longest_list() {
        let budget = ResultBudget::new(MIN_RESULT_BUDGET_BYTES);
        let big = json!({"status": "success", "recent_lab_results": vec!["y".repeat(300); 40], "mrn": "MRN001"});
        let cut = fit(&View::default(), budget, big).unwrap_or_default();
        assert_eq!(cut["truncated"], true);
        assert!(json_len(&cut) <= budget.bytes());
        assert!(
            cut["message"]
                .as_str()
                .unwrap_or_default()
                .contains("recent_lab_results")
        );
    }

    #[test]
    fn text_is_cut_at_a_line_end() {
        let budget = ResultBudget::new(MIN_RESULT_BUDGET_BYTES);
        let text = "- line\n".repeat(2000);
        let cut = fit_text(budget, text, "read less");
        assert!(cut.len() <= budget.bytes());
        assert!(cut.contains("result budget"));
    }
}
