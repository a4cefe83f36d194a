//! A real PostgreSQL server on loopback for one test: `initdb` and `pg_ctl` from
//! /usr/lib/postgresql/*/bin (run as `postgres` through `runuser` when the tests run as root,
//! since initdb refuses root), a free port, a password, a seeded database; stopped on drop.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The superuser's password: `@` and `/` make sure URLs are percent-encoded and decoded.
pub const PASSWORD: &str = "Tether-Pw-7d1f@x/y";

/// A running server; dropping it stops the server and removes its files.
pub struct Postgres {
    pub bin: PathBuf,
    pub port: u16,
    pub major: u32,
    dir: tempfile::TempDir,
    as_postgres: bool,
}

/// The newest server binaries installed: `/usr/lib/postgresql/<major>/bin`.
pub fn server_bin() -> (PathBuf, u32) {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    found.sort();
    let (major, bin) = found.pop().expect(
        "no PostgreSQL server under /usr/lib/postgresql/*/bin: run scripts/install-test-deps",
    );
    (bin, major)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn check(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Postgres {
    /// initdb, start on a free loopback port, and create database `app` with a few tables.
    pub fn start() -> Postgres {
        let (bin, major) = server_bin();
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = is_root();
        std::fs::write(dir.path().join("pw"), PASSWORD).unwrap();
        if as_postgres {
            check(
                "chown",
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(dir.path())
                    .output()
                    .unwrap(),
            );
        }
        let pg = Postgres {
            bin,
            port: 0,
            major,
            dir,
            as_postgres,
        };
        let data = pg.data();
        let pwfile = pg.dir.path().join("pw");
        let out = pg
            .tool("initdb")
            .args(["-D", data.to_str().unwrap(), "-U", "postgres"])
            .args(["-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "-N"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .unwrap();
        check("initdb", out);
        let mut pg = pg;
        // A port taken between the probe and the start is retried with another.
        for attempt in 0..5 {
            pg.port = free_port();
            let opts = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
                pg.port,
                pg.dir.path().display()
            );
            let out = pg
                .tool("pg_ctl")
                .args(["-D", data.to_str().unwrap(), "-w", "-t", "30", "-o", &opts])
                .arg("-l")
                .arg(pg.dir.path().join("server.log"))
                .arg("start")
                .output()
                .unwrap();
            if out.status.success() {
                break;
            }
            assert!(
                attempt < 4,
                "pg_ctl start failed: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(pg.dir.path().join("server.log")).unwrap_or_default()
            );
        }
        pg.psql("postgres", "CREATE DATABASE app");
        pg.psql("app", SEED);
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn tool(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// A URL with the password, percent-encoded as a connection URL must be.
    pub fn url(&self, db: &str) -> String {
        self.url_with(db, PASSWORD)
    }

    /// A URL with some other password.
    pub fn url_with(&self, db: &str, password: &str) -> String {
        let enc: String = password
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!("postgresql://postgres:{enc}@127.0.0.1:{}/{db}", self.port)
    }

    /// A key=value connection string for tokio-postgres.
    pub fn conninfo(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres password='{}' dbname={db}",
            self.port, PASSWORD
        )
    }

    /// Runs SQL with psql over TCP; returns unaligned, tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .env("PGPASSWORD", PASSWORD)
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        check("psql", out)
    }

    /// Creates an empty database.
    pub fn create_db(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .tool("pg_ctl")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
    }
}

/// The tables `app` starts with.
pub const SEED: &str = "
CREATE TABLE customers (
    id serial PRIMARY KEY,
    name text NOT NULL,
    email text UNIQUE NOT NULL,
    joined date NOT NULL
);
CREATE TABLE orders (
    id serial PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers(id),
    total numeric(10, 2) NOT NULL,
    note text
);
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 500;
INSERT INTO customers (name, email, joined)
    SELECT 'customer ' || g, 'c' || g || '@example.com', date '2025-01-01' + g
    FROM generate_series(1, 300) g;
INSERT INTO orders (customer_id, total, note)
    SELECT 1 + g % 300, (g * 37 % 1000) + 0.25, CASE WHEN g % 7 = 0 THEN 'gift, ''wrapped''' END
    FROM generate_series(1, 2000) g;
";
