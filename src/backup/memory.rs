//! An in-memory twin of `pg_dump`/`pg_restore` for tests of schedules and retention: it writes
//! small archives with a recognisable header and trailer, and fails on request.

use std::sync::Mutex;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{BackupError, BoxFuture, DbUrl, Dumper};

const HEADER: &[u8] = b"TETHER-MEMORY-DUMP\n";
const TRAILER: &[u8] = b"\nTETHER-MEMORY-END\n";

#[derive(Debug, Default)]
struct State {
    size: usize,
    fail: Option<(String, usize)>,
    server_major: Option<u32>,
    client_major: u32,
    truncate: bool,
    dumps: u64,
}

/// A [`Dumper`] that needs no database. Thread-safe; configure it between passes.
#[derive(Debug)]
pub struct MemoryDumper {
    state: Mutex<State>,
}

impl Default for MemoryDumper {
    fn default() -> Self {
        MemoryDumper {
            state: Mutex::new(State {
                size: 256,
                client_major: 15,
                ..State::default()
            }),
        }
    }
}

impl MemoryDumper {
    pub fn new() -> Self {
        Self::default()
    }

    /// The body size of each archive (header and trailer come on top).
    pub fn set_size(&self, bytes: usize) {
        self.state.lock().expect("lock").size = bytes;
    }

    /// Makes every dump fail with `message` after writing `after_bytes`; `None` heals it.
    pub fn set_failure(&self, failure: Option<(&str, usize)>) {
        self.state.lock().expect("lock").fail = failure.map(|(m, n)| (m.to_string(), n));
    }

    /// Makes dumps "succeed" without their trailer, as a truncated archive would.
    pub fn set_truncate(&self, truncate: bool) {
        self.state.lock().expect("lock").truncate = truncate;
    }

    /// Pretends the server runs this major version (the client is 15).
    pub fn set_server_major(&self, major: Option<u32>) {
        self.state.lock().expect("lock").server_major = major;
    }

    /// How many dumps were attempted.
    pub fn dumps(&self) -> u64 {
        self.state.lock().expect("lock").dumps
    }
}

fn body_byte(i: usize) -> u8 {
    (i.wrapping_mul(31).wrapping_add(7) % 251) as u8
}

impl Dumper for MemoryDumper {
    fn preflight<'a>(&'a self, _db: &'a DbUrl) -> BoxFuture<'a, Result<(), BackupError>> {
        let st = self.state.lock().expect("lock");
        let result = match st.server_major {
            Some(server) => super::pgtools::check_versions(server, st.client_major),
            None => Ok(()),
        };
        Box::pin(async move { result })
    }

    fn dump<'a>(
        &'a self,
        db: &'a DbUrl,
        out: &'a mut (dyn AsyncWrite + Send + Unpin),
    ) -> BoxFuture<'a, Result<(), BackupError>> {
        let (size, fail, n, truncate) = {
            let mut st = self.state.lock().expect("lock");
            st.dumps += 1;
            (st.size, st.fail.clone(), st.dumps, st.truncate)
        };
        Box::pin(async move {
            let write = |e: std::io::Error| BackupError::io("writing the archive", e);
            let mut data = HEADER.to_vec();
            data.extend_from_slice(format!("{db} #{n}\n").as_bytes());
            data.extend((0..size).map(body_byte));
            if !truncate {
                data.extend_from_slice(TRAILER);
            }
            if let Some((message, after)) = fail {
                out.write_all(&data[..after.min(data.len())])
                    .await
                    .map_err(write)?;
                let pad = vec![0u8; after.saturating_sub(data.len())];
                out.write_all(&pad).await.map_err(write)?;
                return Err(BackupError::Tool {
                    tool: "pg_dump",
                    message,
                });
            }
            out.write_all(&data).await.map_err(write)?;
            out.flush().await.map_err(write)
        })
    }

    fn check_archive<'a>(
        &'a self,
        input: &'a mut (dyn AsyncRead + Send + Unpin),
    ) -> BoxFuture<'a, Result<(), BackupError>> {
        Box::pin(async move {
            let mut data = Vec::new();
            input
                .read_to_end(&mut data)
                .await
                .map_err(|e| BackupError::io("reading the archive", e))?;
            if data.starts_with(HEADER) && data.ends_with(TRAILER) {
                Ok(())
            } else {
                Err(BackupError::Tool {
                    tool: "pg_restore",
                    message: "could not read from input file: end of file".into(),
                })
            }
        })
    }

    fn restore<'a>(
        &'a self,
        _input: &'a mut (dyn AsyncRead + Send + Unpin),
        _target: &'a DbUrl,
    ) -> BoxFuture<'a, Result<(), BackupError>> {
        Box::pin(async move {
            Err(BackupError::Tool {
                tool: "pg_restore",
                message: "the in-memory dumper cannot restore into a database".into(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn archives_check_and_truncation_is_caught() {
        let d = MemoryDumper::new();
        let db = DbUrl::parse("postgres://u:pw@h/db", None).unwrap();
        let mut out = Vec::new();
        d.dump(&db, &mut out).await.unwrap();
        assert!(!String::from_utf8_lossy(&out).contains("pw"));
        d.check_archive(&mut &out[..]).await.unwrap();
        let cut = &out[..out.len() - 3];
        assert!(d.check_archive(&mut &cut[..]).await.is_err());

        d.set_failure(Some(("boom", 10)));
        let mut partial = Vec::new();
        let e = d.dump(&db, &mut partial).await.unwrap_err();
        assert_eq!(e.to_string(), "pg_dump failed: boom");
        assert_eq!(partial.len(), 10);
        assert_eq!(d.dumps(), 2);

        d.set_server_major(Some(17));
        assert!(matches!(
            d.preflight(&db).await,
            Err(BackupError::Version {
                server: 17,
                client: 15
            })
        ));
    }
}
