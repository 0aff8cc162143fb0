//! Read-only and denied documents: refused, never applied, and indistinguishable from missing ones.

use super::*;

#[test]
fn read_only_changes_are_rejected_and_never_applied() {
    let mut w = World::new();
    let doc = w.create_doc();
    let writer = w.add_client("writer");
    w.connect(writer, Access::ReadWrite);
    w.open(writer, doc);
    w.settle();
    let before = w.server_heads(doc);
    let audit_before = w.store.audit().len();

    // A raw read-only peer pushes a change the server did not ask for.
    let ro = ConnId(100);
    w.raw_join(ro, Access::ReadOnly, "reader");
    let base = w.server.document(&doc).unwrap().clone();
    let (data, head) = sync_with_new_change(&base, "forged");
    let outs = w.raw_send(ro, &sync_frame(doc, data, "reader"));
    let msgs = sends(&outs, ro);
    assert!(
        msgs.iter()
            .any(|m| matches!(m, Message::Error { message, .. } if message.contains("read-only"))),
        "{msgs:?}"
    );
    assert!(!closed(&outs, ro), "reads keep working");
    assert!(!has(w.server.document(&doc).unwrap(), &head));
    assert_eq!(w.server_heads(doc), before);
    assert!(!w.server.has_pending_writes());
    w.settle();
    assert_eq!(w.store.audit().len(), audit_before);
    assert_eq!(w.client_get(writer, doc, "forged"), None);

    // The reader still receives the writer's changes.
    w.edit(writer, doc, "price", 5);
    w.settle();
    let got: Vec<_> = w
        .server_sent
        .iter()
        .filter(|(c, m)| *c == ro && matches!(m, Message::Sync { .. }))
        .collect();
    assert!(!got.is_empty());

    // An engine client with read-only access: its local edit never reaches the server.
    let r = w.add_client("ro-client");
    w.connect(r, Access::ReadOnly);
    w.open(r, doc);
    w.settle();
    assert_eq!(w.client_get(r, doc, "price"), Some(5));
    let local = w.edit(r, doc, "price", 1);
    w.settle();
    assert!(!has(w.server.document(&doc).unwrap(), &local));
    assert_eq!(w.client_get(writer, doc, "price"), Some(5));
}

/// A store that counts how often the engine reads it, to compare the work behind two
/// answers.
struct CountingStore {
    inner: MemoryStore,
    reads: std::sync::atomic::AtomicUsize,
}

impl Store for CountingStore {
    fn load(
        &self,
        doc: &DocumentId,
    ) -> Result<Option<dealersync_core::store::StoredDocument>, dealersync_core::store::StoreError>
    {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.load(doc)
    }
    fn load_sync_state(
        &self,
        doc: &DocumentId,
        peer: &StorageId,
    ) -> Result<Option<Vec<u8>>, dealersync_core::store::StoreError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.load_sync_state(doc, peer)
    }
    fn commit(
        &self,
        batch: &dealersync_core::store::WriteBatch,
    ) -> Result<(), dealersync_core::store::StoreError> {
        self.inner.commit(batch)
    }
    fn exists(&self, doc: &DocumentId) -> Result<bool, dealersync_core::store::StoreError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.exists(doc)
    }
}

#[test]
fn a_denied_document_costs_the_store_what_a_missing_one_does() {
    // Timing must not tell a prober which ids exist: the denied answer does the same
    // store work (one lookup) as the answer for an id nobody has.
    let store = CountingStore {
        inner: MemoryStore::new(),
        reads: Default::default(),
    };
    let existing = DocumentId::random();
    let mut init = automerge::AutoCommit::new();
    init.put(ROOT, "k", 1).unwrap();
    store
        .commit(&dealersync_core::store::WriteBatch {
            created: vec![(existing, init.save())],
            ..Default::default()
        })
        .unwrap();
    let reads_for = |access: Access, doc: DocumentId| {
        let mut server = Engine::new(PeerId::from("server"), EngineConfig::default());
        let c = ConnId(1);
        server.connect(c, ConnInfo::with_access(move |_| access));
        let join = Message::Join {
            sender_id: PeerId::from("mallory"),
            supported_protocol_versions: Some(vec!["1".into()]),
            metadata: None,
        };
        server.receive(c, &join.encode(), 0, &store);
        let request = Message::Request {
            sender_id: PeerId::from("mallory"),
            target_id: PeerId::from("server"),
            document_id: doc,
            data: Automerge::new()
                .generate_sync_message(&mut sync::State::new())
                .unwrap()
                .encode(),
        };
        let before = store.reads.load(std::sync::atomic::Ordering::SeqCst);
        let outs = server.receive(c, &request.encode(), 0, &store);
        assert!(
            outs.iter().any(|o| matches!(
                o,
                Output::Send {
                    kind: MessageKind::DocUnavailable,
                    ..
                }
            )),
            "{outs:?}"
        );
        store.reads.load(std::sync::atomic::Ordering::SeqCst) - before
    };
    let denied = reads_for(Access::None, existing);
    let missing = reads_for(Access::ReadWrite, DocumentId::random());
    assert_eq!(denied, missing);
    assert_eq!(denied, 1);
}

#[test]
fn unknown_and_denied_documents_get_the_same_answer() {
    let mut w = World::new();
    let secret = w.create_doc();
    let c = ConnId(7);
    w.raw_join(c, Access::None, "mallory");
    let request = Message::Request {
        sender_id: PeerId::from("mallory"),
        target_id: PeerId::from("server"),
        document_id: secret,
        data: {
            let mut st = sync::State::new();
            Automerge::new()
                .generate_sync_message(&mut st)
                .unwrap()
                .encode()
        },
    }
    .encode();
    let denied = w.raw_send(c, &request);

    // Same peer, same request, on a server that never heard of the document.
    let mut w2 = World::new();
    w2.raw_join(c, Access::ReadWrite, "mallory");
    let unknown = w2.raw_send(c, &request);
    assert_eq!(denied, unknown);
    assert!(matches!(
        sends(&denied, c).as_slice(),
        [Message::DocUnavailable { document_id, .. }] if *document_id == secret
    ));
    // Nor can a sync for an unknown id create it.
    let sync = sync_frame(
        DocumentId::random(),
        Automerge::new()
            .generate_sync_message(&mut sync::State::new())
            .unwrap()
            .encode(),
        "mallory",
    );
    let outs = w2.raw_send(c, &sync);
    assert!(matches!(
        sends(&outs, c).as_slice(),
        [Message::DocUnavailable { .. }]
    ));
    assert!(!w2.server.has_pending_writes());
    assert_eq!(w2.server.docs_loaded(), 0);
}
