//! A database URL split for the PostgreSQL tools: the URL without its password (safe for
//! argv and messages) and the password alone (for `PGPASSWORD`), plus redaction of tool output.

use std::fmt;

use reqwest::Url;

use super::BackupError;
use crate::secret::{REDACTED, SecretValue};

/// A `postgres://` URL whose password is kept apart. Debug and Display show no password.
#[derive(Clone)]
pub struct DbUrl {
    without_password: String,
    password: Option<SecretValue>,
    /// The password as it was written in the URL (percent-encoded), for redaction.
    encoded: Option<SecretValue>,
}

impl DbUrl {
    /// Parses `postgres://user:password@host:port/db?params`. When `database` is given it
    /// replaces the URL's database name. A `password` query parameter is moved out as well.
    /// Errors never repeat the URL.
    pub fn parse(url: &str, database: Option<&str>) -> Result<DbUrl, BackupError> {
        let mut u = Url::parse(url.trim()).map_err(|e| {
            BackupError::Invalid(format!("the database URL is not a valid URL ({e})"))
        })?;
        if !matches!(u.scheme(), "postgres" | "postgresql") {
            return Err(BackupError::Invalid(format!(
                "the database URL must start with postgres:// or postgresql://, not {}://",
                u.scheme()
            )));
        }
        if u.host_str().is_none_or(str::is_empty) {
            return Err(BackupError::Invalid(
                "the database URL names no host".into(),
            ));
        }
        let mut encoded = u.password().map(str::to_string);
        let mut password = encoded.as_deref().map(percent_decode);
        let _ = u.set_password(None);
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if pairs.iter().any(|(k, _)| k == "password") {
            let mut kept = Vec::new();
            for (k, v) in pairs {
                if k == "password" {
                    encoded = Some(v.clone());
                    password = Some(v);
                } else {
                    kept.push((k, v));
                }
            }
            if kept.is_empty() {
                u.set_query(None);
            } else {
                u.query_pairs_mut().clear().extend_pairs(kept);
            }
        }
        if let Some(db) = database {
            u.set_path(&format!("/{db}"));
        }
        Ok(DbUrl {
            without_password: u.to_string(),
            password: password.filter(|p| !p.is_empty()).map(SecretValue::new),
            encoded: encoded.filter(|p| !p.is_empty()).map(SecretValue::new),
        })
    }

    /// The URL without a password: what `--dbname` gets.
    pub fn without_password(&self) -> &str {
        &self.without_password
    }

    /// The password, for `PGPASSWORD` only.
    pub fn password(&self) -> Option<&SecretValue> {
        self.password.as_ref()
    }

    /// `text` with every occurrence of the password (plain or percent-encoded) replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for p in [&self.password, &self.encoded].into_iter().flatten() {
            if !p.expose().is_empty() {
                out = out.replace(p.expose(), REDACTED);
            }
        }
        out
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbUrl({})", self.without_password)
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.without_password)
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_taken_out_and_decoded() {
        let u = DbUrl::parse(
            "postgresql://postgres:p%40ss%2Fw0rd@db.abc.supabase.co:5432/postgres?sslmode=require",
            None,
        )
        .unwrap();
        assert_eq!(
            u.without_password(),
            "postgresql://postgres@db.abc.supabase.co:5432/postgres?sslmode=require"
        );
        assert_eq!(u.password().unwrap().expose(), "p@ss/w0rd");
        assert_eq!(format!("{u} {u:?}").matches("p@ss").count(), 0);
        assert_eq!(
            u.redact("FATAL: p@ss/w0rd and p%40ss%2Fw0rd"),
            "FATAL: (sensitive value) and (sensitive value)"
        );
    }

    #[test]
    fn database_and_query_password() {
        let u = DbUrl::parse(
            "postgres://app@127.0.0.1:6543/postgres?password=s3cret&sslmode=disable",
            Some("app"),
        )
        .unwrap();
        assert_eq!(
            u.without_password(),
            "postgres://app@127.0.0.1:6543/app?sslmode=disable"
        );
        assert_eq!(u.password().unwrap().expose(), "s3cret");
        let bare = DbUrl::parse("postgres://app@localhost/x", None).unwrap();
        assert!(bare.password().is_none());
        assert_eq!(bare.redact("text"), "text");
    }

    #[test]
    fn bad_urls_are_refused_without_repeating_them() {
        for (url, want) in [
            ("mysql://u:hunter2@h/db", "must start with postgres://"),
            ("host=h password=hunter2", "not a valid URL"),
            ("postgres:///db?password=hunter2", "names no host"),
        ] {
            let e = DbUrl::parse(url, None).unwrap_err().to_string();
            assert!(e.contains(want), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn percent_decoding_leaves_stray_percents() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
