//! Beyond what platforms say about domains: DNS checks of the records each platform asks for,
//! TLS probes of the certificate a domain serves, and the issuance backoff per hostname.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_rustls::rustls::pki_types::CertificateDer;

use super::{ReconcileError, Reconciler};
use crate::certs::{IssuanceBackoff, Probe};
use crate::dns::{DnsChecker, DnsReport};
use crate::manifest::DesiredState;
use crate::store::trees;

/// How domains are checked outside the platforms.
#[derive(Clone, Default)]
pub struct DomainChecks {
    /// The resolver for DNS checks; None skips them (the platform's word alone counts).
    pub dns: Option<Arc<DnsChecker>>,
    /// Probe served certificates on this port (443 in production); None skips probes.
    pub probe_port: Option<u16>,
    /// Extra trust roots for probes (tests' own CAs).
    pub probe_roots: Vec<CertificateDer<'static>>,
    pub probe_timeout: Duration,
}

impl std::fmt::Debug for DomainChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DomainChecks(dns: {}, probe: {:?})",
            self.dns.is_some(),
            self.probe_port
        )
    }
}

impl Reconciler {
    /// Checks DNS and probes certificates for the attached domains of freshly observed
    /// environments; records whether DNS has propagated on each observed domain.
    pub(super) async fn check_domains(
        &mut self,
        desired: &DesiredState,
        envs: &BTreeSet<String>,
    ) -> Result<(), ReconcileError> {
        let checks = self.opts.domains.clone();
        if checks.dns.is_none() && checks.probe_port.is_none() {
            return Ok(());
        }
        for env in envs {
            for d in desired.domains_of(env) {
                let host = d.spec.name.clone();
                let Some(od) = self
                    .observed
                    .environments
                    .get(env)
                    .and_then(|o| o.domains.get(&host))
                    .cloned()
                else {
                    continue;
                };
                if let Some(dns) = &checks.dns {
                    let report: DnsReport = dns
                        .check_all(&od.required_records, d.spec.cdn, od.verified)
                        .await;
                    if !report.propagated {
                        tracing::info!(domain = %host, dns_status = report.dns_status.as_str(), "{}", report.summary());
                    }
                    if let Some(o) = self
                        .observed
                        .environments
                        .get_mut(env)
                        .and_then(|o| o.domains.get_mut(&host))
                    {
                        o.dns_propagated = Some(
                            report.propagated || (od.required_records.is_empty() && od.verified),
                        );
                    }
                    self.dns_reports.insert(host.clone(), report);
                }
                if let (Some(port), true) = (checks.probe_port, od.verified) {
                    let ip = match &checks.dns {
                        Some(dns) => dns
                            .addresses(&host)
                            .await
                            .ok()
                            .and_then(|a| a.first().copied()),
                        None => tokio::net::lookup_host((host.as_str(), port))
                            .await
                            .ok()
                            .and_then(|mut a| a.next())
                            .map(|a| a.ip()),
                    };
                    match ip {
                        Some(ip) => {
                            let result = crate::certs::probe(
                                &host,
                                std::net::SocketAddr::new(ip, port),
                                checks.probe_timeout,
                                &checks.probe_roots,
                            )
                            .await;
                            self.probes.insert(host.clone(), result);
                        }
                        None => {
                            tracing::warn!(domain = %host, "no address to probe the certificate at");
                            self.probes.remove(&host);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The issuance backoff of a hostname.
    pub(super) fn cert_backoff(&self, host: &str) -> Result<IssuanceBackoff, ReconcileError> {
        Ok(self.store.get(trees::CERTS, host)?.unwrap_or_default())
    }

    /// Marks which certificates may be asked for now (their backoff is over), and forgets the
    /// backoff of those that became active.
    pub(super) fn mark_issue_due(
        &mut self,
        desired: &DesiredState,
        now: DateTime<Utc>,
    ) -> Result<(), ReconcileError> {
        for c in desired.certificates.values() {
            let Some(d) = desired
                .domains
                .values()
                .find(|d| d.spec.name == c.spec.domain)
            else {
                continue;
            };
            let mut backoff = self.cert_backoff(&c.spec.domain)?;
            let Some(od) = self
                .observed
                .environments
                .get_mut(&d.spec.environment)
                .and_then(|o| o.domains.get_mut(&c.spec.domain))
            else {
                continue;
            };
            let active = od
                .certificate
                .as_ref()
                .is_some_and(|p| super::record::cert_ok(&p.status));
            if active && backoff != IssuanceBackoff::default() {
                backoff.on_success();
                self.store.put(trees::CERTS, &c.spec.domain, &backoff)?;
            }
            // A verified domain without a certificate: remember since when, so one that
            // never gets one ends Stalled instead of pending forever.
            if od.verified && !active && backoff.pending_since.is_none() {
                backoff.pending_since = Some(now);
                self.store.put(trees::CERTS, &c.spec.domain, &backoff)?;
            }
            // Vercel usually issues certificates itself after verification: give it the grace
            // period before asking (and then back off, hours, doubling).
            let vercel = desired
                .environments
                .get(&d.spec.environment)
                .is_some_and(|e| e.spec.platform == crate::manifest::Platform::Vercel);
            if vercel
                && od.verified
                && !active
                && backoff.next_attempt.is_none()
                && backoff.failures == 0
            {
                let grace = chrono::Duration::from_std(self.opts.cert_grace)
                    .unwrap_or(chrono::Duration::minutes(5));
                backoff.next_attempt = Some(now + grace);
                self.store.put(trees::CERTS, &c.spec.domain, &backoff)?;
            }
            od.issue_due = c.spec.auto_renewal
                && c.spec.authority == crate::manifest::Authority::Letsencrypt
                && backoff.due(now);
        }
        Ok(())
    }

    /// tether asked for issuance: wait longer before asking again (hours, doubling).
    pub(super) fn issuance_requested(
        &mut self,
        host: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ReconcileError> {
        let mut b = self.cert_backoff(host)?;
        let wait = b.on_failure(now);
        tracing::info!(domain = host, next_attempt_in = ?wait, "asked the platform to issue the certificate");
        self.store.put(trees::CERTS, host, &b)?;
        Ok(())
    }

    /// The last TLS probe of a hostname.
    pub fn probe_of(&self, host: &str) -> Option<&Result<Probe, crate::certs::ProbeError>> {
        self.probes.get(host)
    }
}
