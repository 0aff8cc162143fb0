//! Hostile input against the protocol layer: every frame of issue 8's attacks is
//! refused with an error that names the cause, quickly, before automerge sees it,
//! and a server engine that received it keeps serving an honest peer.

use std::io::Write;

use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, Automerge, ROOT, ReadDoc};
use ciborium::Value as Cbor;
use dealersync_core::protocol::memory::MemoryStore;
use dealersync_core::protocol::validate::ChangeSummary;
use dealersync_core::protocol::{
    CloseReason, ConnId, ConnInfo, DocumentId, Engine, EngineConfig, InboundError, Message, Output,
    PeerId, StorageId, SyncLimits, SyncRejected, WireError, decode_frame, validate_sync,
};
use dealersync_core::store::Store;

/// The 10 bytes of issue 8: a sync message whose one `have` has a Bloom filter of
/// one entry with zero bits per entry (automerge divides by zero on it).
const ZERO_BIT_BLOOM: [u8; 10] = [0x42, 0x00, 0x00, 0x01, 0x00, 0x03, 0x01, 0x00, 0x07, 0x00];

fn leb(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A sync message with no heads or needs, one `have` with `bloom`, and `changes`.
fn sync_message(bloom: &[u8], changes: &[Vec<u8>]) -> Vec<u8> {
    let mut m = vec![0x42, 0, 0, 1, 0];
    leb(bloom.len() as u64, &mut m);
    m.extend_from_slice(bloom);
    leb(changes.len() as u64, &mut m);
    for c in changes {
        leb(c.len() as u64, &mut m);
        m.extend_from_slice(c);
    }
    m
}

fn bloom(entries: u64, bits_per_entry: u64, probes: u64, bits: usize) -> Vec<u8> {
    let mut b = Vec::new();
    leb(entries, &mut b);
    leb(bits_per_entry, &mut b);
    leb(probes, &mut b);
    b.extend(std::iter::repeat_n(0xffu8, bits));
    b
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// An automerge chunk of `kind` around `body` (the checksum is not checked before the
/// size, which is the point).
fn chunk(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut c = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, kind];
    leb(body.len() as u64, &mut c);
    c.extend_from_slice(body);
    c
}

fn frame(kind: &str, doc: &DocumentId, data: Vec<u8>) -> Vec<u8> {
    cbor(Cbor::Map(vec![
        ("type".into(), kind.into()),
        ("senderId".into(), "attacker".into()),
        ("targetId".into(), "server".into()),
        ("documentId".into(), doc.to_string().into()),
        ("data".into(), Cbor::Bytes(data)),
    ]))
}

fn cbor(v: Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(&v, &mut out).unwrap();
    out
}

/// The refusal of a hostile message. How long refusing takes is measured by the
/// attack benchmark (docs/benchmarks.md), not asserted here.
fn rejected(data: &[u8], limits: &SyncLimits) -> SyncRejected {
    validate_sync(data, limits).expect_err("hostile message accepted")
}

#[test]
fn a_bloom_filter_with_zero_bits_per_entry_is_refused() {
    let err = rejected(&ZERO_BIT_BLOOM, &SyncLimits::default());
    assert!(
        matches!(&err, SyncRejected::BadBloom { index: 0, why } if why.contains("bits per entry")),
        "{err}"
    );
}

#[test]
fn bloom_filters_with_too_many_probes_or_the_wrong_size_are_refused() {
    // 125 bytes on the wire, ten million probes: seconds of engine time before.
    let huge = sync_message(&bloom(10, 10, 10_000_000, 13), &[]);
    assert!(huge.len() < 130);
    let err = rejected(&huge, &SyncLimits::default());
    assert!(err.to_string().contains("probes"), "{err}");
    let u32_max = sync_message(&bloom(10, 10, u64::from(u32::MAX), 13), &[]);
    assert!(matches!(
        rejected(&u32_max, &SyncLimits::default()),
        SyncRejected::BadBloom { .. }
    ));
    let short = sync_message(&bloom(10, 10, 7, 12), &[]);
    assert!(
        rejected(&short, &SyncLimits::default())
            .to_string()
            .contains("13")
    );
    let zero_entries = sync_message(&bloom(0, 10, 7, 0), &[]);
    assert!(matches!(
        rejected(&zero_entries, &SyncLimits::default()),
        SyncRejected::BadBloom { .. }
    ));
}

#[test]
fn counts_larger_than_the_message_are_refused_without_allocating() {
    // 2^62 heads claimed in a few bytes.
    let mut m = vec![0x42];
    leb(1 << 62, &mut m);
    assert!(matches!(
        rejected(&m, &SyncLimits::default()),
        SyncRejected::Malformed(_)
    ));
    let mut trailing = sync_message(&[], &[]);
    trailing.extend([1, 7, 9]);
    assert!(matches!(
        rejected(&trailing, &SyncLimits::default()),
        SyncRejected::Malformed(_)
    ));
}

#[test]
fn a_deflate_bomb_in_a_compressed_change_is_refused_after_inflating_only_the_limit() {
    let bomb = deflate(&vec![0u8; 8 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
    let msg = sync_message(&[], &[chunk(2, &bomb)]);
    let err = rejected(&msg, &SyncLimits::default());
    assert!(
        matches!(
            &err,
            SyncRejected::OverLimit {
                setting: "max-change-bytes",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_deflate_bomb_in_a_document_column_is_refused() {
    let column = deflate(&vec![0u8; 4 * 1024 * 1024]);
    let mut body = Vec::new();
    leb(1, &mut body); // one actor
    leb(16, &mut body);
    body.extend([7u8; 16]);
    leb(0, &mut body); // no heads
    leb(1, &mut body); // one change column, deflated
    leb(0x18, &mut body);
    leb(column.len() as u64, &mut body);
    leb(0, &mut body); // no operation columns
    body.extend(&column);
    let msg = sync_message(&[], &[chunk(0, &body)]);
    let limits = SyncLimits {
        max_inflated_bytes: 1024 * 1024,
        ..SyncLimits::default()
    };
    let err = rejected(&msg, &limits);
    assert!(
        matches!(
            &err,
            SyncRejected::OverLimit {
                setting: "max-inflated-bytes",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn bundle_chunks_are_refused() {
    let msg = sync_message(&[], &[chunk(3, b"whatever")]);
    assert!(
        rejected(&msg, &SyncLimits::default())
            .to_string()
            .contains("bundle")
    );
}

/// A sync message from a fresh peer carrying `doc`'s changes.
fn changes_message(doc: &mut AutoCommit) -> Vec<u8> {
    let mut state = sync::State::new();
    let mut other = sync::State::new();
    // Let the sender learn the receiver has nothing, so it sends its changes.
    let first = doc.sync().generate_sync_message(&mut state).unwrap();
    let mut receiver = Automerge::new();
    receiver.receive_sync_message(&mut other, first).unwrap();
    let reply = receiver.generate_sync_message(&mut other).unwrap();
    doc.sync().receive_sync_message(&mut state, reply).unwrap();
    doc.sync()
        .generate_sync_message(&mut state)
        .unwrap()
        .encode()
}

#[test]
fn changes_over_the_size_or_operation_limits_are_refused() {
    // The mechanism at small limits; the default limits against the real binary are
    // in server/tests/attacks.rs.
    let limits = SyncLimits {
        max_change_bytes: 64 * 1024,
        max_change_ops: 1_000,
        ..SyncLimits::default()
    };
    let mut text = AutoCommit::new();
    text.put(ROOT, "note", "x".repeat(100 * 1024)).unwrap();
    let err = rejected(&changes_message(&mut text), &limits);
    assert!(
        matches!(
            &err,
            SyncRejected::OverLimit {
                setting: "max-change-bytes",
                ..
            }
        ),
        "{err}"
    );

    let mut keys = AutoCommit::new();
    for i in 0..1_500 {
        keys.put(ROOT, format!("k{i}"), 1).unwrap();
    }
    let err = rejected(&changes_message(&mut keys), &limits);
    assert!(
        matches!(
            &err,
            SyncRejected::OverLimit {
                setting: "max-change-ops",
                ..
            }
        ),
        "{err}"
    );
    // Within the limits, the same shapes pass.
    let mut fine = AutoCommit::new();
    for i in 0..500 {
        fine.put(ROOT, format!("k{i}"), 1).unwrap();
    }
    assert!(validate_sync(&changes_message(&mut fine), &limits).is_ok());
}

#[test]
fn messages_real_peers_send_pass_with_every_change_measured() {
    let mut a = AutoCommit::new();
    for i in 0..50 {
        a.put(ROOT, format!("customer-{i}"), "王芳").unwrap();
        a.commit();
    }
    let msg = changes_message(&mut a);
    let valid = validate_sync(&msg, &SyncLimits::default()).unwrap();
    let want: Vec<_> = a.get_changes(&[]).iter().map(|c| c.hash()).collect();
    let got: Vec<_> = valid
        .changes
        .iter()
        .map(|c: &ChangeSummary| c.hash)
        .collect();
    assert_eq!(got.len(), want.len());
    assert!(want.iter().all(|h| got.contains(h)));
    assert!(valid.changes.iter().all(|c| c.ops == 1 && c.bytes > 0));
    // A first message with a Bloom filter of what the peer has.
    let mut state = sync::State::new();
    let first = a.sync().generate_sync_message(&mut state).unwrap().encode();
    validate_sync(&first, &SyncLimits::default()).unwrap();
}

#[test]
fn a_whole_document_sent_as_one_chunk_is_measured_change_by_change() {
    // automerge sends a saved document when the receiver lacks over a third of it.
    let mut base = AutoCommit::new();
    base.put(ROOT, "site", "showroom").unwrap();
    base.commit();
    let mut receiver = base.fork();
    for i in 0..30 {
        base.put(ROOT, format!("k{i}"), i).unwrap();
        base.commit();
    }
    let (mut s1, mut s2) = (sync::State::new(), sync::State::new());
    let mut saw_document = false;
    for _ in 0..6 {
        if let Some(m) = base.sync().generate_sync_message(&mut s1) {
            let bytes = m.encode();
            let mut valid = validate_sync(&bytes, &SyncLimits::default()).unwrap();
            if valid.message.changes.iter().any(|c| c[8] == 0) {
                saw_document = true;
                assert_eq!(valid.changes.len(), 31, "every change of the document");
                // The receiver applies only the 30 changes it lacks, one chunk each.
                valid.keep_new(|h| receiver.get_change_by_hash(h).is_some());
                assert_eq!(valid.message.changes.len(), 30);
                assert!(valid.message.changes.iter().all(|c| c[8] == 1));
            }
            receiver
                .sync()
                .receive_sync_message(&mut s2, valid.message)
                .unwrap();
        }
        if let Some(m) = receiver.sync().generate_sync_message(&mut s2) {
            base.sync().receive_sync_message(&mut s1, m).unwrap();
        }
    }
    assert!(saw_document, "automerge sent no document chunk");
    assert_eq!(receiver.get_heads(), base.get_heads());
}

#[test]
fn a_duplicate_key_is_refused_even_when_one_copy_is_null() {
    let join = cbor(Cbor::Map(vec![
        ("type".into(), "join".into()),
        ("senderId".into(), Cbor::Null),
        ("senderId".into(), "victim".into()),
    ]));
    assert_eq!(
        Message::decode(&join),
        Err(WireError::DuplicateField("senderId".into()))
    );
    let typed = cbor(Cbor::Map(vec![
        ("type".into(), Cbor::Null),
        ("type".into(), "join".into()),
        ("senderId".into(), "victim".into()),
    ]));
    assert!(matches!(
        Message::decode(&typed),
        Err(WireError::DuplicateField(_))
    ));
}

#[test]
fn long_ids_large_arrays_and_deep_nesting_are_refused_quickly() {
    let long_doc = cbor(Cbor::Map(vec![
        ("type".into(), "request".into()),
        ("senderId".into(), "a".into()),
        ("targetId".into(), "b".into()),
        ("documentId".into(), "2".repeat(200_000).into()),
        ("data".into(), Cbor::Bytes(vec![0x42, 0, 0, 0, 0])),
    ]));
    assert!(matches!(
        Message::decode(&long_doc),
        Err(WireError::TooLong {
            field: "documentId",
            ..
        })
    ));
    assert!("2".repeat(200_000).parse::<DocumentId>().is_err());

    let long_peer = cbor(Cbor::Map(vec![
        ("type".into(), "join".into()),
        ("senderId".into(), "p".repeat(1 << 20).into()),
    ]));
    assert!(matches!(
        Message::decode(&long_peer),
        Err(WireError::TooLong {
            field: "senderId",
            ..
        })
    ));
    let storage = cbor(Cbor::Map(vec![
        ("type".into(), "join".into()),
        ("senderId".into(), "p".into()),
        (
            "peerMetadata".into(),
            Cbor::Map(vec![("storageId".into(), "s".repeat(1 << 20).into())]),
        ),
    ]));
    assert!(matches!(
        Message::decode(&storage),
        Err(WireError::TooLong {
            field: "storageId",
            ..
        })
    ));

    // 8 MB of one-byte integers: refused from the headers, nothing decoded.
    let mut array = vec![0x9a, 0x00, 0x80, 0x00, 0x00];
    array.extend(std::iter::repeat_n(0x01u8, 8 * 1024 * 1024));
    assert!(matches!(Message::decode(&array), Err(WireError::Shape(_))));
}

// ------------------------------------------------------------------ the engine

struct Relay {
    engine: Engine,
    store: MemoryStore,
    doc: DocumentId,
}

impl Relay {
    fn new(limits: SyncLimits) -> Relay {
        let mut engine = Engine::new(
            PeerId::from("server"),
            EngineConfig {
                storage_id: Some(StorageId("server-storage".into())),
                limits,
                ..EngineConfig::default()
            },
        );
        let store = MemoryStore::new();
        let doc = DocumentId::random();
        let mut am = AutoCommit::new();
        am.put(ROOT, "site", "showroom").unwrap();
        engine.create_document(doc, &am.save(), &store).unwrap();
        let mut relay = Relay { engine, store, doc };
        relay.commit();
        relay
    }

    fn commit(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        while let Some((token, batch)) = self.engine.take_write_batch() {
            self.store.commit(&batch).unwrap();
            out.extend(self.engine.commit_succeeded(token, 0, &self.store));
        }
        out
    }

    fn join(&mut self, conn: ConnId, peer: &str) {
        self.engine.connect(conn, ConnInfo::full_access());
        let join = Message::Join {
            sender_id: PeerId::from(peer),
            supported_protocol_versions: Some(vec!["1".into()]),
            metadata: None,
        };
        let out = self.engine.receive(conn, &join.encode(), 0, &self.store);
        assert!(out.iter().any(|o| matches!(o, Output::PeerReady { .. })));
    }

    fn receive(&mut self, conn: ConnId, frame: &[u8]) -> Vec<Output> {
        let mut out = self.engine.receive(conn, frame, 0, &self.store);
        out.extend(self.commit());
        out
    }

    fn stored(&self) -> Vec<u8> {
        self.store.load(&self.doc).unwrap().unwrap().chunks.concat()
    }

    /// An honest peer syncs a change into the document and gets it acknowledged.
    fn honest_round(&mut self, conn: ConnId, key: &str) {
        let mut am = AutoCommit::load(&self.stored()).unwrap();
        am.put(ROOT, key, "ok").unwrap();
        am.commit();
        let mut state = sync::State::new();
        let mut acknowledged = false;
        for _ in 0..8 {
            let Some(m) = am.sync().generate_sync_message(&mut state) else {
                break;
            };
            let out = self.receive(conn, &frame_from(&self.doc, "honest", m.encode()));
            for o in out {
                if let Output::Send { conn: c, bytes, .. } = o
                    && c == conn
                    && let Ok(Message::Sync { data, .. }) = Message::decode(&bytes)
                {
                    let reply = sync::Message::decode(&data).unwrap();
                    acknowledged |= reply.heads == am.get_heads();
                    am.sync().receive_sync_message(&mut state, reply).unwrap();
                }
            }
        }
        assert!(
            acknowledged,
            "the honest peer's change was not acknowledged"
        );
        let stored = Automerge::load(&self.stored()).unwrap();
        assert!(stored.get(ROOT, key).unwrap().is_some());
    }
}

fn frame_from(doc: &DocumentId, sender: &str, data: Vec<u8>) -> Vec<u8> {
    cbor(Cbor::Map(vec![
        ("type".into(), "sync".into()),
        ("senderId".into(), sender.into()),
        ("targetId".into(), "server".into()),
        ("documentId".into(), doc.to_string().into()),
        ("data".into(), Cbor::Bytes(data)),
    ]))
}

fn closed(out: &[Output], conn: ConnId) -> Option<CloseReason> {
    out.iter().find_map(|o| match o {
        Output::Close { conn: c, reason } if *c == conn => Some(reason.clone()),
        _ => None,
    })
}

fn error_sent(out: &[Output], conn: ConnId) -> Option<String> {
    out.iter().find_map(|o| match o {
        Output::Send { conn: c, bytes, .. } if *c == conn => match Message::decode(bytes) {
            Ok(Message::Error { message, .. }) => Some(message),
            _ => None,
        },
        _ => None,
    })
}

#[test]
fn the_engine_refuses_each_hostile_frame_and_keeps_serving_honest_peers() {
    let mut relay = Relay::new(SyncLimits::default());
    let (honest, attacker) = (ConnId(1), ConnId(2));
    relay.join(honest, "honest");
    relay.honest_round(honest, "before");
    let doc = relay.doc;
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        (
            "zero-bit Bloom",
            frame("request", &doc, ZERO_BIT_BLOOM.to_vec()),
        ),
        (
            "ten million probes",
            frame(
                "sync",
                &doc,
                sync_message(&bloom(10, 10, 10_000_000, 13), &[]),
            ),
        ),
        (
            "deflate bomb",
            frame(
                "sync",
                &doc,
                sync_message(&[], &[chunk(2, &deflate(&vec![0; 4 << 20]))]),
            ),
        ),
    ];
    for (i, (what, bytes)) in hostile.into_iter().enumerate() {
        let conn = ConnId(attacker.0 + i as u64);
        relay.join(conn, &format!("attacker-{i}"));
        let before = relay.stored();
        let out = relay.receive(conn, &bytes);
        let error = error_sent(&out, conn).unwrap_or_else(|| panic!("{what}: no error sent"));
        assert!(!error.is_empty());
        assert!(
            closed(&out, conn).is_some(),
            "{what}: connection not closed"
        );
        assert_eq!(relay.stored(), before, "{what}: the store changed");
        relay.honest_round(honest, &format!("after-{i}"));
    }
}

#[test]
fn changes_that_would_grow_a_document_past_its_limit_are_refused_before_storing() {
    let mut relay = Relay::new(SyncLimits {
        max_document_bytes: 64 * 1024,
        ..SyncLimits::default()
    });
    let conn = ConnId(1);
    relay.join(conn, "writer");
    let before = relay.stored();
    let audit_before = relay.store.audit().len();
    let mut am = AutoCommit::load(&before).unwrap();
    am.put(
        ROOT,
        "blob",
        automerge::ScalarValue::Bytes(vec![7; 200 * 1024]),
    )
    .unwrap();
    am.commit();
    let mut state = sync::State::new();
    let mut refused = None;
    for _ in 0..4 {
        let Some(m) = am.sync().generate_sync_message(&mut state) else {
            break;
        };
        let out = relay.receive(conn, &frame_from(&relay.doc, "writer", m.encode()));
        if let Some(reason) = closed(&out, conn) {
            refused = Some((reason, error_sent(&out, conn)));
            break;
        }
        for o in out {
            if let Output::Send { bytes, .. } = o
                && let Ok(Message::Sync { data, .. }) = Message::decode(&bytes)
            {
                am.sync()
                    .receive_sync_message(&mut state, sync::Message::decode(&data).unwrap())
                    .unwrap();
            }
        }
    }
    let (reason, error) = refused.expect("the oversized change was accepted");
    assert!(matches!(reason, CloseReason::TooLarge(_)), "{reason:?}");
    assert!(error.unwrap().contains("max-document-bytes"));
    assert_eq!(relay.stored(), before);
    assert_eq!(relay.store.audit().len(), audit_before);
    // A small change from another connection still lands.
    relay.join(ConnId(2), "other");
    relay.honest_round(ConnId(2), "small");
}

#[test]
fn decode_frame_names_the_document_of_a_refused_sync_message() {
    let doc = DocumentId::random();
    match decode_frame(
        &frame("sync", &doc, ZERO_BIT_BLOOM.to_vec()),
        &SyncLimits::default(),
    ) {
        Err(InboundError::Sync { doc: d, rejected }) => {
            assert_eq!(d, doc);
            assert!(matches!(rejected, SyncRejected::BadBloom { .. }));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ephemeral_data_is_bounded_because_it_is_copied_to_every_peer() {
    let doc = DocumentId::random();
    let eph = |len: usize| {
        cbor(Cbor::Map(vec![
            ("type".into(), "ephemeral".into()),
            ("senderId".into(), "a".into()),
            ("targetId".into(), "b".into()),
            ("documentId".into(), doc.to_string().into()),
            ("sessionId".into(), "s".into()),
            ("count".into(), 1.into()),
            ("data".into(), Cbor::Bytes(vec![0; len])),
        ]))
    };
    assert!(decode_frame(&eph(1024), &SyncLimits::default()).is_ok());
    assert!(matches!(
        decode_frame(&eph(1 << 20), &SyncLimits::default()),
        Err(InboundError::Wire(WireError::TooLong { field: "data", .. }))
    ));
}

fn sleb(mut v: i64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        let done = (v == 0 && b & 0x40 == 0) || (v == -1 && b & 0x40 != 0);
        out.push(if done { b } else { b | 0x80 });
        if done {
            return;
        }
    }
}

/// A run-length encoded column: one run of `n` copies of the value 1.
fn rle_run(n: i64) -> Vec<u8> {
    let mut col = Vec::new();
    sleb(n, &mut col);
    leb(1, &mut col);
    col
}

#[test]
fn a_run_length_column_claiming_a_trillion_operations_is_refused_before_automerge_iterates_it() {
    // A change of a dozen bytes whose action column says 2^40 operations.
    let action = rle_run(1 << 40);
    let mut body = Vec::new();
    leb(0, &mut body); // no dependencies
    leb(16, &mut body);
    body.extend([9u8; 16]); // actor
    leb(1, &mut body); // seq
    leb(1, &mut body); // start op
    leb(0, &mut body); // time
    leb(0, &mut body); // message
    leb(0, &mut body); // other actors
    leb(1, &mut body); // one column: action (id 4, integer)
    leb(0x42, &mut body);
    leb(action.len() as u64, &mut body);
    body.extend(&action);
    let msg = sync_message(&[], &[chunk(1, &body)]);
    let err = rejected(&msg, &SyncLimits::default());
    assert!(
        matches!(
            &err,
            SyncRejected::OverLimit {
                setting: "max-change-ops",
                ..
            }
        ),
        "{err}"
    );
    // The same inside a compressed change.
    let msg = sync_message(&[], &[chunk(2, &deflate(&body))]);
    assert!(rejected(&msg, &SyncLimits::default()).is_limit());

    // A document whose change actor column claims 2^40 changes.
    let actors = rle_run(1 << 40);
    let mut doc = Vec::new();
    leb(1, &mut doc);
    leb(16, &mut doc);
    doc.extend([9u8; 16]);
    leb(0, &mut doc); // no heads
    leb(1, &mut doc); // change columns: the actor column (id 0, actor)
    leb(0x01, &mut doc);
    leb(actors.len() as u64, &mut doc);
    leb(0, &mut doc); // no operation columns
    doc.extend(&actors);
    let msg = sync_message(&[], &[chunk(0, &doc)]);
    let err = rejected(&msg, &SyncLimits::default());
    assert!(
        matches!(
            &err,
            SyncRejected::OverLimit {
                setting: "max-document-ops",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn unsorted_or_overlong_hash_lists_are_refused() {
    // automerge asserts its hash lists are sorted when it encodes them.
    let mut m = vec![0x42, 2];
    m.extend([0xbb; 32]);
    m.extend([0xaa; 32]);
    m.extend([0, 0, 0]);
    assert!(
        rejected(&m, &SyncLimits::default())
            .to_string()
            .contains("sorted")
    );
    let mut sorted = vec![0x42, 2];
    sorted.extend([0xaa; 32]);
    sorted.extend([0xbb; 32]);
    sorted.extend([0, 0, 0]);
    assert!(validate_sync(&sorted, &SyncLimits::default()).is_ok());
    // More heads than any document has concurrently.
    let mut long = vec![0x42];
    leb(5000, &mut long);
    for i in 0..5000u32 {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&i.to_be_bytes());
        long.extend(h);
    }
    long.extend([0, 0, 0]);
    assert!(matches!(
        rejected(&long, &SyncLimits::default()),
        SyncRejected::Malformed(_)
    ));
}
