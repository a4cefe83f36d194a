//! Label selectors as `kubectl -l` spells them (`tier=production,app in (api,web),!legacy`),
//! and narrowing a desired state to the environments one daemon (shard) owns.

use std::collections::BTreeMap;
use std::fmt;

use super::desired::DesiredState;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A conjunction of requirements; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    pub requirements: Vec<Requirement>,
    text: String,
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.text.is_empty() {
            "(everything)"
        } else {
            &self.text
        })
    }
}

/// A selector that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector {text:?}: {reason}")]
pub struct SelectorError {
    pub text: String,
    pub reason: String,
}

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let err = |reason: &str| SelectorError {
            text: text.into(),
            reason: reason.into(),
        };
        let mut requirements = Vec::new();
        if text.trim().is_empty() {
            return Ok(Selector::default());
        }
        for part in split_top(text) {
            let p = part.trim();
            if p.is_empty() {
                return Err(err("an empty requirement (two commas in a row?)"));
            }
            let check_key = |k: &str| {
                super::rules::label_key(k)
                    .map(|_| k.to_string())
                    .map_err(|e| err(&e))
            };
            let check_value = |v: &str| {
                super::rules::label_value(v)
                    .map(|_| v.to_string())
                    .map_err(|e| err(&e))
            };
            let set = |rest: &str| -> Result<Vec<String>, SelectorError> {
                let inner = rest
                    .trim()
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| err("a set must be written (a,b)"))?;
                inner.split(',').map(|v| check_value(v.trim())).collect()
            };
            let req = if let Some(k) = p.strip_prefix('!') {
                Requirement::NotExists(check_key(k.trim())?)
            } else if let Some((k, v)) = p.split_once("!=") {
                Requirement::NotEq(check_key(k.trim())?, check_value(v.trim())?)
            } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
                Requirement::Eq(check_key(k.trim())?, check_value(v.trim())?)
            } else if let Some((k, rest)) = p.split_once(" notin ") {
                Requirement::NotIn(check_key(k.trim())?, set(rest)?)
            } else if let Some((k, rest)) = p.split_once(" in ") {
                Requirement::In(check_key(k.trim())?, set(rest)?)
            } else {
                Requirement::Exists(check_key(p)?)
            };
            requirements.push(req);
        }
        Ok(Selector {
            requirements,
            text: text.trim().to_string(),
        })
    }

    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// True when the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Eq(k, v) => labels.get(k) == Some(v),
            Requirement::NotEq(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|x| vs.contains(x)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|x| !vs.contains(x)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }
}

impl DesiredState {
    /// Only the environments whose labels match, and the resources that belong to them; the
    /// rest is another daemon's, never observed, written or pruned by this one.
    pub fn select(mut self, sel: &Selector) -> DesiredState {
        if sel.is_everything() {
            return self;
        }
        self.environments.retain(|_, e| sel.matches(&e.meta.labels));
        let envs = self.environments.clone();
        let owned = |env: &str| envs.contains_key(env);
        self.variables.retain(|env, _| owned(env));
        self.domains.retain(|_, d| owned(&d.spec.environment));
        let hosts: Vec<String> = self.domains.values().map(|d| d.spec.name.clone()).collect();
        self.certificates
            .retain(|_, c| hosts.contains(&c.spec.domain));
        self.deployments.retain(|_, d| owned(&d.spec.environment));
        self.monitors.retain(|_, m| owned(&m.spec.environment));
        let policies: Vec<String> = self
            .backup_policies
            .iter()
            .filter(|(_, p)| !owned(&p.spec.environment))
            .map(|(k, _)| k.clone())
            .collect();
        for p in policies {
            self.backup_policies.remove(&p);
            self.backup_urls.remove(&p);
        }
        self.secrets.not_decrypted.retain(|(env, _)| owned(env));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_and_matches_like_kubectl() {
        let prod = labels(&[("tier", "production"), ("app", "backend")]);
        let staging = labels(&[("tier", "staging"), ("app", "customer")]);
        let bare = labels(&[]);
        let case = |s: &str| {
            let sel = Selector::parse(s).unwrap();
            (
                sel.matches(&prod),
                sel.matches(&staging),
                sel.matches(&bare),
            )
        };
        assert_eq!(case("tier=production"), (true, false, false));
        assert_eq!(case("tier==production"), (true, false, false));
        assert_eq!(case("tier!=production"), (false, true, true));
        assert_eq!(case("tier in (production,staging)"), (true, true, false));
        assert_eq!(case("tier notin (production)"), (false, true, true));
        assert_eq!(case("app"), (true, true, false));
        assert_eq!(case("!app"), (false, false, true));
        assert_eq!(
            case("tier in (production, staging),app=customer"),
            (false, true, false)
        );
        assert_eq!(case(""), (true, true, true));
    }

    #[test]
    fn bad_selectors_say_why() {
        for bad in [
            "tier=production,,app=x",
            "tier in production",
            "tier=bad value",
            "-x=1",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Selector::parse("tier in production")
                .unwrap_err()
                .to_string(),
            "invalid selector \"tier in production\": a set must be written (a,b)"
        );
    }
}
