//! The `Dumper` trait (dump, check and restore an archive) and its real implementation on the
//! PostgreSQL client tools: `pg_dump -Fc`, `pg_restore` and `psql` for the server's version.
//! The password reaches the tools only in `PGPASSWORD`; argv carries the URL without it.
//!
//! With several client versions installed, `TETHER_PG_BIN_DIRS` lists their `bin` directories
//! (newest first, `:`-separated): each database is dumped by the `pg_dump` that matches its
//! server's major version (or the nearest newer one), and archives are read by the first
//! directory's `pg_restore`. Without it the tools come from `PATH`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::{ChildStdin, Command};
use tokio::task::JoinHandle;

use super::pgtools::{check_versions, parse_client_version, parse_server_version_num, tool_error};
use super::{BackupError, BoxFuture, DbUrl};

/// Makes and reads logical backups. [`PgDump`] runs the PostgreSQL tools;
/// [`super::MemoryDumper`] is an in-memory twin for schedule tests.
pub trait Dumper: Send + Sync {
    /// Checks, before anything is written, that this client can dump that server.
    fn preflight<'a>(&'a self, db: &'a DbUrl) -> BoxFuture<'a, Result<(), BackupError>>;
    /// Writes a custom-format archive of the database to `out`.
    fn dump<'a>(
        &'a self,
        db: &'a DbUrl,
        out: &'a mut (dyn AsyncWrite + Send + Unpin),
    ) -> BoxFuture<'a, Result<(), BackupError>>;
    /// Reads an archive end to end; fails when it is not a complete, readable archive.
    fn check_archive<'a>(
        &'a self,
        input: &'a mut (dyn AsyncRead + Send + Unpin),
    ) -> BoxFuture<'a, Result<(), BackupError>>;
    /// Restores an archive into the database at `target` (objects owned by the target's user).
    fn restore<'a>(
        &'a self,
        input: &'a mut (dyn AsyncRead + Send + Unpin),
        target: &'a DbUrl,
    ) -> BoxFuture<'a, Result<(), BackupError>>;
}

/// The PostgreSQL client tools, from `PATH` or from directories of installed versions.
#[derive(Debug, Default)]
pub struct PgDump {
    /// Newest first; empty means `PATH`.
    dirs: Vec<PathBuf>,
    /// The directory chosen by `preflight` for each database (URL without password).
    chosen: Mutex<BTreeMap<String, Option<PathBuf>>>,
}

impl Clone for PgDump {
    fn clone(&self) -> Self {
        PgDump::in_dirs(self.dirs.clone())
    }
}

impl PgDump {
    /// The tools in `TETHER_PG_BIN_DIRS` when it is set, else on `PATH`.
    pub fn new() -> Self {
        PgDump::from_dir_list(&std::env::var("TETHER_PG_BIN_DIRS").unwrap_or_default())
    }

    /// The tools in a `:`-separated list of directories (empty: `PATH`).
    pub fn from_dir_list(list: &str) -> Self {
        PgDump::in_dirs(list.split(':').map(str::trim).filter(|d| !d.is_empty()))
    }

    /// The tools in `dir` (`/usr/lib/postgresql/17/bin`).
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        PgDump::in_dirs([dir])
    }

    /// The tools in several directories, newest first.
    pub fn in_dirs<P: Into<PathBuf>>(dirs: impl IntoIterator<Item = P>) -> Self {
        PgDump {
            dirs: dirs.into_iter().map(Into::into).collect(),
            chosen: Mutex::default(),
        }
    }

    /// The directories searched, newest first (empty: `PATH`).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    fn first(&self) -> Option<&Path> {
        self.dirs.first().map(PathBuf::as_path)
    }

    fn command(&self, tool: &'static str, db: Option<&DbUrl>) -> Command {
        self.command_in(self.first(), tool, db)
    }

    fn command_in(&self, dir: Option<&Path>, tool: &'static str, db: Option<&DbUrl>) -> Command {
        let path = match dir {
            Some(d) => d.join(tool),
            None => PathBuf::from(tool),
        };
        let mut cmd = Command::new(path);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if std::env::var_os("PGCONNECT_TIMEOUT").is_none() {
            cmd.env("PGCONNECT_TIMEOUT", "15");
        }
        if let Some(p) = db.and_then(DbUrl::password) {
            cmd.env("PGPASSWORD", p.expose());
        }
        cmd
    }

    /// The major version of the first `pg_dump`.
    pub async fn client_major(&self) -> Result<u32, BackupError> {
        self.client_major_in(self.first()).await
    }

    async fn client_major_in(&self, dir: Option<&Path>) -> Result<u32, BackupError> {
        let mut cmd = self.command_in(dir, "pg_dump", None);
        cmd.arg("--version");
        let out = run_to_end(cmd, "pg_dump", None).await?;
        parse_client_version(&out).ok_or_else(|| BackupError::Tool {
            tool: "pg_dump",
            message: format!("cannot read its version from {:?}", out.trim()),
        })
    }

    /// The server's major version, asked with `psql`.
    pub async fn server_major(&self, db: &DbUrl) -> Result<u32, BackupError> {
        let mut cmd = self.command("psql", Some(db));
        cmd.args([
            "-X",
            "-A",
            "-t",
            "--no-password",
            "-c",
            "SHOW server_version_num",
        ])
        .args(["--dbname", db.without_password()]);
        let out = run_to_end(cmd, "psql", Some(db)).await?;
        parse_server_version_num(&out).ok_or_else(|| BackupError::Tool {
            tool: "psql",
            message: format!("cannot read the server's version from {:?}", out.trim()),
        })
    }

    /// Runs a tool that reads an archive on stdin.
    async fn feed_tool(
        &self,
        tool: &'static str,
        mut cmd: Command,
        input: &mut (dyn AsyncRead + Send + Unpin),
        db: Option<&DbUrl>,
    ) -> Result<(), BackupError> {
        cmd.stdin(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| spawn_error(tool, e))?;
        let stderr = collect(child.stderr.take());
        let stdin = child.stdin.take().expect("piped stdin");
        if let Err(e) = feed(input, stdin).await {
            let _ = child.kill().await;
            return Err(e);
        }
        let status = child
            .wait()
            .await
            .map_err(|e| BackupError::io(format!("waiting for {tool}"), e))?;
        let text = stderr.await.unwrap_or_default();
        if status.success() {
            Ok(())
        } else {
            Err(tool_error(tool, &text, status, db))
        }
    }
}

impl Dumper for PgDump {
    /// Picks the `pg_dump` for this server: the same major version, else the nearest newer
    /// one; refuses when every client is older than the server.
    fn preflight<'a>(&'a self, db: &'a DbUrl) -> BoxFuture<'a, Result<(), BackupError>> {
        Box::pin(async move {
            let candidates: Vec<Option<PathBuf>> = match self.dirs.is_empty() {
                true => vec![None],
                false => self.dirs.iter().cloned().map(Some).collect(),
            };
            let mut clients = Vec::new();
            let mut unusable = None;
            for dir in candidates {
                match self.client_major_in(dir.as_deref()).await {
                    Ok(major) => clients.push((major, dir)),
                    Err(e) => unusable = Some(e),
                }
            }
            let Some(newest) = clients.iter().map(|(m, _)| *m).max() else {
                return Err(unusable.expect("at least one candidate"));
            };
            let dir = match self.server_major(db).await {
                Ok(server) => {
                    check_versions(server, newest)?;
                    clients
                        .into_iter()
                        .filter(|(m, _)| *m >= server)
                        .min_by_key(|(m, _)| *m)
                        .and_then(|(_, d)| d)
                }
                Err(e) => {
                    // pg_dump itself says why it cannot connect, or refuses a newer server.
                    tracing::debug!(error = %e, "cannot read the server's version before pg_dump");
                    self.dirs.first().cloned()
                }
            };
            self.chosen
                .lock()
                .expect("lock")
                .insert(db.without_password().to_string(), dir);
            Ok(())
        })
    }

    fn dump<'a>(
        &'a self,
        db: &'a DbUrl,
        out: &'a mut (dyn AsyncWrite + Send + Unpin),
    ) -> BoxFuture<'a, Result<(), BackupError>> {
        Box::pin(async move {
            let chosen = self
                .chosen
                .lock()
                .expect("lock")
                .get(db.without_password())
                .cloned();
            let dir = chosen.unwrap_or_else(|| self.dirs.first().cloned());
            let mut cmd = self.command_in(dir.as_deref(), "pg_dump", Some(db));
            cmd.args(["-Fc", "--no-password", "--dbname", db.without_password()])
                .stdout(Stdio::piped());
            let mut child = cmd.spawn().map_err(|e| spawn_error("pg_dump", e))?;
            let stderr = collect(child.stderr.take());
            let stdout = child.stdout.take().expect("piped stdout");
            let mut reader = tokio::io::BufReader::with_capacity(256 * 1024, stdout);
            let copied = match tokio::io::copy_buf(&mut reader, out).await {
                Ok(_) => out.flush().await,
                Err(e) => Err(e),
            };
            if let Err(e) = copied {
                let _ = child.kill().await;
                return Err(BackupError::io("writing the archive", e));
            }
            let status = child
                .wait()
                .await
                .map_err(|e| BackupError::io("waiting for pg_dump", e))?;
            let text = stderr.await.unwrap_or_default();
            if status.success() {
                Ok(())
            } else {
                Err(tool_error("pg_dump", &text, status, Some(db)))
            }
        })
    }

    fn check_archive<'a>(
        &'a self,
        input: &'a mut (dyn AsyncRead + Send + Unpin),
    ) -> BoxFuture<'a, Result<(), BackupError>> {
        Box::pin(async move {
            // `-f /dev/null` reads every data block; `--list` would pass a truncated archive.
            let mut cmd = self.command("pg_restore", None);
            cmd.args(["-f", "/dev/null"]);
            self.feed_tool("pg_restore", cmd, input, None).await
        })
    }

    fn restore<'a>(
        &'a self,
        input: &'a mut (dyn AsyncRead + Send + Unpin),
        target: &'a DbUrl,
    ) -> BoxFuture<'a, Result<(), BackupError>> {
        Box::pin(async move {
            let mut cmd = self.command("pg_restore", Some(target));
            cmd.args([
                "--no-owner",
                "--no-password",
                "-d",
                target.without_password(),
            ]);
            self.feed_tool("pg_restore", cmd, input, Some(target)).await
        })
    }
}

async fn run_to_end(
    mut cmd: Command,
    tool: &'static str,
    db: Option<&DbUrl>,
) -> Result<String, BackupError> {
    cmd.stdout(Stdio::piped());
    let child = cmd.spawn().map_err(|e| spawn_error(tool, e))?;
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .map_err(|_| BackupError::Tool {
            tool,
            message: "no answer within 60 seconds".into(),
        })?
        .map_err(|e| BackupError::io(format!("running {tool}"), e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let text = String::from_utf8_lossy(&out.stderr);
        Err(tool_error(tool, &text, out.status, db))
    }
}

fn spawn_error(tool: &'static str, e: std::io::Error) -> BackupError {
    let message = if e.kind() == std::io::ErrorKind::NotFound {
        "it is not installed or not on PATH (install postgresql-client)".to_string()
    } else {
        e.to_string()
    };
    BackupError::Spawn { tool, message }
}

/// Reads a tool's stderr in the background (so it never blocks on a full pipe), keeping the
/// first 64 KiB.
fn collect(stderr: Option<tokio::process::ChildStderr>) -> JoinHandle<String> {
    tokio::spawn(async move {
        let Some(mut s) = stderr else {
            return String::new();
        };
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if kept.len() < 64 * 1024 {
                kept.extend_from_slice(&buf[..n]);
            }
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
}

/// Copies `input` into a tool's stdin. When the tool stops reading, copying stops: the tool's
/// exit status says why.
async fn feed(
    input: &mut (dyn AsyncRead + Send + Unpin),
    mut stdin: ChildStdin,
) -> Result<(), BackupError> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = input
            .read(&mut buf)
            .await
            .map_err(|e| BackupError::io("reading the archive", e))?;
        if n == 0 || stdin.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    drop(stdin);
    Ok(())
}
