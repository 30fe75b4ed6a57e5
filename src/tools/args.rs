//! Tool arguments: parsing a call's JSON arguments into a typed struct with field-naming errors, the
//! shared `access_token` argument, and the validation rules every family uses (lengths, ranges, dates).

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rmcp::model::JsonObject;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use super::error::ToolError;
use crate::domain::ids::Mrn;

/// The argument every tool accepts: the earlier system's per-call token.
pub const ACCESS_TOKEN: &str = "access_token";

/// JSON Schema patterns of the identifier arguments (the domain newtypes enforce the same rules).
pub const MRN_PATTERN: &str = "^[A-Za-z0-9_-]{3,32}$";
pub const NPI_PATTERN: &str = "^[0-9]{10}$";
pub const RECORD_ID_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";
pub const DATE_PATTERN: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$";
pub const TIME_PATTERN: &str =
    "^((0?[0-9]|1[0-9]|2[0-3]):[0-5][0-9]( ?[AaPp][Mm])?|(0?[1-9]|1[0-2]) ?[AaPp][Mm])$";

/// A tool's typed arguments. `validate` checks what the JSON Schema cannot (ranges across fields,
/// calendar dates); `patient` names the patient the call touches, for the policy and the audit log.
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
    coerce_scalar_text(&mut arguments, &input_schema::<A>());
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
    fn bad(text: &str) -> bool {
        text.chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    }
    fn check(path: &str, value: &serde_json::Value) -> Result<(), ToolError> {
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

/// Checks a required text field: trimmed, non-empty, at most `max` characters.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, ToolError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ToolError::invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(ToolError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Checks an optional text field like [`required_text`]; blank means absent.
pub fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, ToolError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => required_text(field, text, max).map(Some),
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

/// A status filter argument: absent means `default`, `"all"` means no filter, anything else must parse.
pub fn status_filter<S>(
    raw: Option<&str>,
    default: Option<S>,
    parse: impl Fn(&str) -> Result<S, crate::domain::DomainError>,
) -> Result<Option<S>, ToolError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(default),
        Some(all) if all.eq_ignore_ascii_case("all") => Ok(None),
        Some(status) => Ok(Some(parse(status)?)),
    }
}

/// Checks an ISO date (`YYYY-MM-DD`).
pub fn iso_date(field: &str, value: &str) -> Result<chrono::NaiveDate, ToolError> {
    Ok(crate::domain::time::parse_date(field, value)?)
}

/// Checks an e-mail address loosely (one `@`, a dot in the domain, no spaces).
pub fn email(field: &str, value: Option<&str>) -> Result<Option<String>, ToolError> {
    let Some(text) = optional_text(field, value, 254)? else {
        return Ok(None);
    };
    let valid = text
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !text.contains(char::is_whitespace);
    if valid {
        Ok(Some(text))
    } else {
        Err(ToolError::invalid(
            field,
            "expected an e-mail address such as name@example.org",
        ))
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

    #[test]
    fn status_filters_default_and_all() {
        use crate::domain::clinical::MedicationStatus as Status;
        let active = Some(Status::Active);
        assert_eq!(status_filter(None, active, Status::parse), Ok(active));
        assert_eq!(status_filter(Some(" "), active, Status::parse), Ok(active));
        assert_eq!(status_filter(Some("ALL"), active, Status::parse), Ok(None));
        assert_eq!(
            status_filter(Some("discontinued"), active, Status::parse),
            Ok(Some(Status::Discontinued))
        );
        assert!(status_filter(Some("bogus"), active, Status::parse).is_err());
    }

    #[test]
    fn ranges_and_texts() {
        assert!(in_range("heart_rate", Some(72), 20, 300, "bpm").is_ok());
        let error = in_range("heart_rate", Some(400), 20, 300, "bpm").err();
        assert_eq!(
            error.map(|e| e.to_string()),
            Some("invalid heart_rate: 400 is outside the plausible range 20-300 bpm".to_owned())
        );
        assert!(required_text("reason", "  ", 10).is_err());
        assert!(required_text("reason", "x".repeat(11).as_str(), 10).is_err());
        assert!(email("email", Some("a@b.org")).is_ok());
        assert!(email("email", Some("nope")).is_err());
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
