//! DNS checks: is each record a platform asks for (CNAME, A, TXT) in place, as a resolver sees it?

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use serde::{Deserialize, Serialize};

use crate::observed::RequiredRecord;

/// Why a resolver could not be built or could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot read the system's resolver configuration: {0}")]
    SystemConfig(#[source] NetError),
    #[error("cannot build the DNS resolver: {0}")]
    Build(#[source] NetError),
    #[error("cannot resolve {name}: {reason}")]
    Lookup { name: String, reason: String },
}

/// What a check of one record found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "error")]
pub enum Outcome {
    /// The record exists with the required value.
    InPlace,
    /// Nothing answers: NXDOMAIN, or the name has no record of a relevant type.
    Missing,
    /// The name answers with something else: it points somewhere other than required.
    Conflict,
    /// The resolver gave no usable answer (timeout, SERVFAIL, REFUSED): nothing is known.
    Unresolved(String),
}

/// The check of one required record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordCheck {
    pub record: RequiredRecord,
    pub ok: bool,
    pub outcome: Outcome,
    /// What the name answers with, as `TYPE value` (`A 203.0.113.7`, `TXT "token"`).
    pub found: Vec<String>,
    /// Names the record to create and what was found, or says it is in place.
    pub message: String,
}

/// The data model's `dns_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsStatus {
    /// No records known yet (the platform has not said what it needs).
    Pending,
    /// Records known, not all of them in place (or the platform has not verified yet).
    Configured,
    /// Every record in place and the platform says the domain is verified.
    Verified,
    /// A record points somewhere else.
    Failed,
}

impl DnsStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DnsStatus::Pending => "pending",
            DnsStatus::Configured => "configured",
            DnsStatus::Verified => "verified",
            DnsStatus::Failed => "failed",
        }
    }
}

/// The checks of all the records of one domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsReport {
    pub checks: Vec<RecordCheck>,
    /// Traffic records not checked because the domain is behind a CDN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<RequiredRecord>,
    /// Every record that needs checking is in place (false while no records are known).
    pub propagated: bool,
    pub dns_status: DnsStatus,
}

impl DnsReport {
    /// Judges checks already made; `records_known` is false while the platform has named none.
    pub fn new(
        checks: Vec<RecordCheck>,
        skipped: Vec<RequiredRecord>,
        records_known: bool,
        platform_verified: bool,
    ) -> Self {
        let propagated = records_known && checks.iter().all(|c| c.ok);
        // With no records to check, the platform's word alone decides.
        let dns_status = if checks.iter().any(|c| c.outcome == Outcome::Conflict) {
            DnsStatus::Failed
        } else if platform_verified && (propagated || !records_known) {
            DnsStatus::Verified
        } else if records_known {
            DnsStatus::Configured
        } else {
            DnsStatus::Pending
        };
        DnsReport {
            checks,
            skipped,
            propagated,
            dns_status,
        }
    }

    /// One line for status: the records still to fix, or that all are in place.
    pub fn summary(&self) -> String {
        let wrong: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| &*c.message)
            .collect();
        if !wrong.is_empty() {
            return wrong.join(". ");
        }
        match self.dns_status {
            DnsStatus::Pending => "the platform has not named the DNS records it needs yet".into(),
            DnsStatus::Configured => format!(
                "all {} DNS records in place; waiting for the platform to verify the domain",
                self.checks.len()
            ),
            _ => format!("all {} DNS records in place", self.checks.len()),
        }
    }
}

/// Checks records against one resolver; never caches, so a fixed record shows at once.
#[derive(Clone)]
pub struct DnsChecker {
    resolver: TokioResolver,
}

impl fmt::Debug for DnsChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsChecker").finish_non_exhaustive()
    }
}

/// What one query returned.
enum Answer {
    Records(Vec<(Name, RData)>),
    NxDomain,
    NoData,
    Error(String),
}

/// What the name holds, as `TYPE value` strings, judged against the record.
enum Seen {
    Records { found: Vec<String>, matched: bool },
    Nothing(&'static str),
    Error(String),
}

impl DnsChecker {
    /// The system's resolver configuration (`/etc/resolv.conf`), without a cache.
    pub fn system() -> Result<Self, DnsError> {
        let mut builder = TokioResolver::builder_tokio().map_err(DnsError::SystemConfig)?;
        builder.options_mut().cache_size = 0;
        let resolver = builder.build().map_err(DnsError::Build)?;
        Ok(DnsChecker { resolver })
    }

    /// One name server (UDP, then TCP), without a cache, hosts file or search domains.
    pub fn with_server(addr: SocketAddr) -> Result<Self, DnsError> {
        Self::with_server_timeout(addr, Duration::from_secs(2))
    }

    /// As [`DnsChecker::with_server`], waiting `timeout` for each of two attempts.
    pub fn with_server_timeout(addr: SocketAddr, timeout: Duration) -> Result<Self, DnsError> {
        let mut connections = vec![ConnectionConfig::udp(), ConnectionConfig::tcp()];
        connections.iter_mut().for_each(|c| c.port = addr.port());
        let server = NameServerConfig::new(addr.ip(), true, connections);
        let mut opts = ResolverOpts::default();
        opts.cache_size = 0;
        opts.timeout = timeout;
        opts.attempts = 2;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ndots = 0;
        let config = ResolverConfig::from_name_servers(vec![server]);
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(DnsError::Build)?;
        Ok(DnsChecker { resolver })
    }

    /// The addresses a host resolves to (A and AAAA), for probing it.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let err = |reason: String| DnsError::Lookup {
            name: host.to_string(),
            reason,
        };
        let ips = self.resolver.lookup_ip(fqdn(host).map_err(err)?).await;
        Ok(ips.map_err(|e| err(e.to_string()))?.iter().collect())
    }

    /// Checks one record: does its name answer with the required value?
    pub async fn check(&self, r: &RequiredRecord) -> RecordCheck {
        let kind = record_kind(&r.record_type);
        let seen = match fqdn(&r.name) {
            Ok(name) => self.seen(&name, &kind, &r.value).await,
            Err(e) => Seen::Error(e),
        };
        judge(r, &kind, seen)
    }

    /// Checks every record of a domain. Behind a CDN (`cdn`), traffic records (CNAME, A) are
    /// skipped, since they point at the CDN; ownership and ACME TXT records are still checked.
    pub async fn check_all(
        &self,
        records: &[RequiredRecord],
        cdn: bool,
        platform_verified: bool,
    ) -> DnsReport {
        let (skipped, wanted): (Vec<&RequiredRecord>, Vec<&RequiredRecord>) =
            records.iter().partition(|r| cdn && is_traffic(r));
        let mut checks = Vec::with_capacity(wanted.len());
        for r in wanted {
            checks.push(self.check(r).await);
        }
        let skipped = skipped.into_iter().cloned().collect();
        DnsReport::new(checks, skipped, !records.is_empty(), platform_verified)
    }

    async fn seen(&self, name: &Name, kind: &str, value: &str) -> Seen {
        let (t, none) = match kind {
            "CNAME" => (RecordType::CNAME, "no CNAME, A or AAAA record"),
            "A" => (RecordType::A, "no A record"),
            "AAAA" => (RecordType::AAAA, "no AAAA record"),
            "TXT" => (RecordType::TXT, "no TXT record"),
            "NS" => (RecordType::NS, "no NS record"),
            other => return Seen::Error(format!("tether cannot check {other} records")),
        };
        let mut records = match self.query(name, t).await {
            Answer::Records(rs) => rs,
            Answer::NoData => vec![],
            Answer::NxDomain => return Seen::Nothing("NXDOMAIN"),
            Answer::Error(e) => return Seen::Error(e),
        };
        if t == RecordType::CNAME {
            records.retain(|(n, d)| matches!(d, RData::CNAME(_)) && host(n) == host(name));
        }
        if t == RecordType::CNAME && records.is_empty() {
            // No CNAME: say what the name holds instead, since that has to go first.
            for t in [RecordType::A, RecordType::AAAA] {
                match self.query(name, t).await {
                    Answer::Records(rs) => records.extend(rs),
                    Answer::Error(e) => return Seen::Error(e),
                    Answer::NxDomain | Answer::NoData => {}
                }
            }
        }
        let found: Vec<String> = records.iter().filter_map(|(_, d)| describe(d)).collect();
        if found.is_empty() {
            return Seen::Nothing(none);
        }
        let want = expected(kind, value);
        Seen::Records {
            matched: found.contains(&want),
            found,
        }
    }

    async fn query(&self, name: &Name, t: RecordType) -> Answer {
        match self.resolver.lookup(name.clone(), t).await {
            Ok(lookup) if lookup.answers().is_empty() => Answer::NoData,
            Ok(lookup) => Answer::Records(
                lookup
                    .answers()
                    .iter()
                    .map(|r| (r.name.clone(), r.data.clone()))
                    .collect(),
            ),
            Err(e) if e.is_nx_domain() => Answer::NxDomain,
            Err(e) if e.is_no_records_found() => Answer::NoData,
            Err(e) => Answer::Error(e.to_string()),
        }
    }
}

/// Turns what was seen into a check with its message.
fn judge(r: &RequiredRecord, kind: &str, seen: Seen) -> RecordCheck {
    let want = expected(kind, &r.value);
    let value = want.split_once(' ').map_or("", |(_, v)| v);
    let wanted = format!("{kind} {} → {value}", r.name.trim().trim_end_matches('.'));
    let (outcome, found, message) = match seen {
        Seen::Records {
            found,
            matched: true,
        } => {
            let extra: Vec<&str> = found.iter().filter(|f| **f != want).map(|f| &**f).collect();
            let message = match extra.is_empty() {
                true => format!("{wanted} is in place"),
                false => format!("{wanted} is in place (also found {})", extra.join(", ")),
            };
            (Outcome::InPlace, found, message)
        }
        Seen::Records { found, .. } => {
            let message = format!("create {wanted}; found {}", found.join(", "));
            (Outcome::Conflict, found, message)
        }
        Seen::Nothing(why) => {
            let message = format!("create {wanted}; found nothing ({why})");
            (Outcome::Missing, vec![], message)
        }
        Seen::Error(e) => {
            let message = format!("could not check {wanted}: {e}");
            (Outcome::Unresolved(e), vec![], message)
        }
    };
    RecordCheck {
        record: r.clone(),
        ok: outcome == Outcome::InPlace,
        outcome,
        found,
        message,
    }
}

/// `CNAME`, `A`, `TXT`, … from the platform's spelling (`DNS_RECORD_TYPE_CNAME`, `cname`).
fn record_kind(t: &str) -> String {
    let t = t.trim().to_ascii_uppercase();
    t.strip_prefix("DNS_RECORD_TYPE_").unwrap_or(&t).to_string()
}

/// A traffic record (CNAME, A, AAAA), as opposed to an ownership or ACME challenge record.
fn is_traffic(r: &RequiredRecord) -> bool {
    let purpose = r.purpose.to_ascii_lowercase();
    let verification = ["acme", "owner", "verif", "challenge"]
        .iter()
        .any(|w| purpose.contains(w));
    matches!(record_kind(&r.record_type).as_str(), "CNAME" | "A" | "AAAA") && !verification
}

fn fqdn(name: &str) -> Result<Name, String> {
    let mut n = Name::from_utf8(name.trim())
        .map_err(|e| format!("{name:?} is not a valid DNS name: {e}"))?;
    n.set_fqdn(true);
    Ok(n)
}

/// A hostname as compared: ASCII (punycode), lower case, no trailing dot.
fn host(n: &Name) -> String {
    n.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

/// The required record as `TYPE value`, written as [`describe`] writes what was found, so
/// that they compare: hostnames normalised, addresses canonical, TXT quoted.
fn expected(kind: &str, value: &str) -> String {
    let v = value.trim();
    match kind {
        "CNAME" | "NS" => match Name::from_utf8(v) {
            Ok(n) => format!("{kind} {}", host(&n)),
            Err(_) => format!("{kind} {}", v.trim_end_matches('.').to_ascii_lowercase()),
        },
        "A" | "AAAA" => format!(
            "{kind} {}",
            v.parse::<IpAddr>().map_or(v.into(), |ip| ip.to_string())
        ),
        "TXT" => {
            let v = v
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or(v);
            format!("TXT \"{v}\"")
        }
        _ => format!("{kind} {v}"),
    }
}

fn describe(d: &RData) -> Option<String> {
    match d {
        RData::A(a) => Some(format!("A {}", a.0)),
        RData::AAAA(a) => Some(format!("AAAA {}", a.0)),
        RData::CNAME(c) => Some(format!("CNAME {}", host(&c.0))),
        RData::NS(n) => Some(format!("NS {}", host(&n.0))),
        RData::TXT(t) => {
            // A long TXT value comes as several character-strings: they are one value.
            let joined: String = t
                .txt_data
                .iter()
                .map(|s| String::from_utf8_lossy(s))
                .collect();
            Some(format!("TXT \"{joined}\""))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(t: &str, purpose: &str) -> RequiredRecord {
        let (name, value) = ("a.test".into(), "b.test".into());
        RequiredRecord {
            record_type: t.into(),
            name,
            value,
            purpose: purpose.into(),
        }
    }

    #[test]
    fn status_edge_cases() {
        // The transitions themselves are exercised against dnsmasq in tests/dns_certs.rs.
        let status = |outcomes: Vec<Outcome>, known, verified| {
            let checks = outcomes.into_iter().map(|o| {
                judge(
                    &record("CNAME", ""),
                    "CNAME",
                    match o {
                        Outcome::Conflict => Seen::Records {
                            found: vec!["A 192.0.2.1".into()],
                            matched: false,
                        },
                        _ => Seen::Nothing("NXDOMAIN"),
                    },
                )
            });
            let r = DnsReport::new(checks.collect(), vec![], known, verified);
            (r.dns_status, r.propagated)
        };
        assert_eq!(status(vec![], false, true), (DnsStatus::Verified, false));
        assert_eq!(status(vec![], true, true), (DnsStatus::Verified, true)); // all skipped (CDN)
        let both = vec![Outcome::Conflict, Outcome::Missing];
        assert_eq!(status(both, true, true), (DnsStatus::Failed, false));
    }

    #[test]
    fn spellings_purposes_and_values() {
        assert_eq!(record_kind("DNS_RECORD_TYPE_CNAME"), "CNAME");
        assert_eq!(record_kind("txt"), "TXT");
        assert!(is_traffic(&record("CNAME", "traffic_route")) && is_traffic(&record("A", "")));
        assert!(!is_traffic(&record("CNAME", "acme_dns01_challenge")));
        assert!(!is_traffic(&record("TXT", "traffic_route")));
        assert_eq!(
            expected("CNAME", "Abc.UP.railway.app."),
            "CNAME abc.up.railway.app"
        );
        assert_eq!(expected("AAAA", "2001:DB8:0::1"), "AAAA 2001:db8::1");
        assert_eq!(expected("TXT", "\"v=1\""), "TXT \"v=1\"");
        assert_eq!(expected("A", "not-an-ip"), "A not-an-ip");
    }
}
