//! Vehicles: receiving, the lifecycle of statuses, and transfers between sites.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId};

use crate::access::Role;
use crate::schema::{CustomerEvent, Fen, Millis, NetworkDocument, Vehicle, VehicleStatus};

use super::customer_records::live_customer_obj;
use super::read::get_vehicle;
use super::sale::{
    CustomerSide, customer_side, delivery_event, delivery_refusal, order_event, write_customer_side,
};
use super::vehicle_records::{
    check_vin_free, put_vehicle_record, vehicle_obj, vehicle_transition_allowed,
};
use super::{
    DomainError, Result, Vin, catalogue_model, commit, commit_write, key_like, non_empty,
    not_negative, put_opt_i64, put_opt_str, read_err, root_map, site_id,
};

/// A vehicle arriving on a site's books.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVehicle {
    /// The validated VIN.
    pub vin: Vin,
    /// Model code from the catalogue.
    pub model: String,
    /// Trim, one of the model's trims when the catalogue lists any.
    pub trim: String,
    /// Exterior colour.
    pub colour: String,
    /// Cost in fen; the catalogue's cost when `None`.
    pub cost: Option<Fen>,
    /// List price in fen; the catalogue's when `None`.
    pub list_price: Option<Fen>,
    /// `ordered`, `in_transit` or `in_stock`.
    pub status: VehicleStatus,
    /// Expected arrival, for ordered and in-transit vehicles.
    pub eta: Option<Millis>,
}

/// Puts a vehicle on the site's books: ordered from the manufacturer, in transit, or
/// arrived in stock (then `arrivedAt` is `now`). A VIN the site already holds is
/// refused unless its record there is `transferred_out` or `delivered` (it came back).
pub fn receive_vehicle(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    new: &NewVehicle,
    by: &str,
    now: Millis,
) -> Result<Vehicle> {
    let vin = new.vin.as_str().to_string();
    let model = catalogue_model(net, &new.model, || format!("vehicle {vin}"))?;
    if !model.trims.is_empty() && !model.trims.iter().any(|t| t == &new.trim) {
        return Err(DomainError::UnknownTrim {
            model: model.code.clone(),
            trim: new.trim.clone(),
            known: model.trims.clone(),
        });
    }
    let colour = non_empty(format!("vehicle {vin} colour"), &new.colour)?;
    let cost = new.cost.unwrap_or(model.cost);
    let list_price = new.list_price.unwrap_or(model.list_price);
    not_negative(format!("vehicle {vin} cost"), cost)?;
    not_negative(format!("vehicle {vin} listPrice"), list_price)?;
    if !matches!(
        new.status,
        VehicleStatus::Ordered | VehicleStatus::InTransit | VehicleStatus::InStock
    ) {
        return Err(DomainError::Invalid {
            field: format!("vehicle {vin} status"),
            reason: format!(
                "a vehicle is received as ordered, in_transit or in_stock, not {}",
                new.status
            ),
        });
    }
    let vehicles = root_map(doc, "site", "vehicles")?;
    check_vin_free(doc, &vehicles, &vin)?;
    let vehicle = Vehicle {
        vin: vin.clone(),
        model: model.code.clone(),
        trim: new.trim.clone(),
        colour,
        cost,
        list_price,
        status: new.status,
        eta: if new.status == VehicleStatus::InStock {
            None
        } else {
            new.eta
        },
        arrived_at: (new.status == VehicleStatus::InStock).then_some(now),
        reserved_for: None,
        sold_to: None,
        consultant: None,
        transfer_from: None,
        transfer_to: None,
        updated_at: now,
        discount_approved_by: None,
        discount_approved_at: None,
        transfer_id: None,
    };
    commit_write(
        doc,
        format!("{by}: receive vehicle {vin} ({})", new.status),
        now,
        |doc| put_vehicle_record(doc, &vehicles, &vehicle),
    )?;
    Ok(vehicle)
}

/// A step in a vehicle's life at a site. Transfers to another site have their own
/// operation, [`transfer_vehicle`], because they write two documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VehicleAction {
    /// ordered → in_transit, with an expected arrival.
    Ship {
        /// Expected arrival.
        eta: Option<Millis>,
    },
    /// ordered or in_transit → in_stock; days in stock count from now. A vehicle
    /// ordered from the manufacturer may arrive without a recorded shipment.
    Arrive,
    /// in_stock → reserved for a customer of this site.
    Reserve {
        /// The customer id.
        customer: String,
    },
    /// reserved → in_stock: the reservation is released.
    Release,
    /// reserved → sold, to the customer it was reserved for, at the list price; records
    /// the customer's `order` (see [`sell_vehicle`] for a price or a sale from stock).
    Sell,
    /// sold → delivered: handed over; records the customer's `delivery`.
    Deliver,
}

impl VehicleAction {
    /// The status this action starts from (for `Arrive`, the usual one: see
    /// [`VehicleAction::applies_from`]). Arrive and release both end in stock, but only
    /// from their own status: an arrival sets the arrival date, a release clears the
    /// reservation, and neither may stand in for the other.
    pub fn source(&self) -> VehicleStatus {
        match self {
            VehicleAction::Ship { .. } => VehicleStatus::Ordered,
            VehicleAction::Arrive => VehicleStatus::InTransit,
            VehicleAction::Reserve { .. } => VehicleStatus::InStock,
            VehicleAction::Release | VehicleAction::Sell => VehicleStatus::Reserved,
            VehicleAction::Deliver => VehicleStatus::Sold,
        }
    }

    /// Whether this action starts from `status`: its [`source`](Self::source), and for
    /// `Arrive` also `ordered` (the shipment was never recorded; the car is here).
    pub fn applies_from(&self, status: VehicleStatus) -> bool {
        status == self.source()
            || matches!(self, VehicleAction::Arrive) && status == VehicleStatus::Ordered
    }

    fn needs(&self) -> String {
        match self {
            VehicleAction::Arrive => "ordered or in_transit".into(),
            other => other.source().to_string(),
        }
    }

    /// The step's name, as the CLI spells it.
    pub fn name(&self) -> &'static str {
        match self {
            VehicleAction::Ship { .. } => "ship",
            VehicleAction::Arrive => "arrive",
            VehicleAction::Reserve { .. } => "reserve",
            VehicleAction::Release => "release",
            VehicleAction::Sell => "sell",
            VehicleAction::Deliver => "deliver",
        }
    }

    /// The status this action moves the vehicle to.
    pub fn target(&self) -> VehicleStatus {
        match self {
            VehicleAction::Ship { .. } => VehicleStatus::InTransit,
            VehicleAction::Arrive | VehicleAction::Release => VehicleStatus::InStock,
            VehicleAction::Reserve { .. } => VehicleStatus::Reserved,
            VehicleAction::Sell => VehicleStatus::Sold,
            VehicleAction::Deliver => VehicleStatus::Delivered,
        }
    }
}

/// Moves a vehicle one step along its lifecycle, writing only the fields that change.
/// Selling and delivering also record the customer's `order` or `delivery` event in
/// the same change (see [`super::sale`]).
pub fn move_vehicle(
    doc: &mut AutoCommit,
    vin: &str,
    action: &VehicleAction,
    by: &str,
    now: Millis,
) -> Result<()> {
    let by = key_like("consultant", by)?;
    let step = check_step(doc, vin, action)?;
    let side = match action {
        VehicleAction::Sell => Some(sale_side(doc, &step, None, &by, now)?),
        VehicleAction::Deliver => {
            let customer = delivered_to(&step)?;
            let event = delivery_event(&step.vin, None, None, &by, now);
            Some(customer_side(doc, &customer, event)?)
        }
        _ => None,
    };
    write_step(doc, &step, action, side.as_ref(), &by, now)
}

/// A sale: the customer (needed when selling from stock; when the vehicle is reserved
/// it must be the customer it is reserved for) and the agreed price.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sale {
    /// The buyer's customer id.
    pub customer: Option<String>,
    /// The agreed price in fen; the vehicle's list price when `None`.
    pub price: Option<Fen>,
}

/// Sells a vehicle: a reserved one to its customer, or one in stock to
/// `sale.customer` (reserved and sold in one change). Records the customer's `order`
/// event with the price and the VIN, in the same change as the vehicle's status.
///
/// A discount (list price − price) above the limit of the seller's `role` in the
/// network's policy needs a manager's approval covering it (see
/// [`super::decide_discount`]); the approver and the time are written on the vehicle.
#[allow(clippy::too_many_arguments)]
pub fn sell_vehicle(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    vin: &str,
    sale: &Sale,
    by: &str,
    role: Role,
    now: Millis,
) -> Result<()> {
    let by = key_like("consultant", by)?;
    let (obj, key) = vehicle_obj(doc, vin)?;
    let from: VehicleStatus = autosurgeon::hydrate_prop(doc, &obj, "status")
        .map_err(read_err(format!("status of vehicle {key}")))?;
    if let Some(p) = sale.price {
        not_negative(format!("sale price of vehicle {key}"), p)?;
    }
    let from_stock = match (from, &sale.customer) {
        (VehicleStatus::InStock, Some(c)) => Some(c.clone()),
        (VehicleStatus::InStock, None) => {
            return Err(DomainError::Invalid {
                field: format!("sale of vehicle {key}"),
                reason: "it is in stock, not reserved: name the customer who buys it".into(),
            });
        }
        _ => None,
    };
    let mut step = match &from_stock {
        Some(_) => StepCheck {
            obj,
            vin: key.clone(),
            from,
            reserved_for: None,
            sold_to: None,
            approval: None,
        },
        None => check_step(doc, &key, &VehicleAction::Sell)?,
    };
    if let Some(c) = from_stock {
        live_customer_obj(doc, &c)?;
        step.reserved_for = Some(c);
    } else if let (Some(c), Some(r)) = (&sale.customer, &step.reserved_for)
        && c != r
    {
        return Err(DomainError::Invalid {
            field: format!("sale of vehicle {key}"),
            reason: format!("it is reserved for customer {r}; release it first to sell it to {c}"),
        });
    }
    let list_price: Fen = autosurgeon::hydrate_prop(doc, &step.obj, "listPrice")
        .map_err(read_err(format!("listPrice of vehicle {key}")))?;
    let buyer = step.reserved_for.clone().expect("checked by check_step");
    let discount = sale.price.map_or(0, |p| list_price.saturating_sub(p));
    let approval = super::discounts::check_sale_discount(doc, net, &buyer, &key, discount, role)?;
    let side = sale_side(doc, &step, sale.price, &by, now)?;
    match approval {
        None => write_step(doc, &step, &VehicleAction::Sell, Some(&side), &by, now),
        Some((approver, at)) => {
            let mut step = step;
            step.approval = Some((approver, at));
            write_step(doc, &step, &VehicleAction::Sell, Some(&side), &by, now)
        }
    }
}

/// Records the delivery of `vin` to `customer` from a customer event (`at`, note and
/// amount from `event`): the same change as [`VehicleAction::Deliver`].
pub(super) fn deliver_to(
    doc: &mut AutoCommit,
    vin: &str,
    customer: &str,
    event: &CustomerEvent,
    now: Millis,
) -> Result<CustomerEvent> {
    let (obj, key) = vehicle_obj(doc, vin)?;
    let status: VehicleStatus = autosurgeon::hydrate_prop(doc, &obj, "status")
        .map_err(read_err(format!("status of vehicle {key}")))?;
    let sold_to = crate::schema::opt_scalar_str::hydrate(doc, &obj, "soldTo".into())
        .map_err(read_err(format!("soldTo of vehicle {key}")))?;
    if let Some(e) = delivery_refusal(&key, customer, status, sold_to.as_deref()) {
        return Err(e);
    }
    let step = check_step(doc, &key, &VehicleAction::Deliver)?;
    let record = delivery_event(&key, event.amount, event.note.clone(), &event.by, event.at);
    let side = customer_side(doc, customer, record.clone())?;
    write_step(
        doc,
        &step,
        &VehicleAction::Deliver,
        Some(&side),
        &event.by,
        now,
    )?;
    Ok(record)
}

/// A lifecycle step checked against the document, before anything is written.
struct StepCheck {
    obj: ObjId,
    vin: String,
    from: VehicleStatus,
    reserved_for: Option<String>,
    sold_to: Option<String>,
    /// The discount approval a sale carries (approver, when).
    approval: Option<(String, Millis)>,
}

fn check_step(doc: &AutoCommit, vin: &str, action: &VehicleAction) -> Result<StepCheck> {
    let (obj, vin) = vehicle_obj(doc, vin)?;
    let from: VehicleStatus = autosurgeon::hydrate_prop(doc, &obj, "status")
        .map_err(read_err(format!("status of vehicle {vin}")))?;
    let to = action.target();
    if !vehicle_transition_allowed(from, to) {
        return Err(DomainError::IllegalVehicleTransition { vin, from, to });
    }
    if !action.applies_from(from) {
        return Err(DomainError::WrongVehicleAction {
            vin,
            action: action.name(),
            from,
            needs: action.needs(),
        });
    }
    if let VehicleAction::Reserve { customer } = action {
        live_customer_obj(doc, customer)?;
    }
    let reserved_for = crate::schema::opt_scalar_str::hydrate(doc, &obj, "reservedFor".into())
        .map_err(read_err(format!("reservedFor of vehicle {vin}")))?;
    let sold_to = crate::schema::opt_scalar_str::hydrate(doc, &obj, "soldTo".into())
        .map_err(read_err(format!("soldTo of vehicle {vin}")))?;
    if matches!(action, VehicleAction::Sell) && reserved_for.is_none() {
        return Err(DomainError::Invalid {
            field: format!("vehicle {vin} reservedFor"),
            reason: "a reserved vehicle must name its customer before it is sold".into(),
        });
    }
    Ok(StepCheck {
        obj,
        vin,
        from,
        reserved_for,
        sold_to,
        approval: None,
    })
}

/// The customer side of a sale: an `order` at `price` (default: the list price).
fn sale_side(
    doc: &AutoCommit,
    step: &StepCheck,
    price: Option<Fen>,
    by: &str,
    now: Millis,
) -> Result<CustomerSide> {
    let customer = step.reserved_for.as_deref().expect("checked by check_step");
    let price = match price {
        Some(p) => p,
        None => autosurgeon::hydrate_prop(doc, &step.obj, "listPrice")
            .map_err(read_err(format!("listPrice of vehicle {}", step.vin)))?,
    };
    customer_side(doc, customer, order_event(&step.vin, price, by, now))
}

/// The customer a sold vehicle is handed to: `soldTo` (else, for a record a foreign
/// client left incomplete, the customer it was reserved for).
fn delivered_to(step: &StepCheck) -> Result<String> {
    step.sold_to
        .clone()
        .or_else(|| step.reserved_for.clone())
        .ok_or_else(|| DomainError::Invalid {
            field: format!("vehicle {} soldTo", step.vin),
            reason: "a sold vehicle must name its customer before it is delivered".into(),
        })
}

/// Writes a checked step, and its customer side, as one change.
fn write_step(
    doc: &mut AutoCommit,
    step: &StepCheck,
    action: &VehicleAction,
    side: Option<&CustomerSide>,
    by: &str,
    now: Millis,
) -> Result<()> {
    let (obj, vin, from, to) = (&step.obj, &step.vin, step.from, action.target());
    let message = match side {
        Some(s) => format!(
            "{by}: vehicle {vin} {from} -> {to}, {} for customer {}",
            s.event.kind,
            step.reserved_for
                .as_deref()
                .or(step.sold_to.as_deref())
                .unwrap_or("?")
        ),
        None => format!("{by}: vehicle {vin} {from} -> {to}"),
    };
    commit_write(doc, message, now, |doc| {
        doc.put(obj, "status", to.as_str())?;
        doc.put(obj, "updatedAt", now)?;
        match action {
            VehicleAction::Ship { eta } => put_opt_i64(doc, obj, "eta", *eta)?,
            VehicleAction::Arrive => {
                doc.put(obj, "arrivedAt", now)?;
                put_opt_i64(doc, obj, "eta", None)?;
            }
            VehicleAction::Reserve { customer } => {
                doc.put(obj, "reservedFor", customer.as_str())?;
                doc.put(obj, "consultant", by)?;
            }
            VehicleAction::Release => {
                put_opt_str(doc, obj, "reservedFor", None)?;
                put_opt_str(doc, obj, "consultant", None)?;
            }
            VehicleAction::Sell => {
                let c = step.reserved_for.as_deref().expect("checked by check_step");
                if from == VehicleStatus::InStock {
                    // Sold straight from stock: the reservation is part of this change.
                    doc.put(obj, "reservedFor", c)?;
                }
                doc.put(obj, "soldTo", c)?;
                doc.put(obj, "consultant", by)?;
                if let Some((approver, at)) = &step.approval {
                    doc.put(obj, "discountApprovedBy", approver.as_str())?;
                    doc.put(obj, "discountApprovedAt", *at)?;
                }
            }
            VehicleAction::Deliver => {}
        }
        if let Some(side) = side {
            write_customer_side(doc, side)?;
        }
        Ok(())
    })
}

/// Transfers a vehicle in stock at `from` to the site of `to`, within one region (see
/// [`super::region_of`]): `from` records it `transferred_out` (with `transferTo`), `to`
/// gets it `in_transit` (with `transferFrom`). Both documents are validated before
/// either is written; the caller syncs both (a transfer recorded on one side only
/// shows up as a [`crate::conflicts::ConflictKind::StockAtTwoSites`] conflict or a
/// missing vehicle). Between regions the vehicle moves only on head office's approval:
/// see [`super::request_transfer`].
pub fn transfer_vehicle(
    from: &mut AutoCommit,
    to: &mut AutoCommit,
    net: &NetworkDocument,
    vin: &str,
    eta: Option<Millis>,
    by: &str,
    now: Millis,
) -> Result<()> {
    let by = key_like("consultant", by)?;
    let (obj, vin) = vehicle_obj(from, vin)?;
    let mut vehicle = get_vehicle(&*from, &vin)?.ok_or_else(|| DomainError::UnknownVehicle {
        vin: vin.clone(),
        site: site_id(&*from).unwrap_or_default(),
    })?;
    if !vehicle_transition_allowed(vehicle.status, VehicleStatus::TransferredOut) {
        return Err(DomainError::IllegalVehicleTransition {
            vin,
            from: vehicle.status,
            to: VehicleStatus::TransferredOut,
        });
    }
    let from_site = site_id(from)?;
    let to_site = site_id(to)?;
    if from_site == to_site {
        return Err(DomainError::Invalid {
            field: format!("transfer of vehicle {vin}"),
            reason: format!("both documents are site {from_site}"),
        });
    }
    let (from_region, to_region) = super::network::regions(net, &from_site, &to_site)?;
    if from_region != to_region {
        return Err(DomainError::Invalid {
            field: format!("transfer of vehicle {vin} to {to_site}"),
            reason: format!(
                "{from_site} (region {from_region}) and {to_site} (region {to_region}) are in different regions: the vehicle moves only once head office approves a transfer request"
            ),
        });
    }
    let to_vehicles = root_map(to, "site", "vehicles")?;
    check_vin_free(to, &to_vehicles, &vin)?;

    vehicle.status = VehicleStatus::InTransit;
    vehicle.eta = eta;
    vehicle.arrived_at = None;
    vehicle.reserved_for = None;
    vehicle.sold_to = None;
    vehicle.consultant = None;
    vehicle.transfer_from = Some(from_site.clone());
    vehicle.transfer_to = None;
    vehicle.transfer_id = None;
    vehicle.updated_at = now;

    from.commit();
    to.commit();
    let out = (|| -> Result<()> {
        from.put(&obj, "status", VehicleStatus::TransferredOut.as_str())?;
        from.put(&obj, "transferTo", to_site.as_str())?;
        from.put(&obj, "updatedAt", now)?;
        put_vehicle_record(to, &to_vehicles, &vehicle)
    })();
    if let Err(e) = out {
        from.rollback();
        to.rollback();
        return Err(e);
    }
    commit(
        from,
        format!("{by}: transfer vehicle {vin} to {to_site}"),
        now,
    );
    commit(
        to,
        format!("{by}: vehicle {vin} in transit from {from_site}"),
        now,
    );
    Ok(())
}
