//! The bodies of the fuzz targets, shared by the `cargo fuzz` crate (`fuzz/`) and the
//! regression test that replays every saved input (`core/tests/fuzz_regressions.rs`).
//!
//! Compiled only with the cargo feature `fuzzing`, so neither the relay nor the field
//! client carries it. Each target takes arbitrary bytes and panics when a property
//! breaks; everything else (bad input rejected, frames answered `error`) is a pass.
//! See `docs/fuzzing.md`.
//!
//! | target | input | property |
//! |---|---|---|
//! | [`frame`] | one WebSocket frame | `decode_frame` and `Message::decode` never panic; what it decodes re-encodes to a frame that decodes to the same message |
//! | [`sync_message`] | the `data` of a `sync`/`request` | rejected by the validator, or automerge can receive it and answer it without panicking |
//! | [`engine`] | a sequence of frames from one peer, with commit/failure/unload controls (see [`EngineInput`]) | the server engine never panics, only emits well-formed frames, never advertises uncommitted heads, and an honest peer can sync afterwards |

use std::sync::OnceLock;

use automerge::sync::{self, SyncDoc};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ObjType, ROOT};

use crate::access::Access;
use crate::protocol::{
    ConnId, ConnInfo, DocumentId, Engine, EngineConfig, Message, Output, PeerId, StorageId,
    SyncLimits, SyncRejected, decode_frame, memory::MemoryStore,
};
use crate::store::Store;

/// A fuzz target's body: panics when a property breaks.
pub type Target = fn(&[u8]);

/// The targets by name, as `fuzz/fuzz_targets/<name>.rs` and the directories under
/// `fuzz/corpus/` and `fuzz/regressions/` call them.
pub const TARGETS: [(&str, Target); 3] = [
    ("frame", frame),
    ("sync_message", sync_message),
    ("engine", engine),
];

// ------------------------------------------------------------------------ frame

/// `decode_frame` (what the relay runs on every frame) and `Message::decode` on
/// arbitrary bytes, neither may panic. When it decodes, `encode` gives a frame that
/// decodes to the same message (up to the one normalisation the encoder makes: an
/// absent `supportedProtocolVersions` is written as `["1"]`), and encoding is a fixed
/// point from there.
pub fn frame(data: &[u8]) {
    // What the relay runs on every frame (decoding plus the sync validator).
    let _ = decode_frame(data, &SyncLimits::default());
    let Ok(msg) = Message::decode(data) else {
        return;
    };
    let bytes = msg.encode();
    let again = match Message::decode(&bytes) {
        Ok(m) => m,
        Err(e) => panic!("the encoding of {msg:?} does not decode: {e}"),
    };
    assert_eq!(again, normalised(msg), "decode(encode(m)) != m");
    assert_eq!(again.encode(), bytes, "encode is not a fixed point");
}

fn normalised(msg: Message) -> Message {
    match msg {
        Message::Join {
            sender_id,
            supported_protocol_versions: None,
            metadata,
        } => Message::Join {
            sender_id,
            supported_protocol_versions: Some(vec![crate::protocol::wire::PROTOCOL_VERSION.into()]),
            metadata,
        },
        other => other,
    }
}

// ------------------------------------------------------------------------ sync_message

/// The `data` of a `sync`/`request` message: either the validator rejects it, or
/// automerge decodes it and a small document can receive it and generate its answer
/// (where a Bloom filter from the peer is used) without panicking, in both the
/// read-write and the read-only sync state.
pub fn sync_message(data: &[u8]) {
    let Ok(msg) = validate_sync(data) else {
        return;
    };
    for read_only in [false, true] {
        let mut doc = small_document().clone();
        let mut state = sync::State::new();
        state.set_read_only(read_only);
        let _ = doc.receive_sync_message(&mut state, msg.clone());
        let _ = doc.generate_sync_message(&mut state);
    }
}

/// The gate every `sync`/`request` payload passes before automerge sees it: the
/// relay's validator with its default limits.
pub fn validate_sync(data: &[u8]) -> Result<sync::Message, SyncRejected> {
    crate::protocol::validate_sync(data, &SyncLimits::default()).map(|v| v.message)
}

/// A document with a little history (three changes, a map, a list, a text), the
/// same on every call.
pub fn small_document() -> &'static Automerge {
    static DOC: OnceLock<Automerge> = OnceLock::new();
    DOC.get_or_init(seed_document)
}

// ------------------------------------------------------------------------ engine

/// The document the `engine` target's server holds from the start. Frames captured
/// for the seed corpus name it too (`tests/tests/capture.rs` creates it on its relay).
/// A valid v4 UUID, as automerge-repo clients insist on.
pub fn document_id() -> DocumentId {
    DocumentId::from_bytes([
        0x6f, 0x1c, 0x2e, 0x4a, 0x8b, 0x3d, 0x4c, 0x5e, 0x9f, 0x70, 0x11, 0x22, 0x33, 0x44, 0x55,
        0x66,
    ])
}

/// The document behind [`document_id`]: byte-for-byte the same on every call (fixed
/// actor and times), so that captured sync messages name heads the target's server
/// has, and their changes apply.
pub fn seed_document() -> Automerge {
    let mut am = Automerge::new().with_actor(ActorId::from(b"dealersync-seed!".as_slice()));
    let at = |t| move |_: &()| CommitOptions::default().with_time(t);
    am.transact_with::<_, _, automerge::AutomergeError, _>(at(1), |tx| {
        tx.put(ROOT, "schemaVersion", 1)?;
        tx.put_object(ROOT, "customers", ObjType::Map)?;
        Ok(())
    })
    .expect("seed change 1");
    am.transact_with::<_, _, automerge::AutomergeError, _>(at(2), |tx| {
        let list = tx.put_object(ROOT, "events", ObjType::List)?;
        tx.insert(&list, 0, "opened")?;
        let note = tx.put_object(ROOT, "note", ObjType::Text)?;
        tx.splice_text(&note, 0, 0, "hello")?;
        Ok(())
    })
    .expect("seed change 2");
    am.transact_with::<_, _, automerge::AutomergeError, _>(at(3), |tx| {
        tx.put(ROOT, "counter", automerge::ScalarValue::counter(5))?;
        Ok(())
    })
    .expect("seed change 3");
    am
}

/// Controls of one record of an [`EngineInput`].
pub mod ctl {
    /// Commit everything pending after the frame (take_write_batch, store commit,
    /// commit_succeeded, until nothing is left).
    pub const COMMIT: u8 = 0x01;
    /// Take a write batch before the frame and finish it after: the frame arrives while
    /// its document is being written (it is queued).
    pub const DURING_WRITE: u8 = 0x02;
    /// The next commit fails (`commit_failed`).
    pub const FAIL_COMMIT: u8 = 0x04;
    /// After the frame, unload idle documents (they are loaded again from the store).
    pub const UNLOAD: u8 = 0x08;
    /// After the frame, the connection drops and the peer connects again.
    pub const RECONNECT: u8 = 0x10;
}

/// The `engine` target's input: a setup byte, then records `[ctl u8][len u16 LE][frame]`
/// (the last frame may be shorter than its length says: it takes what is left).
///
/// Setup byte: bits 0-1 the peer's access to the document (0 or 1 read-write, 2
/// read-only, 3 none); bit 2: the server has a storage id (peers' sync states are
/// saved and loaded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInput {
    /// The setup byte.
    pub setup: u8,
    /// `(controls, frame)` in order.
    pub records: Vec<(u8, Vec<u8>)>,
}

impl EngineInput {
    /// Splits fuzz bytes into records.
    pub fn parse(data: &[u8]) -> EngineInput {
        let (setup, mut rest) = match data.split_first() {
            Some((s, r)) => (*s, r),
            None => (0, data),
        };
        let mut records = Vec::new();
        while rest.len() >= 3 {
            let ctl = rest[0];
            let len = usize::from(u16::from_le_bytes([rest[1], rest[2]]));
            let body = &rest[3..];
            let take = len.min(body.len());
            records.push((ctl, body[..take].to_vec()));
            rest = &body[take..];
        }
        EngineInput { setup, records }
    }

    /// The bytes that [`EngineInput::parse`] reads back (frames longer than 65,535
    /// bytes are cut).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![self.setup];
        for (ctl, frame) in &self.records {
            let frame = &frame[..frame.len().min(usize::from(u16::MAX))];
            out.push(*ctl);
            out.extend_from_slice(&(frame.len() as u16).to_le_bytes());
            out.extend_from_slice(frame);
        }
        out
    }

    fn access(&self) -> Access {
        match self.setup & 3 {
            2 => Access::ReadOnly,
            3 => Access::None,
            _ => Access::ReadWrite,
        }
    }
}

/// A server-side [`Engine`] with the in-memory store and [`seed_document`] committed;
/// the frames of an [`EngineInput`] arrive from one peer, with commits, failed
/// commits, unloads and reconnects between them as the controls say. Checks:
/// - nothing panics;
/// - every frame the engine sends decodes, and every `sync`/`request` it sends
///   advertises only heads that the store has committed (durable before
///   acknowledged);
/// - afterwards an honest client engine (its own store) syncs the document with the
///   server and ends with the server's committed heads.
pub fn engine(data: &[u8]) {
    let input = EngineInput::parse(data);
    let doc = document_id();
    let store = MemoryStore::new();
    let storage_id = (input.setup & 4 != 0).then(|| StorageId("fuzz-relay-storage".into()));
    let mut server = Engine::new(
        PeerId::from("relay"),
        EngineConfig {
            storage_id,
            max_queued_per_doc: 16,
            ephemeral_sessions: 16,
            ..EngineConfig::default()
        },
    );
    static SEED: OnceLock<Vec<u8>> = OnceLock::new();
    let seed = SEED.get_or_init(|| seed_document().save());
    server
        .create_document(doc, seed, &store)
        .expect("create the seed document");
    let mut h = Harness {
        server,
        store,
        now: 1_000,
        committed: std::cell::RefCell::new(None),
    };
    h.commit_all(false);

    let access = input.access();
    let mut conn = ConnId(1);
    h.server
        .connect(conn, ConnInfo::with_access(move |_| access));
    for (ctl, frame) in &input.records {
        let during_write = ctl & ctl::DURING_WRITE != 0;
        let token = if during_write {
            h.server.take_write_batch()
        } else {
            None
        };
        h.now += 7;
        let outs = h.server.receive(conn, frame, h.now, &h.store);
        h.check(&outs);
        if let Some((token, batch)) = token {
            h.finish(token, batch, ctl & ctl::FAIL_COMMIT != 0);
        }
        if ctl & ctl::COMMIT != 0 {
            h.commit_all(ctl & ctl::FAIL_COMMIT != 0 && !during_write);
        }
        if ctl & ctl::UNLOAD != 0 {
            h.server.unload_idle(h.now + 1_000_000, 0);
        }
        if ctl & ctl::RECONNECT != 0 {
            h.server.disconnect(conn);
            conn = ConnId(conn.0 + 1);
            h.server
                .connect(conn, ConnInfo::with_access(move |_| access));
        }
    }
    h.commit_all(false);
    h.honest_peer_syncs(doc);
}

struct Harness {
    server: Engine,
    store: MemoryStore,
    now: i64,
    /// The stored document as of a number of commits, loaded once per commit.
    committed: std::cell::RefCell<Option<(usize, DocumentId, Automerge)>>,
}

impl Harness {
    /// Commits batches until there is nothing left; the first one fails if asked.
    fn commit_all(&mut self, fail_first: bool) {
        let mut fail = fail_first;
        for _ in 0..100 {
            let Some((token, batch)) = self.server.take_write_batch() else {
                return;
            };
            self.finish(token, batch, std::mem::take(&mut fail));
        }
        panic!("the engine still has writes after 100 batches");
    }

    fn finish(
        &mut self,
        token: crate::protocol::BatchToken,
        batch: crate::store::WriteBatch,
        fail: bool,
    ) {
        self.now += 3;
        if fail {
            self.store.fail_next_commits(1);
        }
        let outs = match self.store.commit(&batch) {
            Ok(()) => self.server.commit_succeeded(token, self.now, &self.store),
            Err(e) => self.server.commit_failed(token, &e, self.now, &self.store),
        };
        self.check(&outs);
    }

    /// Every frame sent decodes; sync messages advertise committed heads only.
    fn check(&self, outs: &[Output]) {
        for o in outs {
            let Output::Send { bytes, .. } = o else {
                continue;
            };
            let msg = match Message::decode(bytes) {
                Ok(m) => m,
                Err(e) => panic!("the engine sent a frame that does not decode: {e}"),
            };
            let (Message::Sync {
                document_id, data, ..
            }
            | Message::Request {
                document_id, data, ..
            }) = msg
            else {
                continue;
            };
            let sm = sync::Message::decode(&data).expect("the engine's sync message decodes");
            if sm.heads.is_empty() {
                continue;
            }
            let mut cache = self.committed.borrow_mut();
            let commits = self.store.commits();
            if cache
                .as_ref()
                .is_none_or(|(n, d, _)| *n != commits || *d != document_id)
            {
                *cache = Some((commits, document_id, self.stored(&document_id)));
            }
            let (_, _, am) = cache.as_ref().expect("just loaded");
            for h in &sm.heads {
                assert!(
                    am.get_change_meta_by_hash(h).is_some(),
                    "the engine advertised head {h} of {document_id} before committing it"
                );
            }
        }
    }

    fn stored(&self, doc: &DocumentId) -> Automerge {
        let stored = self
            .store
            .load(doc)
            .expect("memory store")
            .expect("advertised documents are stored");
        let all: Vec<u8> = stored.chunks.concat();
        Automerge::load(&all).expect("the stored document loads")
    }

    /// A client engine connects, opens the document and syncs with the server; it must
    /// end in sync, at the server's committed heads.
    fn honest_peer_syncs(&mut self, doc: DocumentId) {
        const SERVER: ConnId = ConnId(1);
        let honest = ConnId(1_000_000);
        let client_store = MemoryStore::new();
        let mut client = Engine::new(PeerId::from("honest-client"), EngineConfig::default());
        // Opened before connecting: the client asks for it once the server answers.
        client
            .open(doc, &client_store)
            .expect("open an empty document");
        let mut to_server = sends(client.connect_to_server(SERVER, ConnInfo::full_access()));
        self.server.connect(honest, ConnInfo::full_access());
        for _ in 0..200 {
            let mut to_client = Vec::new();
            for f in std::mem::take(&mut to_server) {
                self.now += 1;
                let outs = self.server.receive(honest, &f, self.now, &self.store);
                self.check(&outs);
                to_client.extend(sends_to(&outs, honest));
                to_client.extend(self.commit_collect(honest));
            }
            for f in to_client {
                to_server.extend(sends(client.receive(SERVER, &f, self.now, &client_store)));
            }
            while let Some((token, batch)) = client.take_write_batch() {
                client_store.commit(&batch).expect("client memory store");
                to_server.extend(sends(client.commit_succeeded(
                    token,
                    self.now,
                    &client_store,
                )));
            }
            if to_server.is_empty() && client.is_synced(&doc, SERVER) {
                let theirs = client.document(&doc).map(Automerge::get_heads);
                assert_eq!(
                    theirs,
                    self.server.durable_heads(&doc),
                    "the honest client is in sync but not at the server's heads"
                );
                return;
            }
            if to_server.is_empty() && !self.server.has_pending_writes() {
                break;
            }
        }
        panic!(
            "an honest client could not sync {doc} after the fuzzed peer (client heads {:?}, server durable heads {:?})",
            client.document(&doc).map(Automerge::get_heads),
            self.server.durable_heads(&doc)
        );
    }

    fn commit_collect(&mut self, conn: ConnId) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some((token, batch)) = self.server.take_write_batch() {
            self.now += 1;
            let outs = match self.store.commit(&batch) {
                Ok(()) => self.server.commit_succeeded(token, self.now, &self.store),
                Err(e) => self.server.commit_failed(token, &e, self.now, &self.store),
            };
            self.check(&outs);
            out.extend(sends_to(&outs, conn));
        }
        out
    }
}

fn sends(outs: Vec<Output>) -> Vec<Vec<u8>> {
    outs.into_iter()
        .filter_map(|o| match o {
            Output::Send { bytes, .. } => Some(bytes),
            _ => None,
        })
        .collect()
}

fn sends_to(outs: &[Output], conn: ConnId) -> Vec<Vec<u8>> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { conn: c, bytes, .. } if *c == conn => Some(bytes.clone()),
            _ => None,
        })
        .collect()
}
