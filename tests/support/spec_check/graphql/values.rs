//! Literal arguments and JSON variables checked against GraphQL input types.

use graphql_parser::query as q;
use serde_json::Value;

use super::schema::{Kind, TypeRef, compatible};
use super::{Checker, Literal};

impl Checker<'_, '_> {
    /// Checks a literal (or variable usage) at a location of type `ty`.
    pub(super) fn check_literal(
        &mut self,
        value: &Literal,
        ty: &TypeRef,
        location_default: bool,
        at: &str,
    ) {
        match (value, ty) {
            (q::Value::Variable(name), _) => {
                self.used_variables.insert(name.clone());
                let Some(variables) = &self.variables else {
                    return self.error(format!("{at}: variables are not allowed here (${name})"));
                };
                let Some(var) = variables.get(name) else {
                    return self.error(format!("{at}: variable ${name} is not declared"));
                };
                let allowed = match ty {
                    TypeRef::NonNull(inner) if !matches!(var.ty, TypeRef::NonNull(_)) => {
                        (var.has_default || location_default) && compatible(&var.ty, inner)
                    }
                    _ => compatible(&var.ty, ty),
                };
                if !allowed {
                    let var_ty = &var.ty;
                    self.error(format!(
                        "{at}: variable ${name} of type \"{var_ty}\" is used where \"{ty}\" is expected"
                    ));
                }
            }
            (q::Value::Null, TypeRef::NonNull(_)) => {
                self.error(format!("{at}: null is not allowed for type \"{ty}\""));
            }
            (q::Value::Null, _) => {}
            (_, TypeRef::NonNull(inner)) => self.check_literal(value, inner, false, at),
            (q::Value::List(items), TypeRef::List(inner)) => {
                for (i, item) in items.iter().enumerate() {
                    self.check_literal(item, inner, false, &format!("{at}[{i}]"));
                }
            }
            (_, TypeRef::List(inner)) => self.check_literal(value, inner, false, at),
            (_, TypeRef::Named(name)) => self.check_named_literal(value, name, at),
        }
    }

    fn check_named_literal(&mut self, value: &Literal, name: &str, at: &str) {
        let Some(t) = self.schema.types.get(name) else {
            return;
        };
        let string = TypeRef::Named("String".into());
        let ok = match (t.kind, name, value) {
            (Kind::Scalar, "String", v) => matches!(v, q::Value::String(_)),
            (Kind::Scalar, "ID", v) => matches!(v, q::Value::String(_) | q::Value::Int(_)),
            (Kind::Scalar, "Int", q::Value::Int(n)) => {
                n.as_i64().is_some_and(|n| i32::try_from(n).is_ok())
            }
            (Kind::Scalar, "Float", v) => matches!(v, q::Value::Int(_) | q::Value::Float(_)),
            (Kind::Scalar, "Boolean", v) => matches!(v, q::Value::Boolean(_)),
            (Kind::Scalar, "Int", _) => false,
            (Kind::Scalar, "EnvironmentVariables", q::Value::Object(map)) => {
                for (key, v) in map {
                    self.check_literal(v, &string, false, &format!("{at}.{key}"));
                }
                true
            }
            (Kind::Scalar, "EnvironmentVariables", _) => false,
            (Kind::Scalar, _, v) => {
                self.mark_variables(v, at);
                true
            }
            (Kind::Enum, _, q::Value::Enum(e)) if !t.enum_values.contains(e) => {
                let values = t.enum_values.join(", ");
                return self.error(format!(
                    "{at}: {e} is not a value of enum \"{name}\" ({values})"
                ));
            }
            (Kind::Enum, _, v) => matches!(v, q::Value::Enum(_)),
            (Kind::InputObject, _, q::Value::Object(map)) => {
                for (key, v) in map {
                    match t.input_fields.iter().find(|f| f.name == *key) {
                        Some(f) => {
                            self.check_literal(v, &f.ty, f.has_default, &format!("{at}.{key}"))
                        }
                        None => self.error(format!(
                            "{at}: field \"{key}\" is not defined by input type \"{name}\""
                        )),
                    }
                }
                let missing = t
                    .input_fields
                    .iter()
                    .filter(|f| f.required() && !map.contains_key(&f.name));
                for f in missing {
                    let (field, ty) = (&f.name, &f.ty);
                    self.errors.push(format!(
                        "{at}: required field \"{field}\" (type \"{ty}\") of input type \"{name}\" is missing"
                    ));
                }
                true
            }
            (Kind::InputObject, _, _) => false,
            _ => return self.error(format!("{at}: type \"{name}\" is not an input type")),
        };
        if !ok {
            self.error(format!("{at}: expected type \"{name}\", found {value}"));
        }
    }

    /// Records the variables inside a custom scalar's literal.
    pub(super) fn mark_variables(&mut self, value: &Literal, at: &str) {
        match value {
            q::Value::Variable(name) => {
                self.used_variables.insert(name.clone());
                if !self
                    .variables
                    .as_ref()
                    .is_some_and(|v| v.contains_key(name))
                {
                    self.error(format!("{at}: variable ${name} is not declared"));
                }
            }
            q::Value::List(items) => items.iter().for_each(|v| self.mark_variables(v, at)),
            q::Value::Object(map) => map.values().for_each(|v| self.mark_variables(v, at)),
            _ => {}
        }
    }

    /// Checks a JSON variable value against its declared type (GraphQL input coercion).
    pub(super) fn check_json(&mut self, value: &Value, ty: &TypeRef, at: &str) {
        match (value, ty) {
            (Value::Null, TypeRef::NonNull(_)) => {
                self.error(format!("{at}: null is not allowed for type \"{ty}\""));
            }
            (Value::Null, _) => {}
            (_, TypeRef::NonNull(inner)) => self.check_json(value, inner, at),
            (Value::Array(items), TypeRef::List(inner)) => {
                for (i, item) in items.iter().enumerate() {
                    self.check_json(item, inner, &format!("{at}[{i}]"));
                }
            }
            (_, TypeRef::List(inner)) => self.check_json(value, inner, at),
            (_, TypeRef::Named(name)) => self.check_json_named(value, name, at),
        }
    }

    fn check_json_named(&mut self, value: &Value, name: &str, at: &str) {
        let Some(t) = self.schema.types.get(name) else {
            return;
        };
        let ok = match (t.kind, name) {
            (Kind::Scalar, "String") => value.is_string(),
            (Kind::Scalar, "ID") => value.is_string() || value.is_i64() || value.is_u64(),
            (Kind::Scalar, "Int") => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
            (Kind::Scalar, "Float") => value.is_number(),
            (Kind::Scalar, "Boolean") => value.is_boolean(),
            (Kind::Scalar, "EnvironmentVariables") => match value.as_object() {
                Some(map) => {
                    for (key, v) in map.iter().filter(|(_, v)| !v.is_string()) {
                        self.error(format!(
                            "{at}.{key}: expected a string (EnvironmentVariables values are strings), found {v}"
                        ));
                    }
                    true
                }
                None => false,
            },
            (Kind::Scalar, _) => true,
            (Kind::Enum, _) => match value.as_str() {
                Some(s) if t.enum_values.iter().any(|e| e == s) => true,
                Some(s) => {
                    let values = t.enum_values.join(", ");
                    return self.error(format!(
                        "{at}: \"{s}\" is not a value of enum \"{name}\" ({values})"
                    ));
                }
                None => false,
            },
            (Kind::InputObject, _) => match value.as_object() {
                Some(map) => {
                    for (key, v) in map {
                        match t.input_fields.iter().find(|f| f.name == *key) {
                            Some(f) => self.check_json(v, &f.ty, &format!("{at}.{key}")),
                            None => self.error(format!(
                                "{at}: field \"{key}\" is not defined by input type \"{name}\""
                            )),
                        }
                    }
                    for f in t
                        .input_fields
                        .iter()
                        .filter(|f| f.required() && !map.contains_key(&f.name))
                    {
                        let (field, ty) = (&f.name, &f.ty);
                        self.errors.push(format!(
                            "{at}: required field \"{field}\" (type \"{ty}\") of input type \"{name}\" is missing"
                        ));
                    }
                    true
                }
                None => false,
            },
            _ => return self.error(format!("{at}: type \"{name}\" is not an input type")),
        };
        if !ok {
            self.error(format!("{at}: expected type \"{name}\", found {value}"));
        }
    }
}
