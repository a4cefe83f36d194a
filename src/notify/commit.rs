//! Commit status, as Flux sets it: when the manifests are a git checkout of a GitHub
//! repository, the commit tether applied gets `pending` while it converges, `success` when all
//! is Ready and `failure` with the first reasons, so the commit and its pull request show it.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::status::{EnvStatus, Index, State};
use crate::store::{Store, trees};

/// Where statuses go: the API base, the repository and the token.
#[derive(Clone)]
pub struct GitHub {
    pub api: String,
    pub owner: String,
    pub repo: String,
    token: String,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GitHub({}/{} at {})", self.owner, self.repo, self.api)
    }
}

impl GitHub {
    /// From the checkout's `origin` remote and `GITHUB_TOKEN` (`GITHUB_API_URL` overrides the
    /// API, for GitHub Enterprise and tests); None when either is missing or the remote is not
    /// on GitHub (or on the Enterprise host `GITHUB_SERVER_URL` names).
    pub fn detect(dir: &Path, env: impl Fn(&str) -> Option<String>) -> Option<GitHub> {
        let token = env("GITHUB_TOKEN").filter(|t| !t.is_empty())?;
        let remote = crate::manifest::load::git_origin(dir)?;
        let server = env("GITHUB_SERVER_URL")
            .and_then(|u| {
                u.split("://")
                    .nth(1)
                    .map(|h| h.trim_end_matches('/').to_string())
            })
            .unwrap_or_else(|| "github.com".into());
        let (owner, repo) = owner_repo(&remote, &server)?;
        let api = env("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
        Some(GitHub {
            api: api.trim_end_matches('/').to_string(),
            owner,
            repo,
            token,
        })
    }
}

/// `owner/repo` of a remote on `host`: `https://host/o/r(.git)`, `git@host:o/r(.git)`,
/// `ssh://git@host/o/r`.
pub fn owner_repo(remote: &str, host: &str) -> Option<(String, String)> {
    let rest = remote.strip_prefix(&format!("git@{host}:")).or_else(|| {
        let no_scheme = remote.split_once("://")?.1;
        let no_user = no_scheme
            .rsplit_once('@')
            .map(|(_, h)| h)
            .unwrap_or(no_scheme);
        no_user.strip_prefix(&format!("{host}/"))
    })?;
    let rest = rest.trim_end_matches('/').trim_end_matches(".git");
    let (owner, repo) = rest.split_once('/')?;
    (!owner.is_empty() && !repo.is_empty() && !repo.contains('/'))
        .then(|| (owner.to_string(), repo.to_string()))
}

/// One status of one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitStatus {
    pub sha: String,
    /// `pending`, `success` or `failure`.
    pub state: String,
    /// At most 140 characters (GitHub's limit).
    pub description: String,
}

/// The status the last status write calls for, if the manifests are at a commit.
pub fn of(index: &Index, envs: &[std::sync::Arc<EnvStatus>]) -> Option<CommitStatus> {
    let m = &index.manifests;
    let (sha, state, description) = if !m.valid {
        let first = m.errors.first().map(|d| d.to_string()).unwrap_or_default();
        (
            m.revision.as_ref()?.commit.clone()?,
            "failure",
            format!("manifests invalid: {first}"),
        )
    } else {
        let sha = m
            .applied_revision
            .as_ref()
            .or(m.revision.as_ref())?
            .commit
            .clone()?;
        let stalled: Vec<String> = envs
            .iter()
            .flat_map(|e| {
                e.resources
                    .iter()
                    .filter(|r| r.state == State::Stalled)
                    .map(move |r| {
                        let why = r
                            .conditions
                            .first()
                            .map(|c| c.message.as_str())
                            .unwrap_or("");
                        format!("{} {}/{}: {why}", e.environment, r.kind, r.name)
                    })
            })
            .collect();
        let c = &index.summary;
        if let Some(first) = stalled.first() {
            (
                sha,
                "failure",
                format!("{} Stalled: {first}", stalled.len()),
            )
        } else if c.reconciling == 0 {
            (sha, "success", format!("{} resources Ready", c.ready))
        } else {
            (
                sha,
                "pending",
                format!("converging: {}/{} Ready", c.ready, c.resources),
            )
        }
    };
    let description: String = if description.chars().count() > 140 {
        description.chars().take(139).chain(['…']).collect()
    } else {
        description
    };
    Some(CommitStatus {
        sha,
        state: state.into(),
        description,
    })
}

/// Posts statuses in order, each retried with backoff, skipping one equal to the last posted
/// (kept in the store, so a restart does not post it again).
pub struct Poster {
    tx: tokio::sync::mpsc::UnboundedSender<CommitStatus>,
    last: std::sync::Mutex<Option<CommitStatus>>,
    /// Statuses queued and not yet posted (or given up on).
    pending: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Poster {
    pub fn start(gh: GitHub, store: Store, target_url: Option<String>, retry: Duration) -> Poster {
        let last = store
            .get::<CommitStatus>(trees::META, "commit-status")
            .ok()
            .flatten();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<CommitStatus>();
        let pending = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let left = pending.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            while let Some(s) = rx.recv().await {
                for attempt in 0..6u32 {
                    match post(&client, &gh, &s, target_url.as_deref()).await {
                        Ok(()) => {
                            let _ = store.put(trees::META, "commit-status", &s);
                            break;
                        }
                        Err(why) => {
                            tracing::warn!(
                                "commit status {} on {}: {why}",
                                s.state,
                                &s.sha[..s.sha.len().min(12)]
                            );
                            tokio::time::sleep(retry.saturating_mul(1 << attempt)).await;
                        }
                    }
                }
                left.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        Poster {
            tx,
            last: std::sync::Mutex::new(last),
            pending,
        }
    }

    /// Statuses not yet posted.
    pub fn pending(&self) -> usize {
        self.pending.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Queues `s` unless it is what was last queued or posted.
    pub fn update(&self, s: CommitStatus) {
        let mut last = self.last.lock().expect("last");
        if last.as_ref() != Some(&s) {
            *last = Some(s.clone());
            self.pending
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.tx.send(s).is_err() {
                self.pending
                    .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }
}

async fn post(
    client: &reqwest::Client,
    gh: &GitHub,
    s: &CommitStatus,
    target_url: Option<&str>,
) -> Result<(), String> {
    let url = format!(
        "{}/repos/{}/{}/statuses/{}",
        gh.api, gh.owner, gh.repo, s.sha
    );
    let mut body = serde_json::json!({
        "state": s.state,
        "description": s.description,
        "context": "tether",
    });
    if let Some(t) = target_url {
        body["target_url"] = t.into();
    }
    let r = client
        .post(url)
        .timeout(Duration::from_secs(10))
        .bearer_auth(&gh.token)
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .header("user-agent", concat!("tether/", env!("CARGO_PKG_VERSION")))
        .json(&body)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "no answer within 10 s".to_string()
            } else {
                "GitHub could not be reached".to_string()
            }
        })?;
    match r.status() {
        s if s.is_success() => Ok(()),
        s => Err(format!("GitHub answered {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remotes_on_github_name_their_repository() {
        let want = Some(("acme".to_string(), "manifests".to_string()));
        for r in [
            "https://github.com/acme/manifests.git",
            "https://x-access-token:t@github.com/acme/manifests",
            "git@github.com:acme/manifests.git",
            "ssh://git@github.com/acme/manifests",
        ] {
            assert_eq!(owner_repo(r, "github.com"), want, "{r}");
        }
        assert_eq!(
            owner_repo("https://gitlab.com/acme/manifests", "github.com"),
            None
        );
        assert_eq!(owner_repo("https://github.com/acme", "github.com"), None);
    }
}
