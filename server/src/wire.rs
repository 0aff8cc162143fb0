//! The transport's own `error` frames, for breaches the engine never sees (text
//! frames, oversized frames, floods, a `join` that claims another user's peer id).
//!
//! The transport reads nothing from a frame by itself: it uses the one decoder of
//! `dealersync_core::protocol::decode_frame`, so no two parsers can disagree about
//! what a frame says (a quick header check that kept the first of two duplicate keys
//! once let a peer pass another user's peer id past the join check).

use dealersync_core::protocol::PeerId;
use dealersync_core::protocol::wire::Message;

/// An automerge-repo `error` message, CBOR-encoded.
pub fn error_frame(sender_id: &PeerId, target_id: Option<&str>, message: &str) -> Vec<u8> {
    Message::Error {
        message: message.to_string(),
        sender_id: Some(sender_id.clone()),
        target_id: target_id.map(PeerId::from),
    }
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_frames_are_error_messages() {
        let f = error_frame(&PeerId::from("server"), Some("peer"), "too big");
        match Message::decode(&f) {
            Ok(Message::Error {
                message, sender_id, ..
            }) => {
                assert_eq!(message, "too big");
                assert_eq!(sender_id, Some(PeerId::from("server")));
            }
            other => panic!("expected an error message, got {other:?}"),
        }
    }
}
