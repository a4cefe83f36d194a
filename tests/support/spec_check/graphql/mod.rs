//! Validates GraphQL requests (document and JSON variables) against an introspection schema.

use std::collections::{HashMap, HashSet};

use graphql_parser::query::{self as q, Definition, OperationDefinition, Selection};
use serde_json::Value;

mod schema;
mod values;

pub use schema::Schema;
use schema::{FieldDef, InputValue, Kind, TypeRef, is_composite};

type Doc = q::Document<'static, String>;
type Literal = q::Value<'static, String>;
type SelectionSet = q::SelectionSet<'static, String>;
type Directives = [q::Directive<'static, String>];

impl Schema {
    /// Checks a request body `{"query", "variables"?, "operationName"?}`.
    pub fn check_request(&self, body: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        let Some(object) = body.as_object() else {
            return vec![format!(
                "the body must be an object {{query, variables?, operationName?}}, found {body}"
            )];
        };
        for key in object.keys() {
            if !["query", "variables", "operationName", "extensions"].contains(&key.as_str()) {
                errors.push(format!(
                    "body.{key}: not a GraphQL request key (query, variables, operationName)"
                ));
            }
        }
        let Some(text) = object.get("query").and_then(Value::as_str) else {
            errors.push("body.query: the document must be a string".into());
            return errors;
        };
        let empty = serde_json::Map::new();
        let variables = match object.get("variables") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(map)) => map,
            Some(other) => {
                errors.push(format!("body.variables: must be an object, found {other}"));
                &empty
            }
        };
        let operation_name = match object.get("operationName") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(name.as_str()),
            Some(other) => {
                errors.push(format!(
                    "body.operationName: must be a string, found {other}"
                ));
                None
            }
        };
        let doc: Doc = match q::parse_query::<String>(text) {
            Ok(doc) => doc.into_static(),
            Err(e) => {
                errors.push(format!("the document does not parse: {e}"));
                return errors;
            }
        };
        let mut checker = Checker::new(self, &doc);
        checker.check_document(&doc, operation_name, variables);
        errors.extend(checker.errors);
        errors
    }
}

struct Operation<'d> {
    kind: &'static str,
    name: Option<&'d str>,
    variables: &'d [q::VariableDefinition<'static, String>],
    directives: &'d Directives,
    selection: &'d SelectionSet,
}

fn operation<'a>(def: &'a OperationDefinition<'static, String>) -> Operation<'a> {
    let none: &[q::VariableDefinition<'static, String>] = &[];
    match def {
        OperationDefinition::SelectionSet(s) => Operation {
            kind: "query",
            name: None,
            variables: none,
            directives: &[],
            selection: s,
        },
        OperationDefinition::Query(o) => Operation {
            kind: "query",
            name: o.name.as_deref(),
            variables: &o.variable_definitions,
            directives: &o.directives,
            selection: &o.selection_set,
        },
        OperationDefinition::Mutation(o) => Operation {
            kind: "mutation",
            name: o.name.as_deref(),
            variables: &o.variable_definitions,
            directives: &o.directives,
            selection: &o.selection_set,
        },
        OperationDefinition::Subscription(o) => Operation {
            kind: "subscription",
            name: o.name.as_deref(),
            variables: &o.variable_definitions,
            directives: &o.directives,
            selection: &o.selection_set,
        },
    }
}

/// A declared variable: its type and whether it has a (non-null) default.
struct Variable {
    ty: TypeRef,
    has_default: bool,
}

struct Checker<'s, 'd> {
    schema: &'s Schema,
    fragments: HashMap<&'d str, &'d q::FragmentDefinition<'static, String>>,
    used_fragments: HashSet<&'d str>,
    /// The variables of the operation being checked (`None` inside default values).
    variables: Option<HashMap<String, Variable>>,
    used_variables: HashSet<String>,
    visiting: Vec<&'d str>,
    errors: Vec<String>,
}

impl<'s, 'd> Checker<'s, 'd> {
    fn new(schema: &'s Schema, doc: &'d Doc) -> Self {
        let mut fragments = HashMap::new();
        let mut errors = Vec::new();
        for def in &doc.definitions {
            if let Definition::Fragment(f) = def
                && fragments.insert(f.name.as_str(), f).is_some()
            {
                errors.push(format!("fragment \"{}\" is defined more than once", f.name));
            }
        }
        let (used_fragments, used_variables) = (HashSet::new(), HashSet::new());
        let (variables, visiting) = (None, Vec::new());
        Checker {
            schema,
            fragments,
            used_fragments,
            variables,
            used_variables,
            visiting,
            errors,
        }
    }

    fn error(&mut self, message: String) {
        self.errors.push(message);
    }

    fn check_document(
        &mut self,
        doc: &'d Doc,
        name: Option<&str>,
        json: &serde_json::Map<String, Value>,
    ) {
        let ops: Vec<Operation<'d>> = (doc.definitions.iter())
            .filter_map(|d| {
                if let Definition::Operation(o) = d {
                    Some(operation(o))
                } else {
                    None
                }
            })
            .collect();
        if ops.is_empty() {
            return self.error("the document has no operation".into());
        }
        if ops.len() > 1 && ops.iter().any(|o| o.name.is_none()) {
            self.error("an anonymous operation must be the only operation in the document".into());
        }
        let mut names = HashSet::new();
        for n in ops.iter().filter_map(|o| o.name) {
            if !names.insert(n) {
                self.error(format!("operation \"{n}\" is defined more than once"));
            }
        }
        let selected = match name {
            Some(name) => {
                let found = ops.iter().position(|o| o.name == Some(name));
                if found.is_none() {
                    self.error(format!(
                        "operationName \"{name}\" names no operation of the document"
                    ));
                }
                found
            }
            None if ops.len() == 1 => Some(0),
            None => {
                self.error("the document has several operations but no operationName".into());
                None
            }
        };
        for (i, op) in ops.iter().enumerate() {
            self.check_operation(op, (selected == Some(i)).then_some(json));
        }
        let mut unused: Vec<&str> = self
            .fragments
            .keys()
            .copied()
            .filter(|f| !self.used_fragments.contains(f))
            .collect();
        unused.sort();
        for f in unused {
            self.error(format!("fragment \"{f}\" is never used"));
        }
    }

    fn check_operation(
        &mut self,
        op: &Operation<'d>,
        json: Option<&serde_json::Map<String, Value>>,
    ) {
        let schema = self.schema;
        let root = match op.kind {
            "query" => Some(&schema.query),
            "mutation" => schema.mutation.as_ref(),
            _ => schema.subscription.as_ref(),
        };
        let Some(root) = root else {
            return self.error(format!("the schema has no {} type", op.kind));
        };
        self.variables = None;
        let mut variables = HashMap::new();
        for def in op.variables {
            let (name, ty) = (&def.name, TypeRef::from_ast(&def.var_type));
            match schema.types.get(ty.name()).map(|t| t.kind) {
                None => self.error(format!(
                    "variable ${name}: type \"{}\" does not exist",
                    ty.name()
                )),
                Some(kind) if is_composite(kind) => self.error(format!(
                    "variable ${name}: type \"{}\" is not an input type",
                    ty.name()
                )),
                _ => {}
            }
            if let Some(default) = &def.default_value {
                self.check_literal(default, &ty, false, &format!("${name} (default)"));
            }
            let has_default = def
                .default_value
                .as_ref()
                .is_some_and(|d| *d != q::Value::Null);
            if variables
                .insert(name.clone(), Variable { ty, has_default })
                .is_some()
            {
                self.error(format!("variable ${name} is declared more than once"));
            }
        }
        self.variables = Some(variables);
        self.used_variables.clear();
        self.check_directives(op.directives);
        self.check_selection_set(root, op.selection);
        let variables = self.variables.take().unwrap_or_default();
        for def in op.variables {
            if !self.used_variables.contains(&def.name) {
                self.error(format!("variable ${} is declared but never used", def.name));
            }
        }
        let Some(json) = json else { return };
        for name in json.keys().filter(|n| !variables.contains_key(*n)) {
            self.error(format!(
                "variables.{name}: the operation declares no variable ${name}"
            ));
        }
        for def in op.variables {
            let ty = TypeRef::from_ast(&def.var_type);
            match json.get(&def.name) {
                Some(value) => self.check_json(value, &ty, &format!("variables.{}", def.name)),
                None if matches!(ty, TypeRef::NonNull(_)) && def.default_value.is_none() => self
                    .error(format!(
                        "variables.{0}: ${0} of type \"{ty}\" is required but not given",
                        def.name
                    )),
                None => {}
            }
        }
    }

    fn possible_types(&self, name: &str) -> Vec<String> {
        match self.schema.types.get(name) {
            Some(t) if t.kind == Kind::Object => vec![name.to_string()],
            Some(t) => t.possible.clone(),
            None => Vec::new(),
        }
    }

    /// Whether a fragment on `target` may be spread within `parent` (reports why not).
    fn check_fragment_type(&mut self, parent: &str, target: &str, what: &str) -> bool {
        let Some(t) = self.schema.types.get(target) else {
            self.error(format!("{what}: type \"{target}\" does not exist"));
            return false;
        };
        if !is_composite(t.kind) {
            self.error(format!(
                "{what}: type \"{target}\" is not an object, interface or union"
            ));
            return false;
        }
        let possible = self.possible_types(parent);
        if !self
            .possible_types(target)
            .iter()
            .any(|t| possible.contains(t))
        {
            self.error(format!(
                "{what} on \"{target}\" can never apply within \"{parent}\""
            ));
            return false;
        }
        true
    }

    fn check_selection_set(&mut self, parent: &str, set: &'d SelectionSet) {
        for selection in &set.items {
            match selection {
                Selection::Field(field) => self.check_field(parent, field),
                Selection::InlineFragment(fragment) => {
                    self.check_directives(&fragment.directives);
                    let target = match &fragment.type_condition {
                        Some(q::TypeCondition::On(t)) => t.as_str(),
                        None => parent,
                    };
                    if self.check_fragment_type(parent, target, "an inline fragment") {
                        self.check_selection_set(target, &fragment.selection_set);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    self.check_directives(&spread.directives);
                    let name = spread.fragment_name.as_str();
                    let Some(fragment) = self.fragments.get(name).copied() else {
                        self.error(format!("fragment \"{name}\" is not defined"));
                        continue;
                    };
                    self.used_fragments.insert(fragment.name.as_str());
                    if self.visiting.contains(&fragment.name.as_str()) {
                        self.error(format!("fragment \"{name}\" spreads itself"));
                        continue;
                    }
                    let q::TypeCondition::On(target) = &fragment.type_condition;
                    if self.check_fragment_type(parent, target, &format!("fragment \"{name}\"")) {
                        self.visiting.push(fragment.name.as_str());
                        self.check_directives(&fragment.directives);
                        self.check_selection_set(target, &fragment.selection_set);
                        self.visiting.pop();
                    }
                }
            }
        }
    }

    fn check_field(&mut self, parent: &str, field: &'d q::Field<'static, String>) {
        let schema = self.schema;
        self.check_directives(&field.directives);
        let (name, at) = (field.name.as_str(), format!("{parent}.{}", field.name));
        let meta;
        let def = match name {
            "__typename" => {
                meta = FieldDef {
                    args: Vec::new(),
                    ty: TypeRef::Named("String".into()),
                };
                &meta
            }
            "__schema" | "__type" if parent == schema.query => {
                let ty = if name == "__schema" {
                    "__Schema"
                } else {
                    "__Type"
                };
                let args = if name == "__type" {
                    let ty = TypeRef::NonNull(Box::new(TypeRef::Named("String".into())));
                    vec![InputValue {
                        name: "name".into(),
                        ty,
                        has_default: false,
                    }]
                } else {
                    Vec::new()
                };
                meta = FieldDef {
                    args,
                    ty: TypeRef::Named(ty.into()),
                };
                &meta
            }
            _ => match schema.types.get(parent).and_then(|t| t.fields.get(name)) {
                Some(def) => def,
                None => {
                    // Still count the variables its arguments use, so they are not "unused".
                    field
                        .arguments
                        .iter()
                        .for_each(|(_, v)| self.mark_variables(v, &at));
                    return self.error(format!(
                        "field \"{name}\" does not exist on type \"{parent}\""
                    ));
                }
            },
        };
        self.check_arguments(&field.arguments, &def.args, &at, &format!("field \"{at}\""));
        let ty = &def.ty;
        match schema.types.get(ty.name()).map(|t| t.kind) {
            Some(kind) if is_composite(kind) => {
                if field.selection_set.items.is_empty() {
                    self.error(format!(
                        "field \"{at}\" of type \"{ty}\" must have a selection of subfields"
                    ));
                } else {
                    self.check_selection_set(ty.name(), &field.selection_set);
                }
            }
            _ if !field.selection_set.items.is_empty() => self.error(format!(
                "field \"{at}\" of type \"{ty}\" is a leaf and cannot have a selection of subfields"
            )),
            _ => {}
        }
    }

    /// Checks `given` against `defs`; `short` names the owner in locations (`Query.project(id)`),
    /// `owner` in messages (`field "Query.project"`).
    fn check_arguments(
        &mut self,
        given: &'d [(String, Literal)],
        defs: &[InputValue],
        short: &str,
        owner: &str,
    ) {
        let mut seen = HashSet::new();
        for (name, value) in given {
            if !seen.insert(name) {
                self.error(format!(
                    "argument \"{name}\" of {owner} is given more than once"
                ));
            }
            match defs.iter().find(|d| d.name == *name) {
                Some(def) => {
                    let at = format!("{short}({name})");
                    self.check_literal(value, &def.ty, def.has_default, &at);
                }
                None => {
                    self.mark_variables(value, owner);
                    let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
                    let names = if names.is_empty() {
                        "it takes none".into()
                    } else {
                        names.join(", ")
                    };
                    self.error(format!(
                        "argument \"{name}\" does not exist on {owner} (arguments: {names})"
                    ));
                }
            }
        }
        for def in defs.iter().filter(|d| d.required()) {
            if !given.iter().any(|(name, _)| *name == def.name) {
                let (name, ty) = (&def.name, &def.ty);
                self.error(format!(
                    "argument \"{name}\" of {owner} is required (type \"{ty}\") but not given"
                ));
            }
        }
    }

    fn check_directives(&mut self, directives: &'d Directives) {
        for directive in directives {
            let (short, owner) = (
                format!("@{}", directive.name),
                format!("directive \"@{}\"", directive.name),
            );
            match self.schema.directives.get(&directive.name) {
                Some(args) => self.check_arguments(&directive.arguments, args, &short, &owner),
                None => self.error(format!("{owner} is not defined")),
            }
        }
    }
}
