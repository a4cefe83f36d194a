//! Headless Chromium for page tests: the DOM after load (`--dump-dom`) and screenshots, each
//! run in a fresh profile, with every host but loopback unresolvable.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the Debian package installs it; `CHROMIUM` overrides.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long one Chromium run may take.
const TIMEOUT: Duration = Duration::from_secs(90);

/// The Chromium binary; panics with how to install it when it is absent.
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CHROMIUM));
    assert!(
        path.exists(),
        "chromium is missing: install the Debian package chromium (scripts/install-test-deps does)"
    );
    path
}

/// Runs Chromium headless on `url` with `extra` flags and returns its stdout.
async fn run(extra: &[String], url: &str) -> String {
    let profile = tempfile::tempdir().expect("a temporary profile directory");
    let mut cmd = tokio::process::Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        // Nothing but loopback resolves, so a page that fetched anything would show it broken.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(url)
    .stdin(std::process::Stdio::null())
    .kill_on_drop(true);
    let out = tokio::time::timeout(TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("chromium took more than {TIMEOUT:?} on {url}"))
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed on {url}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the DOM is UTF-8")
}

/// The serialized DOM of `url` once it loaded.
pub async fn dump_dom(url: &str) -> String {
    let dom = run(&["--dump-dom".to_string()], url).await;
    assert!(
        dom.contains("<html"),
        "chromium printed no DOM for {url}: {dom:.200}"
    );
    dom
}

/// Saves a PNG of `url` rendered in a `width` × `height` window to `path`.
pub async fn screenshot(url: &str, path: &Path, width: u32, height: u32) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("the screenshot directory");
    }
    let _ = std::fs::remove_file(path);
    run(
        &[
            format!("--screenshot={}", path.display()),
            format!("--window-size={width},{height}"),
        ],
        url,
    )
    .await;
    assert!(
        path.exists(),
        "chromium wrote no screenshot to {}",
        path.display()
    );
}

/// The width and height a PNG declares in its header.
pub fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).expect("the screenshot");
    assert!(
        bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    (be(16), be(20))
}

/// `target/test-artifacts/<name>` (under `CARGO_TARGET_DIR` when set).
pub fn artifact(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("test-artifacts").join(name)
}

/// The text of `dom` from the first `open` up to the next `close`; panics when either is absent.
pub fn slice<'a>(dom: &'a str, open: &str, close: &str) -> &'a str {
    let from = dom
        .find(open)
        .unwrap_or_else(|| panic!("{open} is not in the page"));
    let len = dom[from..]
        .find(close)
        .unwrap_or_else(|| panic!("{open} is not closed by {close}"));
    &dom[from..from + len]
}

/// The value of `attr` on every element whose text starts with `element` (e.g.
/// `<rect class="uptime-bar`), in document order.
pub fn attrs(dom: &str, element: &str, attr: &str) -> Vec<String> {
    let open = format!(r#" {attr}=""#);
    dom.split(element)
        .skip(1)
        .map(|e| {
            let at = e
                .find(&open)
                .unwrap_or_else(|| panic!("{element} has no {attr}"));
            let v = &e[at + open.len()..];
            v[..v.find('"').unwrap_or(v.len())].to_string()
        })
        .collect()
}

/// Asserts that a DOM loads nothing: no script, stylesheet, image, frame or CSS import, and no
/// http(s) URL but loopback ones and those in `data` (links the status itself carries).
pub fn assert_self_contained(dom: &str, data: &str) {
    for tag in [
        "<script", "<link", "<img", "<iframe", "<object", "src=", "@import", "url(",
    ] {
        assert!(!dom.contains(tag), "the page loads something: {tag}");
    }
    for scheme in ["http://", "https://"] {
        for (i, _) in dom.match_indices(scheme) {
            let rest = &dom[i..];
            let url = &rest[..rest
                .find(['"', '<', ' ', '\'', '&', ')'])
                .unwrap_or(rest.len())];
            let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                .iter()
                .any(|l| url.starts_with(l));
            assert!(loopback || data.contains(url), "the page refers to {url}");
        }
    }
}
