//! Domains against the simulator and a real DNS server (dnsmasq): status names the exact record
//! to create and what was found; tether asks platforms to verify only once DNS is in place;
//! certificates from the platform and from a TLS probe; issuance retried with hours of backoff.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::dnsmasq::{Dnsmasq, Zone};
use support::harness::World;
use support::tls::{TestCa, TlsServer};
use tether::dns::DnsChecker;
use tether::reconcile::DomainChecks;
use tether::simulate::SimConfig;
use tether::status::{EnvStatus, ResourceStatus, State};

fn base_zone() -> Zone {
    Zone::new().local("com").local("app")
}

fn use_dns(w: &mut World, dns: &Dnsmasq, probe: Option<(u16, &TestCa)>) {
    let checker = Arc::new(DnsChecker::with_server(dns.addr()).unwrap());
    w.rec_options(|o| {
        o.domains = DomainChecks {
            dns: Some(checker),
            probe_port: probe.map(|(p, _)| p),
            probe_roots: probe
                .map(|(_, ca)| vec![ca.cert.clone()])
                .unwrap_or_default(),
            probe_timeout: Duration::from_secs(3),
        }
    });
}

async fn passes(w: &mut World, n: usize) -> tether::status::Statuses {
    for _ in 0..n {
        let all = w.all(true);
        w.rec.pass(&all).await.unwrap();
        w.sim.advance(Duration::from_millis(100));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.rec.write_status().unwrap().1
}

fn resource<'a>(
    envs: &'a [std::sync::Arc<EnvStatus>],
    env: &str,
    kind: &str,
    name: &str,
) -> &'a ResourceStatus {
    envs.iter()
        .find(|e| e.environment == env)
        .unwrap()
        .resources
        .iter()
        .find(|r| r.kind == kind && r.name == name)
        .unwrap_or_else(|| panic!("{env}/{kind}/{name}"))
}

fn message(r: &ResourceStatus) -> String {
    r.conditions.last().unwrap().message.clone()
}

/// The records every attached domain asks for, as a dnsmasq zone.
fn zone_from_platforms(w: &World) -> Zone {
    let mut zone = base_zone();
    for env in w.rec.observed().environments.values() {
        for d in env.domains.values() {
            for r in &d.required_records {
                zone = match r.record_type.as_str() {
                    "CNAME" => zone.cname(&r.name, &r.value),
                    "TXT" => zone.txt(&r.name, &[r.value.as_str()]),
                    other => panic!("unexpected record type {other}"),
                };
            }
        }
    }
    zone
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_wait_for_dns_then_verify_and_get_certificates() {
    let mut w = World::new(SimConfig::default()).await;
    let empty = Dnsmasq::start(&base_zone());
    use_dns(&mut w, &empty, None);
    let envs = passes(&mut w, 8).await;
    let api = resource(&envs, "prod-backend", "domain", "api.vocilia.com");
    assert_eq!(api.state, State::Reconciling);
    let cname = w.rec.observed().environments["prod-backend"].domains["api.vocilia.com"]
        .required_records
        .iter()
        .find(|r| r.record_type == "CNAME")
        .unwrap()
        .value
        .clone();
    assert!(
        message(api).contains(&format!(
            "create CNAME api.vocilia.com → {cname}; found nothing (NXDOMAIN)"
        )),
        "{}",
        message(api)
    );
    assert_eq!(api.detail.as_ref().unwrap()["dnsStatus"], "configured");
    let web = resource(&envs, "prod-customer", "domain", "customer.vocilia.com");
    assert_eq!(web.state, State::Reconciling);
    assert!(
        w.sim
            .requests()
            .iter()
            .all(|r| !r.path.ends_with("/verify")),
        "no verification asked for before DNS is in place"
    );

    // Publish what the platforms asked for: everything verifies and certificates become active.
    let good = Dnsmasq::start(&zone_from_platforms(&w));
    use_dns(&mut w, &good, None);
    let envs = passes(&mut w, 10).await;
    for (env, host) in [
        ("prod-backend", "api.vocilia.com"),
        ("staging-backend", "staging-api.vocilia.com"),
        ("prod-customer", "customer.vocilia.com"),
        ("staging-admin", "staging-admin.vocilia.com"),
    ] {
        let d = resource(&envs, env, "domain", host);
        assert_eq!(
            (d.state, d.detail.as_ref().unwrap()["dnsStatus"].as_str()),
            (State::Ready, Some("verified")),
            "{host}: {}",
            message(d)
        );
        let c = resource(&envs, env, "certificate", &host.replace('.', "-"));
        assert_eq!(c.state, State::Ready, "{host}: {}", message(c));
        assert_eq!(c.detail.as_ref().unwrap()["status"], "active");
    }
    let (index, _) = w.rec.write_status().unwrap();
    assert!(index.all_ready(), "{:?}", index.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_record_names_what_to_create_and_what_was_found() {
    let mut w = World::new(SimConfig::default()).await;
    let empty = Dnsmasq::start(&base_zone());
    use_dns(&mut w, &empty, None);
    passes(&mut w, 3).await;
    let cname = w.rec.observed().environments["prod-backend"].domains["api.vocilia.com"]
        .required_records
        .iter()
        .find(|r| r.record_type == "CNAME")
        .unwrap()
        .value
        .clone();
    let wrong = Dnsmasq::start(&base_zone().a("api.vocilia.com", "203.0.113.7".parse().unwrap()));
    use_dns(&mut w, &wrong, None);
    let envs = passes(&mut w, 1).await;
    let api = resource(&envs, "prod-backend", "domain", "api.vocilia.com");
    assert_eq!(
        api.state,
        State::Stalled,
        "a record pointing elsewhere needs a person"
    );
    assert!(
        message(api).contains(&format!(
            "create CNAME api.vocilia.com → {cname}; found A 203.0.113.7"
        )),
        "{}",
        message(api)
    );
    assert_eq!(api.detail.as_ref().unwrap()["dnsStatus"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_certificate_is_probed_and_judged_against_the_thresholds() {
    let mut w = World::new(SimConfig::default()).await;
    w.converge().await;
    let ca = TestCa::new("tether test CA");
    let now = support::tls::now();
    let leaf = ca.issue(
        &["api.vocilia.com"],
        now - chrono::Duration::days(85),
        now + chrono::Duration::days(5) + chrono::Duration::hours(1),
    );
    let server = TlsServer::start(&leaf, &[]).await;
    let mut zone = zone_from_platforms(&w);
    let target = w.rec.observed().environments["prod-backend"].domains["api.vocilia.com"]
        .required_records
        .iter()
        .find(|r| r.record_type == "CNAME")
        .unwrap()
        .value
        .clone();
    zone = zone.a(&target, "127.0.0.1".parse().unwrap());
    let dns = Dnsmasq::start(&zone);
    use_dns(&mut w, &dns, Some((server.addr.port(), &ca)));
    let envs = passes(&mut w, 2).await;
    let c = resource(&envs, "prod-backend", "certificate", "api-vocilia-com");
    let d = c.detail.as_ref().unwrap();
    assert_eq!(
        (
            d["status"].as_str(),
            d["level"].as_str(),
            d["source"].as_str(),
            d["daysLeft"].as_i64()
        ),
        (Some("active"), Some("critical"), Some("probe"), Some(5))
    );
    assert_eq!(d["fingerprintSha256"], leaf.fingerprint());
    assert_eq!(d["issuer"], "tether test CA");
    assert!(
        message(c).contains("under the 7-day critical threshold"),
        "{}",
        message(c)
    );
    assert_eq!(c.state, State::Ready, "active, with an expiry warning");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_issuance_is_retried_with_hours_of_backoff() {
    let mut w = World::new(SimConfig::default()).await;
    w.converge().await;
    w.sim.clear_requests();
    for _ in 0..4 {
        // Issuance keeps failing on the platform.
        assert!(w.sim.with_state(|s| s.fail_certificate("api.vocilia.com")));
        passes(&mut w, 1).await;
    }
    assert!(w.sim.with_state(|s| s.fail_certificate("api.vocilia.com")));
    let envs = passes(&mut w, 1).await;
    let issued: Vec<_> = w
        .writes()
        .into_iter()
        .filter(|x| x == "mutation IssueCertificate")
        .collect();
    assert_eq!(
        issued.len(),
        1,
        "asked once, then backs off: {:?}",
        w.writes()
    );
    let c = resource(&envs, "prod-backend", "certificate", "api-vocilia-com");
    let next: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(c.detail.as_ref().unwrap()["nextIssuanceAttempt"].clone()).unwrap();
    let wait = next - chrono::Utc::now();
    assert!(
        wait > chrono::Duration::minutes(55) && wait <= chrono::Duration::hours(1),
        "{wait}"
    );
}
