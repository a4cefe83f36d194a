//! A dnsmasq on loopback serving a `.test` zone written for one test; killed when dropped.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Records for dnsmasq's config file. Names outside the records but under `.test` are NXDOMAIN.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    lines: Vec<String>,
    hosts: Vec<String>,
}

impl Zone {
    pub fn new() -> Self {
        Zone::default()
    }

    /// `name CNAME target`. dnsmasq serves a CNAME only when it knows the target, so the target
    /// gets an A record (192.0.2.1) unless it has one.
    pub fn cname(mut self, name: &str, target: &str) -> Self {
        if !self.hosts.iter().any(|h| h == target) {
            self = self.a(target, Ipv4Addr::new(192, 0, 2, 1));
        }
        self.lines.push(format!("cname={name},{target}"));
        self
    }

    /// `name A ip` (one `host-record`).
    pub fn a(mut self, name: &str, ip: Ipv4Addr) -> Self {
        self.hosts.push(name.to_string());
        self.lines.push(format!("host-record={name},{ip}"));
        self
    }

    /// Answers authoritatively (NXDOMAIN for unknown names) under this suffix too, besides
    /// `.test` (`com` for `api.vocilia.com`).
    pub fn local(mut self, suffix: &str) -> Self {
        self.lines.push(format!("local=/{suffix}/"));
        self
    }

    /// One TXT record made of these character-strings (a comma inside one stays inside it).
    pub fn txt(mut self, name: &str, strings: &[&str]) -> Self {
        let quoted: Vec<String> = strings.iter().map(|s| format!("\"{s}\"")).collect();
        self.lines
            .push(format!("txt-record={name},{}", quoted.join(",")));
        self
    }
}

/// A running dnsmasq.
pub struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// Starts dnsmasq on 127.0.0.1 on a free port and waits until it answers.
    pub fn start(zone: &Zone) -> Dnsmasq {
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start(zone) {
                Ok(d) => return d,
                Err(e) => last = e,
            }
        }
        panic!("dnsmasq did not start: {last}");
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn try_start(zone: &Zone) -> Result<Dnsmasq, String> {
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let conf = dir.path().join("dnsmasq.conf");
        let log = dir.path().join("dnsmasq.log");
        let mut text = [
            format!("port={port}"),
            "listen-address=127.0.0.1".into(),
            "bind-interfaces".into(),
            "no-resolv".into(),
            "no-hosts".into(),
            "no-poll".into(),
            "pid-file=".into(),
            "cache-size=0".into(),
            "local=/test/".into(),
            format!("log-facility={}", log.display()),
        ]
        .join("\n");
        text.push('\n');
        for line in &zone.lines {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(&conf, text).map_err(|e| e.to_string())?;
        let mut child = Command::new(binary())
            .arg("--keep-in-foreground")
            .arg(format!("--conf-file={}", conf.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run dnsmasq: {e}"))?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                let mut err = String::new();
                if let Some(mut s) = child.stderr.take() {
                    std::io::Read::read_to_string(&mut s, &mut err).ok();
                }
                return Err(format!("exited with {status}: {err} {}", read(&log)));
            }
            if answers(addr) {
                return Ok(Dnsmasq {
                    child,
                    addr,
                    _dir: dir,
                });
            }
        }
        child.kill().ok();
        child.wait().ok();
        Err(format!("no answer on {addr} within 5 s: {}", read(&log)))
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn binary() -> PathBuf {
    for p in ["/usr/sbin/dnsmasq", "/sbin/dnsmasq", "/usr/bin/dnsmasq"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    PathBuf::from("dnsmasq")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Sends one query (`ready.test A`) and waits briefly for any answer.
fn answers(addr: SocketAddr) -> bool {
    let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    sock.set_read_timeout(Some(Duration::from_millis(100))).ok();
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["ready", "test"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    if sock.send_to(&q, addr).is_err() {
        std::thread::sleep(Duration::from_millis(50));
        return false;
    }
    let mut buf = [0u8; 512];
    matches!(sock.recv_from(&mut buf), Ok((n, _)) if n >= 12 && buf[..2] == [0x12, 0x34])
}
