//! The network document, written by head office: the site tree, the model catalogue
//! and discount limits.

use automerge::AutoCommit;
use automerge::transaction::Transactable;

use crate::schema::{Fen, Millis, SiteHeader, VehicleModel};

use super::{
    DomainError, Result, commit_write, key_like, map_at, non_empty, not_negative, root_map,
    validate_header,
};

/// Adds a site to the network's site tree, or updates it. Its parent must already be in
/// the tree, which keeps the tree rooted at head office.
pub fn put_site(
    net_doc: &mut AutoCommit,
    header: &SiteHeader,
    by: &str,
    now: Millis,
) -> Result<()> {
    validate_header(header)?;
    let sites = root_map(net_doc, "network", "sites")?;
    if let Some(parent) = &header.parent
        && map_at(net_doc, &sites, parent)?.is_none()
    {
        return Err(DomainError::UnknownSite { id: parent.clone() });
    }
    commit_write(
        net_doc,
        format!("{by}: put site {}", header.id),
        now,
        |doc| {
            autosurgeon::reconcile_prop(doc, &sites, header.id.as_str(), header)?;
            Ok(())
        },
    )
}

/// Adds a model to the catalogue, or updates it.
pub fn put_model(
    net_doc: &mut AutoCommit,
    model: &VehicleModel,
    by: &str,
    now: Millis,
) -> Result<()> {
    key_like("model code", &model.code)?;
    non_empty(format!("model {} name", model.code), &model.name)?;
    not_negative(format!("model {} cost", model.code), model.cost)?;
    not_negative(format!("model {} listPrice", model.code), model.list_price)?;
    let models = root_map(net_doc, "network", "models")?;
    commit_write(
        net_doc,
        format!("{by}: put model {}", model.code),
        now,
        |doc| {
            autosurgeon::reconcile_prop(doc, &models, model.code.as_str(), model)?;
            Ok(())
        },
    )
}

/// The roles a discount limit can be set for (those of the access tokens).
pub const DISCOUNT_ROLES: [&str; 4] = ["consultant", "manager", "head_office", "admin"];

/// Sets the largest discount per vehicle that `role` may grant without approval.
pub fn set_discount_limit(
    net_doc: &mut AutoCommit,
    role: &str,
    limit: Fen,
    by: &str,
    now: Millis,
) -> Result<()> {
    if !DISCOUNT_ROLES.contains(&role) {
        return Err(DomainError::Invalid {
            field: "discount limit role".into(),
            reason: format!("{role:?} is not one of {}", DISCOUNT_ROLES.join(", ")),
        });
    }
    not_negative(format!("discount limit of {role}"), limit)?;
    let limits = root_map(net_doc, "network", "discountLimits")?;
    commit_write(
        net_doc,
        format!("{by}: discount limit of {role} = {limit}"),
        now,
        |doc| {
            doc.put(&limits, role, limit)?;
            Ok(())
        },
    )
}
