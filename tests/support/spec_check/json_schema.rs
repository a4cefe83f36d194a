//! OpenAPI 3.0 schema objects as JSON Schema draft 4, query values as JSON, and readable errors.

use jsonschema::ValidationError;
use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use serde_json::{Map, Value, json};

/// A query string value as the JSON value its schema type expects (left a string when it does
/// not parse, so the validator reports it).
pub fn coerce(value: &str, ty: Option<&str>) -> Value {
    let parsed = match ty {
        Some("integer") => value.parse::<i64>().ok().map(Value::from),
        Some("number") => value.parse::<i64>().ok().map(Value::from).or_else(|| {
            value
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
        }),
        Some("boolean") => value.parse::<bool>().ok().map(Value::Bool),
        _ => None,
    };
    parsed.unwrap_or_else(|| Value::String(value.to_string()))
}

/// Renders one validation error as `location: message`; a failed `oneOf`/`anyOf` is explained
/// by the errors of its closest alternative (one the instance's type fits, with fewest errors).
pub fn describe(error: &ValidationError<'_>, at: &str, note: &str, out: &mut dyn FnMut(String)) {
    let location = render_location(at, error.instance_path().iter());
    let (keyword, context) = match error.kind() {
        ValidationErrorKind::AnyOf { context } => ("anyOf", context),
        ValidationErrorKind::OneOfNotValid { context } => ("oneOf", context),
        ValidationErrorKind::Enum { options } => {
            return out(format!(
                "{location}: {} is not one of {options}{note}",
                error.instance()
            ));
        }
        _ => return out(format!("{location}: {error}{note}")),
    };
    let type_mismatch = |branch: &Vec<ValidationError<'_>>| {
        branch.iter().any(|e| {
            e.instance_path() == error.instance_path()
                && matches!(e.kind(), ValidationErrorKind::Type { .. })
        })
    };
    let closest = context
        .iter()
        .enumerate()
        .filter(|(_, branch)| !branch.is_empty() && !type_mismatch(branch))
        .min_by_key(|(_, branch)| branch.len());
    match closest {
        Some((i, branch)) => {
            let note = format!(
                " (the closest of the {} alternatives of the {keyword} at {location} is #{})",
                context.len(),
                i + 1
            );
            branch.iter().for_each(|e| describe(e, at, &note, out));
        }
        None => out(format!(
            "{location}: {} matches none of the {} alternatives of the {keyword}{note}",
            error.instance(),
            context.len()
        )),
    }
}

/// `body` + `/0/type` → `body[0].type`.
fn render_location<'a>(root: &str, segments: impl Iterator<Item = LocationSegment<'a>>) -> String {
    let mut out = root.to_string();
    for segment in segments {
        match segment {
            LocationSegment::Index(i) => out.push_str(&format!("[{i}]")),
            LocationSegment::Property(p) => {
                let plain = !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
                if plain {
                    out.push('.');
                    out.push_str(&p);
                } else {
                    out.push_str(&format!("[{}]", Value::String(p.to_string())));
                }
            }
        }
    }
    out
}

const SCHEMA_MAPS: [&str; 2] = ["properties", "patternProperties"];
const SCHEMA_LISTS: [&str; 3] = ["allOf", "anyOf", "oneOf"];
const SCHEMA_ONE: [&str; 3] = ["items", "additionalProperties", "not"];
const IGNORED: [&str; 10] = [
    "example",
    "examples",
    "discriminator",
    "nullable",
    "xml",
    "externalDocs",
    "deprecated",
    "readOnly",
    "writeOnly",
    "description",
];

/// Converts an OpenAPI 3.0 schema object to JSON Schema draft 4: component refs point into
/// `definitions`, `nullable: true` admits null, annotations (`example`, `x-*`, `discriminator`,
/// ...) are dropped, and the siblings of a `$ref` are ignored as OpenAPI 3.0 specifies.
pub fn convert(schema: &Value) -> Value {
    let Some(object) = schema.as_object() else {
        return schema.clone();
    };
    let nullable = object.get("nullable").and_then(Value::as_bool) == Some(true);
    if let Some(target) = object.get("$ref").and_then(Value::as_str) {
        let target = match target.strip_prefix("#/components/schemas/") {
            Some(name) => format!("#/definitions/{name}"),
            None => target.to_string(),
        };
        let reference = json!({ "$ref": target });
        return if nullable {
            json!({"anyOf": [{"type": "null"}, reference]})
        } else {
            reference
        };
    }
    let mut out = Map::new();
    for (key, value) in object {
        if key != "allOf"
            && SCHEMA_LISTS.contains(&key.as_str())
            && value.as_array().is_some_and(Vec::is_empty)
        {
            // An empty `anyOf`/`oneOf` (a generator's `never`) admits no value.
            return if nullable {
                json!({"type": "null"})
            } else {
                json!({"not": {}})
            };
        }
        let converted = if SCHEMA_MAPS.contains(&key.as_str()) {
            let map = value.as_object().into_iter().flatten();
            Value::Object(map.map(|(k, v)| (k.clone(), convert(v))).collect())
        } else if SCHEMA_LISTS.contains(&key.as_str()) {
            if value.as_array().is_some_and(Vec::is_empty) {
                continue; // an empty `allOf` constrains nothing
            }
            Value::Array(
                value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(convert)
                    .collect(),
            )
        } else if SCHEMA_ONE.contains(&key.as_str()) {
            match value {
                Value::Array(items) => Value::Array(items.iter().map(convert).collect()),
                other => convert(other),
            }
        } else if IGNORED.contains(&key.as_str()) || key.starts_with("x-") {
            continue;
        } else {
            value.clone()
        };
        out.insert(key.clone(), converted);
    }
    if nullable {
        return admit_null(out);
    }
    Value::Object(out)
}

fn admit_null(mut schema: Map<String, Value>) -> Value {
    let combined = SCHEMA_LISTS.iter().any(|k| schema.contains_key(*k));
    if let Some(Value::Array(values)) = schema.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
    match schema.get("type") {
        Some(Value::String(ty)) if !combined => {
            let ty = json!([ty, "null"]);
            schema.insert("type".into(), ty);
            Value::Object(schema)
        }
        None if !combined => Value::Object(schema),
        _ => json!({"anyOf": [{"type": "null"}, schema]}),
    }
}

pub fn collect_refs(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/definitions/"))
            {
                out.push(name.to_string());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
