//! Parts counters.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ReadDoc as AmReadDoc, ScalarValue, Value};

use crate::schema::Millis;

use super::{DomainError, Result, commit_write, key_like, root_map};

/// Adds `change` (negative to take parts out) to the count of a part, as an automerge
/// counter increment, so that concurrent adjustments on several devices add up. A
/// change that would take the count below zero here is refused; concurrent withdrawals
/// on other devices can still take the merged count below zero, which
/// [`crate::conflicts`] does not hide. Returns the new local count.
pub fn adjust_part(
    doc: &mut AutoCommit,
    part: &str,
    change: i64,
    by: &str,
    now: Millis,
) -> Result<i64> {
    let part = key_like("part number", part)?;
    let parts = root_map(doc, "site", "parts")?;
    let on_hand = match doc.get(&parts, part.as_str())? {
        None => None,
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Counter(c) => Some(i64::from(c)),
            other => {
                return Err(DomainError::NotADocument {
                    kind: "site",
                    reason: format!("parts.{part} is {other:?}, not a counter"),
                });
            }
        },
        Some((v, _)) => {
            return Err(DomainError::NotADocument {
                kind: "site",
                reason: format!("parts.{part} is {v:?}, not a counter"),
            });
        }
    };
    let current = on_hand.unwrap_or(0);
    let Some(after) = current.checked_add(change) else {
        return Err(DomainError::PartsOverflow {
            part,
            on_hand: current,
            change,
        });
    };
    if after < 0 {
        return Err(DomainError::PartsBelowZero {
            part,
            on_hand: current,
            change,
        });
    }
    if change == 0 {
        return Ok(current);
    }
    commit_write(doc, format!("{by}: part {part} {change:+}"), now, |doc| {
        match on_hand {
            Some(_) => doc.increment(&parts, part.as_str(), change)?,
            None => doc.put(&parts, part.as_str(), ScalarValue::counter(change))?,
        }
        Ok(())
    })?;
    Ok(after)
}
