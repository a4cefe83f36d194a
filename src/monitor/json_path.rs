//! The `expect.jsonPath` condition: a dotted path into a JSON body, compared as text.

use serde_json::Value;

use crate::manifest::JsonPathCheck;

/// Checks a dotted JSON path (`$.a.b`, `a.b`, `items[0].ok`) against the expected text.
pub(super) fn holds(check: &JsonPathCheck, body: &[u8]) -> Result<(), String> {
    let shown = display_path(&check.path);
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        format!(
            "body is not JSON, so {shown} cannot be {:?}",
            check.equals.as_str()
        )
    })?;
    let found = json_path(&value, &check.path)?;
    let Some(found) = found else {
        return Err(format!("{shown} is missing, expected {:?}", check.equals));
    };
    if as_text(found) == check.equals {
        Ok(())
    } else {
        Err(format!("{shown} is {found}, expected {:?}", check.equals))
    }
}

fn display_path(path: &str) -> String {
    let p = path.trim();
    if p.starts_with('$') {
        p.to_string()
    } else if p.starts_with('[') {
        format!("${p}")
    } else {
        format!("$.{p}")
    }
}

/// Follows `path` into `root`: `Ok(None)` when a step is missing, `Err` when the path is malformed.
pub fn json_path<'a>(root: &'a Value, path: &str) -> Result<Option<&'a Value>, String> {
    let p = path.trim();
    let p = p.strip_prefix('$').unwrap_or(p);
    let p = p.strip_prefix('.').unwrap_or(p);
    let mut cur = root;
    if p.is_empty() {
        return Ok(Some(cur));
    }
    for segment in p.split('.') {
        let (name, mut indexes) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if !name.is_empty() {
            match cur.get(name) {
                Some(v) => cur = v,
                None => return Ok(None),
            }
        } else if indexes.is_empty() {
            return Err(format!("the JSON path {path:?} has an empty step"));
        }
        while !indexes.is_empty() {
            let close = indexes
                .find(']')
                .ok_or_else(|| format!("the JSON path {path:?} has an unclosed ["))?;
            let index: usize = indexes[1..close]
                .trim()
                .parse()
                .map_err(|_| format!("the JSON path {path:?} has a bad index"))?;
            match cur.get(index) {
                Some(v) => cur = v,
                None => return Ok(None),
            }
            indexes = &indexes[close + 1..];
            if !indexes.is_empty() && !indexes.starts_with('[') {
                return Err(format!("the JSON path {path:?} has text after ]"));
            }
        }
    }
    Ok(Some(cur))
}

/// A JSON value as text: strings unquoted, numbers and booleans as written.
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::MonitorSpec;
    use crate::monitor::{Outcome, evaluate};
    use serde_json::json;
    use std::time::Duration;

    const MS: Duration = Duration::from_millis(40);

    fn spec(expect: Value) -> MonitorSpec {
        serde_json::from_value(json!({
            "environment": "prod", "url": "https://api.example.com/health", "expect": expect
        }))
        .expect("spec")
    }

    #[test]
    fn json_path_conditions() {
        let body =
            br#"{"status":"down","checks":{"db":true,"n":3},"items":[{"ok":false},{"ok":true}]}"#;
        let check = |path: &str, equals: &str| {
            evaluate(
                &spec(json!({"jsonPath": {"path": path, "equals": equals}})),
                200,
                body,
                MS,
            )
        };
        assert_eq!(
            check("$.status", "ok"),
            Outcome::Failed("$.status is \"down\", expected \"ok\"".into())
        );
        assert_eq!(check("$.status", "down"), Outcome::Ok);
        assert_eq!(check("checks.db", "true"), Outcome::Ok);
        assert_eq!(check("$.checks.n", "3"), Outcome::Ok);
        assert_eq!(check("items[1].ok", "true"), Outcome::Ok);
        assert_eq!(
            check("items[0].ok", "true"),
            Outcome::Failed("$.items[0].ok is false, expected \"true\"".into())
        );
        assert_eq!(
            check("$.items[5].ok", "true"),
            Outcome::Failed("$.items[5].ok is missing, expected \"true\"".into())
        );
        assert_eq!(
            check("$.nope", "x").reason().unwrap(),
            "$.nope is missing, expected \"x\""
        );
        let not_json = evaluate(
            &spec(json!({"jsonPath": {"path": "$.status", "equals": "ok"}})),
            200,
            b"<html>",
            MS,
        );
        assert_eq!(
            not_json.reason().unwrap(),
            "body is not JSON, so $.status cannot be \"ok\""
        );
        assert!(json_path(&json!({"a": [1]}), "a[x]").is_err());
        assert_eq!(
            json_path(&json!([[1, 2]]), "[0][1]").unwrap(),
            Some(&json!(2))
        );
    }
}
