//! Settling a conflict: the options a conflict offers, and the one decision of which
//! resolving operation (`resolve.rs`) a chosen option applies to which site document.
//! The field CLI (`conflicts resolve --keep`) and the relay's
//! `POST /api/conflicts/{id}/resolve` both go through [`Resolution::of`], so a choice
//! means the same thing wherever it is made.

use std::collections::BTreeSet;

use automerge::AutoCommit;
use serde::Serialize;

use super::{Conflict, ConflictKind, resolve};
use crate::domain::DomainError;
use crate::schema::{Millis, NetworkDocument};

/// What a person picks to settle a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChoiceKind {
    /// One of the competing customers (a vehicle booked twice, a customer entered twice).
    Customer,
    /// The site that keeps a vehicle held at two sites.
    Site,
    /// A forecast quantity: the options are the competing figures, any whole number
    /// from 0 is accepted.
    Quantity,
    /// The count of a part on the shelf: the options are the competing counts and
    /// their sum, any whole number from 0 is accepted.
    Count,
    /// Head office's verdict on a transfer request (`approved` or `refused`), settled
    /// in the network document with [`super::resolve_transfer_decision`].
    Verdict,
}

/// One option a conflict offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolutionOption {
    /// What to choose (`--keep` in the CLI, `keep` in the API): a customer id, a site
    /// id, or a number.
    pub value: String,
    /// The option in a sentence (English; the console words it in Chinese or English
    /// from the other fields).
    pub label: String,
    /// The site whose document the value is in (a vehicle, customer or cell).
    pub site: Option<String>,
    /// A double booking: `sold` when some device sold the vehicle to this customer,
    /// else `reserved`.
    pub status: Option<&'static str>,
    /// The latest time (UTC ms) a competing value for this option was written.
    pub at: Option<Millis>,
}

/// The options of one conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolutionChoices {
    /// What the options are.
    pub choose: ChoiceKind,
    /// The options, in the conflict's order of values. For a quantity or count they
    /// are suggestions.
    pub options: Vec<ResolutionOption>,
}

/// The first record of `c` of the kind `prefix` (`vehicle`, `part`, `forecast`).
fn record<'a>(c: &'a Conflict, prefix: &str) -> Result<&'a str, DomainError> {
    c.records
        .iter()
        .find_map(|r| r.strip_prefix(prefix)?.strip_prefix(' '))
        .ok_or_else(|| malformed(c, &format!("it names no {prefix}")))
}

fn malformed(c: &Conflict, why: &str) -> DomainError {
    DomainError::Invalid {
        field: format!("conflict {}", c.id),
        reason: why.to_string(),
    }
}

/// The customers a conflict names, in record order.
fn customers(c: &Conflict) -> Vec<&str> {
    c.records
        .iter()
        .filter_map(|r| r.strip_prefix("customer "))
        .collect()
}

/// The distinct sites of a conflict's values, sorted.
fn sites(c: &Conflict) -> Vec<&str> {
    let s: BTreeSet<&str> = c.values.iter().map(|v| v.site.as_str()).collect();
    s.into_iter().collect()
}

/// The site of a conflict inside one document (every kind but stock at two sites).
fn only_site(c: &Conflict) -> Result<&str, DomainError> {
    c.values
        .first()
        .map(|v| v.site.as_str())
        .ok_or_else(|| malformed(c, "it lists no values"))
}

/// The latest write time among the values of `c` that match.
fn latest(c: &Conflict, keep: impl Fn(&super::CompetingValue) -> bool) -> Option<Millis> {
    c.values
        .iter()
        .filter(|v| keep(v))
        .filter_map(|v| v.at)
        .max()
}

impl Conflict {
    /// What this conflict asks a person to choose, with the options.
    pub fn choices(&self) -> ResolutionChoices {
        let c = self;
        let option = |value: String, label: String, site: Option<&str>| ResolutionOption {
            value,
            label,
            site: site.map(str::to_string),
            status: None,
            at: None,
        };
        match c.kind {
            ConflictKind::DoubleBooking => {
                let vin = record(c, "vehicle").unwrap_or_default();
                let site = c.values.first().map(|v| v.site.as_str());
                let options = customers(c)
                    .into_iter()
                    .map(|cu| {
                        let sold = c
                            .values
                            .iter()
                            .any(|v| v.field == "soldTo" && v.value == cu);
                        let status = if sold { "sold" } else { "reserved" };
                        ResolutionOption {
                            status: Some(status),
                            at: latest(c, |v| v.value == cu),
                            ..option(
                                cu.to_string(),
                                format!("vehicle {vin} goes to customer {cu} ({status})"),
                                site,
                            )
                        }
                    })
                    .collect();
                ResolutionChoices {
                    choose: ChoiceKind::Customer,
                    options,
                }
            }
            ConflictKind::StockAtTwoSites => {
                let vin = record(c, "vehicle").unwrap_or_default();
                let all = sites(c);
                let options = all
                    .iter()
                    .map(|s| {
                        let others: Vec<&str> = all.iter().copied().filter(|o| o != s).collect();
                        ResolutionOption {
                            at: latest(c, |v| v.site == *s),
                            ..option(
                                s.to_string(),
                                format!(
                                    "vehicle {vin} stays at {s}; {} record it as transferred to {s}",
                                    others.join(", ")
                                ),
                                Some(s),
                            )
                        }
                    })
                    .collect();
                ResolutionChoices {
                    choose: ChoiceKind::Site,
                    options,
                }
            }
            ConflictKind::DuplicateCustomer => {
                let all = customers(c);
                let site = c.values.first().map(|v| v.site.as_str());
                let options = all
                    .iter()
                    .map(|cu| {
                        let others: Vec<&str> = all.iter().copied().filter(|o| o != cu).collect();
                        ResolutionOption {
                            at: latest(c, |v| v.record == format!("customer {cu}")),
                            ..option(
                                cu.to_string(),
                                format!("keep customer {cu}; {} merged into it", others.join(", ")),
                                site,
                            )
                        }
                    })
                    .collect();
                ResolutionChoices {
                    choose: ChoiceKind::Customer,
                    options,
                }
            }
            ConflictKind::ForecastEdit | ConflictKind::ForecastAdjustment => {
                let cell = record(c, "forecast").unwrap_or_default();
                let mut seen = BTreeSet::new();
                let options = c
                    .values
                    .iter()
                    .filter(|v| v.value.parse::<i64>().is_ok() && seen.insert(v.value.clone()))
                    .map(|v| ResolutionOption {
                        at: latest(c, |w| w.value == v.value),
                        ..option(
                            v.value.clone(),
                            format!("forecast {cell} is {}", v.value),
                            Some(&v.site),
                        )
                    })
                    .collect();
                ResolutionChoices {
                    choose: ChoiceKind::Quantity,
                    options,
                }
            }
            ConflictKind::PartCountCollision => {
                let part = record(c, "part").unwrap_or_default();
                let site = c.values.first().map(|v| v.site.as_str());
                let counts: Vec<i64> = c
                    .values
                    .iter()
                    .filter_map(|v| v.value.parse().ok())
                    .collect();
                let mut values: Vec<i64> = Vec::new();
                for n in counts.iter().copied().chain([counts.iter().sum()]) {
                    if !values.contains(&n) {
                        values.push(n);
                    }
                }
                let options = values
                    .into_iter()
                    .map(|n| option(n.to_string(), format!("part {part}: {n} on hand"), site))
                    .collect();
                ResolutionChoices {
                    choose: ChoiceKind::Count,
                    options,
                }
            }
            ConflictKind::TransferDecision => {
                let id = record(c, "transfer").unwrap_or_default();
                let mut seen = BTreeSet::new();
                let options = c
                    .values
                    .iter()
                    .filter(|v| seen.insert(v.value.clone()))
                    .map(|v| ResolutionOption {
                        at: latest(c, |w| w.value == v.value),
                        ..option(v.value.clone(), format!("transfer {id} {}", v.value), None)
                    })
                    .collect();
                ResolutionChoices {
                    choose: ChoiceKind::Verdict,
                    options,
                }
            }
        }
    }
}

/// Matches `keep` against `choices`, exactly or as a unique prefix.
fn choose<'a>(
    c: &Conflict,
    keep: &str,
    choices: &[&'a str],
    what: &str,
) -> Result<&'a str, DomainError> {
    if let Some(hit) = choices.iter().find(|x| **x == keep) {
        return Ok(hit);
    }
    let hits: Vec<&&str> = choices.iter().filter(|x| x.starts_with(keep)).collect();
    match hits.as_slice() {
        [one] if !keep.is_empty() => Ok(one),
        _ => Err(DomainError::Invalid {
            field: format!("resolution of {}", c.id),
            reason: format!("{keep:?} is not one of the {what}: {}", choices.join(", ")),
        }),
    }
}

/// A whole number from 0, for the kinds settled with a figure.
fn figure(c: &Conflict, keep: &str, what: &str) -> Result<i64, DomainError> {
    match keep.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(DomainError::Invalid {
            field: format!("resolution of {}", c.id),
            reason: format!("give the {what} as a whole number from 0, e.g. 12; got {keep:?}"),
        }),
    }
}

/// The resolving operation one site document receives.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Operation {
    Booking {
        vin: String,
        customer: String,
    },
    GiveUpStock {
        vin: String,
        kept_at: String,
    },
    MergeCustomers {
        keep: String,
        duplicates: Vec<String>,
    },
    Forecast {
        month: String,
        model: String,
        quantity: i64,
    },
    ForecastAdjustment {
        month: String,
        model: String,
        quantity: i64,
    },
    PartCount {
        part: String,
        count: i64,
    },
}

/// One site document's part of a resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteEdit {
    /// The site whose document this edit writes.
    pub site: String,
    operation: Operation,
}

impl SiteEdit {
    /// Whether [`SiteEdit::apply`] needs the network document (a forecast checks the
    /// model against the catalogue).
    pub fn needs_network(&self) -> bool {
        matches!(self.operation, Operation::Forecast { .. })
    }

    /// Applies the resolving operation to the site's document, written by `by` at
    /// `now`. A refused operation leaves the document unchanged.
    pub fn apply(
        &self,
        doc: &mut AutoCommit,
        network: Option<&NetworkDocument>,
        by: &str,
        now: Millis,
    ) -> Result<(), DomainError> {
        match &self.operation {
            Operation::Booking { vin, customer } => {
                resolve::resolve_double_booking(doc, vin, customer, by, now)
            }
            Operation::GiveUpStock { vin, kept_at } => {
                resolve::resolve_stock_elsewhere(doc, vin, kept_at, by, now)
            }
            Operation::MergeCustomers { keep, duplicates } => {
                for dup in duplicates {
                    resolve::resolve_duplicate_customer(doc, dup, keep, by, now)?;
                }
                Ok(())
            }
            Operation::Forecast {
                month,
                model,
                quantity,
            } => {
                let net = network.ok_or_else(|| DomainError::Invalid {
                    field: format!("forecast {month}/{model}"),
                    reason: "the network document (the catalogue) is needed to set a forecast"
                        .into(),
                })?;
                resolve::resolve_forecast(doc, net, month, model, *quantity, by, now)
            }
            Operation::ForecastAdjustment {
                month,
                model,
                quantity,
            } => resolve::resolve_forecast_adjustment(doc, month, model, *quantity, by, now),
            Operation::PartCount { part, count } => {
                resolve::resolve_part_count(doc, part, *count, by, now)
            }
        }
    }
}

/// What settling one conflict with one choice writes: the edits of each site document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The conflict's id.
    pub conflict: String,
    /// The option chosen, as matched (a unique prefix becomes the whole id).
    pub chosen: String,
    /// The site documents to edit, in site order; every one must be written for the
    /// conflict to clear (check the caller may write them all before applying any).
    pub edits: Vec<SiteEdit>,
}

impl Resolution {
    /// Decides what settling `conflict` with `keep` writes: `keep` is one of
    /// [`Conflict::choices`]'s values (a customer or site id, exactly or as a unique
    /// prefix) or, for a forecast or a part count, a whole number from 0. Refused with
    /// the options listed when `keep` is not one of them.
    pub fn of(conflict: &Conflict, keep: &str) -> Result<Resolution, DomainError> {
        let c = conflict;
        let keep = keep.trim();
        let one = |site: &str, operation: Operation| SiteEdit {
            site: site.to_string(),
            operation,
        };
        let (chosen, edits) = match c.kind {
            ConflictKind::DoubleBooking => {
                let vin = record(c, "vehicle")?.to_string();
                let customer = choose(c, keep, &customers(c), "competing customers")?.to_string();
                let edit = one(
                    only_site(c)?,
                    Operation::Booking {
                        vin,
                        customer: customer.clone(),
                    },
                );
                (customer, vec![edit])
            }
            ConflictKind::StockAtTwoSites => {
                let vin = record(c, "vehicle")?;
                let all = sites(c);
                let kept = choose(c, keep, &all, "sites holding the vehicle")?;
                let edits = all
                    .iter()
                    .filter(|s| **s != kept)
                    .map(|s| {
                        one(
                            s,
                            Operation::GiveUpStock {
                                vin: vin.to_string(),
                                kept_at: kept.to_string(),
                            },
                        )
                    })
                    .collect();
                (kept.to_string(), edits)
            }
            ConflictKind::DuplicateCustomer => {
                let all = customers(c);
                let kept = choose(c, keep, &all, "duplicate customers")?;
                let duplicates = all
                    .iter()
                    .filter(|x| **x != kept)
                    .map(|x| x.to_string())
                    .collect();
                let edit = one(
                    only_site(c)?,
                    Operation::MergeCustomers {
                        keep: kept.to_string(),
                        duplicates,
                    },
                );
                (kept.to_string(), vec![edit])
            }
            ConflictKind::ForecastEdit | ConflictKind::ForecastAdjustment => {
                let cell = record(c, "forecast")?;
                let (month, model) = cell
                    .split_once('/')
                    .ok_or_else(|| malformed(c, &format!("malformed forecast record {cell:?}")))?;
                let quantity = figure(c, keep, "quantity")?;
                let (month, model) = (month.to_string(), model.to_string());
                let operation = if c.kind == ConflictKind::ForecastEdit {
                    Operation::Forecast {
                        month,
                        model,
                        quantity,
                    }
                } else {
                    Operation::ForecastAdjustment {
                        month,
                        model,
                        quantity,
                    }
                };
                (quantity.to_string(), vec![one(only_site(c)?, operation)])
            }
            ConflictKind::TransferDecision => {
                // Not a site document's edit: head office settles it in the network
                // document (`resolve_transfer_decision`, the CLI's `conflicts resolve`).
                return Err(DomainError::Invalid {
                    field: format!("resolution of {}", c.id),
                    reason: "a transfer decision is settled in the network document by head office (resolve_transfer_decision)".into(),
                });
            }
            ConflictKind::PartCountCollision => {
                let part = record(c, "part")?.to_string();
                let count = figure(c, keep, "count on hand")?;
                let edit = one(only_site(c)?, Operation::PartCount { part, count });
                (count.to_string(), vec![edit])
            }
        };
        Ok(Resolution {
            conflict: c.id.clone(),
            chosen,
            edits,
        })
    }

    /// The sites whose documents this resolution writes.
    pub fn sites(&self) -> impl Iterator<Item = &str> {
        self.edits.iter().map(|e| e.site.as_str())
    }
}
