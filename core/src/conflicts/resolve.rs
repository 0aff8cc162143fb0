//! Resolving: operations that write one value over every concurrent one.

use std::collections::BTreeSet;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT, ScalarValue};

use crate::domain::{self, DomainError};
use crate::schema::{Millis, NetworkDocument, Vehicle, VehicleStatus};

use super::ChangeLookup;
use super::checks::{booking_candidates, held_statuses, part_values};
use super::read::{all_texts, map_of, maps_of};

/// Resolves a double booking: the vehicle goes to `customer`, one of the competing
/// customers. The vehicle is `sold` if some device sold it to that customer, else
/// `reserved`; the consultant is the one who booked it for that customer. The values are
/// written over every concurrent value (when the vehicle record itself was created
/// twice, it is written afresh), so the conflict disappears once replicas sync.
pub fn resolve_double_booking(
    doc: &mut AutoCommit,
    vin: &str,
    customer: &str,
    by: &str,
    now: Millis,
) -> Result<(), DomainError> {
    let site = domain::site_header(doc)?.id;
    let vin = vin.trim().to_ascii_uppercase();
    let vehicles = map_of(doc, &ROOT, "vehicles").ok_or_else(|| DomainError::NotADocument {
        kind: "site",
        reason: "no `vehicles` map at the root".into(),
    })?;
    let candidates = booking_candidates(doc, &site, &vehicles, &vin);
    if candidates.is_empty() {
        domain::get_vehicle(doc, &vin)?.ok_or(DomainError::UnknownVehicle {
            vin: vin.clone(),
            site: site.clone(),
        })?;
    }
    if !candidates.iter().any(|c| c.value == customer) {
        let names: BTreeSet<&str> = candidates.iter().map(|c| c.value.as_str()).collect();
        return Err(DomainError::Invalid {
            field: format!("resolution of vehicle {vin}"),
            reason: format!(
                "customer {customer} is not one of the competing customers ({})",
                names.into_iter().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    let sold = candidates
        .iter()
        .any(|c| c.field == "soldTo" && c.value == customer);
    // The consultant who booked the vehicle for this customer: the one written in the
    // same change as the chosen value.
    let mut consultant = None;
    for obj in maps_of(doc, &vehicles, &vin) {
        for (value, op) in all_texts(doc, &obj, "reservedFor")
            .into_iter()
            .chain(all_texts(doc, &obj, "soldTo"))
        {
            if value.as_deref() != Some(customer) {
                continue;
            }
            let change = doc.change_of(&op);
            for (c, cop) in all_texts(doc, &obj, "consultant") {
                if c.is_some() && doc.change_of(&cop) == change {
                    consultant = c;
                }
            }
        }
    }
    let consultant = consultant.unwrap_or_else(|| by.to_string());
    let status = if sold {
        VehicleStatus::Sold
    } else {
        VehicleStatus::Reserved
    };
    let fresh = maps_of(doc, &vehicles, &vin).len() > 1;
    let mut vehicle: Vehicle =
        domain::get_vehicle(doc, &vin)?.ok_or(DomainError::UnknownVehicle {
            vin: vin.clone(),
            site: site.clone(),
        })?;
    vehicle.status = status;
    vehicle.reserved_for = Some(customer.to_string());
    vehicle.sold_to = sold.then(|| customer.to_string());
    vehicle.consultant = Some(consultant.clone());
    vehicle.updated_at = now;
    doc.commit();
    let result = (|| -> Result<(), DomainError> {
        if fresh {
            domain::put_vehicle_record(doc, &vehicles, &vehicle)?;
        } else {
            let obj = map_of(doc, &vehicles, &vin).expect("vehicle exists");
            doc.put(&obj, "status", status.as_str())?;
            doc.put(&obj, "reservedFor", customer)?;
            match &vehicle.sold_to {
                Some(c) => doc.put(&obj, "soldTo", c.as_str())?,
                None => doc.put(&obj, "soldTo", ScalarValue::Null)?,
            }
            doc.put(&obj, "consultant", consultant.as_str())?;
            doc.put(&obj, "updatedAt", now)?;
        }
        Ok(())
    })();
    finish(
        doc,
        result,
        format!("{by}: resolve double booking of {vin}: {customer}"),
        now,
    )
}

/// Resolves a vehicle in stock at two sites, at a site that should not hold it: its
/// record here becomes `transferred_out` to `kept_at`, the site that keeps it. Only
/// this site's document changes; the conflict clears once it syncs.
pub fn resolve_stock_elsewhere(
    doc: &mut AutoCommit,
    vin: &str,
    kept_at: &str,
    by: &str,
    now: Millis,
) -> Result<(), DomainError> {
    let site = domain::site_header(doc)?.id;
    let vin = vin.trim().to_ascii_uppercase();
    if kept_at == site {
        return Err(DomainError::Invalid {
            field: format!("resolution of vehicle {vin}"),
            reason: format!("run this at the site that gives the vehicle up, not at {kept_at}"),
        });
    }
    let mut vehicle = domain::get_vehicle(doc, &vin)?.ok_or(DomainError::UnknownVehicle {
        vin: vin.clone(),
        site: site.clone(),
    })?;
    let unknown = || DomainError::UnknownVehicle {
        vin: vin.clone(),
        site: site.clone(),
    };
    let vehicles = map_of(doc, &ROOT, "vehicles").ok_or_else(unknown)?;
    let obj = map_of(doc, &vehicles, &vin).ok_or_else(unknown)?;
    // The site holds the vehicle if the status shown says so, or a concurrent one
    // hidden behind it (a reservation made while another device transferred it out).
    let held_here = matches!(
        vehicle.status,
        VehicleStatus::InStock | VehicleStatus::Reserved
    ) || !held_statuses(doc, &site, &vehicles, &vin).is_empty();
    if !held_here {
        return Err(DomainError::IllegalVehicleTransition {
            vin,
            from: vehicle.status,
            to: VehicleStatus::TransferredOut,
        });
    }
    let fresh = maps_of(doc, &vehicles, &vin).len() > 1;
    vehicle.status = VehicleStatus::TransferredOut;
    vehicle.transfer_to = Some(kept_at.to_string());
    vehicle.updated_at = now;
    doc.commit();
    let result = (|| -> Result<(), DomainError> {
        if fresh {
            // Two records of the VIN: one fresh record supersedes both.
            return domain::put_vehicle_record(doc, &vehicles, &vehicle);
        }
        // Plain puts supersede every concurrent value of these fields.
        doc.put(&obj, "status", VehicleStatus::TransferredOut.as_str())?;
        doc.put(&obj, "transferTo", kept_at)?;
        doc.put(&obj, "updatedAt", now)?;
        Ok(())
    })();
    finish(
        doc,
        result,
        format!("{by}: vehicle {vin} is held at {kept_at}, not here"),
        now,
    )
}

/// Resolves a duplicate customer by marking `duplicate` as merged into `keep`.
pub fn resolve_duplicate_customer(
    doc: &mut AutoCommit,
    duplicate: &str,
    keep: &str,
    by: &str,
    now: Millis,
) -> Result<(), DomainError> {
    domain::merge_customer(doc, duplicate, keep, by, now)
}

/// Resolves a forecast conflict by setting the cell to `quantity`, written over every
/// concurrent value (see [`domain::set_forecast`]).
pub fn resolve_forecast(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    month: &str,
    model: &str,
    quantity: i64,
    by: &str,
    now: Millis,
) -> Result<(), DomainError> {
    domain::set_forecast(doc, net, month, model, quantity, by, now)
}

/// Resolves concurrent forecast adjustments by adjusting the cell to `quantity`: one
/// fresh `adjusted` record written over every concurrent one (see
/// [`domain::adjust_forecast`]); the site's own figure is untouched.
pub fn resolve_forecast_adjustment(
    doc: &mut AutoCommit,
    month: &str,
    model: &str,
    quantity: i64,
    by: &str,
    now: Millis,
) -> Result<(), DomainError> {
    domain::adjust_forecast(doc, month, model, quantity, by, now)
}

/// Resolves a part count collision: `parts[part]` becomes one fresh counter holding
/// `count` (typically what was counted on the shelf, or the sum of the competing
/// counts), which supersedes every concurrent counter. Increments made elsewhere to the
/// old counters and not yet synced here are superseded too, so resolve after syncing.
/// (An adjustment made while the collision stands is applied by automerge to every
/// competing counter, so the competing values, and the conflict's id, move with it.)
/// Refused, with the document unchanged, for a negative count or a part that has only
/// one counter (adjust that with [`domain::adjust_part`], whose increments add up).
pub fn resolve_part_count(
    doc: &mut AutoCommit,
    part: &str,
    count: i64,
    by: &str,
    now: Millis,
) -> Result<(), DomainError> {
    let site = domain::site_header(doc)?.id;
    let part = part.trim();
    if count < 0 {
        return Err(DomainError::Invalid {
            field: format!("resolution of part {part}"),
            reason: format!("a count cannot be negative, got {count}"),
        });
    }
    let parts = map_of(doc, &ROOT, "parts").ok_or_else(|| DomainError::NotADocument {
        kind: "site",
        reason: "no `parts` map at the root".into(),
    })?;
    let competing = part_values(doc, &site, &parts, part);
    if competing.len() < 2 {
        let why = if competing.is_empty() {
            format!("part {part} is not stocked at {site}")
        } else {
            format!(
                "part {part} has one counter at {site}, not a collision; adjust its count instead"
            )
        };
        return Err(DomainError::Invalid {
            field: format!("resolution of part {part}"),
            reason: why,
        });
    }
    doc.commit();
    // A put's predecessors are every value visible here, so this one counter replaces
    // all of them on every replica that receives it.
    let result = doc
        .put(&parts, part, ScalarValue::counter(count))
        .map_err(DomainError::from);
    finish(
        doc,
        result,
        format!("{by}: resolve part count collision of {part}: {count}"),
        now,
    )
}

/// Commits a resolution written in one transaction, or rolls it back on error.
pub(super) fn finish(
    doc: &mut AutoCommit,
    result: Result<(), DomainError>,
    message: String,
    now: Millis,
) -> Result<(), DomainError> {
    match result {
        Ok(()) => {
            domain::commit(doc, message, now);
            Ok(())
        }
        Err(e) => {
            doc.rollback();
            Err(e)
        }
    }
}
