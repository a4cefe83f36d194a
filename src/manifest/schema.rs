//! JSON Schemas for the manifest kinds (`tether schema`), for editors and CI.

use schemars::{JsonSchema, generate::SchemaSettings};
use serde_json::{Value, json};

use super::kinds::*;

fn for_kind<S: JsonSchema>(kind: Kind, description: &str) -> Value {
    let generator = SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<Document<S>>();
    let mut v = serde_json::to_value(schema).expect("schemas serialize");
    let obj = v.as_object_mut().expect("object schema");
    obj.insert("title".into(), json!(kind.as_str()));
    obj.insert("description".into(), json!(description));
    let props = obj
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .expect("properties");
    props.insert(
        "apiVersion".into(),
        json!({"const": API_VERSION, "description": "Always tether.dev/v1."}),
    );
    props.insert("kind".into(), json!({"const": kind.as_str()}));
    v
}

/// The JSON Schema of one kind's documents.
pub fn schema(kind: Kind) -> Value {
    match kind {
        Kind::Environment => for_kind::<EnvironmentSpec>(
            kind,
            "An app in one environment type, bound to a Railway, Vercel or Supabase target.",
        ),
        Kind::Variables => for_kind::<VariablesSpec>(
            kind,
            "Environment variables of one environment; secrets are age ciphertext.",
        ),
        Kind::Requirements => {
            for_kind::<RequirementsSpec>(kind, "Variables every environment of a type must define.")
        }
        Kind::Domain => {
            for_kind::<DomainSpec>(kind, "A custom domain attached to one environment.")
        }
        Kind::Certificate => {
            for_kind::<CertificateSpec>(kind, "A domain's certificate and its expiry thresholds.")
        }
        Kind::Deployment => for_kind::<DeploymentSpec>(
            kind,
            "The commit an environment runs, with its health gate and rollback policy.",
        ),
        Kind::Monitor => for_kind::<MonitorSpec>(
            kind,
            "An HTTP health check with thresholds, SLOs and maintenance windows.",
        ),
        Kind::BackupPolicy => for_kind::<BackupPolicySpec>(
            kind,
            "Scheduled logical backups of a Supabase database, kept by tier.",
        ),
        Kind::Alert => for_kind::<AlertSpec>(
            kind,
            "Which events of which environments go to Slack, Discord, a webhook or email.",
        ),
    }
}

/// One schema accepting a document of any kind (for files that mix kinds).
/// The files `tether schema --write` (and `tether import`) produce: name and content.
pub fn files() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Kind::ALL
        .iter()
        .map(|k| (k.schema_file(), render(&schema(*k))))
        .collect();
    out.push(("all.json".into(), render(&any())));
    out
}

pub fn any() -> Value {
    let refs: Vec<Value> = Kind::ALL
        .iter()
        .map(|k| json!({"$ref": k.schema_file()}))
        .collect();
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "tether manifest",
        "description": "Any tether manifest; the kind field selects the schema.",
        "oneOf": refs,
    })
}

/// Pretty JSON with a trailing newline, as the committed files are written.
pub fn render(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("json");
    s.push('\n');
    s
}
