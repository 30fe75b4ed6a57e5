//! Tool arguments: parsing a call's JSON arguments into a typed struct of domain values (`Mrn`, `Date`,
//! `TimeOfDay`, `Text<MAX>`, status enumerations) with field-naming errors, the JSON Schemas of those
//! types (derived once per argument type), the shared `access_token` argument, and the few rules that
//! span fields (ranges, "today or later").

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rmcp::model::JsonObject;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::{Deserialize, Deserializer};

use super::error::ToolError;
use crate::domain::clinical::{
    AllergySeverity, AllergyStatus, AppointmentStatus, Gender, LabStatus, MedicationStatus,
};
use crate::domain::ids::Mrn;
use crate::domain::text::{Email, Phone, Text};
use crate::domain::time::{Date, TimeOfDay, Timestamp};

/// The argument every tool accepts: the earlier system's per-call token.
pub const ACCESS_TOKEN: &str = "access_token";

/// JSON Schema patterns of the identifier arguments (the domain newtypes enforce the same rules).
pub const MRN_PATTERN: &str = "^[A-Za-z0-9_-]{3,32}$";
pub const NPI_PATTERN: &str = "^[0-9]{10}$";
pub const RECORD_ID_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";
pub const DATE_PATTERN: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$";
pub const TIME_PATTERN: &str =
    "^((0?[0-9]|1[0-9]|2[0-3]):[0-5][0-9]( ?[AaPp][Mm])?|(0?[1-9]|1[0-2]) ?[AaPp][Mm])$";

/// A tool's typed arguments: their fields are domain values, parsed once by deserialisation. `validate`
/// checks what no single field's type can (ranges, "today or later"); `patient` names the patient the
/// call touches, for the policy and the audit log.
pub trait ToolArgs: DeserializeOwned + JsonSchema + Send + 'static {
    fn validate(&self) -> Result<(), ToolError> {
        Ok(())
    }

    fn patient(&self) -> Option<&Mrn> {
        None
    }
}

/// Takes the `access_token` argument out of the call's arguments (it is not part of any tool's own
/// arguments). A non-string token is an input error.
pub fn take_access_token(arguments: &mut JsonObject) -> Result<Option<String>, ToolError> {
    match arguments.remove(ACCESS_TOKEN) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(token)) if token.trim().is_empty() => Ok(None),
        Some(serde_json::Value::String(token)) => Ok(Some(token.trim().to_owned())),
        Some(_) => Err(ToolError::invalid(ACCESS_TOKEN, "expected a string")),
    }
}

/// The MCP methods this server serves in every protocol version. A request for one of them that rmcp
/// could not read had malformed params (e.g. `arguments` as a string rather than an object). Methods
/// that protocol 2026-07-28 removed (`initialize`, `logging/setLevel`, `resources/subscribe`, …) and
/// capabilities we don't offer stay "method not found", which Streamable HTTP answers with 404.
const KNOWN_METHODS: &[&str] = &[
    "ping",
    "tools/list",
    "tools/call",
    "completion/complete",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
];

/// The JSON-RPC error for a request rmcp could not read: −32602 (invalid params) for a known method,
/// −32601 (method not found, the method named as rmcp names it) otherwise.
pub fn unreadable_request(method: &str) -> rmcp::ErrorData {
    if KNOWN_METHODS.contains(&method) {
        rmcp::ErrorData::invalid_params(
            format!("invalid params for {method}: `arguments` must be an object"),
            None,
        )
    } else {
        rmcp::ErrorData::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            method.to_owned(),
            None,
        )
    }
}

/// Deserialises the arguments into `A` and validates them. Errors name the offending field.
/// Numbers and booleans sent as text (`"limit": "5"`, as some clients and form-based tools do) are read
/// as the type the input schema declares.
pub fn parse_args<A: ToolArgs>(mut arguments: JsonObject) -> Result<A, ToolError> {
    refuse_control_characters(&arguments)?;
    let schema = input_schema::<A>();
    drop_blank_optional_text(&mut arguments, &schema);
    coerce_scalar_text(&mut arguments, &schema);
    let value = serde_json::Value::Object(arguments);
    let parsed: A = serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner().to_string();
        if path == "." || path.is_empty() {
            ToolError::InvalidInput(inner)
        } else if inner.starts_with(&format!("invalid {path}:")) {
            // Domain newtypes already name their field ("invalid mrn: …").
            ToolError::InvalidInput(inner)
        } else {
            ToolError::InvalidInput(format!("invalid {path}: {inner}"))
        }
    })?;
    parsed.validate()?;
    Ok(parsed)
}

/// Refuses text arguments holding NUL or another control character (tab, line feed and carriage return
/// excepted): no engine stores NUL in text (PostgreSQL refuses it), and control characters in clinical
/// text are never intended. Checked once here, for every tool and every transport.
fn refuse_control_characters(arguments: &JsonObject) -> Result<(), ToolError> {
    let bad = crate::domain::text::has_control_character;
    fn check(path: &str, value: &serde_json::Value) -> Result<(), ToolError> {
        let bad = crate::domain::text::has_control_character;
        match value {
            serde_json::Value::String(text) if bad(text) => Err(ToolError::InvalidInput(format!(
                "invalid {path}: contains a control character (NUL, escape, …)"
            ))),
            serde_json::Value::Array(items) => items.iter().try_for_each(|item| check(path, item)),
            serde_json::Value::Object(members) => members
                .iter()
                .try_for_each(|(name, member)| check(&format!("{path}.{name}"), member)),
            _ => Ok(()),
        }
    }
    for (name, value) in arguments {
        if bad(name) {
            return Err(ToolError::InvalidInput(
                "invalid argument name: contains a control character".to_owned(),
            ));
        }
        check(name, value)?;
    }
    Ok(())
}

/// Blank text (`""`, spaces) for an optional argument means "not given", as the earlier system's clients
/// send it; a blank required argument stays and is refused by its type ("must not be empty").
fn drop_blank_optional_text(arguments: &mut JsonObject, schema: &JsonObject) {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(serde_json::Value::as_array)
        .map(|names| names.iter().filter_map(serde_json::Value::as_str).collect())
        .unwrap_or_default();
    arguments.retain(|name, value| {
        let blank = value.as_str().is_some_and(|text| text.trim().is_empty());
        !blank || required.contains(&name.as_str())
    });
}

/// The input schema of `A` with the shared optional `access_token` property added: derived once per
/// argument type and shared (`tools/list` and every call's argument coercion read the same `Arc`).
pub fn input_schema<A: JsonSchema + 'static>() -> Arc<JsonObject> {
    static SCHEMAS: OnceLock<Mutex<HashMap<TypeId, Arc<JsonObject>>>> = OnceLock::new();
    let schemas = SCHEMAS.get_or_init(Default::default);
    if let Some(schema) = schemas
        .lock()
        .ok()
        .and_then(|cache| cache.get(&TypeId::of::<A>()).cloned())
    {
        return schema;
    }
    let schema = derive_input_schema::<A>();
    if let Ok(mut cache) = schemas.lock() {
        cache.insert(TypeId::of::<A>(), schema.clone());
    }
    schema
}

fn derive_input_schema<A: JsonSchema + 'static>() -> Arc<JsonObject> {
    let mut schema = rmcp::handler::server::tool::schema_for_input::<A>()
        .map(|schema| schema.as_ref().clone())
        .unwrap_or_else(|_| {
            let mut empty = JsonObject::new();
            empty.insert("type".into(), serde_json::json!("object"));
            empty
        });
    strip_nonstandard_formats(&mut schema);
    let properties = schema
        .entry("properties")
        .or_insert_with(|| serde_json::json!({}));
    if let Some(properties) = properties.as_object_mut() {
        properties.insert(
            ACCESS_TOKEN.into(),
            serde_json::json!({
                "type": "string",
                "description": "Optional access token from the `authenticate` tool or the OAuth token endpoint; \
                                not needed when the connection is already authenticated.",
                "minLength": 1,
                "maxLength": 8192
            }),
        );
    }
    Arc::new(schema)
}

/// Replaces text arguments by the number or boolean their property's schema asks for, when the text is one,
/// and integral numbers written as decimals (`2.0`, as the earlier system's clients send) by integers.
fn coerce_scalar_text(arguments: &mut JsonObject, schema: &JsonObject) {
    let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) else {
        return;
    };
    for (name, value) in arguments.iter_mut() {
        let Some(types) = properties.get(name).and_then(|p| p.get("type")) else {
            continue;
        };
        let wants = |wanted: &str| match types {
            serde_json::Value::String(single) => single == wanted,
            serde_json::Value::Array(many) => many.iter().any(|t| t == wanted),
            _ => false,
        };
        if let serde_json::Value::Number(number) = value {
            if let Some(integral) = number
                .as_f64()
                .filter(|_| wants("integer"))
                .and_then(integral)
            {
                *value = serde_json::Value::from(integral);
            }
            continue;
        }
        let serde_json::Value::String(text) = value else {
            continue;
        };
        let text = text.trim();
        let coerced = if wants("integer") {
            text.parse::<i64>().ok().map(serde_json::Value::from)
        } else if wants("number") {
            text.parse::<f64>().ok().map(serde_json::Value::from)
        } else if wants("boolean") {
            text.parse::<bool>().ok().map(serde_json::Value::from)
        } else {
            None
        };
        if let Some(coerced) = coerced {
            *value = coerced;
        }
    }
}

/// `number` as an integer when it is one exactly (`2.0`), within ±2^53.
fn integral(number: f64) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    // The range check makes the cast exact.
    #[allow(clippy::cast_possible_truncation)]
    (number.fract() == 0.0 && number.abs() <= EXACT).then_some(number as i64)
}

/// The output schema of a result type.
pub fn output_schema<R: JsonSchema + 'static>() -> Arc<JsonObject> {
    let mut schema = rmcp::handler::server::tool::schema_for_output::<R>()
        .as_ref()
        .clone();
    strip_nonstandard_formats(&mut schema);
    Arc::new(schema)
}

/// Formats JSON Schema validators know; schemars also writes Rust-specific ones (`uint`, `uint32`,
/// `double`) that strict validators (Ajv in the TypeScript SDK) warn about, so those are removed.
const STANDARD_FORMATS: &[&str] = &[
    "date",
    "date-time",
    "time",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "uuid",
    "regex",
];

fn strip_nonstandard_formats(schema: &mut JsonObject) {
    let nonstandard = schema
        .get("format")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|format| !STANDARD_FORMATS.contains(&format));
    if nonstandard {
        schema.remove("format");
    }
    for value in schema.values_mut() {
        strip_nested(value);
    }
}

fn strip_nested(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(object) => strip_nonstandard_formats(object),
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nested),
        _ => {}
    }
}

/// Checks that a number lies in `[min, max]`, naming the field and the unit.
pub fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    field: &str,
    value: Option<T>,
    min: T,
    max: T,
    unit: &str,
) -> Result<(), ToolError> {
    match value {
        Some(v) if v < min || v > max => Err(ToolError::invalid(
            field,
            format!("{v} is outside the plausible range {min}-{max} {unit}"),
        )),
        _ => Ok(()),
    }
}

/// A status filter argument: a status of `S`, or `"all"` for no filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter<S> {
    All,
    Only(S),
}

impl<S: Copy> StatusFilter<S> {
    /// The status to filter by: absent means `default`, `All` means none.
    pub fn resolve(filter: Option<Self>, default: Option<S>) -> Option<S> {
        match filter {
            None => default,
            Some(Self::All) => None,
            Some(Self::Only(status)) => Some(status),
        }
    }
}

impl<'de, S: Deserialize<'de>> Deserialize<'de> for StatusFilter<S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        if raw.trim().eq_ignore_ascii_case("all") {
            return Ok(Self::All);
        }
        S::deserialize(raw.into_deserializer()).map(Self::Only)
    }
}

/// The JSON Schemas of the domain types used as arguments: each states the rule its type parses.
impl<const MAX: usize> JsonSchema for Text<MAX> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Text{MAX}").into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 1, "maxLength": MAX })
    }
}

macro_rules! string_schema {
    ($name:ty, $schema:tt) => {
        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

string_schema!(Date, { "type": "string", "format": "date", "pattern": DATE_PATTERN });
string_schema!(Timestamp, { "type": "string", "maxLength": 40 });
string_schema!(TimeOfDay, { "type": "string", "pattern": TIME_PATTERN });
string_schema!(Email, { "type": "string", "format": "email", "maxLength": 254 });
string_schema!(Phone, { "type": "string", "minLength": 7, "maxLength": 32 });

/// Enumerations: their values as the schema's `enum` (parsing is case-insensitive).
macro_rules! enum_schema {
    ($($name:ty),+) => {$(
        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                let values: Vec<&str> = <$name>::ALL.iter().map(|v| v.as_str()).collect();
                json_schema!({ "type": "string", "enum": values })
            }
        }
    )+};
}

enum_schema!(
    Gender,
    AppointmentStatus,
    MedicationStatus,
    AllergySeverity,
    AllergyStatus,
    LabStatus
);

impl<S: JsonSchema> JsonSchema for StatusFilter<S> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("{}Filter", S::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut values = S::json_schema(generator)
            .get("enum")
            .and_then(serde_json::Value::as_array)
            .cloned()
            .unwrap_or_default();
        values.push("all".into());
        json_schema!({ "type": "string", "enum": values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, JsonSchema)]
    struct Sample {
        #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
        mrn: Mrn,
        #[allow(dead_code)]
        count: u32,
    }
    impl ToolArgs for Sample {
        fn patient(&self) -> Option<&Mrn> {
            Some(&self.mrn)
        }
    }

    fn object(value: serde_json::Value) -> JsonObject {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn errors_name_the_field() {
        let missing = parse_args::<Sample>(object(serde_json::json!({"count": 1})));
        assert_eq!(
            missing.err().map(|e| e.to_string()),
            Some("missing field `mrn`".to_owned())
        );
        let wrong_type =
            parse_args::<Sample>(object(serde_json::json!({"mrn": "MRN001", "count": "x"})));
        assert!(
            wrong_type
                .err()
                .is_some_and(|e| e.to_string().starts_with("invalid count:"))
        );
        let wrong_word =
            parse_args::<Sample>(object(serde_json::json!({"mrn": "MRN001", "count": "hot"})));
        assert!(
            wrong_word
                .err()
                .is_some_and(|e| e.to_string().starts_with("invalid count: invalid type"))
        );
        let as_text =
            parse_args::<Sample>(object(serde_json::json!({"mrn": "MRN001", "count": " 7 "})));
        assert!(as_text.is_ok());
        let as_decimal =
            parse_args::<Sample>(object(serde_json::json!({"mrn": "MRN001", "count": 2.0})));
        assert!(as_decimal.is_ok());
        let fraction =
            parse_args::<Sample>(object(serde_json::json!({"mrn": "MRN001", "count": 2.5})));
        assert!(fraction.is_err());
        let bad_mrn = parse_args::<Sample>(object(serde_json::json!({"mrn": "M", "count": 1})));
        assert!(
            bad_mrn
                .err()
                .is_some_and(|e| e.to_string().starts_with("invalid mrn:"))
        );
    }

    #[test]
    fn access_token_is_taken_out_and_added_to_the_schema() {
        let mut arguments = object(serde_json::json!({"mrn": "MRN001", "access_token": " t "}));
        assert_eq!(take_access_token(&mut arguments), Ok(Some("t".to_owned())));
        assert!(!arguments.contains_key(ACCESS_TOKEN));
        let schema = input_schema::<Sample>();
        assert!(schema["properties"][ACCESS_TOKEN].is_object());
        assert_eq!(schema["required"], serde_json::json!(["mrn", "count"]));
    }

    #[test]
    fn schemas_carry_only_standard_formats() {
        let input = serde_json::Value::Object(input_schema::<Sample>().as_ref().clone());
        assert!(!input.to_string().contains("uint"), "{input}");
        #[derive(serde::Serialize, JsonSchema)]
        struct Counted {
            count: usize,
            ratio: f64,
        }
        let output = serde_json::Value::Object(output_schema::<Counted>().as_ref().clone());
        assert!(!output.to_string().contains("\"format\""), "{output}");
    }

    #[derive(serde::Deserialize, JsonSchema)]
    struct Filtered {
        status: Option<StatusFilter<crate::domain::clinical::MedicationStatus>>,
        reason: Option<Text<10>>,
        name: Text<10>,
    }
    impl ToolArgs for Filtered {}

    #[test]
    fn status_filters_default_and_all() {
        use crate::domain::clinical::MedicationStatus as Status;
        let status = |raw: serde_json::Value| {
            parse_args::<Filtered>(object(serde_json::json!({"status": raw, "name": "x"})))
                .map(|args| StatusFilter::resolve(args.status, Some(Status::Active)))
        };
        assert_eq!(status(serde_json::json!(" ")), Ok(Some(Status::Active)));
        assert_eq!(status(serde_json::json!(null)), Ok(Some(Status::Active)));
        assert_eq!(status(serde_json::json!("ALL")), Ok(None));
        assert_eq!(
            status(serde_json::json!("discontinued")),
            Ok(Some(Status::Discontinued))
        );
        assert!(status(serde_json::json!("bogus")).is_err());
        let schema = input_schema::<Filtered>();
        assert!(
            schema["properties"]["status"]
                .to_string()
                .contains("\"all\"")
        );
    }

    #[test]
    fn text_arguments_are_parsed_once_by_their_type() {
        let parse = |value: serde_json::Value| parse_args::<Filtered>(object(value));
        assert!(
            parse(serde_json::json!({"name": " Jane ", "reason": ""})).is_ok_and(|args| args
                .name
                .as_str()
                == "Jane"
                && args.reason.is_none())
        );
        assert_eq!(
            parse(serde_json::json!({"name": "  "}))
                .err()
                .map(|e| e.to_string()),
            Some("invalid name: must not be empty".to_owned())
        );
        assert_eq!(
            parse(serde_json::json!({"name": "x", "reason": "much too long"}))
                .err()
                .map(|e| e.to_string()),
            Some("invalid reason: must be at most 10 characters".to_owned())
        );
        let schema = input_schema::<Filtered>();
        assert_eq!(schema["properties"]["name"]["maxLength"], 10);
    }

    #[test]
    fn ranges() {
        assert!(in_range("heart_rate", Some(72), 20, 300, "bpm").is_ok());
        let error = in_range("heart_rate", Some(400), 20, 300, "bpm").err();
        assert_eq!(
            error.map(|e| e.to_string()),
            Some("invalid heart_rate: 400 is outside the plausible range 20-300 bpm".to_owned())
        );
    }
}

#[cfg(test)]
mod unreadable_request_tests {
    use super::unreadable_request;
    use rmcp::model::ErrorCode;

    #[test]
    fn the_input_schema_is_derived_once() {
        let first = super::input_schema::<crate::tools::auth_tools::ValidateTokenArgs>();
        let second = super::input_schema::<crate::tools::auth_tools::ValidateTokenArgs>();
        assert!(std::sync::Arc::ptr_eq(&first, &second));
        assert!(first["properties"].get("access_token").is_some());
    }

    #[test]
    fn a_known_method_with_bad_params_is_invalid_params() {
        assert_eq!(
            unreadable_request("tools/call").code,
            ErrorCode::INVALID_PARAMS
        );
        assert_eq!(
            unreadable_request("no/such").code,
            ErrorCode::METHOD_NOT_FOUND
        );
        // Removed in protocol 2026-07-28: method not found (HTTP 404), never invalid params.
        for removed in ["initialize", "logging/setLevel", "resources/subscribe"] {
            assert_eq!(
                unreadable_request(removed).code,
                ErrorCode::METHOD_NOT_FOUND
            );
        }
    }
}
