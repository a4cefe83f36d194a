//! `.tether.yaml`: who each secret is encrypted to, by ordered creation rules (a path glob
//! and/or an environment label selector; the first match wins) with `ageRecipients` as the
//! fallback, as SOPS's `creation_rules` do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::diagnostic::Diagnostic;
use super::select::Selector;
use super::yaml;
use crate::secret::{self, Recipient};

/// The file's name at the manifest root.
pub const FILE: &str = ".tether.yaml";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    age_recipients: Vec<String>,
    #[serde(default)]
    creation_rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRule {
    name: Option<String>,
    path: Option<String>,
    selector: Option<String>,
    age_recipients: Vec<String>,
}

/// One rule: what it matches and the recipients of what it matches.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its `name`, else `creationRules[i]`; `ageRecipients` for the fallback.
    pub name: String,
    path: Option<(String, globset::GlobMatcher)>,
    selector: Option<Selector>,
    pub recipients: Vec<Recipient>,
}

impl Rule {
    /// `rule production (path production/**, selector tier=production)`.
    pub fn describe(&self) -> String {
        let mut what = Vec::new();
        if let Some((p, _)) = &self.path {
            what.push(format!("path {p}"));
        }
        if let Some(s) = &self.selector {
            what.push(format!("selector {s}"));
        }
        if what.is_empty() {
            format!("rule {}", self.name)
        } else {
            format!("rule {} ({})", self.name, what.join(", "))
        }
    }

    /// The recipients, short, for messages.
    pub fn recipient_list(&self) -> String {
        let list: Vec<String> = self.recipients.iter().map(Recipient::short).collect();
        list.join(", ")
    }

    fn matches(&self, rel: &Path, labels: &BTreeMap<String, String>) -> bool {
        self.path.as_ref().is_none_or(|(_, g)| g.is_match(rel))
            && self.selector.as_ref().is_none_or(|s| s.matches(labels))
    }
}

/// The rules of one manifest folder, in order, and the fallback.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    root: PathBuf,
    rules: Vec<Rule>,
    fallback: Option<Rule>,
}

impl Rules {
    /// Reads `DIR/.tether.yaml`; no file means no rules. Problems name the line and field.
    pub fn load(dir: &Path) -> Result<Rules, Vec<Diagnostic>> {
        let file = dir.join(FILE);
        let text = match std::fs::read(&file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Rules {
                    root: dir.to_path_buf(),
                    ..Default::default()
                });
            }
            // A file that is there but unreadable is not "no rules" (its rules would be
            // silently dropped): the same goes for one that is not text.
            Err(e) => return Err(vec![file_problem(&file, format!("cannot be read: {e}"))]),
        };
        match String::from_utf8(text) {
            Ok(text) => Rules::parse(dir, &text),
            Err(_) => Err(vec![file_problem(
                &file,
                "is not UTF-8 text, so it cannot be YAML".into(),
            )]),
        }
    }

    /// Parses the text of `DIR/.tether.yaml`.
    pub fn parse(dir: &Path, text: &str) -> Result<Rules, Vec<Diagnostic>> {
        let file = dir.join(FILE);
        let at = |pos: yaml::Pos, path: &str, message: String| Diagnostic {
            file: file.clone(),
            line: pos.line,
            column: pos.col,
            path: path.to_string(),
            message,
        };
        let docs = yaml::documents(text)
            .map_err(|e| vec![at(e.pos, "", format!("not valid YAML: {}", e.message))])?;
        let Some(doc) = docs.into_iter().next() else {
            return Ok(Rules {
                root: dir.to_path_buf(),
                ..Default::default()
            });
        };
        let top = yaml::Pos { line: 1, col: 1 };
        let locate = |path: &str| doc.index.locate(path).unwrap_or(top);
        let raw: RawConfig =
            yaml::from_value(doc.value).map_err(|(path, m)| vec![at(locate(&path), &path, m)])?;
        let mut errs = Vec::new();
        let recipients = |list: &[String], field: &str, errs: &mut Vec<Diagnostic>| {
            let mut out = Vec::new();
            for (i, r) in list.iter().enumerate() {
                let path = format!("{field}[{i}]");
                match r.parse::<Recipient>() {
                    Ok(r) => out.push(r),
                    Err(e) => errs.push(at(locate(&path), &path, e.to_string())),
                }
            }
            out
        };
        let mut rules = Vec::new();
        for (i, r) in raw.creation_rules.iter().enumerate() {
            let field = format!("creationRules[{i}]");
            if r.age_recipients.is_empty() {
                let p = format!("{field}.ageRecipients");
                errs.push(at(
                    locate(&p),
                    &p,
                    "a rule needs at least one recipient".into(),
                ));
            }
            let list = recipients(
                &r.age_recipients,
                &format!("{field}.ageRecipients"),
                &mut errs,
            );
            let path = r.path.as_ref().and_then(|p| {
                match globset::GlobBuilder::new(p).literal_separator(true).build() {
                    Ok(g) => Some((p.clone(), g.compile_matcher())),
                    Err(e) => {
                        let f = format!("{field}.path");
                        errs.push(at(
                            locate(&f),
                            &f,
                            format!("{p:?} is not a glob: {}", e.kind()),
                        ));
                        None
                    }
                }
            });
            let selector = r.selector.as_ref().and_then(|s| match Selector::parse(s) {
                Ok(s) => Some(s),
                Err(e) => {
                    let f = format!("{field}.selector");
                    errs.push(at(locate(&f), &f, e.to_string()));
                    None
                }
            });
            if r.path.is_none() && r.selector.is_none() {
                errs.push(at(locate(&field), &field, "a rule needs a path, a selector or both (the top-level ageRecipients is the catch-all)".into()));
            }
            rules.push(Rule {
                name: r.name.clone().unwrap_or(field),
                path,
                selector,
                recipients: list,
            });
        }
        let fallback = recipients(&raw.age_recipients, "ageRecipients", &mut errs);
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(Rules {
            root: dir.to_path_buf(),
            rules,
            fallback: (!fallback.is_empty()).then(|| Rule {
                name: "ageRecipients".into(),
                path: None,
                selector: None,
                recipients: fallback,
            }),
        })
    }

    /// The rule for a secret in `file` of an environment with `labels`: the first that
    /// matches, else the fallback; None when there is neither.
    pub fn for_secret(&self, file: &Path, labels: &BTreeMap<String, String>) -> Option<&Rule> {
        let rel = file.strip_prefix(&self.root).unwrap_or(file);
        self.rules
            .iter()
            .find(|r| r.matches(rel, labels))
            .or(self.fallback.as_ref())
    }

    /// The rule for a secret, or the error `tether secret set` and `updatekeys` show.
    pub fn require(
        &self,
        file: &Path,
        labels: &BTreeMap<String, String>,
    ) -> Result<&Rule, secret::SecretError> {
        self.for_secret(file, labels)
            .ok_or(secret::SecretError::NoRecipients)
    }
}

/// A problem with the whole file, at its first line.
fn file_problem(file: &Path, message: String) -> Diagnostic {
    Diagnostic {
        file: file.to_path_buf(),
        line: 1,
        column: 1,
        path: String::new(),
        message,
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

    const A: &str = "age1y8qm2j6gn26ywccda9wdldvqyakaekrz4rqplguqey8uuylen9lq270nnz";

    /// Found by fuzzing: a .tether.yaml that is not text was read as no rules at all.
    #[test]
    fn a_tether_yaml_that_is_not_text_is_an_error_not_no_rules() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Rules::load(dir.path()).is_ok(), "no file: no rules");
        std::fs::write(dir.path().join(FILE), b"rules:\n  - path: \xff\xfe\n").unwrap();
        let e = Rules::load(dir.path()).unwrap_err();
        assert_eq!(
            (e[0].line, e[0].message.as_str()),
            (1, "is not UTF-8 text, so it cannot be YAML")
        );
        assert!(e[0].file.ends_with(FILE));
    }

    #[test]
    fn first_match_wins_and_the_fallback_catches_the_rest() {
        let (_, b) = crate::secret::Keyring::generate();
        let (_, c) = crate::secret::Keyring::generate();
        let text = format!(
            "ageRecipients: [{A}]\ncreationRules:\n  - name: prod\n    selector: tier=production\n    ageRecipients: [{b}]\n  - path: \"database/**\"\n    ageRecipients: [{c}]\n"
        );
        let dir = Path::new("/m");
        let rules = Rules::parse(dir, &text).unwrap();
        let prod = labels(&[("tier", "production")]);
        let stg = labels(&[("tier", "staging")]);
        let rule = |f: &str, l| rules.for_secret(&dir.join(f), l).unwrap();
        assert_eq!(rule("database/secrets.yaml", &prod).name, "prod");
        assert_eq!(rule("database/secrets.yaml", &stg).name, "creationRules[1]");
        assert_eq!(rule("backend/variables.yaml", &stg).name, "ageRecipients");
        assert_eq!(
            rule("backend/variables.yaml", &stg).recipients[0].as_str(),
            A
        );
        // `*` does not cross directories.
        let one = Rules::parse(
            dir,
            &format!("creationRules:\n  - path: \"*.yaml\"\n    ageRecipients: [{A}]\n"),
        )
        .unwrap();
        assert!(one.for_secret(&dir.join("a/b.yaml"), &stg).is_none());
        assert!(one.for_secret(&dir.join("b.yaml"), &stg).is_some());
    }

    #[test]
    fn problems_name_the_line_and_field() {
        let text = format!(
            "ageRecipients: [{A}]\ncreationRules:\n  - selector: \"tier in (\"\n    ageRecipients: [age1nope]\n  - ageRecipients: [{A}]\n"
        );
        let errs = Rules::parse(Path::new("/m"), &text).unwrap_err();
        let shown: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
        assert!(
            shown.iter().any(|s| s.starts_with("/m/.tether.yaml:4:")
                && s.contains("creationRules[0].ageRecipients[0]")
                && s.contains("age1nope")),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|s| s.contains(":3:") && s.contains("creationRules[0].selector")),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|s| s.contains(":5:") && s.contains("needs a path, a selector")),
            "{shown:?}"
        );
        let unknown = Rules::parse(Path::new("/m"), "ageRecipient: []\n").unwrap_err();
        assert!(
            unknown[0].to_string().contains("ageRecipient"),
            "{unknown:?}"
        );
    }
}
