//! Reading a decoded CBOR map's fields: strict about types, bounded in length, lenient
//! about what real clients send (see the module docs of `wire`).

use super::*;

/// A message's fields, with null/undefined already dropped.
pub(super) struct Fields(pub(super) BTreeMap<String, Value>);

impl Fields {
    pub(super) fn get(&self, field: &'static str) -> Option<&Value> {
        self.0.get(field)
    }

    pub(super) fn opt_text(&self, field: &'static str) -> Result<Option<String>, WireError> {
        let max = if field == "message" {
            MAX_MESSAGE_BYTES
        } else {
            MAX_ID_BYTES
        };
        match self.get(field) {
            None => Ok(None),
            Some(Value::Text(s)) if s.len() > max => Err(WireError::TooLong { field, max }),
            Some(Value::Text(s)) => Ok(Some(s.clone())),
            Some(_) => Err(WireError::WrongType {
                field,
                expected: "a text string",
            }),
        }
    }

    pub(super) fn req_text(&self, field: &'static str) -> Result<String, WireError> {
        self.opt_text(field)?.ok_or(WireError::MissingField(field))
    }

    pub(super) fn peer(&self, field: &'static str) -> Result<PeerId, WireError> {
        self.req_text(field).map(PeerId)
    }

    pub(super) fn req_bytes(&self, field: &'static str) -> Result<Vec<u8>, WireError> {
        match self.get(field) {
            None => Err(WireError::MissingField(field)),
            Some(v) => as_bytes(v).map(<[u8]>::to_vec).ok_or(WireError::WrongType {
                field,
                expected: "a byte string",
            }),
        }
    }

    pub(super) fn req_uint(&self, field: &'static str) -> Result<u64, WireError> {
        match self.get(field) {
            None => Err(WireError::MissingField(field)),
            Some(v) => as_uint(v).ok_or(WireError::WrongType {
                field,
                expected: "a non-negative whole number",
            }),
        }
    }

    pub(super) fn opt_text_list(
        &self,
        field: &'static str,
    ) -> Result<Option<Vec<String>>, WireError> {
        let wrong = WireError::WrongType {
            field,
            expected: "an array of text strings",
        };
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    Value::Text(s) if s.len() > MAX_ID_BYTES => Err(WireError::TooLong {
                        field,
                        max: MAX_ID_BYTES,
                    }),
                    Value::Text(s) => Ok(s.clone()),
                    _ => Err(wrong.clone()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(wrong),
        }
    }

    pub(super) fn document_id(&self) -> Result<DocumentId, WireError> {
        match self.get("documentId") {
            None => Err(WireError::MissingField("documentId")),
            Some(Value::Text(s)) if s.len() > MAX_DOCUMENT_ID_CHARS => Err(WireError::TooLong {
                field: "documentId",
                max: MAX_DOCUMENT_ID_CHARS,
            }),
            Some(Value::Text(s)) => s
                .parse()
                .map_err(|_| WireError::BadDocumentId(s.chars().take(80).collect())),
            Some(v) => match as_bytes(v) {
                Some(b) => <[u8; 16]>::try_from(b)
                    .map(DocumentId::from_bytes)
                    .map_err(|_| WireError::BadDocumentId(format!("{} raw bytes", b.len()))),
                None => Err(WireError::WrongType {
                    field: "documentId",
                    expected: "a bs58check text string",
                }),
            },
        }
    }

    pub(super) fn metadata(&self) -> Result<Option<PeerMetadata>, WireError> {
        let Some(v) = self.get("peerMetadata").or_else(|| self.get("metadata")) else {
            return Ok(None);
        };
        let wrong = |field, expected| WireError::WrongType { field, expected };
        let Value::Map(entries) = v else {
            return Err(wrong("peerMetadata", "a map"));
        };
        let mut md = PeerMetadata::default();
        for (k, v) in entries {
            match (k.as_text(), v) {
                (Some("storageId"), Value::Null) => {}
                (Some("storageId"), Value::Text(s)) if s.len() > MAX_ID_BYTES => {
                    return Err(WireError::TooLong {
                        field: "storageId",
                        max: MAX_ID_BYTES,
                    });
                }
                (Some("storageId"), Value::Text(s)) => md.storage_id = Some(StorageId(s.clone())),
                (Some("storageId"), _) => return Err(wrong("storageId", "a text string")),
                (Some("isEphemeral"), Value::Null) => {}
                (Some("isEphemeral"), Value::Bool(b)) => md.is_ephemeral = *b,
                (Some("isEphemeral"), _) => return Err(wrong("isEphemeral", "a boolean")),
                _ => {}
            }
        }
        Ok(Some(md))
    }

    pub(super) fn new_heads(&self) -> Result<BTreeMap<StorageId, RemoteHeads>, WireError> {
        let wrong = |expected| WireError::WrongType {
            field: "newHeads",
            expected,
        };
        let Some(v) = self.get("newHeads") else {
            return Err(WireError::MissingField("newHeads"));
        };
        let Value::Map(entries) = v else {
            return Err(wrong("a map from storage id to heads"));
        };
        let mut out = BTreeMap::new();
        for (k, v) in entries {
            let (Some(sid), Value::Map(inner)) = (k.as_text(), v) else {
                return Err(wrong("a map from storage id to {heads, timestamp}"));
            };
            if sid.len() > MAX_ID_BYTES {
                return Err(WireError::TooLong {
                    field: "newHeads",
                    max: MAX_ID_BYTES,
                });
            }
            let mut heads = Vec::new();
            let mut timestamp = 0;
            for (ik, iv) in inner {
                match (ik.as_text(), iv) {
                    (Some("heads"), Value::Array(hs)) => {
                        for h in hs {
                            heads.push(
                                h.as_text()
                                    .ok_or(wrong("heads as text strings"))?
                                    .to_string(),
                            );
                        }
                    }
                    (Some("timestamp"), t) => {
                        timestamp = as_uint(t).ok_or(wrong("a whole-number timestamp"))?
                    }
                    _ => {}
                }
            }
            out.insert(StorageId(sid.to_string()), RemoteHeads { heads, timestamp });
        }
        Ok(out)
    }
}

/// A byte string, possibly inside the typed-array tag 64 that cbor-x may add.
fn as_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::Bytes(b) => Some(b),
        Value::Tag(64, inner) => match inner.as_ref() {
            Value::Bytes(b) => Some(b),
            _ => None,
        },
        _ => None,
    }
}

/// An unsigned integer, or a float64 holding one exactly (cbor-x sends those).
fn as_uint(v: &Value) -> Option<u64> {
    match v {
        Value::Integer(i) => u64::try_from(*i).ok(),
        Value::Float(f) if f.is_finite() && *f >= 0.0 && f.fract() == 0.0 => {
            (*f <= MAX_SAFE_INTEGER).then_some(*f as u64)
        }
        _ => None,
    }
}
