//! DNS checks against a real dnsmasq, and TLS probes of certificates made here (rcgen).

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use support::dnsmasq::{Dnsmasq, Zone};
use support::tls::{Leaf, TestCa, TlsServer, now};
use tether::certs::CertLevel::{self, Critical, Warning};
use tether::certs::CertState::{Active, Expired, Failed, Pending};
use tether::certs::{
    CertSource, CertStatus, IssuanceBackoff, Probe, ProbeError, Verification, evaluate, probe,
};
use tether::dns::Outcome::{Conflict, InPlace, Missing};
use tether::dns::{DnsChecker, DnsStatus, Outcome};
use tether::manifest::{Authority, CertificateSpec};
use tether::observed::{PlatformCert, RequiredRecord};

const API: &str = "api.vocilia.test";
const TARGET: &str = "abc123.up.railway.app";
const TXT_NAME: &str = "_railway-verify.api.vocilia.test";
const TOKEN: &str = "railway-verify=abc123";

fn rec(t: &str, name: &str, value: &str, purpose: &str) -> RequiredRecord {
    RequiredRecord {
        record_type: t.into(),
        name: name.into(),
        value: value.into(),
        purpose: purpose.into(),
    }
}

fn cname() -> RequiredRecord {
    rec("CNAME", API, TARGET, "traffic_route")
}

fn ownership() -> RequiredRecord {
    rec("TXT", TXT_NAME, TOKEN, "ownership")
}

fn checker(dns: &Dnsmasq) -> DnsChecker {
    DnsChecker::with_server(dns.addr()).unwrap()
}

/// Checks one record; returns what the check says: outcome, found and message.
async fn look(c: &DnsChecker, t: &str, name: &str, value: &str) -> (Outcome, Vec<String>, String) {
    let check = c.check(&rec(t, name, value, "")).await;
    assert_eq!(check.ok, check.outcome == Outcome::InPlace);
    (check.outcome, check.found, check.message)
}

fn says(outcome: Outcome, found: &[&str], message: &str) -> (Outcome, Vec<String>, String) {
    let found = found.iter().map(|f| f.to_string()).collect();
    (outcome, found, message.to_string())
}

#[tokio::test]
async fn cname_in_place_wrong_shadowed_by_a_and_missing() {
    let dns = Dnsmasq::start(
        &Zone::new()
            .cname(API, TARGET)
            .cname("wrong.vocilia.test", "other.example.net")
            .a("plain.vocilia.test", Ipv4Addr::new(203, 0, 113, 7)),
    );
    let c = checker(&dns);
    let ok = "CNAME api.vocilia.test → abc123.up.railway.app is in place";
    let found = ["CNAME abc123.up.railway.app"];
    assert_eq!(
        look(&c, "CNAME", API, TARGET).await,
        says(InPlace, &found, ok)
    );
    // Case and trailing dots do not matter.
    let loud = look(&c, "cname", "API.vocilia.test.", "ABC123.Up.Railway.App.").await;
    assert_eq!(loud.0, InPlace);

    let m =
        "create CNAME wrong.vocilia.test → abc123.up.railway.app; found CNAME other.example.net";
    let found = ["CNAME other.example.net"];
    let wrong = look(&c, "CNAME", "wrong.vocilia.test", TARGET).await;
    assert_eq!(wrong, says(Conflict, &found, m));

    let m = "create CNAME plain.vocilia.test → abc123.up.railway.app; found A 203.0.113.7";
    let a = look(&c, "CNAME", "plain.vocilia.test", TARGET).await;
    assert!(a.2.contains("found A 203.0.113.7"), "{}", a.2);
    assert_eq!(a, says(Conflict, &["A 203.0.113.7"], m));

    let m = "create CNAME missing.vocilia.test → abc123.up.railway.app; found nothing (NXDOMAIN)";
    let none = look(&c, "CNAME", "missing.vocilia.test", TARGET).await;
    assert_eq!(none, says(Missing, &[], m));
}

#[tokio::test]
async fn a_records() {
    let dns = Dnsmasq::start(&Zone::new().a(API, Ipv4Addr::new(76, 76, 21, 21)));
    let c = checker(&dns);
    let ok = "A api.vocilia.test → 76.76.21.21 is in place";
    let found = ["A 76.76.21.21"];
    assert_eq!(
        look(&c, "A", API, "76.76.21.21").await,
        says(InPlace, &found, ok)
    );
    let m = "create A api.vocilia.test → 76.76.21.22; found A 76.76.21.21";
    assert_eq!(
        look(&c, "A", API, "76.76.21.22").await,
        says(Conflict, &found, m)
    );
    let m = "create A x.vocilia.test → 76.76.21.21; found nothing (NXDOMAIN)";
    let none = look(&c, "A", "x.vocilia.test", "76.76.21.21").await;
    assert_eq!(none, says(Missing, &[], m));
}

#[tokio::test]
async fn txt_right_wrong_missing_and_split() {
    let dns = Dnsmasq::start(
        &Zone::new()
            .txt(TXT_NAME, &[TOKEN])
            .txt("_old.vocilia.test", &["railway-verify=old"])
            .txt("_comma.vocilia.test", &["v=1,token=a", "b,c"])
            .txt("_one.vocilia.test", &["v=1,token=ab,c"])
            .a("host.vocilia.test", Ipv4Addr::new(192, 0, 2, 9)),
    );
    let c = checker(&dns);
    let m = "TXT _railway-verify.api.vocilia.test → \"railway-verify=abc123\" is in place";
    let found = ["TXT \"railway-verify=abc123\""];
    assert_eq!(
        look(&c, "TXT", TXT_NAME, TOKEN).await,
        says(InPlace, &found, m)
    );

    let m = "create TXT _old.vocilia.test → \"railway-verify=abc123\"; found TXT \"railway-verify=old\"";
    let found = ["TXT \"railway-verify=old\""];
    let wrong = look(&c, "TXT", "_old.vocilia.test", TOKEN).await;
    assert_eq!(wrong, says(Conflict, &found, m));

    let m = "create TXT _none.vocilia.test → \"railway-verify=abc123\"; found nothing (NXDOMAIN)";
    let nx = look(&c, "TXT", "_none.vocilia.test", TOKEN).await;
    assert_eq!(nx, says(Missing, &[], m));
    let m =
        "create TXT host.vocilia.test → \"railway-verify=abc123\"; found nothing (no TXT record)";
    let nodata = look(&c, "TXT", "host.vocilia.test", TOKEN).await;
    assert_eq!(nodata, says(Missing, &[], m));

    // A value with commas, published as two character-strings or as one: both are joined.
    for name in ["_comma.vocilia.test", "_one.vocilia.test"] {
        let (outcome, found, _) = look(&c, "TXT", name, "v=1,token=ab,c").await;
        assert_eq!(
            (outcome, found),
            (InPlace, vec!["TXT \"v=1,token=ab,c\"".to_string()])
        );
    }
}

#[tokio::test]
async fn cdn_skips_traffic_records_but_not_ownership() {
    let dns = Dnsmasq::start(&Zone::new().txt(TXT_NAME, &[TOKEN]));
    let c = checker(&dns);
    let records = [cname(), ownership()];
    let behind = c.check_all(&records, true, true).await;
    assert_eq!(behind.skipped, [cname()]);
    assert_eq!(behind.checks.len(), 1);
    assert_eq!(behind.checks[0].record, ownership());
    assert!(behind.propagated);
    assert_eq!(behind.dns_status, DnsStatus::Verified);

    let direct = c.check_all(&records, false, true).await;
    assert!(direct.skipped.is_empty());
    assert!(!direct.propagated);
    assert_eq!(direct.dns_status, DnsStatus::Configured);
    // The TXT record below it makes api.vocilia.test exist, empty: NODATA, not NXDOMAIN.
    assert_eq!(
        direct.summary(),
        "create CNAME api.vocilia.test → abc123.up.railway.app; found nothing (no CNAME, A or AAAA record)"
    );
}

#[tokio::test]
async fn dns_status_moves_pending_configured_failed_verified() {
    let records = [cname(), ownership()];
    // One step: the zone as the user has it so far, what the platform said; status, propagated.
    let step = |zone: Zone, records: &[RequiredRecord], verified: bool| {
        let records = records.to_vec();
        async move {
            let dns = Dnsmasq::start(&zone);
            let r = checker(&dns).check_all(&records, false, verified).await;
            (r.dns_status, r.propagated, r.summary())
        }
    };
    let (status, propagated, _) = step(Zone::new(), &[], false).await;
    assert_eq!((status, propagated), (DnsStatus::Pending, false));
    let (status, propagated, _) = step(Zone::new(), &records, false).await;
    assert_eq!((status, propagated), (DnsStatus::Configured, false));
    let half = Zone::new().txt(TXT_NAME, &[TOKEN]);
    let (status, propagated, _) = step(half.clone(), &records, false).await;
    assert_eq!((status, propagated), (DnsStatus::Configured, false));
    let wrong = half.clone().cname(API, "old-target.example.net");
    let (status, _, summary) = step(wrong, &records, false).await;
    assert_eq!(status, DnsStatus::Failed);
    assert!(
        summary.ends_with("found CNAME old-target.example.net"),
        "{summary}"
    );
    let right = half.cname(API, TARGET);
    let waiting = "all 2 DNS records in place; waiting for the platform to verify the domain";
    let now_right = step(right.clone(), &records, false).await;
    assert_eq!(
        now_right,
        (DnsStatus::Configured, true, waiting.to_string())
    );
    let (status, propagated, _) = step(right, &records, true).await;
    assert_eq!((status, propagated), (DnsStatus::Verified, true));
}

#[tokio::test]
async fn a_silent_resolver_is_unresolved_not_missing() {
    // A UDP socket that never answers (nothing listens on TCP at that port either).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let c = DnsChecker::with_server_timeout(addr, Duration::from_millis(200)).unwrap();
    let r = c.check_all(&[cname()], false, true).await;
    let check = &r.checks[0];
    assert!(
        matches!(&check.outcome, Outcome::Unresolved(_)) && !check.ok,
        "{check:?}"
    );
    let m = "could not check CNAME api.vocilia.test → abc123.up.railway.app: ";
    assert!(check.message.starts_with(m), "{}", check.message);
    assert_eq!((r.dns_status, r.propagated), (DnsStatus::Configured, false));
}

// --- certificates ---

fn spec() -> CertificateSpec {
    CertificateSpec {
        domain: API.into(),
        authority: Authority::Letsencrypt,
        auto_renewal: true,
        warning_days: 30,
        critical_days: 7,
    }
}

/// The date `days` from `now`, as messages write it.
fn day(now: DateTime<Utc>, days: i64) -> String {
    (now + TimeDelta::days(days)).format("%Y-%m-%d").to_string()
}

async fn serve_and_probe(ca: &TestCa, leaf: &Leaf, host: &str) -> Result<Probe, ProbeError> {
    let server = TlsServer::start(leaf, &[]).await;
    let roots = [ca.cert.clone()];
    probe(host, server.addr, Duration::from_secs(5), &roots).await
}

/// Serves a certificate for `name`, valid from `from` to `to` days from now, probes it as
/// api.vocilia.test, checks every field of the probe and of the status that come from it, and
/// returns the status (with the `now` it was judged at) for the rest.
async fn served(
    name: &str,
    from: i64,
    to: i64,
    verification: Verification,
) -> (CertStatus, DateTime<Utc>) {
    let ca = TestCa::new("tether test CA");
    let now = now();
    let (from, to_at) = (now + TimeDelta::days(from), now + TimeDelta::days(to));
    let leaf = ca.issue(&[name], from, to_at);
    let p = serve_and_probe(&ca, &leaf, API).await.unwrap();
    let expected = Probe {
        issued_at: from,
        expires_at: to_at,
        fingerprint_sha256: leaf.fingerprint(),
        issuer: "tether test CA".into(),
        names: vec![name.to_string()],
        verification,
    };
    assert_eq!(p, expected);
    let s = evaluate(None, Some(&Ok(p)), &spec(), now);
    assert_eq!(s.source, CertSource::Probe);
    assert_eq!(
        (s.issued_at, s.expires_at, s.days_left),
        (Some(from), Some(to_at), Some(to))
    );
    assert_eq!(s.fingerprint_sha256, Some(leaf.fingerprint()));
    assert_eq!(s.issuer.as_deref(), Some("tether test CA"));
    assert_eq!(s.names, [name]);
    (s, now)
}

#[tokio::test]
async fn certificate_valid_for_90_days() {
    let (s, now) = served(API, -1, 90, Verification::Valid).await;
    assert_eq!((s.status, s.level), (Active, CertLevel::Ok));
    let until = day(now, 90);
    assert_eq!(
        s.message,
        format!("valid until {until} (90 days left), issued by tether test CA")
    );
}

#[tokio::test]
async fn certificate_inside_the_warning_window() {
    let (s, now) = served(API, -60, 20, Verification::Valid).await;
    assert_eq!((s.status, s.level), (Active, Warning));
    let m = format!(
        "expires in 20 days ({}), under the 30-day warning threshold",
        day(now, 20)
    );
    assert_eq!(s.message, m);
}

#[tokio::test]
async fn certificate_close_to_expiry() {
    let (s, now) = served(API, -85, 5, Verification::Valid).await;
    assert_eq!((s.status, s.level), (Active, Critical));
    let m = format!(
        "expires in 5 days ({}), under the 7-day critical threshold",
        day(now, 5)
    );
    assert_eq!(s.message, m);
}

#[tokio::test]
async fn certificate_expired_yesterday() {
    let (s, now) = served(API, -91, -1, Verification::Expired).await;
    assert_eq!((s.status, s.level), (Expired, Critical));
    assert_eq!(s.message, format!("expired 1 day ago ({})", day(now, -1)));
}

#[tokio::test]
async fn certificate_for_another_name() {
    let (s, _) = served("other.vocilia.test", -1, 90, Verification::NameMismatch).await;
    assert_eq!((s.status, s.level), (Failed, Critical));
    let m = "the certificate served for api.vocilia.test does not cover it (it names other.vocilia.test)";
    assert_eq!(s.message, m);
}

#[tokio::test]
async fn fingerprint_matches_openssl() {
    let ca = TestCa::new("tether test CA");
    let (now, d) = (now(), TimeDelta::days);
    let leaf = ca.issue(&[API, "www.vocilia.test"], now - d(1), now + d(30));
    let p = serve_and_probe(&ca, &leaf, API).await.unwrap();
    assert_eq!(p.names, [API, "www.vocilia.test"]);
    let dir = tempfile::tempdir().unwrap();
    let der = dir.path().join("leaf.der");
    std::fs::write(&der, leaf.cert.as_ref()).unwrap();
    let out = std::process::Command::new("openssl")
        .args("x509 -inform DER -noout -fingerprint -sha256 -in".split(' '))
        .arg(&der)
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    let (_, hex) = text.trim().split_once('=').unwrap();
    assert_eq!(p.fingerprint_sha256, hex.replace(':', "").to_lowercase());
    assert_eq!(p.fingerprint_sha256.len(), 64);
}

#[tokio::test]
async fn untrusted_without_the_test_root() {
    let ca = TestCa::new("tether test CA");
    let (now, d) = (now(), TimeDelta::days);
    let leaf = ca.issue(&[API], now - d(1), now + d(90));
    let server = TlsServer::start(&leaf, &[]).await;
    let p = probe(API, server.addr, Duration::from_secs(5), &[]);
    let p = p.await.unwrap();
    assert_eq!(
        p.verification,
        Verification::Untrusted("issued by an unknown certificate authority".into())
    );
    let s = evaluate(None, Some(&Ok(p)), &spec(), now);
    assert_eq!((s.status, s.level), (Failed, Critical));
    let m = "the certificate served for api.vocilia.test is not trusted: \
             issued by an unknown certificate authority";
    assert_eq!(s.message, m);
}

#[tokio::test]
async fn probe_failures_fall_back_to_the_platform() {
    // Refused: bind a port, then free it.
    let free: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let refused = probe(API, free, Duration::from_secs(2), &[]).await;
    assert!(
        matches!(refused, Err(ProbeError::Connect { .. })),
        "{refused:?}"
    );

    // Silent: accepts TCP, never speaks TLS.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let started = std::time::Instant::now();
    let timed_out = probe(API, addr, Duration::from_millis(300), &[]).await;
    assert!(
        matches!(timed_out, Err(ProbeError::Timeout { .. })),
        "{timed_out:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    let platform = PlatformCert {
        status: "VALIDATING_OWNERSHIP".into(),
        ..Default::default()
    };
    let s = evaluate(Some(&platform), Some(&refused), &spec(), now());
    assert_eq!(
        (s.status, s.level, s.source),
        (Pending, CertLevel::Ok, CertSource::Platform)
    );
    assert!(
        s.message.starts_with("issuance pending on the platform (VALIDATING_OWNERSHIP); TLS probe failed: cannot connect to 127.0.0.1:"),
        "{}",
        s.message
    );
}

#[test]
fn issuance_backs_off_in_hours_up_to_32() {
    let start: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
    let mut b = IssuanceBackoff::default();
    let mut now = start;
    let mut waits = vec![];
    for _ in 0..7 {
        assert!(b.due(now));
        let wait = b.on_failure(now);
        waits.push(wait.as_secs() / 3600);
        let next = now + TimeDelta::from_std(wait).unwrap();
        assert_eq!(b.next_attempt, Some(next));
        assert!(!b.due(next - TimeDelta::seconds(1)));
        now = next;
    }
    assert_eq!(waits, [1, 2, 4, 8, 16, 32, 32]);
    assert_eq!(b.failures, 7);
    let json = serde_json::to_string(&b).unwrap();
    let back: IssuanceBackoff = serde_json::from_str(&json).unwrap();
    assert_eq!(back, b);
    b.on_success();
    assert_eq!((b.failures, b.next_attempt, b.due(start)), (0, None, true));
}
