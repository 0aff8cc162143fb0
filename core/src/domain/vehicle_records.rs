//! A vehicle's record in the site document as the operations reach it: writing a fresh
//! record, finding one, checking that a VIN is free, and which status may follow which.
//! Shared by the vehicle and transfer operations.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ReadDoc as AmReadDoc};

use crate::schema::{Vehicle, VehicleStatus};

use super::{DomainError, Result, map_at, put_opt_i64, put_opt_str, read_err, root_map, site_id};

/// A vehicle record is always written as a fresh map, so that a re-received VIN does not
/// inherit fields of its old record.
pub(crate) fn put_vehicle_record(
    doc: &mut AutoCommit,
    vehicles: &ObjId,
    v: &Vehicle,
) -> Result<()> {
    let obj = doc.put_object(vehicles, v.vin.as_str(), ObjType::Map)?;
    write_vehicle_fields(doc, &obj, v)
}

fn write_vehicle_fields(doc: &mut AutoCommit, obj: &ObjId, v: &Vehicle) -> Result<()> {
    doc.put(obj, "vin", v.vin.as_str())?;
    doc.put(obj, "model", v.model.as_str())?;
    doc.put(obj, "trim", v.trim.as_str())?;
    doc.put(obj, "colour", v.colour.as_str())?;
    doc.put(obj, "cost", v.cost)?;
    doc.put(obj, "listPrice", v.list_price)?;
    doc.put(obj, "status", v.status.as_str())?;
    put_opt_i64(doc, obj, "eta", v.eta)?;
    put_opt_i64(doc, obj, "arrivedAt", v.arrived_at)?;
    put_opt_str(doc, obj, "reservedFor", v.reserved_for.as_deref())?;
    put_opt_str(doc, obj, "soldTo", v.sold_to.as_deref())?;
    put_opt_str(doc, obj, "consultant", v.consultant.as_deref())?;
    put_opt_str(doc, obj, "transferFrom", v.transfer_from.as_deref())?;
    put_opt_str(doc, obj, "transferTo", v.transfer_to.as_deref())?;
    doc.put(obj, "updatedAt", v.updated_at)?;
    // Written only when there is one, so records without an approval stay as they were.
    if let Some(by) = &v.discount_approved_by {
        doc.put(obj, "discountApprovedBy", by.as_str())?;
    }
    if let Some(at) = v.discount_approved_at {
        doc.put(obj, "discountApprovedAt", at)?;
    }
    if let Some(id) = &v.transfer_id {
        doc.put(obj, "transferId", id.as_str())?;
    }
    Ok(())
}

pub(super) fn check_vin_free(doc: &AutoCommit, vehicles: &ObjId, vin: &str) -> Result<()> {
    if let Some(obj) = map_at(doc, vehicles, vin)? {
        let status: VehicleStatus = autosurgeon::hydrate_prop(doc, &obj, "status")
            .map_err(read_err(format!("status of vehicle {vin}")))?;
        if !matches!(
            status,
            VehicleStatus::TransferredOut | VehicleStatus::Delivered
        ) {
            return Err(DomainError::VehicleExists {
                vin: vin.into(),
                site: site_id(doc)?,
                status,
            });
        }
    }
    Ok(())
}

/// Whether a vehicle may move from `from` to `to`: ordered → in_transit → in_stock →
/// reserved → sold → delivered; ordered → in_stock (it arrived, shipment unrecorded);
/// reserved → in_stock (release); in_stock → transferred_out (a transfer).
pub fn vehicle_transition_allowed(from: VehicleStatus, to: VehicleStatus) -> bool {
    use VehicleStatus::*;
    matches!(
        (from, to),
        (Ordered, InTransit)
            | (Ordered, InStock)
            | (InTransit, InStock)
            | (InStock, Reserved)
            | (Reserved, Sold)
            | (Sold, Delivered)
            | (Reserved, InStock)
            | (InStock, TransferredOut)
    )
}

pub(super) fn vehicle_obj<D: AmReadDoc>(doc: &D, vin: &str) -> Result<(ObjId, String)> {
    let vehicles = root_map(doc, "site", "vehicles")?;
    let key = vin.trim().to_ascii_uppercase();
    match map_at(doc, &vehicles, &key)? {
        Some(obj) => Ok((obj, key)),
        None => Err(DomainError::UnknownVehicle {
            vin: vin.to_string(),
            site: site_id(doc)?,
        }),
    }
}
