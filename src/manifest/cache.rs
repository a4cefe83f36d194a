//! The manifest files as last read: each file's stamp (size, inode, modification time), content
//! hash and parsed documents, so a reload reads and parses only the files that changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::diagnostic::Diagnostic;
use super::load::{self, Doc, ManifestFile};

/// A file's stamp counts only when its modification time is at least this far in the past
/// when it is taken: a file written again within the same clock tick keeps its time and size
/// (git calls such entries "racily clean"), so a recent file is read again on every reload.
const RACY: Duration = Duration::from_secs(2);

/// What identifies a file's version without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: SystemTime,
    dev: u64,
    ino: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        Stamp {
            len: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            dev,
            ino,
        }
    }
}

/// One file as last read.
#[derive(Debug, Clone)]
struct Known {
    /// None when the stamp was too recent to be trusted (see [`RACY`]).
    stamp: Option<Stamp>,
    hash: [u8; 32],
    docs: Vec<Doc>,
    errors: Vec<Diagnostic>,
}

/// What one refresh did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refresh {
    /// Files whose bytes were read.
    pub read: usize,
    /// Files parsed again (their content changed, or they are new).
    pub parsed: usize,
    /// Files gone since the last refresh.
    pub removed: usize,
}

impl Refresh {
    /// Did the set of files or any content change?
    pub fn changed(&self) -> bool {
        self.parsed > 0 || self.removed > 0
    }
}

/// The manifest files of one directory as last read.
#[derive(Debug, Default)]
pub struct FileCache {
    files: BTreeMap<PathBuf, Known>,
}

impl FileCache {
    /// Lists `dir` again; reads the files whose stamp changed (or was too recent to trust) and
    /// parses the ones whose content changed. A listing error leaves the cache as it was.
    pub fn refresh(&mut self, dir: &Path) -> Result<Refresh, Diagnostic> {
        let listed = load::list(dir)?;
        let now = SystemTime::now();
        let mut out = Refresh::default();
        let mut next = BTreeMap::new();
        for (path, meta) in listed {
            let stamp = Stamp::of(&meta);
            let trusted = now
                .duration_since(stamp.modified)
                .is_ok_and(|age| age >= RACY);
            let old = match self.files.remove(&path) {
                // Unchanged by its stamp: kept as read, without reading it.
                Some(mut k) if k.stamp == Some(stamp) => {
                    k.stamp = trusted.then_some(stamp);
                    next.insert(path, k);
                    continue;
                }
                old => old,
            };
            let content = load::read(&path)?;
            out.read += 1;
            let hash: [u8; 32] = Sha256::digest(&content).into();
            let stamp = trusted.then_some(stamp);
            match old {
                Some(mut k) if k.hash == hash => {
                    k.stamp = stamp;
                    next.insert(path, k);
                }
                _ => {
                    out.parsed += 1;
                    let file = ManifestFile {
                        path: path.clone(),
                        content,
                    };
                    let (mut docs, mut errors) = (Vec::new(), Vec::new());
                    load::parse_file(&file, &mut docs, &mut errors);
                    next.insert(
                        path,
                        Known {
                            stamp,
                            hash,
                            docs,
                            errors,
                        },
                    );
                }
            }
        }
        out.removed = self.files.len();
        self.files = next;
        Ok(out)
    }

    /// The digest of the files (the same as [`load::digest`] of their contents).
    pub fn digest(&self, dir: &Path) -> String {
        load::digest_of(dir, self.files.iter().map(|(p, k)| (p.as_path(), k.hash)))
    }

    /// Every document and every parse error, in file order.
    pub fn documents(&self) -> (Vec<&Doc>, Vec<Diagnostic>) {
        let mut docs = Vec::new();
        let mut errors = Vec::new();
        for k in self.files.values() {
            docs.extend(k.docs.iter());
            errors.extend(k.errors.iter().cloned());
        }
        (docs, errors)
    }

    /// How many files the cache holds.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}
