//! Reading site documents: the header, customers, vehicles, part counts, and the check
//! that a document is a site document.

use automerge::{ROOT, ReadDoc as AmReadDoc, ScalarValue, Value};

use crate::schema::{Customer, SCHEMA_VERSION, SchemaError, SiteHeader, Vehicle, VehicleStatus};

use super::{DomainError, Result, normalise_phone, read_err, root_map, site_id};

/// The site's header (id, name, kind, parent).
pub fn site_header<D: autosurgeon::ReadDoc + AmReadDoc>(doc: &D) -> Result<SiteHeader> {
    autosurgeon::hydrate_prop::<_, Option<SiteHeader>, _, _>(doc, &ROOT, "site")
        .map_err(read_err("site header"))?
        .ok_or_else(|| DomainError::NotADocument {
            kind: "site",
            reason: "no site header".into(),
        })
}

/// One customer, merged or not.
pub fn get_customer<D: autosurgeon::ReadDoc + AmReadDoc>(
    doc: &D,
    id: &str,
) -> Result<Option<Customer>> {
    let customers = root_map(doc, "site", "customers")?;
    // autosurgeon reads an absent key as an error even into an Option: ask first.
    if AmReadDoc::get(doc, &customers, id)?.is_none() {
        return Ok(None);
    }
    autosurgeon::hydrate_prop(doc, &customers, id).map_err(read_err(format!("customer {id}")))
}

/// Every customer that has not been merged into another, by id.
pub fn list_customers<D: autosurgeon::ReadDoc + AmReadDoc>(doc: &D) -> Result<Vec<Customer>> {
    root_map(doc, "site", "customers")?;
    let all: std::collections::BTreeMap<String, Customer> =
        autosurgeon::hydrate_prop(doc, &ROOT, "customers").map_err(read_err("customers"))?;
    Ok(all
        .into_values()
        .filter(|c| c.merged_into.is_none())
        .collect())
}

/// Customers (not merged) whose phone number is the same number as `phone`.
pub fn find_customers_by_phone<D: autosurgeon::ReadDoc + AmReadDoc>(
    doc: &D,
    phone: &str,
) -> Result<Vec<Customer>> {
    let wanted = normalise_phone(phone).map_err(|reason| DomainError::InvalidPhone {
        customer: "(search)".into(),
        input: phone.into(),
        reason,
    })?;
    Ok(list_customers(doc)?
        .into_iter()
        .filter(|c| normalise_phone(&c.phone).ok().as_deref() == Some(wanted.as_str()))
        .collect())
}

/// One vehicle by VIN (case and surrounding spaces forgiven).
pub fn get_vehicle<D: autosurgeon::ReadDoc + AmReadDoc>(
    doc: &D,
    vin: &str,
) -> Result<Option<Vehicle>> {
    let vehicles = root_map(doc, "site", "vehicles")?;
    let key = vin.trim().to_ascii_uppercase();
    if AmReadDoc::get(doc, &vehicles, key.as_str())?.is_none() {
        return Ok(None);
    }
    autosurgeon::hydrate_prop(doc, &vehicles, key.as_str())
        .map_err(read_err(format!("vehicle {key}")))
}

/// Every vehicle on the site's books, by VIN, optionally only those with `status`.
pub fn list_vehicles<D: autosurgeon::ReadDoc + AmReadDoc>(
    doc: &D,
    status: Option<VehicleStatus>,
) -> Result<Vec<Vehicle>> {
    root_map(doc, "site", "vehicles")?;
    let all: std::collections::BTreeMap<String, Vehicle> =
        autosurgeon::hydrate_prop(doc, &ROOT, "vehicles").map_err(read_err("vehicles"))?;
    Ok(all
        .into_values()
        .filter(|v| status.is_none_or(|s| v.status == s))
        .collect())
}

/// The count on hand of one part (0 if never stocked).
pub fn part_count<D: AmReadDoc>(doc: &D, part: &str) -> Result<i64> {
    let parts = root_map(doc, "site", "parts")?;
    Ok(match doc.get(&parts, part)? {
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Counter(c) => i64::from(c),
            ScalarValue::Int(n) => *n,
            ScalarValue::Uint(n) => *n as i64,
            _ => 0,
        },
        _ => 0,
    })
}

/// Checks that a document is a site document this build can read.
pub fn check_site_document<D: autosurgeon::ReadDoc + AmReadDoc>(doc: &D) -> Result<()> {
    let v = crate::schema::read_schema_version(doc).map_err(read_err("schemaVersion"))?;
    match v {
        Some(found) if found > SCHEMA_VERSION => Err(SchemaError::NewerVersion { found }.into()),
        Some(_) => {
            site_id(doc)?;
            Ok(())
        }
        None => Err(DomainError::NotADocument {
            kind: "site",
            reason: "no schemaVersion".into(),
        }),
    }
}
