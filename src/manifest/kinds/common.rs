//! Types shared by several manifest kinds: metadata, platforms, durations, secret values.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `apiVersion` every manifest carries.
pub const API_VERSION: &str = "tether.dev/v1";

/// Kubernetes-style metadata: the name is the resource's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// The resource's id, unique within its kind: lowercase letters, digits, `-` and `.`.
    pub name: String,
    /// Labels, selectable with `--selector` (`app=backend,tier in (production)`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Free-form notes for people; tether does not read them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The platforms tether converges.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Supabase,
    Railway,
    Vercel,
}

impl Platform {
    pub const ALL: [Platform; 3] = [Platform::Supabase, Platform::Railway, Platform::Vercel];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Railway => "railway",
            Platform::Vercel => "vercel",
            Platform::Supabase => "supabase",
        }
    }

    /// The name people write: "Railway", "Vercel", "Supabase".
    pub fn title(self) -> &'static str {
        match self {
            Platform::Railway => "Railway",
            Platform::Vercel => "Vercel",
            Platform::Supabase => "Supabase",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The data model's environment types.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum EnvironmentType {
    Production,
    Staging,
    Development,
}

impl EnvironmentType {
    pub fn as_str(self) -> &'static str {
        match self {
            EnvironmentType::Production => "production",
            EnvironmentType::Staging => "staging",
            EnvironmentType::Development => "development",
        }
    }
}

/// A duration written for people: `30s`, `1m 30s`, `6months`, `2y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn secs(s: u64) -> Self {
        HumanDuration(Duration::from_secs(s))
    }
    pub const fn millis(ms: u64) -> Self {
        HumanDuration(Duration::from_millis(ms))
    }
    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        humantime::parse_duration(s)
            .map(HumanDuration)
            .map_err(|e| format!("{s:?} is not a duration ({e})"))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map(HumanDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "{s:?} is not a duration ({e}); write it like 30s, 1m 30s, 500ms or 6months"
                ))
            })
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration: a number and a unit (ms, s, m, h, d, w, months, y), e.g. `30s`, `1m 30s`, `6months`.",
            "pattern": "^\\s*[0-9]+\\s*[a-zA-Z]+(\\s*[0-9]+\\s*[a-zA-Z]+)*\\s*$"
        })
    }
}

/// A value in a manifest: plain text, or age ciphertext that only the daemon's identity opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    /// A plain value (numbers and booleans are taken as their text).
    Plain(String),
    /// ASCII-armored age ciphertext (`-----BEGIN AGE ENCRYPTED FILE-----`).
    Secret(String),
    /// A value nobody has filled in yet (`tether import` writes one where the platform never
    /// returns the value): tether leaves the platform's value alone, and `validate` reports it.
    Placeholder(String),
}

impl ValueSource {
    pub fn is_secret(&self) -> bool {
        matches!(self, ValueSource::Secret(_))
    }
}

impl<'de> Deserialize<'de> for ValueSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ValueSource;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean, or {secret: <age ciphertext>}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ValueSource, E> {
                Ok(ValueSource::Plain(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<ValueSource, E> {
                Ok(ValueSource::Plain(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ValueSource, E> {
                Ok(ValueSource::Plain(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ValueSource, E> {
                Ok(ValueSource::Plain(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ValueSource, E> {
                Ok(ValueSource::Plain(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<ValueSource, A::Error> {
                let mut out = None;
                while let Some(k) = m.next_key::<String>()? {
                    let v = match k.as_str() {
                        "secret" => ValueSource::Secret(m.next_value::<String>()?),
                        "placeholder" => ValueSource::Placeholder(m.next_value::<String>()?),
                        _ => {
                            return Err(serde::de::Error::unknown_field(
                                &k,
                                &["secret", "placeholder"],
                            ));
                        }
                    };
                    if out.is_some() {
                        return Err(serde::de::Error::custom(
                            "give either secret or placeholder, not both",
                        ));
                    }
                    out = Some(v);
                }
                out.ok_or_else(|| serde::de::Error::missing_field("secret"))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for ValueSource {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ValueSource::Plain(v) => s.serialize_str(v),
            ValueSource::Secret(c) => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("secret", c)?;
                m.end()
            }
            ValueSource::Placeholder(why) => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("placeholder", why)?;
                m.end()
            }
        }
    }
}

impl JsonSchema for ValueSource {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Value".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A plain value, or a secret: `{secret: <age ciphertext>}` (write it with `tether secret set`).",
            "anyOf": [
                {"type": ["string", "number", "boolean"]},
                {
                    "type": "object",
                    "properties": {"secret": {"type": "string", "pattern": "^-----BEGIN AGE ENCRYPTED FILE-----"}},
                    "required": ["secret"],
                    "additionalProperties": false
                },
                {
                    "description": "A value a person has yet to fill in (written by `tether import`); tether leaves the platform's value alone and `validate` reports it.",
                    "type": "object",
                    "properties": {"placeholder": {"type": "string"}},
                    "required": ["placeholder"],
                    "additionalProperties": false
                }
            ]
        })
    }
}
