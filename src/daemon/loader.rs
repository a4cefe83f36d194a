//! The manifests as the daemon reads them: rescanned on every change, with only the files
//! that changed read and parsed again, and only this daemon's environments decrypted.

use std::path::{Path, PathBuf};

use crate::manifest::{self, DesiredState, Diagnostics, SecretContext};
use crate::secret::{Fingerprinter, Keyring};

/// The manifests, loaded with the keyring.
pub struct Loader {
    pub dir: PathBuf,
    /// Only the environments this daemon owns.
    pub selector: crate::manifest::select::Selector,
    keyring: Option<Keyring>,
    fp: Fingerprinter,
    key_source: String,
    last_digest: Option<String>,
    files: manifest::cache::FileCache,
    last_refresh: manifest::cache::Refresh,
}

impl Loader {
    pub fn new(
        dir: &Path,
        keyring: Option<Keyring>,
        fp: Fingerprinter,
        key_source: String,
    ) -> Self {
        Loader {
            dir: dir.to_path_buf(),
            selector: Default::default(),
            keyring,
            fp,
            key_source,
            last_digest: None,
            files: Default::default(),
            last_refresh: Default::default(),
        }
    }

    /// Rescans; None when the content digest is unchanged since the last call.
    pub fn reload(&mut self) -> Option<Result<DesiredState, Diagnostics>> {
        self.reload_after(None)
    }

    /// Like [`Self::reload`]; `previous` (the state in force, loaded by this loader) lends its
    /// fingerprints to every value that did not change.
    pub fn reload_after(
        &mut self,
        previous: Option<&DesiredState>,
    ) -> Option<Result<DesiredState, Diagnostics>> {
        self.last_refresh = match self.files.refresh(&self.dir) {
            Ok(r) => r,
            Err(d) => {
                // Read everything afresh next time: the listing failed part-way.
                self.files = Default::default();
                self.last_digest = None;
                return Some(Err(Diagnostics(vec![d])));
            }
        };
        let digest = self.files.digest(&self.dir);
        if self.last_digest.as_deref() == Some(digest.as_str()) {
            return None;
        }
        self.last_digest = Some(digest);
        let ctx = SecretContext {
            keyring: self.keyring.as_ref(),
            fingerprinter: &self.fp,
            key_source: &self.key_source,
            decrypt: manifest::Decrypt::Selected(&self.selector),
        };
        let loaded = manifest::load_cached(&self.dir, &self.files, &ctx, previous)
            .map(|d| d.select(&self.selector));
        // Every secret of the environments this daemon manages decrypts, or the load failed;
        // the stand-ins of other environments went with them. Checked again: a stand-in must
        // never reach a platform.
        Some(loaded.and_then(|d| {
            for w in &d.secrets.warnings {
                tracing::warn!("{w}");
            }
            match d.secrets.not_decrypted.first() {
                None => Ok(d),
                Some((env, key)) => Err(Diagnostics(vec![manifest::Diagnostic {
                    file: self.dir.clone(),
                    line: 0,
                    column: 0,
                    path: String::new(),
                    message: format!("{env}/{key} was not decrypted, so {env} is not applied"),
                }])),
            }
        }))
    }

    /// The next reload builds the desired state even if the content is unchanged (the last
    /// one built was dropped unused).
    pub fn forget_digest(&mut self) {
        self.last_digest = None;
    }

    /// What the last reload read and parsed.
    pub fn last_refresh(&self) -> manifest::cache::Refresh {
        self.last_refresh
    }
}
