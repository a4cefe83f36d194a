//! Manifests: the YAML documents that describe desired state, their types, loading and
//! validation. Pure except for reading files.

pub mod alerts;
pub mod cache;
mod check;
pub mod desired;
pub mod diagnostic;
pub mod edit;
pub mod kinds;
pub mod load;
pub mod recipients;
pub mod rules;
pub mod schema;
pub mod secrets;
pub mod select;
#[cfg(test)]
mod tests;
pub mod validate;
pub mod yaml;

use std::path::Path;

pub use desired::{DesiredState, DesiredVar, Resource, Revision, VarValue};
pub use diagnostic::{Diagnostic, Diagnostics, Source};
pub use kinds::*;
pub use secrets::{Decrypt, Placeholder, SecretContext, SecretSummary};

/// Loads and validates every manifest under `dir`: the desired state, or every problem found.
pub fn load(dir: &Path, secrets: &SecretContext) -> Result<DesiredState, Diagnostics> {
    let files = load::scan(dir).map_err(|d| Diagnostics(vec![d]))?;
    load_files(dir, &files, secrets)
}

/// Like [`load`], for files already read (the watcher reads them once to digest them).
pub fn load_files(
    dir: &Path,
    files: &[load::ManifestFile],
    secrets: &SecretContext,
) -> Result<DesiredState, Diagnostics> {
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        load::parse_file(f, &mut docs, &mut errors);
    }
    let revision = || load::revision(dir, files);
    build(dir, docs.iter().collect(), errors, secrets, revision, None)
}

/// Like [`load`], from the files as last read: only files that changed since are read and
/// parsed again; the rules across files are checked over all of them.
pub fn load_cached(
    dir: &Path,
    cache: &cache::FileCache,
    secrets: &SecretContext,
    previous: Option<&DesiredState>,
) -> Result<DesiredState, Diagnostics> {
    let (docs, errors) = cache.documents();
    let revision = || Revision {
        digest: cache.digest(dir),
        commit: load::git_commit(dir),
    };
    build(dir, docs, errors, secrets, revision, previous)
}

/// The rules across documents, over parsed documents and the parse errors found.
fn build(
    dir: &Path,
    docs: Vec<&load::Doc>,
    mut errors: Vec<Diagnostic>,
    secrets: &SecretContext,
    revision: impl FnOnce() -> Revision,
    previous: Option<&DesiredState>,
) -> Result<DesiredState, Diagnostics> {
    let rules = recipients::Rules::load(dir).unwrap_or_else(|e| {
        errors.extend(e);
        recipients::Rules::default()
    });
    let built = validate::build(&docs, secrets, &rules, previous);
    match built {
        Ok(mut state) if errors.is_empty() => {
            state.revision = revision();
            Ok(state)
        }
        Ok(_) => {
            errors.sort();
            Err(Diagnostics(errors))
        }
        Err(more) => {
            errors.extend(more);
            errors.sort();
            errors.dedup();
            Err(Diagnostics(errors))
        }
    }
}
