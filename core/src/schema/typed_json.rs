//! A document as JSON that keeps the value types the schema cares about, so that two
//! writers (core in Rust, the field app in JavaScript) can be compared value for value:
//! the conformance vectors (`core/vectors/`) hold documents in this form.

use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use serde_json::{Value as Json, json};

/// The whole document: a scalar string is a JSON string, collaborative text
/// `{"$text": ..}`, an integer (signed or not) a number, a float `{"$f64": ..}`, a
/// counter `{"$counter": ..}`, a timestamp `{"$timestamp": ..}`. Two documents with the
/// same typed JSON hold the same visible values with the same types, whoever wrote them
/// (concurrent values automerge hides are not shown).
pub fn typed_json<D: ReadDoc>(doc: &D) -> Json {
    object(doc, &ROOT, ObjType::Map)
}

fn object<D: ReadDoc>(doc: &D, obj: &ObjId, kind: ObjType) -> Json {
    match kind {
        ObjType::Map | ObjType::Table => {
            let mut m = serde_json::Map::new();
            for key in doc.keys(obj) {
                if let Ok(Some((v, id))) = doc.get(obj, key.as_str()) {
                    m.insert(key, value(doc, v, id));
                }
            }
            Json::Object(m)
        }
        ObjType::List => Json::Array(
            (0..doc.length(obj))
                .filter_map(|i| doc.get(obj, i).ok().flatten())
                .map(|(v, id)| value(doc, v, id))
                .collect(),
        ),
        ObjType::Text => json!({"$text": doc.text(obj).unwrap_or_default()}),
    }
}

fn value<D: ReadDoc>(doc: &D, v: Value<'_>, id: ObjId) -> Json {
    match v {
        Value::Object(t) => object(doc, &id, t),
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => json!(s.as_str()),
            ScalarValue::Int(n) => json!(n),
            ScalarValue::Uint(n) => json!(n),
            ScalarValue::F64(f) => json!({"$f64": f}),
            ScalarValue::Counter(c) => json!({"$counter": i64::from(c)}),
            ScalarValue::Timestamp(t) => json!({"$timestamp": t}),
            ScalarValue::Boolean(b) => json!(b),
            ScalarValue::Null => Json::Null,
            other => json!({"$other": other.to_string()}),
        },
    }
}
