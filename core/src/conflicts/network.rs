//! Conflicts in the network document: head office's decisions on transfers between
//! regions, made on two devices offline. Site documents are checked by
//! [`super::detect`]; the network document is one of its own, with no site id.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT};
use autosurgeon::Hydrate;

use crate::access::Role;
use crate::domain::DomainError;
use crate::schema::{Millis, SiteDocument, TransferDecision, TransferVerdict};

use super::checks::{NETWORK, decision_values, transfer_decisions};
use super::read::map_of;
use super::resolve::finish;
use super::{ChangeLookup, Conflict};

/// Lists the conflicts in the network document: transfer requests that two head-office
/// users decided differently ([`super::ConflictKind::TransferDecision`]). Their values
/// carry the site label `network`. Deterministic like [`super::detect`].
pub fn detect_network<D: ChangeLookup>(net_doc: &D) -> Vec<Conflict> {
    let mut out = Vec::new();
    transfer_decisions(net_doc, &mut out);
    out.sort_by(|a, b| (a.kind, &a.records, &a.id).cmp(&(b.kind, &b.records, &b.id)));
    out
}

/// Settles concurrent decisions on transfer `id`: head office keeps `verdict`, one of
/// the competing ones. The decision record carrying it is written afresh over every
/// concurrent record, signed by the one who settles it (`by`, `now`), so the conflict
/// disappears once replicas sync. Refused, with the document unchanged: for anyone but
/// head office or an admin, a verdict nobody gave, a request not in conflict, and
/// keeping a refusal when the sender (`sender`, the requesting site's document) has
/// already dispatched the vehicle under the approval.
pub fn resolve_transfer_decision(
    net_doc: &mut AutoCommit,
    sender: Option<&SiteDocument>,
    id: &str,
    verdict: TransferVerdict,
    by: &str,
    role: Role,
    now: Millis,
) -> Result<(), DomainError> {
    let field = || format!("resolution of transfer {id}");
    if !matches!(role, Role::HeadOffice | Role::Admin) {
        return Err(DomainError::Invalid {
            field: field(),
            reason: format!("a {role} may not decide transfers between regions: head office does"),
        });
    }
    let decisions =
        map_of(net_doc, &ROOT, "transferDecisions").ok_or_else(|| DomainError::Invalid {
            field: field(),
            reason: "the network document has no transfer decisions".into(),
        })?;
    let competing = decision_values(net_doc, &decisions, id);
    let verdicts: std::collections::BTreeSet<&str> =
        competing.iter().map(|(v, _)| v.value.as_str()).collect();
    if verdicts.len() < 2 {
        return Err(DomainError::Invalid {
            field: field(),
            reason: format!("transfer {id} has no concurrent decisions ({NETWORK} document)"),
        });
    }
    let chosen = competing
        .iter()
        .find(|(v, _)| v.value == verdict.as_str())
        .ok_or_else(|| DomainError::Invalid {
            field: field(),
            reason: format!(
                "nobody {verdict} it; keep one of: {}",
                verdicts.iter().copied().collect::<Vec<_>>().join(", ")
            ),
        })?;
    if verdict == TransferVerdict::Refused
        && let Some(request) = sender.and_then(|s| s.transfers.get(id))
        && let Some(at) = request.dispatched_at
    {
        return Err(DomainError::Invalid {
            field: field(),
            reason: format!(
                "{} already dispatched vehicle {} under the approval at {}: keep approved",
                request.from,
                request.vin,
                crate::time::cst_minute(at)
            ),
        });
    }
    let mut record =
        TransferDecision::hydrate_map(&*net_doc, &chosen.1).map_err(|e| DomainError::Invalid {
            field: field(),
            reason: format!("the {verdict} decision is unreadable: {e}"),
        })?;
    record.verdict = verdict;
    record.by = by.to_string();
    record.at = now;
    net_doc.commit();
    // A put's predecessors are every record visible at the key, so this one record
    // replaces all of them on every replica that receives it.
    let result = net_doc
        .put_object(&decisions, id, ObjType::Map)
        .map_err(DomainError::from)
        .and_then(|_| {
            Ok(autosurgeon::reconcile_prop(
                &mut *net_doc,
                &decisions,
                id,
                &record,
            )?)
        });
    finish(
        net_doc,
        result,
        format!("{by}: resolve concurrent decisions on transfer {id}: {verdict}"),
        now,
    )
}
