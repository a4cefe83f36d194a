//! Checks requests tether sends against the platforms' published schemas (Railway, Vercel, Supabase).
#![allow(dead_code)]

mod graphql;
mod json_schema;
mod openapi;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

const RAILWAY_FILE: &str = "railway-schema.json";
const SUPABASE_FILE: &str = "supabase-openapi.json";
const VERCEL_FILE: &str = "vercel-openapi-2025-10-27.json";
const VERCEL_OPS_FILE: &str = "vercel-sdk-operations.json";

/// Railway's GraphQL endpoint, relative to the API base.
pub const RAILWAY_PATH: &str = "/graphql/v2";

/// The env `type` values the current Vercel SDK accepts (CORRECTIONS.md §9: the 2025-10 OpenAPI
/// still lists `secret`).
const VERCEL_ENV_TYPES: [&str; 4] = ["system", "encrypted", "plain", "sensitive"];
/// The SDK operations whose bodies carry env `type`s (create, edit).
const VERCEL_ENV_WRITES: [&str; 2] = ["projectsCreateProjectEnv", "projectsEditProjectEnv"];

/// One entry of `vercel-sdk-operations.json`.
struct VercelOperation {
    func: String,
    method: String,
    path: String,
    query: Vec<String>,
    json_body: bool,
}

/// The parsed schemas of the three platforms.
pub struct Specs {
    dir: PathBuf,
    railway: graphql::Schema,
    vercel_operations: Vec<VercelOperation>,
    vercel: openapi::Document,
    supabase: openapi::Document,
}

static SPECS: OnceLock<Specs> = OnceLock::new();

impl Specs {
    /// Loads the specs from `<CARGO_MANIFEST_DIR>/../shared/platform-apis/specs/` (or
    /// `$TETHER_SPECS_DIR`), once per process.
    pub fn load() -> &'static Specs {
        SPECS.get_or_init(|| Specs::from_dir(&Specs::default_dir()))
    }

    /// `$TETHER_SPECS_DIR`, else `<CARGO_MANIFEST_DIR>/../shared/platform-apis/specs`.
    pub fn default_dir() -> PathBuf {
        match std::env::var_os("TETHER_SPECS_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/platform-apis/specs"),
        }
    }

    /// Loads the specs from `dir` (uncached). Panics when they are missing or malformed.
    pub fn from_dir(dir: &Path) -> Specs {
        let files = [RAILWAY_FILE, SUPABASE_FILE, VERCEL_FILE, VERCEL_OPS_FILE];
        let missing: Vec<&str> = files
            .into_iter()
            .filter(|f| !dir.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            let which = if missing.len() == files.len() {
                String::new()
            } else {
                format!(" [missing: {}]", missing.join(", "))
            };
            panic!(
                "the platforms' published schemas are missing: expected them in {} \
                 (../shared/platform-apis/specs beside the repository; see \
                 docs/platform-operations.md){which}",
                dir.display()
            );
        }
        let read = |file: &str| -> Value {
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
        };
        let fail = |e: String| -> ! { panic!("{}: {e}", dir.display()) };
        let railway =
            graphql::Schema::from_introspection(&read(RAILWAY_FILE)).unwrap_or_else(|e| fail(e));
        let vercel_operations =
            vercel_operations(&read(VERCEL_OPS_FILE)).unwrap_or_else(|e| fail(e));
        let vercel =
            openapi::Document::new(VERCEL_FILE, read(VERCEL_FILE)).unwrap_or_else(|e| fail(e));
        let supabase =
            openapi::Document::new(SUPABASE_FILE, read(SUPABASE_FILE)).unwrap_or_else(|e| fail(e));
        Specs {
            dir: dir.to_path_buf(),
            railway,
            vercel_operations,
            vercel,
            supabase,
        }
    }

    /// The directory the specs were read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Checks one request. `platform` is "railway" | "vercel" | "supabase"; `path` is the API's
    /// own path (e.g. "/v10/projects/prj_1/env", "/v1/projects/abc/secrets", "/graphql/v2"); a
    /// `?query` on it is decoded and added to `query`; `query` holds the decoded query pairs;
    /// `body` the JSON body if any. Each error says what is wrong and where.
    pub fn check(
        &self,
        platform: &str,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<(), Vec<String>> {
        let method = method.to_ascii_uppercase();
        let (path, mut pairs) = match path.split_once('?') {
            Some((path, raw)) => (path, parse_query(raw)),
            None => (path, Vec::new()),
        };
        pairs.extend(query.iter().cloned());
        let errors = match platform {
            "railway" => self.check_railway(&method, path, &pairs, body),
            "vercel" => self.check_vercel(&method, path, &pairs, body),
            "supabase" => self.check_supabase(&method, path, &pairs, body),
            other => vec![format!(
                "unknown platform \"{other}\" (expected \"railway\", \"vercel\" or \"supabase\")"
            )],
        };
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn check_railway(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        if method != "POST" {
            errors.push(format!(
                "railway: {method} {path}: the GraphQL API takes POST only"
            ));
        }
        if path != RAILWAY_PATH {
            errors.push(format!(
                "railway: {method} {path}: the GraphQL API is at {RAILWAY_PATH}"
            ));
        }
        for (name, _) in query {
            errors.push(format!(
                "railway: query parameter \"{name}\" is not part of the GraphQL API"
            ));
        }
        match body {
            None => {
                errors.push("railway: a JSON body {\"query\", \"variables\"} is required".into())
            }
            Some(body) => {
                let found = self.railway.check_request(body);
                errors.extend(found.into_iter().map(|e| format!("railway: {e}")));
            }
        }
        errors
    }

    fn check_vercel(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Vec<String> {
        let best = self
            .vercel_operations
            .iter()
            .filter(|op| op.method == method)
            .filter_map(|op| Some((openapi::match_path(&op.path, path)?, op)))
            .max_by_key(|(literal, _)| *literal);
        let Some((_, op)) = best else {
            let methods: Vec<&str> = self
                .vercel_operations
                .iter()
                .filter(|op| openapi::match_path(&op.path, path).is_some())
                .map(|op| op.method.as_str())
                .collect();
            return vec![if methods.is_empty() {
                format!("{method} {path}: no Vercel operation has this path ({VERCEL_OPS_FILE})")
            } else {
                format!(
                    "{method} {path}: no Vercel operation for {method} on this path (only {}) \
                     ({VERCEL_OPS_FILE})",
                    methods.join(", ")
                )
            }];
        };
        let prefix = format!("{method} {}", op.path);
        let mut errors = Vec::new();
        let mut seen = Vec::new();
        for (name, _) in query {
            if !op.query.contains(name) && !seen.contains(&name) {
                seen.push(name);
                errors.push(format!(
                    "{prefix}: query parameter \"{name}\" is not declared (declared: {})",
                    op.query.join(", ")
                ));
            }
        }
        if body.is_some() && !op.json_body {
            errors.push(format!(
                "{prefix}: the operation ({}) takes no JSON body, but one was given",
                op.func
            ));
        }
        // Bodies and query values follow the 2025-10 OpenAPI, when it has the operation.
        if let Some(spec_op) = self.vercel.find_shape(method, &op.path) {
            self.vercel
                .check_query(&spec_op, &prefix, query, false, &mut errors);
            if op.json_body {
                self.vercel
                    .check_body(&spec_op, &prefix, body, false, &mut errors);
            }
        }
        if VERCEL_ENV_WRITES.contains(&op.func.as_str())
            && let Some(body) = body
        {
            check_env_types(&prefix, body, &mut errors);
        }
        errors
    }

    fn check_supabase(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Vec<String> {
        let op = match self.supabase.find(method, path) {
            Ok(op) => op,
            Err(e) => return vec![e],
        };
        let prefix = format!("{method} {}", op.template);
        let mut errors = Vec::new();
        self.supabase
            .check_query(&op, &prefix, query, true, &mut errors);
        self.supabase
            .check_body(&op, &prefix, body, true, &mut errors);
        errors
    }
}

/// CORRECTIONS.md §9: env `type` must be one of the current SDK's values (no `secret`).
fn check_env_types(prefix: &str, body: &Value, errors: &mut Vec<String>) {
    let entries: Vec<(String, &Value)> = match body {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("body[{i}].type"), v))
            .collect(),
        other => vec![("body.type".to_string(), other)],
    };
    for (at, entry) in entries {
        let Some(Value::String(ty)) = entry.get("type") else {
            continue;
        };
        let reported = errors
            .iter()
            .any(|e| e.starts_with(&format!("{prefix}: {at}: ")));
        if !VERCEL_ENV_TYPES.contains(&ty.as_str()) && !reported {
            let allowed = serde_json::to_string(&VERCEL_ENV_TYPES).unwrap_or_default();
            errors.push(format!(
                "{prefix}: {at}: {} is not one of {allowed}",
                Value::from(ty.as_str())
            ));
        }
    }
}

fn vercel_operations(doc: &Value) -> Result<Vec<VercelOperation>, String> {
    let list = doc.get("operations").and_then(Value::as_array);
    let list = list.ok_or_else(|| format!("{VERCEL_OPS_FILE}: no `operations` array"))?;
    list.iter()
        .map(|op| {
            let text = |key: &str| {
                op.get(key)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| format!("{VERCEL_OPS_FILE}: an operation has no `{key}`: {op}"))
            };
            let query = op
                .get("query")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            Ok(VercelOperation {
                func: text("func")?,
                method: text("method")?.to_ascii_uppercase(),
                path: text("path")?,
                query: query
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                json_body: op.get("jsonBody").and_then(Value::as_bool).unwrap_or(false),
            })
        })
        .collect()
}

/// `a=1&b=x%20y` → `[("a", "1"), ("b", "x y")]` (`+` is a space).
fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |i: usize| bytes.get(i).and_then(|b| (*b as char).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
            (b'+', _, _) => out.push(b' '),
            (b, _, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
