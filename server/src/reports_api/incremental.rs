//! Keeping a site document up to date change by change instead of reloading it: the
//! read model holds recently changed documents in automerge form ([`Resident`]),
//! applies only the stored chunks it has not applied yet, and from the patches those
//! chunks make ([`Touched`]) reads again only the customers, vehicles, ... that changed
//! ([`rehydrate`]). The result is the document [`SiteDocument::read`] would hydrate from
//! scratch (`server/tests/reports_incremental.rs` checks it after many edits); anything
//! the patches cannot place falls back to that full read.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use automerge::{Automerge, AutomergeError, ObjType, Patch, PatchAction, PatchLog, Prop, ROOT};
use automerge::{ReadDoc, Value};
use autosurgeon::{Hydrate, HydrateError};
use dealersync_core::protocol::DocumentId;
use dealersync_core::schema::SiteDocument;
use dealersync_core::store::StoredDocument;

/// A document held in automerge form, and the stored chunks already applied to it.
pub struct Resident {
    /// The document.
    pub doc: Automerge,
    /// Fingerprints of the stored chunks it contains (the document's chunks as last
    /// seen: after a compaction the new snapshot is applied once, a duplicate of
    /// changes automerge already has, and the old fingerprints go).
    applied: HashSet<u64>,
    /// When it was last used, in [`Residents`]' ticks.
    used: u64,
}

impl Resident {
    /// Loads the whole stored document.
    pub fn load(stored: &StoredDocument) -> Result<Resident, AutomergeError> {
        Ok(Resident {
            doc: stored.load()?,
            applied: stored.chunks.iter().map(|c| fingerprint(c)).collect(),
            used: 0,
        })
    }

    /// Applies the chunks of `stored` not applied yet and returns what they changed.
    /// Chunks are applied in the store's order, so their dependencies come first. An
    /// error leaves the document half updated: the caller drops it.
    pub fn catch_up(&mut self, stored: &StoredDocument) -> Result<Vec<Patch>, AutomergeError> {
        let mut log = PatchLog::active();
        let mut now = HashSet::with_capacity(stored.chunks.len());
        for chunk in &stored.chunks {
            let fp = fingerprint(chunk);
            if !self.applied.contains(&fp) {
                self.doc.load_incremental_log_patches(chunk, &mut log)?;
            }
            now.insert(fp);
        }
        self.applied = now;
        Ok(self.doc.make_patches(&mut log))
    }
}

/// A chunk's fingerprint: its length and a 64-bit hash of its bytes. A false match
/// would skip a chunk, so the hash covers every byte (fast next to automerge's work).
fn fingerprint(chunk: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    chunk.hash(&mut h);
    h.finish()
}

/// The documents held in automerge form, at most `limit`: the least recently changed
/// one goes first. A document that is not resident costs a full load on its next
/// change (and is resident from then on).
pub struct Residents {
    docs: HashMap<DocumentId, Resident>,
    limit: usize,
    tick: u64,
}

impl Residents {
    /// An empty set holding at most `limit` documents.
    pub fn new(limit: usize) -> Residents {
        Residents {
            docs: HashMap::new(),
            limit,
            tick: 0,
        }
    }

    /// How many documents are resident.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Changes the bound, evicting the least recently used documents beyond it.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
        self.evict();
    }

    /// Takes `doc` out, to update it and put it back.
    pub fn take(&mut self, doc: &DocumentId) -> Option<Resident> {
        self.docs.remove(doc)
    }

    /// Puts `resident` back as the most recently used.
    pub fn put(&mut self, doc: DocumentId, mut resident: Resident) {
        self.tick += 1;
        resident.used = self.tick;
        self.docs.insert(doc, resident);
        self.evict();
    }

    /// Forgets every document but those in `keep`.
    pub fn retain(&mut self, keep: &HashSet<DocumentId>) {
        self.docs.retain(|d, _| keep.contains(d));
    }

    fn evict(&mut self) {
        while self.docs.len() > self.limit {
            let Some(oldest) = self
                .docs
                .iter()
                .min_by_key(|(_, r)| r.used)
                .map(|(d, _)| *d)
            else {
                return;
            };
            self.docs.remove(&oldest);
        }
    }
}

/// Which parts of a site document a set of patches touched.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// Something no field-by-field update places (the root replaced, the schema
    /// version, a field this code does not know): read the whole document.
    pub everything: bool,
    /// Top-level fields to read whole (the field itself was set or deleted).
    pub fields: BTreeSet<String>,
    /// Top-level map field → keys of its entries to read again.
    pub entries: BTreeMap<String, BTreeSet<String>>,
}

impl Touched {
    /// What `patches` touched.
    pub fn of(patches: &[Patch]) -> Touched {
        let mut t = Touched::default();
        for p in patches {
            match p.path.as_slice() {
                // On the root: a top-level field set, deleted or conflicting.
                [] => match key_of(&p.action) {
                    Some(k) => {
                        t.fields.insert(k.to_string());
                    }
                    None => t.everything = true,
                },
                // On a top-level map: one of its entries.
                [(_, Prop::Map(field))] => match key_of(&p.action) {
                    Some(k) => {
                        t.entries
                            .entry(field.clone())
                            .or_default()
                            .insert(k.to_string());
                    }
                    None => {
                        t.fields.insert(field.clone());
                    }
                },
                // Inside an entry of a top-level map.
                [(_, Prop::Map(field)), (_, Prop::Map(key)), ..] => {
                    t.entries
                        .entry(field.clone())
                        .or_default()
                        .insert(key.clone());
                }
                [(_, Prop::Map(field)), ..] => {
                    t.fields.insert(field.clone());
                }
                _ => t.everything = true,
            }
        }
        t
    }

    /// Whether nothing was touched.
    pub fn is_empty(&self) -> bool {
        !self.everything && self.fields.is_empty() && self.entries.is_empty()
    }
}

/// The map key a patch on a map sets, deletes, increments or marks as conflicting.
fn key_of(action: &PatchAction) -> Option<&str> {
    match action {
        PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => Some(key),
        PatchAction::Increment {
            prop: Prop::Map(key),
            ..
        }
        | PatchAction::Conflict {
            prop: Prop::Map(key),
        } => Some(key),
        _ => None,
    }
}

/// Why a partial update gave up (the caller then reads the whole document).
#[derive(Debug, thiserror::Error)]
pub enum PartialError {
    /// The patches touched something only a full read places.
    #[error("the change is not placed field by field")]
    NotPlaced,
    /// A touched part did not hydrate.
    #[error(transparent)]
    Hydrate(#[from] HydrateError),
    /// automerge refused a read.
    #[error(transparent)]
    Automerge(#[from] AutomergeError),
}

/// Updates `doc` (the hydrated version of `am` before the patches) to what
/// [`SiteDocument::read`] of `am` gives, reading only what `touched` names.
pub fn rehydrate(
    doc: &mut SiteDocument,
    am: &Automerge,
    touched: &Touched,
) -> Result<(), PartialError> {
    if touched.everything {
        return Err(PartialError::NotPlaced);
    }
    let names: BTreeSet<&String> = touched
        .fields
        .iter()
        .chain(touched.entries.keys())
        .collect();
    for field in names {
        // The whole field when it was set itself, else the entries touched.
        let keys = match touched.fields.contains(field) {
            true => None,
            false => touched.entries.get(field),
        };
        match field.as_str() {
            "site" => doc.site = whole(am, field)?,
            "customers" => update(am, field, &mut doc.customers, keys)?,
            "vehicles" => update(am, field, &mut doc.vehicles, keys)?,
            "parts" => update(am, field, &mut doc.parts, keys)?,
            "forecasts" => update(am, field, &mut doc.forecasts, keys)?,
            "targets" => update(am, field, &mut doc.targets, keys)?,
            "walkIns" => update(am, field, &mut doc.walk_ins, keys)?,
            "transfers" => update(am, field, &mut doc.transfers, keys)?,
            "partsShipments" => update(am, field, &mut doc.parts_shipments, keys)?,
            "complaints" => update(am, field, &mut doc.complaints, keys)?,
            // The schema version (the full read checks it), or a field added to the
            // schema after this list: the full read knows what to do.
            _ => return Err(PartialError::NotPlaced),
        }
    }
    Ok(())
}

/// The top-level `field` hydrated whole. A field that is gone is left to the full
/// read, which knows which ones may be absent.
fn whole<T: Hydrate>(am: &Automerge, field: &str) -> Result<T, PartialError> {
    if am.get(ROOT, field)?.is_none() {
        return Err(PartialError::NotPlaced);
    }
    Ok(autosurgeon::hydrate_prop(am, ROOT, field)?)
}

/// Reads again the entries `keys` of the top-level map `field` into `map` (present
/// ones hydrated as the full read does, deleted ones removed), or the whole map when
/// `keys` is `None`.
fn update<T: Hydrate>(
    am: &Automerge,
    field: &str,
    map: &mut BTreeMap<String, T>,
    keys: Option<&BTreeSet<String>>,
) -> Result<(), PartialError> {
    let Some(keys) = keys else {
        *map = whole(am, field)?;
        return Ok(());
    };
    let obj = match am.get(ROOT, field)? {
        Some((Value::Object(ObjType::Map), obj)) => obj,
        // The field itself went or changed type: only the full read knows what to do.
        _ => return Err(PartialError::NotPlaced),
    };
    for key in keys {
        if am.get(&obj, key.as_str())?.is_some() {
            map.insert(
                key.clone(),
                autosurgeon::hydrate_prop(am, &obj, key.as_str())?,
            );
        } else {
            map.remove(key);
        }
    }
    Ok(())
}
