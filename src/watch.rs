//! Watching the manifest directory with notify (the one module that uses it). It only says
//! "something may have changed"; the daemon rescans and compares content digests, so an
//! editor's save, a checkout of many files or a swapped symlink each give one pass.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

/// Errors setting up the watch.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {}: {source}", path.display())]
    Watch {
        path: PathBuf,
        source: notify::Error,
    },
}

/// A recursive watch of the manifest directory, plus its parent (so swapping a symlink that
/// names the directory, as git-sync does, is seen).
pub struct DirWatch {
    debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    dir: PathBuf,
    target: PathBuf,
}

impl DirWatch {
    /// Starts watching; every debounced batch of relevant events sends one `()`.
    pub fn start(
        dir: &Path,
        debounce: Duration,
    ) -> Result<(DirWatch, mpsc::UnboundedReceiver<()>), WatchError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let handler = move |res: DebounceEventResult| match res {
            Ok(events) => {
                // Reading a file raises an access event: ignore them, or tether wakes itself.
                if events
                    .iter()
                    .any(|e| !matches!(e.event.kind, EventKind::Access(_)))
                {
                    let _ = tx.send(());
                }
            }
            Err(errors) => {
                for e in errors {
                    tracing::warn!(error = %e, "file watch error");
                }
                let _ = tx.send(());
            }
        };
        let debouncer =
            new_debouncer(debounce, Some(tick(debounce)), handler).map_err(|source| {
                WatchError::Watch {
                    path: dir.into(),
                    source,
                }
            })?;
        let target = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let mut w = DirWatch {
            debouncer,
            dir: dir.to_path_buf(),
            target: target.clone(),
        };
        w.debouncer
            .watch(&target, RecursiveMode::Recursive)
            .map_err(|source| WatchError::Watch {
                path: dir.into(),
                source,
            })?;
        if let Some(parent) = absolute_parent(dir) {
            // Best effort: a directory at the root has nothing above it to watch.
            let _ = w.debouncer.watch(&parent, RecursiveMode::NonRecursive);
        }
        Ok((w, rx))
    }

    /// After a change, re-point the recursive watch if the directory's symlink now names
    /// another target. Returns true when it did.
    pub fn refresh(&mut self) -> bool {
        let Ok(now) = std::fs::canonicalize(&self.dir) else {
            return false;
        };
        if now == self.target {
            return false;
        }
        let _ = self.debouncer.unwatch(&self.target);
        match self.debouncer.watch(&now, RecursiveMode::Recursive) {
            Ok(()) => {
                tracing::info!(target = %now.display(), "the manifest directory now points elsewhere; watching the new target");
                self.target = now;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the new manifest target");
                false
            }
        }
    }
}

fn absolute_parent(dir: &Path) -> Option<PathBuf> {
    let abs = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(dir)
    };
    abs.parent().map(Path::to_path_buf)
}

/// How often the debouncer looks for quiet paths: a tenth of the debounce (at least 10 ms), so
/// a change is read at most a tenth later than the debounce says (its default is a quarter).
fn tick(debounce: Duration) -> Duration {
    (debounce / 10).max(Duration::from_millis(10))
}
