//! What the PostgreSQL tools say, read: their versions, the check that `pg_dump` can dump the
//! server, and a failure's stderr in plain words with the password redacted.

use std::process::ExitStatus;

use super::{BackupError, DbUrl};

/// Refuses a server newer than the client: `pg_dump` cannot dump it.
pub fn check_versions(server: u32, client: u32) -> Result<(), BackupError> {
    if server > client {
        Err(BackupError::Version { server, client })
    } else {
        Ok(())
    }
}

/// The major version in `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
pub fn parse_client_version(text: &str) -> Option<u32> {
    let rest = text.split_once("(PostgreSQL)")?.1.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The major version in `server_version_num` (`150018` → 15).
pub fn parse_server_version_num(text: &str) -> Option<u32> {
    let n: u32 = text.trim().parse().ok()?;
    (n >= 10_000).then_some(n / 10_000)
}

/// A tool's failure in plain words: its stderr with the password redacted, prefixes such as
/// `pg_dump: error:` dropped, whitespace collapsed, lines joined.
pub(crate) fn tool_error(
    tool: &'static str,
    stderr: &str,
    status: ExitStatus,
    db: Option<&DbUrl>,
) -> BackupError {
    let text = match db {
        Some(d) => d.redact(stderr),
        None => stderr.to_string(),
    };
    if let Some((server, client)) = version_mismatch(&text) {
        return BackupError::Version { server, client };
    }
    let error_prefix = format!("{tool}: error: ");
    let prefix = format!("{tool}: ");
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let l = l
                .strip_prefix(&error_prefix)
                .or_else(|| l.strip_prefix(&prefix))
                .unwrap_or(l);
            l.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .take(6)
        .collect();
    let message = if lines.is_empty() {
        format!("it exited with {status} and said nothing")
    } else {
        lines.join("; ")
    };
    BackupError::Tool { tool, message }
}

/// pg_dump's own refusal: `server version: 17.2 ...; pg_dump version: 15.18 ...`.
fn version_mismatch(text: &str) -> Option<(u32, u32)> {
    if !text.contains("server version mismatch") {
        return None;
    }
    let major = |after: &str| -> Option<u32> {
        let rest = text.split_once(after)?.1.trim_start();
        rest.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    };
    Some((major("server version:")?, major("pg_dump version:")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn versions_parse() {
        let cases = [
            (
                "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n",
                Some(15),
            ),
            ("pg_dump (PostgreSQL) 17.2", Some(17)),
            ("pg_dump (PostgreSQL) 14.0\n", Some(14)),
            ("pg_dump (PostgreSQL) 18devel", Some(18)),
            ("something else", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_client_version(text), want, "{text}");
        }
        assert_eq!(parse_server_version_num("170002\n"), Some(17));
        assert_eq!(parse_server_version_num("150018"), Some(15));
        assert_eq!(parse_server_version_num("garbage"), None);
    }

    #[test]
    fn client_directories_come_from_a_list() {
        let d = super::super::PgDump::from_dir_list(
            "/usr/lib/postgresql/17/bin: /usr/lib/postgresql/15/bin:",
        );
        assert_eq!(
            d.dirs(),
            [
                std::path::PathBuf::from("/usr/lib/postgresql/17/bin"),
                std::path::PathBuf::from("/usr/lib/postgresql/15/bin"),
            ]
        );
        assert!(super::super::PgDump::from_dir_list("").dirs().is_empty());
    }

    #[test]
    fn a_newer_server_is_refused_plainly() {
        assert!(check_versions(15, 15).is_ok());
        assert!(check_versions(15, 17).is_ok());
        assert_eq!(
            check_versions(17, 15).unwrap_err().to_string(),
            "the database runs PostgreSQL 17 but this pg_dump is 15: install postgresql-client-17 \
             (the container image in deploy/ carries 15 and 17)"
        );
    }

    #[test]
    fn tool_errors_read_plainly_and_never_carry_the_password() {
        let db = DbUrl::parse("postgres://postgres:hunter2@127.0.0.1:5432/app", None).unwrap();
        let stderr = "pg_dump: error: connection to server at \"127.0.0.1\", port 5432 failed: \
                      FATAL:  password authentication failed for user \"postgres\" (hunter2)\n";
        let e = tool_error("pg_dump", stderr, ExitStatus::from_raw(256), Some(&db));
        assert_eq!(
            e.to_string(),
            "pg_dump failed: connection to server at \"127.0.0.1\", port 5432 failed: FATAL: \
             password authentication failed for user \"postgres\" ((sensitive value))"
        );
        let mismatch = "pg_dump: error: aborting because of server version mismatch\n\
                        pg_dump: detail: server version: 17.2 (Debian); pg_dump version: 15.18\n";
        let e = tool_error("pg_dump", mismatch, ExitStatus::from_raw(256), Some(&db));
        assert!(matches!(
            e,
            BackupError::Version {
                server: 17,
                client: 15
            }
        ));
        let e = tool_error("pg_restore", "", ExitStatus::from_raw(256), None);
        assert!(
            e.to_string()
                .starts_with("pg_restore failed: it exited with")
        );
    }
}
