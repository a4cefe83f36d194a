//! The simulator in a process of its own, so the benchmark's peak RSS is tether's alone: a
//! hidden `--serve-sim DIR` mode that serves it, and the client the benchmark polls it with.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tether::daemon::Loader;
use tether::simulate::{RecordedRequest, Seed, SimConfig, Simulator, Timings};
use tether::store::Store;

/// The simulator's settings for the benchmark: a latency on every call, 200 ms phases.
fn config(latency: Duration) -> SimConfig {
    let phase = Duration::from_millis(200);
    SimConfig {
        latency,
        timings: Timings {
            queued: phase,
            building: phase,
            deploying: phase,
            domain_verify: phase,
            cert_issue: phase,
            vercel_self_issue: true,
        },
        ..Default::default()
    }
}

/// `--serve-sim DIR`: seeds the simulator from the manifests in DIR, prints its address on
/// stdout and serves until killed.
pub async fn serve(dir: &Path, latency: Duration) {
    let scratch = dir.with_extension("sim-state");
    let store = Store::open(&scratch).expect("a scratch store");
    let fp = tether::daemon::fingerprinter(None, &store).expect("a fingerprint key");
    let desired = Loader::new(dir, None, fp, "none".into())
        .reload()
        .expect("manifests")
        .expect("valid manifests");
    let sim = Simulator::start(
        "127.0.0.1:0".parse().unwrap(),
        config(latency),
        Seed::from_desired(&desired),
    )
    .await
    .expect("the simulator starts");
    println!("{}", sim.addr);
    std::future::pending::<()>().await;
}

/// A simulator served by a child process, killed when dropped.
pub struct RemoteSim {
    pub addr: SocketAddr,
    /// The process serving it, when this handle started it.
    child: Option<Child>,
    http: reqwest::Client,
}

impl RemoteSim {
    pub fn start(exe: &Path, dir: &Path, latency: Duration) -> RemoteSim {
        let mut child = Command::new(exe)
            .arg("--serve-sim")
            .arg(dir)
            .args(["--latency-ms", &latency.as_millis().to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the simulator process");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("the simulator's address");
        RemoteSim {
            addr: line.trim().parse().expect("an address"),
            child: Some(child),
            http: reqwest::Client::new(),
        }
    }

    /// A handle on a simulator another process started.
    pub fn connect(addr: SocketAddr) -> RemoteSim {
        RemoteSim {
            addr,
            child: None,
            http: reqwest::Client::new(),
        }
    }

    /// The recorded requests after the first `from`.
    pub async fn requests_since(&self, from: usize) -> Vec<RecordedRequest> {
        self.http
            .get(format!("http://{}/__sim/requests/{from}", self.addr))
            .send()
            .await
            .expect("the simulator answers")
            .json()
            .await
            .expect("a request log")
    }

    /// Every recorded request after the first `from`, each folded by `f` as it is read, a page
    /// at a time (so the harness never holds the whole log with its bodies).
    pub async fn fold_since<T>(&self, from: usize, f: impl Fn(&RecordedRequest) -> T) -> Vec<T> {
        // Small pages: a page of recorded requests with their bodies is parsed whole.
        const PAGE: usize = 50;
        let mut out = Vec::new();
        loop {
            let page: Vec<RecordedRequest> = self
                .http
                .get(format!(
                    "http://{}/__sim/requests/{}/{PAGE}",
                    self.addr,
                    from + out.len()
                ))
                .send()
                .await
                .expect("the simulator answers")
                .json()
                .await
                .expect("a request log");
            out.extend(page.iter().map(&f));
            if page.len() < PAGE {
                return out;
            }
        }
    }

    pub async fn clear_requests(&self) {
        self.http
            .delete(format!("http://{}/__sim/requests", self.addr))
            .send()
            .await
            .expect("the simulator answers");
    }
}

impl Drop for RemoteSim {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
