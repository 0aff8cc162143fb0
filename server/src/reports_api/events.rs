//! `GET /api/reports/events`: server-sent events telling a live board which sites'
//! figures changed, within moments of the commit, so it re-fetches only then. Each
//! event lists only the sites the token may read (and, with `?site=`, only those of
//! that subtree); a change of the network document (targets, catalogue, contests)
//! is sent to everyone. The stream ends when the token expires or is revoked.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::{ReportQuery, ReportsState};
use crate::api::error::ApiError;
use crate::api::extract::Caller;

/// Keep-alive comment interval: proxies close quiet connections.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The change stream of `caller`.
pub async fn stream(
    State(st): State<ReportsState>,
    caller: Caller,
    Query(q): Query<ReportQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let who = caller.principal();
    super::loaded(&st).await?;
    if let Some(site) = q.site.as_deref() {
        // The same rule as the reports: a subtree the caller may not report on is
        // answered as one that does not exist.
        let snapshot = st.model.snapshot();
        super::Scope::new(&st.registry, &caller, &snapshot, Some(site))?;
    }
    let rx = st.model.subscribe();
    let expires = tokio::time::Instant::now()
        + Duration::from_secs(caller.0.exp.saturating_sub(crate::auth::now_secs()));
    let hello = Event::default().event("ready").data("{}");
    let state = (rx, st, caller, who, q.site, Some(hello));
    let events = futures_util::stream::unfold(state, move |mut s| async move {
        if let Some(first) = s.5.take() {
            return Some((Ok(first), s));
        }
        loop {
            let (rx, st, caller, who, root, _) = &mut s;
            let change = tokio::select! {
                r = rx.recv() => r,
                _ = tokio::time::sleep_until(expires) => return None,
            };
            if st
                .registry
                .revoked(&caller.0.jti, caller.0.device.as_deref())
                .is_some()
            {
                return None;
            }
            let (sites, network) = match change {
                Ok(c) => (c.sites, c.network),
                // Fell behind: tell the client to re-fetch everything.
                Err(RecvError::Lagged(_)) => (Vec::new(), true),
                Err(RecvError::Closed) => return None,
            };
            let tree = st.registry.tree();
            let sites: Vec<String> = sites
                .into_iter()
                .filter(|s| tree.site_access(who, s).can_read())
                .filter(|s| root.as_deref().is_none_or(|r| tree.is_within(s, r)))
                .collect();
            if sites.is_empty() && !network {
                continue;
            }
            let data = json!({ "sites": sites, "network": network }).to_string();
            return Some((Ok(Event::default().event("change").data(data)), s));
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
