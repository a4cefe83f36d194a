//! Vercel's certificates: the account's list (one reading shared by every environment that asks
//! while it is in flight, since Vercel offers no filter on it) and asking for an issuance.

use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::{P, Vercel};
use crate::provider::ProviderError;
use crate::provider::http::Call;

type Listing = Option<Result<Arc<Vec<Value>>, ProviderError>>;

/// The certificate list being read, if any: whoever asks meanwhile waits for it.
#[derive(Default)]
pub(super) struct InFlight(Mutex<Option<watch::Receiver<Listing>>>);

/// Clears the slot when the reading ends, or is dropped half-way.
struct Clear<'a>(&'a InFlight);

impl Drop for Clear<'_> {
    fn drop(&mut self) {
        *self.0.0.lock().expect("cert list") = None;
    }
}

impl Vercel {
    /// Every certificate of the account (or team), every page. Environments observed together
    /// share one reading: a caller that arrives while one is in flight takes its answer.
    pub async fn certs(&self) -> Result<Arc<Vec<Value>>, ProviderError> {
        let waiting = self.cert_list.0.lock().expect("cert list").clone();
        if let Some(mut rx) = waiting
            && let Ok(listing) = rx.wait_for(Option::is_some).await
            && let Some(result) = listing.clone()
        {
            return result;
        }
        let (tx, rx) = watch::channel(None);
        *self.cert_list.0.lock().expect("cert list") = Some(rx);
        let _clear = Clear(&self.cert_list);
        let result = self
            .paged("/v8/certs", "certs", &[], |_| None)
            .await
            .map(Arc::new);
        tx.send_replace(Some(result.clone()));
        result
    }

    /// Asks Vercel to issue a certificate for `name`. Sent once: after an answer that leaves
    /// unknown whether it was issued, the certificates are looked at instead of asking again.
    pub async fn issue_cert(&self, name: &str) -> Result<(), ProviderError> {
        let call = Call::new(Method::POST, "/v8/certs", Some(json!({"cns": [name]}))).create();
        match self.http.call(call).await {
            Ok(_) => Ok(()),
            Err(ProviderError::Ambiguous { detail, .. }) => {
                let issued = self.certs().await?.iter().any(|c| {
                    c["cns"]
                        .as_array()
                        .is_some_and(|cns| cns.iter().any(|n| n == name))
                });
                if issued {
                    Ok(())
                } else {
                    Err(ProviderError::Unavailable {
                        platform: P,
                        detail: format!("asking for a certificate for {name} failed ({detail})"),
                        retry_after: None,
                        rate_limited: false,
                    })
                }
            }
            Err(e) => Err(e),
        }
    }
}
