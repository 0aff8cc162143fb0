//! Reading helpers, lenient: a malformed record is skipped, never a panic.

use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value};

use crate::domain;
use crate::schema::Millis;

use super::ChangeLookup;

pub(super) fn map_of<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(obj, key).ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

pub(super) fn maps_of<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Vec<ObjId> {
    domain::maps_at(doc, obj, key).unwrap_or_default()
}

pub(super) fn keys_of<D: ReadDoc>(doc: &D, obj: &ObjId) -> Vec<String> {
    doc.keys(obj).collect()
}

/// A value as text: scalar strings, text objects, numbers; `None` for null/absent.
pub(super) fn text_of<D: ReadDoc>(doc: &D, v: &Value<'_>, id: &ObjId) -> Option<String> {
    match v {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            ScalarValue::Int(n) => Some(n.to_string()),
            ScalarValue::Uint(n) => Some(n.to_string()),
            ScalarValue::F64(n) => Some(n.to_string()),
            ScalarValue::Counter(c) => Some(i64::from(c).to_string()),
            _ => None,
        },
        Value::Object(ObjType::Text) => doc.text(id).ok(),
        Value::Object(_) => None,
    }
}

/// The visible value of `obj.key` as text.
pub(super) fn text_field<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Option<String> {
    let (v, id) = doc.get(obj, key).ok()??;
    text_of(doc, &v, &id)
}

pub(super) fn int_of(v: &Value<'_>) -> Option<i64> {
    match v {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Int(n) => Some(*n),
            ScalarValue::Uint(n) => i64::try_from(*n).ok(),
            // cbor-x and JS numbers may arrive as floats.
            ScalarValue::F64(f) if f.fract() == 0.0 => Some(*f as i64),
            _ => None,
        },
        _ => None,
    }
}

/// Every concurrent value of `obj.key` with the op that wrote it.
pub(super) fn all_texts<D: ReadDoc>(
    doc: &D,
    obj: &ObjId,
    key: &str,
) -> Vec<(Option<String>, ObjId)> {
    doc.get_all(obj, key)
        .unwrap_or_default()
        .into_iter()
        .map(|(v, id)| (text_of(doc, &v, &id), id))
        .collect()
}

pub(super) fn actor_of(op: &ObjId) -> Option<String> {
    match op {
        ObjId::Id(_, actor, _) => Some(actor.to_hex_string()),
        ObjId::Root => None,
    }
}

/// The time written in `obj.time_key` by the same change as `op` (domain operations
/// write `updatedAt`/`at` together with the value); else the one the same actor wrote.
pub(super) fn time_of<D: ChangeLookup>(
    doc: &D,
    obj: &ObjId,
    time_key: &str,
    op: &ObjId,
) -> Option<Millis> {
    let times: Vec<(Option<i64>, ObjId)> = doc
        .get_all(obj, time_key)
        .ok()?
        .into_iter()
        .map(|(v, id)| (int_of(&v), id))
        .collect();
    let change = doc.change_of(op);
    if change.is_some()
        && let Some(t) = times.iter().find(|(_, id)| doc.change_of(id) == change)
    {
        return t.0;
    }
    let actor = actor_of(op);
    times
        .iter()
        .rev()
        .find(|(_, id)| actor_of(id) == actor)
        .and_then(|t| t.0)
}
