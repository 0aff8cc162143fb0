//! Identifiers as automerge-repo spells them on the wire.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A document id: 16 random bytes (a v4 UUID), written as bs58check.
///
/// Clients also write it inside a URL, `automerge:<id>`; [`DocumentId::from_str`]
/// accepts both forms.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentId([u8; 16]);

/// A string that is not a document id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid document id {0:?}: expected bs58check of 16 bytes, optionally prefixed with automerge:"
)]
pub struct BadDocumentId(pub String);

impl DocumentId {
    /// A fresh random id.
    pub fn random() -> Self {
        DocumentId(*uuid::Uuid::new_v4().as_bytes())
    }

    /// The id from its 16 raw bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        DocumentId(bytes)
    }

    /// The 16 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The `automerge:<id>` URL form.
    pub fn url(&self) -> String {
        format!("automerge:{self}")
    }
}

impl FromStr for DocumentId {
    type Err = BadDocumentId;
    fn from_str(s: &str) -> Result<Self, BadDocumentId> {
        // bs58 decoding is quadratic in the length: refuse long input before it.
        if s.len() > super::limits::MAX_DOCUMENT_ID_CHARS {
            let head: String = s.chars().take(40).collect();
            return Err(BadDocumentId(format!("{head}… ({} bytes)", s.len())));
        }
        let bare = s.strip_prefix("automerge:").unwrap_or(s);
        // A URL may carry heads after a `#`; the id is what comes before.
        let bare = bare.split('#').next().unwrap_or(bare);
        let bytes = bs58::decode(bare)
            .with_check(None)
            .into_vec()
            .map_err(|_| BadDocumentId(s.to_string()))?;
        let arr: [u8; 16] = bytes.try_into().map_err(|_| BadDocumentId(s.to_string()))?;
        Ok(DocumentId(arr))
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).with_check().into_string())
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({self})")
    }
}

impl Serialize for DocumentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DocumentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A peer's id as it announces itself in `join` (any string the client chooses).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeerId(pub String);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for PeerId {
    fn from(s: &str) -> Self {
        PeerId(s.to_string())
    }
}

/// The id of a peer's durable storage, from its `peerMetadata`. Sync state is kept per
/// (document, storage id), so a device that reconnects resumes where it left off.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StorageId(pub String);

impl fmt::Display for StorageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_id_round_trips_and_accepts_urls() {
        let id = DocumentId::random();
        let s = id.to_string();
        assert_eq!(s.parse::<DocumentId>().unwrap(), id);
        assert_eq!(id.url().parse::<DocumentId>().unwrap(), id);
        assert!(s.len() >= 20, "{s}");
    }

    #[test]
    fn document_id_rejects_bad_checksums_and_lengths() {
        let s = DocumentId::random().to_string();
        let mut broken: Vec<char> = s.chars().collect();
        broken[3] = if broken[3] == '2' { '3' } else { '2' };
        let broken: String = broken.into_iter().collect();
        assert!(broken.parse::<DocumentId>().is_err());
        let short = bs58::encode([1u8; 8]).with_check().into_string();
        assert!(short.parse::<DocumentId>().is_err());
        assert!("not base58 0OIl".parse::<DocumentId>().is_err());
    }
}
