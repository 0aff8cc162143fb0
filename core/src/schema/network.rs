//! The network document: the site tree, the model catalogue, site targets and
//! discount limits, written by head office and read by every site.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, ReadDoc, Reconcile};
use serde::{Deserialize, Serialize};

use super::{
    Fen, SCHEMA_VERSION, SchemaError, SiteHeader, Target, check_version, scalar_str,
    scalar_str_list, schema_version,
};

/// A model in the network catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VehicleModel {
    /// Model code, e.g. `SDN-A`.
    #[autosurgeon(with = "scalar_str")]
    pub code: String,
    /// Display name.
    #[autosurgeon(with = "scalar_str")]
    pub name: String,
    /// Trim levels on offer.
    #[autosurgeon(with = "scalar_str_list")]
    pub trims: Vec<String>,
    /// Cost to the dealer, in fen.
    pub cost: Fen,
    /// List price, in fen.
    #[autosurgeon(rename = "listPrice")]
    pub list_price: Fen,
}

/// The network document: written by head office, read by every site.
#[derive(Debug, Clone, PartialEq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkDocument {
    /// Layout version, see [`SCHEMA_VERSION`].
    #[autosurgeon(rename = "schemaVersion", with = "schema_version")]
    pub schema_version: u64,
    /// The site tree, by site id (each header names its parent).
    pub sites: BTreeMap<String, SiteHeader>,
    /// The model catalogue, by model code.
    pub models: BTreeMap<String, VehicleModel>,
    /// Targets per site: site id → period key (see [`Period`]) → target.
    pub targets: BTreeMap<String, BTreeMap<String, Target>>,
    /// Largest discount per vehicle each role may grant without approval, in fen,
    /// by role name (`consultant`, `manager`, ...).
    #[autosurgeon(rename = "discountLimits")]
    pub discount_limits: BTreeMap<String, Fen>,
}

impl NetworkDocument {
    /// An empty network document.
    pub fn new() -> Self {
        NetworkDocument {
            schema_version: SCHEMA_VERSION,
            sites: BTreeMap::new(),
            models: BTreeMap::new(),
            targets: BTreeMap::new(),
            discount_limits: BTreeMap::new(),
        }
    }

    /// Reads the network document from automerge, checking its version.
    pub fn read<D: ReadDoc>(doc: &D) -> Result<Self, SchemaError> {
        check_version(doc)?;
        Ok(autosurgeon::hydrate(doc)?)
    }
}

impl Default for NetworkDocument {
    fn default() -> Self {
        Self::new()
    }
}
