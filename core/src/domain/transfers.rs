//! Transfers between regions: a manager of the sending site asks, head office approves
//! or refuses in the network document, and only an approved vehicle leaves.
//!
//! Within one region (both sites under the same distribution centre) a manager who
//! writes both documents moves a vehicle directly ([`super::transfer_vehicle`]).
//! Between regions nobody below head office writes both documents, and head office
//! writes only the network document, so a transfer takes four steps, each one
//! document: [`request_transfer`] (sender's document), [`decide_transfer`] (network
//! document), [`dispatch_transfer`] (sender's) and [`receive_transfer`] (receiver's,
//! from the vehicle details the approval carries).

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT, ReadDoc as AmReadDoc};

use crate::access::Role;
use crate::schema::{
    Millis, NetworkDocument, SiteDocument, TransferDecision, TransferRequest, TransferVerdict,
    Vehicle, VehicleStatus,
};

use super::network::regions;
use super::read::get_vehicle;
use super::vehicle_records::{check_vin_free, vehicle_obj};
use super::{
    DomainError, Result, commit_write, key_like, put_vehicle_record, read_err, root_map, site_id,
    vehicle_transition_allowed, writable_map,
};

/// A transfer request as a manager enters it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    /// Stable id (the client generates a UUID).
    pub id: String,
    /// The vehicle, in stock at this site.
    pub vin: String,
    /// The receiving site, in another region.
    pub to: String,
    /// Why.
    pub note: Option<String>,
}

fn clean_note(note: Option<&str>) -> Option<String> {
    note.map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

/// Asks head office to move a vehicle in stock at this site to a site of another
/// region. Refused for a vehicle not in stock, a site of the same region (move it
/// directly), or a vehicle that already has an open request.
pub fn request_transfer(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    new: &NewTransfer,
    by: &str,
    now: Millis,
) -> Result<TransferRequest> {
    let by = key_like("requested by", by)?;
    let id = key_like("transfer id", &new.id)?;
    let from = site_id(doc)?;
    let vehicle = get_vehicle(&*doc, &new.vin)?.ok_or_else(|| DomainError::UnknownVehicle {
        vin: new.vin.clone(),
        site: from.clone(),
    })?;
    let vin = vehicle.vin.clone();
    if vehicle.status != VehicleStatus::InStock {
        return Err(DomainError::WrongVehicleAction {
            vin,
            action: "a transfer",
            from: vehicle.status,
            needs: VehicleStatus::InStock.to_string(),
        });
    }
    let to = key_like("transfer to", &new.to)?;
    if to == from {
        return Err(DomainError::Invalid {
            field: format!("transfer of vehicle {vin}"),
            reason: format!("it is already at site {from}"),
        });
    }
    let (from_region, to_region) = regions(net, &from, &to)?;
    if from_region == to_region {
        return Err(DomainError::Invalid {
            field: format!("transfer of vehicle {vin} to {to}"),
            reason: format!(
                "{from} and {to} are both in region {from_region}: a manager of the region moves it directly, without head office"
            ),
        });
    }
    let existing = read_requests(doc)?;
    if existing.contains_key(&id) {
        return Err(DomainError::Invalid {
            field: format!("transfer {id}"),
            reason: "already requested".into(),
        });
    }
    if let Some(open) = existing.values().find(|r| {
        r.vin == vin
            && r.dispatched_at.is_none()
            && net
                .transfer_decisions
                .get(&r.id)
                .is_none_or(|d| d.verdict == TransferVerdict::Approved)
    }) {
        return Err(DomainError::Invalid {
            field: format!("transfer of vehicle {vin}"),
            reason: format!("request {} to {} is still open", open.id, open.to),
        });
    }
    let request = TransferRequest {
        id: id.clone(),
        vin: vin.clone(),
        model: vehicle.model.clone(),
        from,
        to: to.clone(),
        requested_by: by.clone(),
        requested_at: now,
        note: clean_note(new.note.as_deref()),
        dispatched_at: None,
        dispatched_by: None,
    };
    commit_write(
        doc,
        format!("{by}: request transfer {id} of vehicle {vin} to {to}"),
        now,
        |doc| {
            let map = writable_map::<TransferRequest>(doc, &ROOT, "transfers")?;
            autosurgeon::reconcile_prop(doc, &map, id.as_str(), &request)?;
            Ok(())
        },
    )?;
    Ok(request)
}

fn read_requests<D: autosurgeon::ReadDoc + AmReadDoc>(
    doc: &D,
) -> Result<std::collections::BTreeMap<String, TransferRequest>> {
    if AmReadDoc::get(doc, &ROOT, "transfers")?.is_none() {
        return Ok(Default::default());
    }
    autosurgeon::hydrate_prop(doc, &ROOT, "transfers").map_err(read_err("transfers"))
}

/// Head office approves or refuses a transfer request it read in the sender's
/// document (`sender`), writing the decision into the network document. A refusal
/// needs a reason; an approval needs the vehicle still in stock at the sender. A
/// request is decided once.
#[allow(clippy::too_many_arguments)]
pub fn decide_transfer(
    net_doc: &mut AutoCommit,
    sender: &SiteDocument,
    id: &str,
    verdict: TransferVerdict,
    note: Option<&str>,
    by: &str,
    role: Role,
    now: Millis,
) -> Result<TransferDecision> {
    let by = key_like("decided by", by)?;
    if !matches!(role, Role::HeadOffice | Role::Admin) {
        return Err(DomainError::Invalid {
            field: format!("decision on transfer {id}"),
            reason: format!("a {role} may not decide transfers between regions: head office does"),
        });
    }
    let request = sender
        .transfers
        .get(id)
        .ok_or_else(|| DomainError::Invalid {
            field: format!("transfer {id}"),
            reason: format!("site {} has no such request", sender.site.id),
        })?;
    let net = NetworkDocument::read(&*net_doc)?;
    if let Some(d) = net.transfer_decisions.get(id) {
        return Err(DomainError::Invalid {
            field: format!("transfer {id}"),
            reason: format!("already {} by {}", d.verdict, d.by),
        });
    }
    let note = clean_note(note);
    if verdict == TransferVerdict::Refused && note.is_none() {
        return Err(DomainError::Invalid {
            field: format!("refusal of transfer {id}"),
            reason: "say why (--note): the manager who asked reads it".into(),
        });
    }
    let vehicle = sender.vehicles.get(&request.vin);
    let vehicle = match (verdict, vehicle) {
        (TransferVerdict::Approved, Some(v)) if v.status != VehicleStatus::InStock => {
            return Err(DomainError::WrongVehicleAction {
                vin: v.vin.clone(),
                action: "approving a transfer",
                from: v.status,
                needs: VehicleStatus::InStock.to_string(),
            });
        }
        (_, Some(v)) => v,
        (_, None) => {
            return Err(DomainError::UnknownVehicle {
                vin: request.vin.clone(),
                site: sender.site.id.clone(),
            });
        }
    };
    let decision = TransferDecision {
        id: id.to_string(),
        verdict,
        by: by.clone(),
        at: now,
        note,
        vin: vehicle.vin.clone(),
        from: request.from.clone(),
        to: request.to.clone(),
        model: vehicle.model.clone(),
        trim: vehicle.trim.clone(),
        colour: vehicle.colour.clone(),
        cost: vehicle.cost,
        list_price: vehicle.list_price,
    };
    commit_write(
        net_doc,
        format!("{by}: transfer {id} {verdict}"),
        now,
        |doc| {
            let map = writable_map::<TransferDecision>(doc, &ROOT, "transferDecisions")?;
            autosurgeon::reconcile_prop(doc, &map, id, &decision)?;
            Ok(())
        },
    )?;
    Ok(decision)
}

/// The approval of request `id`, or the error saying where the request stands.
fn approval<'n>(net: &'n NetworkDocument, id: &str) -> Result<&'n TransferDecision> {
    match net.transfer_decisions.get(id) {
        Some(d) if d.verdict == TransferVerdict::Approved => Ok(d),
        Some(d) => Err(DomainError::Invalid {
            field: format!("transfer {id}"),
            reason: format!(
                "refused by {}{}",
                d.by,
                d.note
                    .as_deref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            ),
        }),
        None => Err(DomainError::Invalid {
            field: format!("transfer {id}"),
            reason: "head office has not approved it (yet): the vehicle stays until it does".into(),
        }),
    }
}

/// The sending site lets an approved vehicle go: it becomes `transferred_out` (with
/// `transferTo`) and the request records when and by whom, in one change.
pub fn dispatch_transfer(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    id: &str,
    by: &str,
    now: Millis,
) -> Result<()> {
    let by = key_like("dispatched by", by)?;
    let requests = read_requests(&*doc)?;
    let request = requests.get(id).ok_or_else(|| DomainError::Invalid {
        field: format!("transfer {id}"),
        reason: format!(
            "site {} has no such request",
            site_id(&*doc).unwrap_or_default()
        ),
    })?;
    if let Some(at) = request.dispatched_at {
        return Err(DomainError::Invalid {
            field: format!("transfer {id}"),
            reason: format!("already dispatched at {}", crate::time::cst_minute(at)),
        });
    }
    approval(net, id)?;
    let (obj, vin) = vehicle_obj(doc, &request.vin)?;
    let status: VehicleStatus = autosurgeon::hydrate_prop(&*doc, &obj, "status")
        .map_err(read_err(format!("status of vehicle {vin}")))?;
    if !vehicle_transition_allowed(status, VehicleStatus::TransferredOut) {
        return Err(DomainError::IllegalVehicleTransition {
            vin,
            from: status,
            to: VehicleStatus::TransferredOut,
        });
    }
    let transfers = root_map(doc, "site", "transfers")?;
    let request_obj = super::map_at(doc, &transfers, id)?.ok_or_else(|| DomainError::Invalid {
        field: format!("transfer {id}"),
        reason: "the request is not a record".into(),
    })?;
    let to = request.to.clone();
    commit_write(
        doc,
        format!("{by}: dispatch vehicle {vin} to {to} (transfer {id})"),
        now,
        |doc| {
            doc.put(&obj, "status", VehicleStatus::TransferredOut.as_str())?;
            doc.put(&obj, "transferTo", to.as_str())?;
            doc.put(&obj, "updatedAt", now)?;
            doc.put(&request_obj, "dispatchedAt", now)?;
            doc.put(&request_obj, "dispatchedBy", by.as_str())?;
            Ok(())
        },
    )
}

/// The receiving site puts an approved vehicle on its books as `in_transit` (with
/// `transferFrom` and `transferId`), from the details the approval carries; `vehicle
/// arrive` then stocks it.
pub fn receive_transfer(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    id: &str,
    eta: Option<Millis>,
    by: &str,
    now: Millis,
) -> Result<Vehicle> {
    let by = key_like("received by", by)?;
    let decision = approval(net, id)?;
    let here = site_id(&*doc)?;
    if decision.to != here {
        return Err(DomainError::Invalid {
            field: format!("transfer {id}"),
            reason: format!("it goes to {}, not to {here}", decision.to),
        });
    }
    let vehicles = root_map(doc, "site", "vehicles")?;
    check_vin_free(doc, &vehicles, &decision.vin)?;
    let vehicle = Vehicle {
        vin: decision.vin.clone(),
        model: decision.model.clone(),
        trim: decision.trim.clone(),
        colour: decision.colour.clone(),
        cost: decision.cost,
        list_price: decision.list_price,
        status: VehicleStatus::InTransit,
        eta,
        arrived_at: None,
        reserved_for: None,
        sold_to: None,
        consultant: None,
        transfer_from: Some(decision.from.clone()),
        transfer_to: None,
        updated_at: now,
        discount_approved_by: None,
        discount_approved_at: None,
        transfer_id: Some(id.to_string()),
    };
    commit_write(
        doc,
        format!(
            "{by}: vehicle {} in transit from {} (transfer {id})",
            vehicle.vin, decision.from
        ),
        now,
        |doc| put_vehicle_record(doc, &vehicles, &vehicle),
    )?;
    Ok(vehicle)
}
