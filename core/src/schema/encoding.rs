//! How values are read and written where a JavaScript client writes them differently
//! from autosurgeon's defaults: the `with = "..."` modules of the document types.

use autosurgeon::{HydrateError, Prop, ReadDoc, Reconcile, Reconciler};

/// The value at `prop` of `obj`, whether `prop` is a map key or a list index.
fn value_at<'a, D: ReadDoc>(
    doc: &'a D,
    obj: &automerge::ObjId,
    prop: &Prop<'_>,
) -> Result<Option<(automerge::Value<'a>, automerge::ObjId)>, automerge::AutomergeError> {
    match prop {
        Prop::Key(k) => doc.get(obj, k.as_ref()),
        Prop::Index(i) => doc.get(obj, *i as usize),
    }
}

/// Hydrates a string from either a scalar string or a text object, since a JavaScript
/// client on Automerge 3 writes text unless told otherwise.
pub mod scalar_str {
    use super::*;

    /// Reads a scalar string or the contents of a text object.
    pub fn hydrate<D: ReadDoc>(
        doc: &D,
        obj: &automerge::ObjId,
        prop: Prop<'_>,
    ) -> Result<String, HydrateError> {
        match hydrate_opt(doc, obj, prop)? {
            Some(s) => Ok(s),
            None => Err(HydrateError::unexpected("a string", "nothing".to_string())),
        }
    }

    pub(crate) fn hydrate_opt<D: ReadDoc>(
        doc: &D,
        obj: &automerge::ObjId,
        prop: Prop<'_>,
    ) -> Result<Option<String>, HydrateError> {
        use automerge::{ObjType, ScalarValue, Value};
        let got = value_at(doc, obj, &prop)?;
        match got {
            None => Ok(None),
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Str(s) => Ok(Some(s.to_string())),
                ScalarValue::Null => Ok(None),
                other => Err(HydrateError::unexpected("a string", format!("{other:?}"))),
            },
            Some((Value::Object(ObjType::Text), id)) => Ok(Some(doc.text(&id)?)),
            Some((Value::Object(t), _)) => Err(HydrateError::unexpected(
                "a string",
                format!("a {t:?} object"),
            )),
        }
    }

    /// Writes a scalar string.
    pub fn reconcile<R: Reconciler>(s: &String, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.str(s)
    }
}

/// Like [`scalar_str`] for optional strings; absent and `null` both read as `None`.
pub mod opt_scalar_str {
    use super::*;

    /// Reads an optional scalar string or text object.
    pub fn hydrate<D: ReadDoc>(
        doc: &D,
        obj: &automerge::ObjId,
        prop: Prop<'_>,
    ) -> Result<Option<String>, HydrateError> {
        scalar_str::hydrate_opt(doc, obj, prop)
    }

    /// Writes a scalar string, or `null` for `None`.
    pub fn reconcile<R: Reconciler>(s: &Option<String>, mut reconciler: R) -> Result<(), R::Error> {
        match s {
            Some(s) => reconciler.str(s),
            None => reconciler.none(),
        }
    }
}

/// A list of strings, each element a scalar string or a text object (a JS client that
/// pushes plain strings onto a list writes text elements).
pub mod scalar_str_list {
    use super::*;

    /// Reads a list whose elements are scalar strings or text objects.
    pub fn hydrate<D: ReadDoc>(
        doc: &D,
        obj: &automerge::ObjId,
        prop: Prop<'_>,
    ) -> Result<Vec<String>, HydrateError> {
        use automerge::{ObjType, Value};
        let got = value_at(doc, obj, &prop)?;
        match got {
            Some((Value::Object(ObjType::List), list)) => (0..doc.length(&list))
                .map(|i| scalar_str::hydrate(doc, &list, Prop::Index(i as u32)))
                .collect(),
            Some((v, _)) => Err(HydrateError::unexpected(
                "a list of strings",
                format!("{v:?}"),
            )),
            None => Err(HydrateError::unexpected(
                "a list of strings",
                "nothing".to_string(),
            )),
        }
    }

    /// Writes a list of scalar strings.
    pub fn reconcile<R: Reconciler>(list: &[String], reconciler: R) -> Result<(), R::Error> {
        list.reconcile(reconciler)
    }
}

/// `schemaVersion`: written as an unsigned integer; read from an unsigned or a
/// non-negative signed one, since a JavaScript client's `schemaVersion: 1` is stored as
/// a signed integer.
pub mod schema_version {
    use super::*;

    /// Reads the version from a `uint` or a non-negative `int`.
    pub fn hydrate<D: ReadDoc>(
        doc: &D,
        obj: &automerge::ObjId,
        prop: Prop<'_>,
    ) -> Result<u64, HydrateError> {
        hydrate_opt(doc, obj, prop)?.ok_or_else(|| {
            HydrateError::unexpected("a schemaVersion integer", "nothing".to_string())
        })
    }

    pub(crate) fn hydrate_opt<D: ReadDoc>(
        doc: &D,
        obj: &automerge::ObjId,
        prop: Prop<'_>,
    ) -> Result<Option<u64>, HydrateError> {
        use automerge::{ScalarValue, Value};
        let got = value_at(doc, obj, &prop)?;
        match got {
            None => Ok(None),
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Uint(n) => Ok(Some(*n)),
                ScalarValue::Int(n) if *n >= 0 => Ok(Some(*n as u64)),
                // cbor-x and JS numbers may arrive as whole floats.
                ScalarValue::F64(f) if *f >= 0.0 && f.fract() == 0.0 && *f < 1e15 => {
                    Ok(Some(*f as u64))
                }
                other => Err(HydrateError::unexpected(
                    "a non-negative integer schemaVersion",
                    format!("{other:?}"),
                )),
            },
            Some((v, _)) => Err(HydrateError::unexpected(
                "a non-negative integer schemaVersion",
                format!("{v:?}"),
            )),
        }
    }

    /// Writes the version as an unsigned integer.
    pub fn reconcile<R: Reconciler>(v: &u64, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.u64(*v)
    }
}
