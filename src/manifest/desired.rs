//! The validated desired state: every manifest, resolved and indexed by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::diagnostic::Source;
use super::kinds::*;
use crate::secret::{Fingerprint, SecretValue};

/// A resource from a manifest: its metadata, spec and where it was written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resource<S> {
    pub meta: Metadata,
    pub spec: S,
    pub source: Source,
}

impl<S> Resource<S> {
    pub fn name(&self) -> &str {
        &self.meta.name
    }
}

/// A variable's value as tether will write it. Secrets print as `(sensitive value)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum VarValue {
    Plain(String),
    Secret(SecretValue),
}

impl VarValue {
    pub fn is_secret(&self) -> bool {
        matches!(self, VarValue::Secret(_))
    }
    /// The value itself, for the request to a platform only.
    pub fn expose(&self) -> &str {
        match self {
            VarValue::Plain(s) => s,
            VarValue::Secret(s) => s.expose(),
        }
    }
}

impl std::fmt::Display for VarValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VarValue::Plain(s) => write!(f, "{s:?}"),
            VarValue::Secret(s) => write!(f, "{s}"),
        }
    }
}

/// One desired variable with its fingerprints (of the value, and of its SHA-256 digest).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredVar {
    pub value: VarValue,
    pub fingerprint: Fingerprint,
    pub digest_fingerprint: Fingerprint,
    pub source: Source,
}

/// Where the manifests came from: a digest of their content, and the git commit when the
/// directory is a checkout.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

impl std::fmt::Display for Revision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.commit {
            Some(c) => write!(
                f,
                "{} (sha256:{})",
                &c[..c.len().min(12)],
                &self.digest[..12]
            ),
            None => write!(f, "sha256:{}", &self.digest[..12]),
        }
    }
}

/// Everything the manifests ask for, validated.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredState {
    pub environments: BTreeMap<String, Resource<EnvironmentSpec>>,
    /// Environment name → variable name → value.
    pub variables: BTreeMap<String, Arc<BTreeMap<String, DesiredVar>>>,
    pub requirements: BTreeMap<String, Resource<RequirementsSpec>>,
    /// Keyed by `metadata.name`.
    pub domains: BTreeMap<String, Resource<DomainSpec>>,
    pub certificates: BTreeMap<String, Resource<CertificateSpec>>,
    /// Keyed by `metadata.name`; at most one per environment.
    pub deployments: BTreeMap<String, Resource<DeploymentSpec>>,
    pub monitors: BTreeMap<String, Resource<MonitorSpec>>,
    pub backup_policies: BTreeMap<String, Resource<BackupPolicySpec>>,
    /// Inline database URLs of backup policies, decrypted (policy name → URL).
    #[serde(skip)]
    pub backup_urls: BTreeMap<String, SecretValue>,
    pub revision: Revision,
    /// Keyed by `metadata.name`.
    pub alerts: BTreeMap<String, Resource<AlertSpec>>,
    /// Receivers' decrypted secrets, keyed by [`super::alerts::secret_key`].
    #[serde(skip)]
    pub alert_secrets: BTreeMap<String, SecretValue>,
    /// Secrets not decrypted, and warnings about their recipients.
    #[serde(skip)]
    pub secrets: super::secrets::SecretSummary,
}

impl DesiredState {
    /// Domains of one environment.
    pub fn domains_of<'a>(
        &'a self,
        env: &'a str,
    ) -> impl Iterator<Item = &'a Resource<DomainSpec>> {
        self.domains
            .values()
            .filter(move |d| d.spec.environment == env)
    }

    /// The deployment of one environment, if any.
    pub fn deployment_of(&self, env: &str) -> Option<&Resource<DeploymentSpec>> {
        self.deployments
            .values()
            .find(|d| d.spec.environment == env)
    }

    /// Monitors of one environment.
    pub fn monitors_of<'a>(
        &'a self,
        env: &'a str,
    ) -> impl Iterator<Item = &'a Resource<MonitorSpec>> {
        self.monitors
            .values()
            .filter(move |m| m.spec.environment == env)
    }

    /// The certificate manifest for a hostname, if any.
    pub fn certificate_for(&self, hostname: &str) -> Option<&Resource<CertificateSpec>> {
        self.certificates
            .values()
            .find(|c| c.spec.domain == hostname)
    }

    /// The environments whose desired state differs between `old` and `self`: their own
    /// manifest, variables, domains with their certificates, deployment, monitors or backup
    /// policies. Every environment when there was none before or `Requirements` changed.
    /// Environments only in `old` are not listed (the daemon drops them).
    pub fn changed_environments(
        &self,
        old: Option<&DesiredState>,
    ) -> std::collections::BTreeSet<String> {
        let Some(old) = old.filter(|o| o.requirements == self.requirements) else {
            return self.environments.keys().cloned().collect();
        };
        let (before, now) = (old.by_environment(), self.by_environment());
        self.environments
            .keys()
            .filter(|env| {
                old.environments.get(*env) != self.environments.get(*env)
                    || !same_variables(old.variables.get(*env), self.variables.get(*env))
                    || before.get(env.as_str()) != now.get(env.as_str())
            })
            .cloned()
            .collect()
    }

    /// Each environment's deployment, domains (with their certificates), monitors and backup
    /// policies, grouped in one walk over each kind.
    fn by_environment(&self) -> BTreeMap<&str, EnvParts<'_>> {
        let mut m: BTreeMap<&str, EnvParts<'_>> = BTreeMap::new();
        let certs: BTreeMap<&str, &Resource<CertificateSpec>> = self
            .certificates
            .values()
            .rev()
            .map(|c| (c.spec.domain.as_str(), c))
            .collect();
        for d in self.deployments.values() {
            m.entry(&d.spec.environment)
                .or_default()
                .deployment
                .get_or_insert(d);
        }
        for d in self.domains.values() {
            let cert = certs.get(d.spec.name.as_str()).copied();
            m.entry(&d.spec.environment)
                .or_default()
                .domains
                .push((d, cert));
        }
        for x in self.monitors.values() {
            m.entry(&x.spec.environment).or_default().monitors.push(x);
        }
        for p in self.backup_policies.values() {
            m.entry(&p.spec.environment).or_default().policies.push(p);
        }
        m
    }

    /// Number of resources tether converges or watches.
    pub fn resource_count(&self) -> usize {
        self.environments.len()
            + self.variables.values().map(|v| v.len()).sum::<usize>()
            + self.domains.len()
            + self.certificates.len()
            + self.deployments.len()
            + self.monitors.len()
            + self.backup_policies.len()
    }
}

/// One environment's variables in two states: a map a reload shared with the state in force is
/// the same without comparing it again.
fn same_variables(
    a: Option<&Arc<BTreeMap<String, DesiredVar>>>,
    b: Option<&Arc<BTreeMap<String, DesiredVar>>>,
) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
        (a, b) => a.is_none() && b.is_none(),
    }
}

/// What of one environment's desired state lives outside its own manifest and variables.
#[derive(Default, PartialEq)]
struct EnvParts<'a> {
    deployment: Option<&'a Resource<DeploymentSpec>>,
    domains: Vec<(
        &'a Resource<DomainSpec>,
        Option<&'a Resource<CertificateSpec>>,
    )>,
    monitors: Vec<&'a Resource<MonitorSpec>>,
    policies: Vec<&'a Resource<BackupPolicySpec>>,
}
