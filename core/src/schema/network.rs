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

/// A sales contest (销售竞赛): teams of sites or consultants ranked by one metric over
/// one period. Defined by head office or by a manager for teams in their subtree.
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contest {
    /// Stable id (the map key).
    #[autosurgeon(with = "scalar_str")]
    pub id: String,
    /// Display name, e.g. `双十一冲刺`.
    #[autosurgeon(with = "scalar_str")]
    pub name: String,
    /// Period key (`2026-11`, `2026-W45`, `2026-Q4`).
    #[autosurgeon(with = "scalar_str")]
    pub period: String,
    /// What the teams are ranked by.
    pub metric: super::ContestMetric,
    /// Whether teams are made of sites or consultants.
    pub members: super::ContestMembers,
    /// The teams.
    pub teams: Vec<ContestTeam>,
    /// The site whose subtree the contest covers (the defining manager's site).
    #[autosurgeon(with = "scalar_str")]
    pub site: String,
    /// Who defined it (user id).
    #[autosurgeon(with = "scalar_str", rename = "createdBy")]
    pub created_by: String,
}

/// One team of a sales contest.
#[derive(Debug, Clone, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContestTeam {
    /// Team name.
    #[autosurgeon(with = "scalar_str")]
    pub name: String,
    /// Site ids or consultant user ids, by the contest's `members`.
    #[autosurgeon(with = "scalar_str_list")]
    pub members: Vec<String>,
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
    /// Day of the month (1 to 28, CST) by the end of which every site submits next
    /// month's forecast; `None` means [`DEFAULT_FORECAST_DEADLINE_DAY`]. Absent on
    /// documents written before the deadline was configurable.
    #[autosurgeon(rename = "forecastDeadlineDay", missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast_deadline_day: Option<i64>,
    /// Sales contests by id. Absent on documents written before contests existed.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contests: BTreeMap<String, Contest>,
}

/// The forecast deadline when the network document sets none: the 25th, which leaves
/// head office the last days of the month to place the order with the manufacturer.
pub const DEFAULT_FORECAST_DEADLINE_DAY: i64 = 25;

impl NetworkDocument {
    /// An empty network document.
    pub fn new() -> Self {
        NetworkDocument {
            schema_version: SCHEMA_VERSION,
            sites: BTreeMap::new(),
            models: BTreeMap::new(),
            targets: BTreeMap::new(),
            discount_limits: BTreeMap::new(),
            forecast_deadline_day: None,
            contests: BTreeMap::new(),
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
