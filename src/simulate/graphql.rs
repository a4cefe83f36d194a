//! Railway's GraphQL endpoint: parses the document and resolves each top-level field.

use graphql_parser::query::{
    Definition, Document, OperationDefinition, Selection, Value as GqlValue, parse_query,
};
use serde_json::{Map, Value, json};

use super::http::{ApiRequest, Ctx, Reply, railway_error};
use super::railway;
use super::state::SimState;

/// Why a field could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GqlError {
    /// An execution error: HTTP 200 with `errors` (unknown ids, refused actions).
    #[error("{message}")]
    Exec { message: String, code: &'static str },
    /// The request itself is wrong (a missing argument): HTTP 400.
    #[error("{message}")]
    Invalid { message: String, code: &'static str },
}

impl GqlError {
    pub(crate) fn not_found(what: &str) -> GqlError {
        GqlError::Exec {
            message: format!("{what} not found"),
            code: "NOT_FOUND",
        }
    }

    pub(crate) fn refused(message: impl Into<String>) -> GqlError {
        GqlError::Exec {
            message: message.into(),
            code: "BAD_USER_INPUT",
        }
    }

    pub(crate) fn missing(field: &str, arg: &str) -> GqlError {
        GqlError::Invalid {
            message: format!(
                "Field \"{field}\" argument \"{arg}\" is required, but it was not provided."
            ),
            code: "GRAPHQL_VALIDATION_FAILED",
        }
    }
}

/// The top-level fields the simulator serves, by operation type.
const QUERIES: &[&str] = &[
    "projects",
    "project",
    "environment",
    "variables",
    "domains",
    "deployments",
    "deployment",
];
const MUTATIONS: &[&str] = &[
    "variableCollectionUpsert",
    "variableDelete",
    "customDomainCreate",
    "customDomainDelete",
    "customDomainIssueCertificate",
    "serviceInstanceDeployV2",
    "serviceInstanceRedeploy",
    "deploymentRollback",
];

fn invalid(message: &str, code: &str) -> Reply {
    railway_error(400, message, Some(code))
}

/// Serves `POST /graphql/v2`.
pub(crate) fn handle(state: &mut SimState, ctx: &Ctx, req: &ApiRequest) -> Reply {
    if req.method != axum::http::Method::POST || req.segs() != ["graphql", "v2"] {
        return super::http::not_found(super::SimPlatform::Railway, &req.path);
    }
    let body = req.body.as_ref();
    let Some(query) = body.and_then(|b| b.get("query")).and_then(Value::as_str) else {
        return invalid("Must provide query string.", "BAD_REQUEST");
    };
    let variables = match body.and_then(|b| b.get("variables")) {
        Some(Value::Object(m)) => m.clone(),
        Some(Value::Null) | None => Map::new(),
        Some(_) => return invalid("Variables must be an object.", "BAD_REQUEST"),
    };
    let op_name = body
        .and_then(|b| b.get("operationName"))
        .and_then(Value::as_str);
    let doc: Document<'_, String> = match parse_query(query) {
        Ok(d) => d,
        Err(e) => {
            let msg = format!("Syntax Error: {}", e.to_string().trim());
            return invalid(&msg, "GRAPHQL_PARSE_FAILED");
        }
    };
    let ops: Vec<&OperationDefinition<'_, String>> = doc
        .definitions
        .iter()
        .filter_map(|d| match d {
            Definition::Operation(o) => Some(o),
            Definition::Fragment(_) => None,
        })
        .collect();
    let chosen = match op_name {
        Some(name) => ops.iter().find(|o| operation_name(o) == Some(name)),
        None if ops.len() == 1 => ops.first(),
        None => {
            return invalid(
                "Must provide operation name if query contains multiple operations.",
                "GRAPHQL_VALIDATION_FAILED",
            );
        }
    };
    let Some(op) = chosen else {
        let msg = format!("Unknown operation named \"{}\".", op_name.unwrap_or(""));
        return invalid(&msg, "GRAPHQL_VALIDATION_FAILED");
    };
    let (type_name, known, selection) = match op {
        OperationDefinition::Query(q) => ("Query", QUERIES, &q.selection_set),
        OperationDefinition::SelectionSet(s) => ("Query", QUERIES, s),
        OperationDefinition::Mutation(m) => ("Mutation", MUTATIONS, &m.selection_set),
        OperationDefinition::Subscription(s) => ("Subscription", &[][..], &s.selection_set),
    };
    let mut fields = Vec::new();
    for item in &selection.items {
        let Selection::Field(f) = item else {
            return invalid(
                "Fragments are not supported by the simulator.",
                "GRAPHQL_VALIDATION_FAILED",
            );
        };
        if f.name == "__typename" {
            continue;
        }
        if !known.contains(&f.name.as_str()) {
            let msg = format!("Cannot query field \"{}\" on type \"{type_name}\".", f.name);
            return invalid(&msg, "GRAPHQL_VALIDATION_FAILED");
        }
        fields.push(f);
    }
    let mut data = Map::new();
    for f in fields {
        let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
        let mut args = Map::new();
        for (name, value) in &f.arguments {
            args.insert(name.clone(), to_json(value, &variables));
        }
        match railway::exec(state, ctx, &f.name, &args) {
            Ok(v) => {
                data.insert(key, v);
            }
            Err(GqlError::Exec { message, code }) => {
                return Reply::ok(json!({
                    "data": null,
                    "errors": [{ "message": message, "path": [key], "extensions": { "code": code } }],
                }));
            }
            Err(GqlError::Invalid { message, code }) => return invalid(&message, code),
        }
    }
    Reply::ok(json!({ "data": data }))
}

fn operation_name<'a>(op: &'a OperationDefinition<'_, String>) -> Option<&'a str> {
    match op {
        OperationDefinition::Query(q) => q.name.as_deref(),
        OperationDefinition::Mutation(m) => m.name.as_deref(),
        OperationDefinition::Subscription(s) => s.name.as_deref(),
        OperationDefinition::SelectionSet(_) => None,
    }
}

/// A GraphQL value as JSON, with `$variables` replaced (missing ones are null).
fn to_json(v: &GqlValue<'_, String>, vars: &Map<String, Value>) -> Value {
    match v {
        GqlValue::Variable(name) => vars.get(name).cloned().unwrap_or(Value::Null),
        GqlValue::Int(n) => n.as_i64().map(Value::from).unwrap_or(Value::Null),
        GqlValue::Float(f) => json!(f),
        GqlValue::String(s) => Value::String(s.clone()),
        GqlValue::Boolean(b) => Value::Bool(*b),
        GqlValue::Null => Value::Null,
        GqlValue::Enum(e) => Value::String(e.clone()),
        GqlValue::List(items) => Value::Array(items.iter().map(|i| to_json(i, vars)).collect()),
        GqlValue::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), to_json(v, vars)))
                .collect(),
        ),
    }
}

/// A required string argument (or input field).
pub(crate) fn req_str(
    args: &Map<String, Value>,
    field: &str,
    name: &str,
) -> Result<String, GqlError> {
    opt_str(args, name).ok_or_else(|| GqlError::missing(field, name))
}

/// An optional string argument.
pub(crate) fn opt_str(args: &Map<String, Value>, name: &str) -> Option<String> {
    args.get(name).and_then(Value::as_str).map(str::to_string)
}

/// A required input object argument.
pub(crate) fn input<'a>(
    args: &'a Map<String, Value>,
    field: &str,
) -> Result<&'a Map<String, Value>, GqlError> {
    args.get("input")
        .and_then(Value::as_object)
        .ok_or_else(|| GqlError::missing(field, "input"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_variables_and_literals() {
        let doc: Document<'_, String> = parse_query(
            "query Q($id: String!) { project(id: $id, first: 3, x: [A, \"b\"]) { id } }",
        )
        .expect("parses");
        let vars: Map<String, Value> = [("id".to_string(), json!("p1"))].into_iter().collect();
        let Definition::Operation(OperationDefinition::Query(q)) = &doc.definitions[0] else {
            panic!("not a query")
        };
        let Selection::Field(f) = &q.selection_set.items[0] else {
            panic!("not a field")
        };
        let args: Vec<Value> = f.arguments.iter().map(|(_, v)| to_json(v, &vars)).collect();
        assert_eq!(args, vec![json!("p1"), json!(3), json!(["A", "b"])]);
    }
}
