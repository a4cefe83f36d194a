//! The introspected GraphQL schema: types, fields, arguments and type references.

use std::collections::HashMap;
use std::fmt;

use graphql_parser::query as q;
use serde_json::Value;

/// A type reference: `String`, `[DeploymentStatus!]`, `String!`.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum TypeRef {
    Named(String),
    List(Box<TypeRef>),
    NonNull(Box<TypeRef>),
}

impl TypeRef {
    pub(super) fn from_json(v: &Value) -> Result<TypeRef, String> {
        let inner = || TypeRef::from_json(v.get("ofType").unwrap_or(&Value::Null)).map(Box::new);
        match v.get("kind").and_then(Value::as_str) {
            Some("NON_NULL") => Ok(TypeRef::NonNull(inner()?)),
            Some("LIST") => Ok(TypeRef::List(inner()?)),
            Some(_) => match v.get("name").and_then(Value::as_str) {
                Some(name) => Ok(TypeRef::Named(name.to_string())),
                None => Err(format!("a type reference without a name: {v}")),
            },
            None => Err(format!("a type reference without a kind: {v}")),
        }
    }

    pub(super) fn from_ast(t: &q::Type<'static, String>) -> TypeRef {
        match t {
            q::Type::NamedType(name) => TypeRef::Named(name.clone()),
            q::Type::ListType(inner) => TypeRef::List(Box::new(TypeRef::from_ast(inner))),
            q::Type::NonNullType(inner) => TypeRef::NonNull(Box::new(TypeRef::from_ast(inner))),
        }
    }

    pub(super) fn name(&self) -> &str {
        match self {
            TypeRef::Named(name) => name,
            TypeRef::List(inner) | TypeRef::NonNull(inner) => inner.name(),
        }
    }
}

impl fmt::Display for TypeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeRef::Named(name) => f.write_str(name),
            TypeRef::List(inner) => write!(f, "[{inner}]"),
            TypeRef::NonNull(inner) => write!(f, "{inner}!"),
        }
    }
}

/// Spec "AreTypesCompatible": a variable of type `var` may flow into a location of type `loc`.
pub(super) fn compatible(var: &TypeRef, loc: &TypeRef) -> bool {
    match (var, loc) {
        (TypeRef::NonNull(v), TypeRef::NonNull(l)) => compatible(v, l),
        (_, TypeRef::NonNull(_)) => false,
        (TypeRef::NonNull(v), l) => compatible(v, l),
        (TypeRef::List(v), TypeRef::List(l)) => compatible(v, l),
        (TypeRef::Named(v), TypeRef::Named(l)) => v == l,
        _ => false,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Kind {
    Scalar,
    Object,
    Interface,
    Union,
    Enum,
    InputObject,
}

pub(super) struct InputValue {
    pub(super) name: String,
    pub(super) ty: TypeRef,
    pub(super) has_default: bool,
}

impl InputValue {
    pub(super) fn from_json(v: &Value) -> Result<InputValue, String> {
        Ok(InputValue {
            name: v
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            ty: TypeRef::from_json(v.get("type").unwrap_or(&Value::Null))?,
            has_default: !v.get("defaultValue").unwrap_or(&Value::Null).is_null(),
        })
    }

    pub(super) fn required(&self) -> bool {
        matches!(self.ty, TypeRef::NonNull(_)) && !self.has_default
    }
}

pub(super) fn input_values(v: Option<&Value>) -> Result<Vec<InputValue>, String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(InputValue::from_json)
        .collect()
}

pub(super) struct FieldDef {
    pub(super) args: Vec<InputValue>,
    pub(super) ty: TypeRef,
}

pub(super) struct TypeDef {
    pub(super) kind: Kind,
    pub(super) fields: HashMap<String, FieldDef>,
    pub(super) input_fields: Vec<InputValue>,
    pub(super) enum_values: Vec<String>,
    pub(super) possible: Vec<String>,
}

/// An introspected GraphQL schema.
pub struct Schema {
    pub(super) query: String,
    pub(super) mutation: Option<String>,
    pub(super) subscription: Option<String>,
    pub(super) types: HashMap<String, TypeDef>,
    pub(super) directives: HashMap<String, Vec<InputValue>>,
}

impl Schema {
    /// From an introspection result (`{"data": {"__schema": …}}` or `{"__schema": …}`).
    pub fn from_introspection(doc: &Value) -> Result<Schema, String> {
        let schema = doc.get("data").unwrap_or(doc).get("__schema");
        let schema = schema.ok_or("no `__schema` in the introspection result")?;
        let root = |key: &str| {
            schema
                .get(key)
                .and_then(|t| t.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let mut types = HashMap::new();
        for t in schema
            .get("types")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let kind = match t.get("kind").and_then(Value::as_str) {
                Some("SCALAR") => Kind::Scalar,
                Some("OBJECT") => Kind::Object,
                Some("INTERFACE") => Kind::Interface,
                Some("UNION") => Kind::Union,
                Some("ENUM") => Kind::Enum,
                Some("INPUT_OBJECT") => Kind::InputObject,
                other => return Err(format!("type {name} has an unknown kind {other:?}")),
            };
            let mut fields = HashMap::new();
            for f in t
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let field_name = f.get("name").and_then(Value::as_str).unwrap_or_default();
                let ty = TypeRef::from_json(f.get("type").unwrap_or(&Value::Null))?;
                let args = input_values(f.get("args"))?;
                fields.insert(field_name.to_string(), FieldDef { args, ty });
            }
            let names = |key: &str| -> Vec<String> {
                let list = t.get(key).and_then(Value::as_array).into_iter().flatten();
                list.filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
                    .collect()
            };
            let (enum_values, possible) = (names("enumValues"), names("possibleTypes"));
            let input_fields = input_values(t.get("inputFields"))?;
            types.insert(
                name,
                TypeDef {
                    kind,
                    fields,
                    input_fields,
                    enum_values,
                    possible,
                },
            );
        }
        let mut directives = HashMap::new();
        for d in schema
            .get("directives")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = d
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            directives.insert(name, input_values(d.get("args"))?);
        }
        let query = root("queryType").ok_or("no queryType")?;
        if !types.contains_key(&query) {
            return Err(format!("the query type {query} is not among the types"));
        }
        let (mutation, subscription) = (root("mutationType"), root("subscriptionType"));
        Ok(Schema {
            query,
            mutation,
            subscription,
            types,
            directives,
        })
    }
}

pub(super) fn is_composite(kind: Kind) -> bool {
    matches!(kind, Kind::Object | Kind::Interface | Kind::Union)
}
