//! Walk-in batches (来店批次): people who come into the showroom or stop at a roadshow
//! stand and leave no phone number. They are visits all the same, and the visit
//! volume of the KPIs counts them; without a phone there is no customer record to
//! hang them on, so each batch is a record of its own.

use automerge::{AutoCommit, ROOT, ReadDoc as _};

use crate::schema::{Millis, NetworkDocument, WalkIn};

use super::{
    DomainError, Result, catalogue_model, commit_write, event_time, key_like, writable_map,
};

/// The largest party recorded as one batch: a bus of visitors at a roadshow is several.
pub const MAX_PARTY_SIZE: i64 = 50;

/// A walk-in batch as a consultant enters it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWalkIn {
    /// Stable id (the client generates a UUID).
    pub id: String,
    /// When they came.
    pub at: Millis,
    /// How many people came together (1 to [`MAX_PARTY_SIZE`]).
    pub party_size: i64,
    /// The model they looked at, from the catalogue.
    pub model_of_interest: Option<String>,
    /// Free text ("年轻夫妇，看 SUV").
    pub note: Option<String>,
}

/// Records a walk-in batch with no customer record: one visit in the KPIs, credited to
/// the consultant who received them (`by`).
pub fn record_walk_in(
    doc: &mut AutoCommit,
    net: &NetworkDocument,
    new: &NewWalkIn,
    by: &str,
    now: Millis,
) -> Result<WalkIn> {
    let by = key_like("walk-in by", by)?;
    let id = key_like("walk-in id", &new.id)?;
    if !(1..=MAX_PARTY_SIZE).contains(&new.party_size) {
        return Err(DomainError::Invalid {
            field: format!("walk-in {id} party size"),
            reason: format!("must be 1 to {MAX_PARTY_SIZE}, got {}", new.party_size),
        });
    }
    if let Some(m) = &new.model_of_interest {
        catalogue_model(net, m, || format!("walk-in {id} modelOfInterest"))?;
    }
    event_time(format!("walk-in {id} at"), new.at, now)?;
    let existing = super::map_at(doc, &ROOT, "walkIns")?;
    if let Some(map) = existing
        && doc.get(&map, id.as_str())?.is_some()
    {
        return Err(DomainError::Invalid {
            field: format!("walk-in {id}"),
            reason: "already recorded".into(),
        });
    }
    let record = WalkIn {
        id: id.clone(),
        at: new.at,
        by: by.clone(),
        party_size: new.party_size,
        model_of_interest: new.model_of_interest.clone(),
        note: new
            .note
            .as_ref()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty()),
    };
    commit_write(
        doc,
        format!("{by}: walk-in {id} ({} people)", new.party_size),
        now,
        |doc| {
            // Documents created before walk-ins existed have no map yet: it is created
            // here, and a map created concurrently on another device is folded in.
            let map = writable_map::<WalkIn>(doc, &ROOT, "walkIns")?;
            autosurgeon::reconcile_prop(doc, &map, id.as_str(), &record)?;
            Ok(())
        },
    )?;
    Ok(record)
}
