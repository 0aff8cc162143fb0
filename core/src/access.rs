//! Who may read and write which document: the pure policy, from role and site tree.

/// What a connection may do with one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Access {
    /// May not know the document exists: answered `doc-unavailable`.
    #[default]
    None,
    /// Receives every change; changes it sends are rejected.
    ReadOnly,
    /// Reads and writes.
    ReadWrite,
}

impl Access {
    /// Whether the document may be read.
    pub fn can_read(self) -> bool {
        self >= Access::ReadOnly
    }

    /// Whether changes may be accepted from the peer.
    pub fn can_write(self) -> bool {
        self == Access::ReadWrite
    }
}
