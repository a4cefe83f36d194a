//! OpenAPI 3.0 documents: operation lookup by path template, and request checks through JSON Schema.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use jsonschema::{Draft, Validator};
use serde_json::{Map, Value, json};

use super::json_schema::{coerce, collect_refs, convert, describe};

/// The path segments of a template or a concrete path (`/v1/a/{b}` → `["v1", "a", "{b}"]`).
pub fn segments(path: &str) -> Vec<&str> {
    path.strip_prefix('/').unwrap_or(path).split('/').collect()
}

fn is_param(segment: &str) -> bool {
    segment.len() > 2 && segment.starts_with('{') && segment.ends_with('}')
}

/// How well `template` matches the concrete `path`: `None` when it does not, else the number of
/// literal segments (more is a more specific match).
pub fn match_path(template: &str, path: &str) -> Option<usize> {
    let (t, p) = (segments(template), segments(path));
    if t.len() != p.len() {
        return None;
    }
    let mut literal = 0;
    for (t, p) in t.iter().zip(&p) {
        if is_param(t) {
            if p.is_empty() {
                return None;
            }
        } else if t == p {
            literal += 1;
        } else {
            return None;
        }
    }
    Some(literal)
}

/// Whether two templates have the same structure (parameter names may differ).
pub fn same_shape(a: &str, b: &str) -> bool {
    let (a, b) = (segments(a), segments(b));
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(a, b)| if is_param(a) { is_param(b) } else { a == b })
}

/// One operation of a document: its path template and the operation and path item objects.
pub struct Operation<'a> {
    pub template: &'a str,
    pub method: String,
    op: &'a Map<String, Value>,
    item: &'a Map<String, Value>,
}

type Compiled = Arc<Result<Validator, String>>;

/// A parsed OpenAPI 3.0 document with a cache of compiled validators.
pub struct Document {
    file: &'static str,
    paths: Map<String, Value>,
    components: Map<String, Value>,
    cache: Mutex<HashMap<String, Compiled>>,
}

impl Document {
    pub fn new(file: &'static str, mut doc: Value) -> Result<Document, String> {
        let mut take = |key: &str| match doc.get_mut(key).map(Value::take) {
            Some(Value::Object(map)) => Ok(map),
            None => Ok(Map::new()),
            Some(_) => Err(format!("{file}: `{key}` is not an object")),
        };
        let paths = take("paths")?;
        let components = take("components")?;
        if paths.is_empty() {
            return Err(format!("{file}: no `paths`"));
        }
        Ok(Document {
            file,
            paths,
            components,
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn operations(&self, method: &str) -> impl Iterator<Item = Operation<'_>> {
        let lower = method.to_ascii_lowercase();
        let method = method.to_ascii_uppercase();
        self.paths.iter().filter_map(move |(template, item)| {
            let item = item.as_object()?;
            let op = item.get(&lower)?.as_object()?;
            Some(Operation {
                template,
                method: method.clone(),
                op,
                item,
            })
        })
    }

    /// The operation for `method` whose template matches the concrete `path` best.
    pub fn find(&self, method: &str, path: &str) -> Result<Operation<'_>, String> {
        let best = self
            .operations(method)
            .filter_map(|op| Some((match_path(op.template, path)?, op)))
            .max_by_key(|(literal, _)| *literal);
        if let Some((_, op)) = best {
            return Ok(op);
        }
        let methods: BTreeSet<String> = self
            .paths
            .iter()
            .filter(|(template, _)| match_path(template, path).is_some())
            .flat_map(|(_, item)| item.as_object().into_iter().flat_map(|m| m.keys()))
            .filter(|m| !m.starts_with("x-") && *m != "parameters" && *m != "summary")
            .map(|m| m.to_ascii_uppercase())
            .collect();
        Err(if methods.is_empty() {
            format!("{method} {path}: no such path in {}", self.file)
        } else {
            let methods = methods.into_iter().collect::<Vec<_>>().join(", ");
            format!(
                "{method} {path}: {} has no {method} on this path (only {methods})",
                self.file
            )
        })
    }

    /// The operation for `method` on a template of the same shape as `template`.
    pub fn find_shape(&self, method: &str, template: &str) -> Option<Operation<'_>> {
        self.operations(method)
            .find(|op| same_shape(op.template, template))
    }

    /// Follows a local `$ref` (any `#/components/...` object) once.
    fn deref<'a>(&'a self, value: &'a Value) -> &'a Value {
        let Some(target) = value.get("$ref").and_then(Value::as_str) else {
            return value;
        };
        let mut parts = target
            .strip_prefix("#/components/")
            .unwrap_or_default()
            .split('/');
        let (Some(kind), Some(name)) = (parts.next(), parts.next()) else {
            return value;
        };
        let name = name.replace("~1", "/").replace("~0", "~");
        self.components
            .get(kind)
            .and_then(|k| k.get(&name))
            .unwrap_or(value)
    }

    /// The operation's `in: query` parameters by name (operation-level ones override the path item's).
    fn query_parameters<'a>(&'a self, op: &Operation<'a>) -> BTreeMap<&'a str, &'a Value> {
        let mut out = BTreeMap::new();
        for list in [op.item.get("parameters"), op.op.get("parameters")]
            .into_iter()
            .flatten()
        {
            for param in list.as_array().into_iter().flatten().map(|p| self.deref(p)) {
                if param.get("in").and_then(Value::as_str) == Some("query")
                    && let Some(name) = param.get("name").and_then(Value::as_str)
                {
                    out.insert(name, param);
                }
            }
        }
        out
    }

    /// Checks the query against the declared parameters: every name declared (when
    /// `check_names`), required ones present, and values valid for their schemas.
    pub fn check_query(
        &self,
        op: &Operation<'_>,
        prefix: &str,
        query: &[(String, String)],
        check_names: bool,
        errors: &mut Vec<String>,
    ) {
        let declared = self.query_parameters(op);
        let mut given: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, value) in query {
            given.entry(name).or_default().push(value);
        }
        if check_names {
            for name in given.keys().filter(|n| !declared.contains_key(*n)) {
                let names = declared.keys().copied().collect::<Vec<_>>().join(", ");
                errors.push(format!(
                    "{prefix}: query parameter \"{name}\" is not declared (declared: {names})"
                ));
            }
        }
        for (name, param) in declared {
            let Some(values) = given.get(name) else {
                if param.get("required").and_then(Value::as_bool) == Some(true) {
                    errors.push(format!(
                        "{prefix}: required query parameter \"{name}\" is missing"
                    ));
                }
                continue;
            };
            let Some(schema) = param.get("schema") else {
                continue;
            };
            let resolved = self.deref(schema);
            let instance = if resolved.get("type").and_then(Value::as_str) == Some("array") {
                let explode = param
                    .get("explode")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                let items = resolved.get("items").map(|i| self.deref(i));
                let items = items.and_then(|i| i.get("type")).and_then(Value::as_str);
                let values: Vec<&str> = if explode {
                    values.clone()
                } else {
                    values.iter().flat_map(|v| v.split(',')).collect()
                };
                Value::Array(values.into_iter().map(|v| coerce(v, items)).collect())
            } else if let [value] = values.as_slice() {
                coerce(value, resolved.get("type").and_then(Value::as_str))
            } else {
                errors.push(format!(
                    "{prefix}: query parameter \"{name}\" is given {} times but is not an array",
                    values.len()
                ));
                continue;
            };
            let key = format!("query {} {} {name}", op.method, op.template);
            let at = format!("query {name}");
            self.validate(&key, schema, &instance, prefix, &at, errors);
        }
    }

    /// Checks the JSON body against the operation's `requestBody`. `strict_absence`: a body sent
    /// to an operation without a `requestBody` is an error.
    pub fn check_body(
        &self,
        op: &Operation<'_>,
        prefix: &str,
        body: Option<&Value>,
        strict_absence: bool,
        errors: &mut Vec<String>,
    ) {
        let Some(request) = op.op.get("requestBody").map(|r| self.deref(r)) else {
            if body.is_some() && strict_absence {
                errors.push(format!(
                    "{prefix}: the operation takes no request body, but one was given"
                ));
            }
            return;
        };
        let Some(body) = body else {
            if request.get("required").and_then(Value::as_bool) == Some(true) {
                errors.push(format!(
                    "{prefix}: a JSON request body is required but none was given"
                ));
            }
            return;
        };
        let content = request.get("content").and_then(Value::as_object);
        let json = content.and_then(|c| {
            c.iter()
                .find(|(t, _)| t.split(';').next().map(str::trim) == Some("application/json"))
        });
        let Some((_, media)) = json else {
            let types = content.map(|c| c.keys().cloned().collect::<Vec<_>>().join(", "));
            errors.push(format!(
                "{prefix}: the request body is not JSON (content types: {})",
                types.unwrap_or_default()
            ));
            return;
        };
        if let Some(schema) = media.get("schema") {
            let key = format!("body {} {}", op.method, op.template);
            self.validate(&key, schema, body, prefix, "body", errors);
        }
    }

    fn validate(
        &self,
        key: &str,
        schema: &Value,
        instance: &Value,
        prefix: &str,
        at: &str,
        errors: &mut Vec<String>,
    ) {
        let compiled = self.compile(key, schema);
        match compiled.as_ref() {
            Err(e) => errors.push(format!("{prefix}: cannot compile the schema of {at}: {e}")),
            Ok(validator) => {
                for error in validator.iter_errors(instance) {
                    describe(&error, at, "", &mut |e| {
                        errors.push(format!("{prefix}: {e}"))
                    });
                }
            }
        }
    }

    fn compile(&self, key: &str, schema: &Value) -> Compiled {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(compiled) = cache.get(key) {
            return compiled.clone();
        }
        let root = self.json_schema(schema);
        let compiled = jsonschema::options()
            .with_draft(Draft::Draft4)
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| e.to_string());
        let compiled = Arc::new(compiled);
        cache.insert(key.to_string(), compiled.clone());
        compiled
    }

    /// A self-contained draft-4 schema: the converted `schema` plus, under `definitions`, every
    /// component schema it reaches.
    pub fn json_schema(&self, schema: &Value) -> Value {
        let root = convert(schema);
        let mut definitions = Map::new();
        let mut pending = Vec::new();
        collect_refs(&root, &mut pending);
        let schemas = self.components.get("schemas").and_then(Value::as_object);
        while let Some(name) = pending.pop() {
            if definitions.contains_key(&name) {
                continue;
            }
            let found = schemas.and_then(|s| s.get(&name.replace("~1", "/").replace("~0", "~")));
            let converted = found.map(convert).unwrap_or_else(|| json!({"not": {}}));
            collect_refs(&converted, &mut pending);
            definitions.insert(name, converted);
        }
        let mut root = match root {
            Value::Object(map) if !map.contains_key("$ref") => map,
            other => Map::from_iter([("allOf".to_string(), json!([other]))]),
        };
        root.insert("definitions".into(), Value::Object(definitions));
        Value::Object(root)
    }
}
