//! Reading a manifest directory: which files count, splitting them into documents, and turning
//! each document into a typed resource (or a located error).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::desired::{Resource, Revision};
use super::diagnostic::{Diagnostic, Source};
use super::kinds::*;
use super::yaml::{self, PathIndex, Pos, Value};

/// A manifest file's path (as it should be shown) and its bytes.
#[derive(Debug, Clone)]
pub struct ManifestFile {
    pub path: PathBuf,
    pub content: Vec<u8>,
}

/// A typed document, before cross-document rules.
#[derive(Debug, Clone)]
pub enum Parsed {
    Environment(Resource<EnvironmentSpec>),
    Variables(Resource<VariablesSpec>),
    Requirements(Resource<RequirementsSpec>),
    Domain(Resource<DomainSpec>),
    Certificate(Resource<CertificateSpec>),
    Deployment(Resource<DeploymentSpec>),
    Monitor(Resource<MonitorSpec>),
    BackupPolicy(Resource<BackupPolicySpec>),
    Alert(Resource<AlertSpec>),
}

impl Parsed {
    pub fn kind(&self) -> Kind {
        match self {
            Parsed::Environment(_) => Kind::Environment,
            Parsed::Variables(_) => Kind::Variables,
            Parsed::Requirements(_) => Kind::Requirements,
            Parsed::Domain(_) => Kind::Domain,
            Parsed::Certificate(_) => Kind::Certificate,
            Parsed::Deployment(_) => Kind::Deployment,
            Parsed::Monitor(_) => Kind::Monitor,
            Parsed::BackupPolicy(_) => Kind::BackupPolicy,
            Parsed::Alert(_) => Kind::Alert,
        }
    }

    pub fn meta(&self) -> &Metadata {
        match self {
            Parsed::Environment(r) => &r.meta,
            Parsed::Variables(r) => &r.meta,
            Parsed::Requirements(r) => &r.meta,
            Parsed::Domain(r) => &r.meta,
            Parsed::Certificate(r) => &r.meta,
            Parsed::Deployment(r) => &r.meta,
            Parsed::Monitor(r) => &r.meta,
            Parsed::BackupPolicy(r) => &r.meta,
            Parsed::Alert(r) => &r.meta,
        }
    }
}

/// A typed document with what is needed to place errors in it.
#[derive(Debug, Clone)]
pub struct Doc {
    pub parsed: Parsed,
    pub source: Source,
    pub index: Arc<PathIndex>,
}

impl Doc {
    /// A diagnostic at `path` in this document.
    pub fn error(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        let pos = self.index.locate(path).unwrap_or(Pos {
            line: self.source.line,
            col: 1,
        });
        Diagnostic {
            file: self.source.file.to_path_buf(),
            line: pos.line,
            column: pos.col,
            path: path.to_string(),
            message: message.into(),
        }
    }
}

/// Is this file name one tether reads? Skips editor leftovers and non-YAML.
pub fn is_manifest_name(name: &str) -> bool {
    if name.starts_with('.') || name.ends_with('~') || name == "4913" {
        return false;
    }
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// Lists the manifest files under `dir` (recursively, hidden folders skipped), sorted.
pub fn scan(dir: &Path) -> Result<Vec<ManifestFile>, Diagnostic> {
    let mut out = Vec::new();
    for (path, _) in list(dir)? {
        let content = read(&path)?;
        out.push(ManifestFile { path, content });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Lists the manifest files under `dir` with their metadata (symlinks followed), unread and
/// unsorted.
pub fn list(dir: &Path) -> Result<Vec<(PathBuf, std::fs::Metadata)>, Diagnostic> {
    let meta = std::fs::metadata(dir)
        .map_err(|e| file_error(dir, format!("cannot read the manifest directory: {e}")))?;
    if !meta.is_dir() {
        return Err(file_error(dir, "is not a directory".into()));
    }
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    Ok(out)
}

/// Reads one manifest file.
pub fn read(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    std::fs::read(path).map_err(|e| file_error(path, format!("cannot read: {e}")))
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, std::fs::Metadata)>) -> Result<(), Diagnostic> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| file_error(dir, format!("cannot list: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| file_error(dir, format!("cannot list: {e}")))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        // Follow symlinks (a git-sync checkout is one); a dangling one is skipped.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if !name.starts_with('.') {
                walk(&path, out)?;
            }
        } else if meta.is_file() && is_manifest_name(&name) {
            out.push((path, meta));
        }
    }
    Ok(())
}

fn file_error(path: &Path, message: String) -> Diagnostic {
    Diagnostic {
        file: path.to_path_buf(),
        line: 1,
        column: 1,
        path: String::new(),
        message,
    }
}

/// The digest of a set of files: their paths (relative to `dir`) and contents.
pub fn digest(dir: &Path, files: &[ManifestFile]) -> String {
    digest_of(
        dir,
        files
            .iter()
            .map(|f| (f.path.as_path(), Sha256::digest(&f.content).into())),
    )
}

/// The digest of files given as (path, SHA-256 of content), in path order.
pub fn digest_of<'a>(dir: &Path, files: impl Iterator<Item = (&'a Path, [u8; 32])>) -> String {
    let mut h = Sha256::new();
    for (path, hash) in files {
        let rel = path.strip_prefix(dir).unwrap_or(path);
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(hash);
    }
    hex::encode(h.finalize())
}

/// The revision of a manifest directory: content digest plus the git commit if it is a checkout.
pub fn revision(dir: &Path, files: &[ManifestFile]) -> Revision {
    Revision {
        digest: digest(dir, files),
        commit: git_commit(dir),
    }
}

/// Reads HEAD of the git checkout containing `dir` (following a `.git` file to a worktree's
/// git dir, as git-sync lays them out). No git binary needed.
pub fn git_commit(dir: &Path) -> Option<String> {
    let (gitdir, common) = git_dirs(dir)?;
    read_head(&gitdir, &common)
}

/// The git dir and the common dir of the checkout containing `dir`.
fn git_dirs(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let mut cur = Some(dir.as_path());
    while let Some(d) = cur {
        let dotgit = d.join(".git");
        if dotgit.is_dir() {
            return Some((dotgit.clone(), dotgit));
        }
        if dotgit.is_file() {
            let text = std::fs::read_to_string(&dotgit).ok()?;
            let gitdir = text.trim().strip_prefix("gitdir:")?.trim();
            let gitdir = d.join(gitdir);
            let common = std::fs::read_to_string(gitdir.join("commondir"))
                .map(|c| gitdir.join(c.trim()))
                .unwrap_or_else(|_| gitdir.clone());
            return Some((gitdir, common));
        }
        cur = d.parent();
    }
    None
}

/// The URL of the `origin` remote of the checkout containing `dir`, read from its config.
pub fn git_origin(dir: &Path) -> Option<String> {
    let (_, common) = git_dirs(dir)?;
    let config = std::fs::read_to_string(common.join("config")).ok()?;
    let mut in_origin = false;
    for line in config.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_origin = l.replace(' ', "") == "[remote\"origin\"]";
        } else if in_origin
            && let Some((k, v)) = l.split_once('=')
            && k.trim() == "url"
        {
            return Some(v.trim().to_string());
        }
    }
    None
}

fn read_head(gitdir: &Path, common: &Path) -> Option<String> {
    let head = std::fs::read_to_string(gitdir.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(r) = head.strip_prefix("ref:") else {
        return is_sha(head).then(|| head.to_string());
    };
    let r = r.trim();
    for base in [gitdir, common] {
        if let Ok(s) = std::fs::read_to_string(base.join(r)) {
            let s = s.trim();
            if is_sha(s) {
                return Some(s.to_string());
            }
        }
    }
    let packed = std::fs::read_to_string(common.join("packed-refs")).ok()?;
    packed.lines().find_map(|l| {
        let (sha, name) = l.split_once(' ')?;
        (name == r && is_sha(sha)).then(|| sha.to_string())
    })
}

fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parses one file into typed documents, pushing every error found to `errors`.
pub fn parse_file(file: &ManifestFile, docs: &mut Vec<Doc>, errors: &mut Vec<Diagnostic>) {
    let Ok(text) = std::str::from_utf8(&file.content) else {
        errors.push(file_error(
            &file.path,
            "is not UTF-8 text, so it cannot be YAML".into(),
        ));
        return;
    };
    let documents = match yaml::documents(text) {
        Ok(d) => d,
        Err(e) => {
            errors.push(Diagnostic {
                file: file.path.clone(),
                line: e.pos.line,
                column: e.pos.col,
                path: String::new(),
                message: format!("not valid YAML: {}", e.message),
            });
            return;
        }
    };
    let shared_path: Arc<std::path::Path> = file.path.as_path().into();
    for d in documents {
        let source = Source {
            file: shared_path.clone(),
            line: d.start.line.max(1),
        };
        let index = Arc::new(d.index);
        let at = |path: &str, message: String| {
            let pos = index.locate(path).unwrap_or(Pos {
                line: source.line,
                col: 1,
            });
            Diagnostic {
                file: file.path.clone(),
                line: pos.line,
                column: pos.col,
                path: path.to_string(),
                message,
            }
        };
        match typed(d.value, source.clone()) {
            Ok(parsed) => docs.push(Doc {
                parsed,
                source,
                index: index.clone(),
            }),
            Err((path, message)) => errors.push(at(&path, message)),
        }
    }
}

fn typed(value: Value, source: Source) -> Result<Parsed, (String, String)> {
    let Value::Mapping(map) = &value else {
        return Err((
            String::new(),
            "a manifest must be a mapping with apiVersion, kind, metadata and spec".into(),
        ));
    };
    let get = |k: &str| map.get(Value::String(k.into()));
    match get("apiVersion") {
        None => {
            return Err((
                String::new(),
                format!("missing field `apiVersion` (it must be {API_VERSION})"),
            ));
        }
        Some(Value::String(v)) if v == API_VERSION => {}
        Some(other) => {
            return Err((
                "apiVersion".into(),
                format!("apiVersion must be {API_VERSION}, found {}", show(other)),
            ));
        }
    }
    let kind = match get("kind") {
        None => return Err((String::new(), "missing field `kind`".into())),
        Some(Value::String(k)) => {
            Kind::ALL
                .into_iter()
                .find(|x| x.as_str() == k)
                .ok_or_else(|| {
                    let all: Vec<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                    (
                        "kind".to_string(),
                        format!("unknown kind {k:?}; expected one of {}", all.join(", ")),
                    )
                })?
        }
        Some(other) => {
            return Err((
                "kind".into(),
                format!("kind must be a string, found {}", show(other)),
            ));
        }
    };
    fn res<S: serde::de::DeserializeOwned>(
        value: Value,
        source: Source,
    ) -> Result<Resource<S>, (String, String)> {
        let doc: Document<S> = yaml::from_value(value)?;
        Ok(Resource {
            meta: doc.metadata,
            spec: doc.spec,
            source,
        })
    }
    Ok(match kind {
        Kind::Environment => Parsed::Environment(res(value, source)?),
        Kind::Variables => Parsed::Variables(res(value, source)?),
        Kind::Requirements => Parsed::Requirements(res(value, source)?),
        Kind::Domain => Parsed::Domain(res(value, source)?),
        Kind::Certificate => Parsed::Certificate(res(value, source)?),
        Kind::Deployment => Parsed::Deployment(res(value, source)?),
        Kind::Monitor => Parsed::Monitor(res(value, source)?),
        Kind::BackupPolicy => Parsed::BackupPolicy(res(value, source)?),
        Kind::Alert => Parsed::Alert(res(value, source)?),
    })
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "nothing".into(),
        other => yaml::to_string(other)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_leftovers_are_ignored() {
        for name in [
            "a.yaml~",
            ".a.yaml.swp",
            "4913",
            ".a.tmp",
            ".hidden.yaml",
            "notes.txt",
            "a.json",
        ] {
            assert!(!is_manifest_name(name), "{name}");
        }
        assert!(is_manifest_name("a.yaml") && is_manifest_name("b.yml"));
    }

    #[test]
    fn reads_git_head_through_refs_and_packed_refs() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        let sha = "0123456789abcdef0123456789abcdef01234567";
        std::fs::write(
            git.join("packed-refs"),
            format!("# pack-refs\n{sha} refs/heads/main\n"),
        )
        .unwrap();
        let sub = dir.path().join("manifests");
        std::fs::create_dir(&sub).unwrap();
        assert_eq!(git_commit(&sub).as_deref(), Some(sha));
        let sha2 = "89abcdef0123456789abcdef0123456789abcdef";
        std::fs::write(git.join("refs/heads/main"), format!("{sha2}\n")).unwrap();
        assert_eq!(git_commit(&sub).as_deref(), Some(sha2));
    }
}
