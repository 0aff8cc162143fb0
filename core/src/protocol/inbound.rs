//! A received frame, decoded and checked once, before the engine sees it.
//!
//! Everything here needs only the frame's bytes, not the engine's state, so a relay
//! runs it on the connection's own task: a hostile or merely large frame costs its
//! sender's task, not the engine thread that every peer shares. The same decoded
//! message serves every reader (the transport's peer-id check, the engine), so no
//! two parsers can disagree about what a frame says.

use super::ids::DocumentId;
use super::limits::{MAX_EPHEMERAL_BYTES, SyncLimits};
use super::validate::{SyncRejected, ValidSync, validate_sync};
use super::wire::{Message, WireError};

/// A frame that decoded to a protocol message; `sync` and `request` carry their
/// validated sync message.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The message. For `sync` and `request`, its `data` is emptied: the decoded
    /// form is in `sync`.
    pub message: Message,
    /// The validated sync message of a `sync` or `request`.
    pub sync: Option<ValidSync>,
    /// The frame's size in bytes.
    pub frame_len: usize,
}

/// Why a frame was refused before the engine saw it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    /// Not a protocol message (or one of a type this implementation does not know).
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A `sync` or `request` whose `data` was refused.
    #[error("sync message for document {doc} refused: {rejected}")]
    Sync {
        /// The document it was about.
        doc: DocumentId,
        /// Why.
        rejected: SyncRejected,
    },
}

/// Decodes `frame` and validates the sync message it carries, if any.
pub fn decode_frame(frame: &[u8], limits: &SyncLimits) -> Result<Inbound, InboundError> {
    let mut message = Message::decode(frame)?;
    let sync = match &mut message {
        Message::Sync {
            document_id, data, ..
        }
        | Message::Request {
            document_id, data, ..
        } => {
            let valid = validate_sync(data, limits).map_err(|rejected| InboundError::Sync {
                doc: *document_id,
                rejected,
            })?;
            // The decoded form is what the engine uses; the bytes are not needed twice.
            data.clear();
            Some(valid)
        }
        Message::Ephemeral { data, .. } if data.len() > MAX_EPHEMERAL_BYTES => {
            return Err(InboundError::Wire(WireError::TooLong {
                field: "data",
                max: MAX_EPHEMERAL_BYTES,
            }));
        }
        _ => None,
    };
    Ok(Inbound {
        message,
        sync,
        frame_len: frame.len(),
    })
}
