//! Round trips, real clients' quirks, and refusals that name the field.

use super::*;

fn cbor(v: Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(&v, &mut out).unwrap();
    out
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
}

#[test]
fn every_kind_round_trips() {
    let doc = DocumentId::random();
    let p = PeerId::from("peer-a");
    let q = PeerId::from("peer-b");
    let mut new_heads = BTreeMap::new();
    new_heads.insert(
        StorageId("s1".into()),
        RemoteHeads {
            heads: vec!["abc".into()],
            timestamp: 1_700_000_000_000,
        },
    );
    let msgs = vec![
        Message::Join {
            sender_id: p.clone(),
            supported_protocol_versions: Some(vec!["1".into()]),
            metadata: Some(PeerMetadata {
                storage_id: Some(StorageId("store".into())),
                is_ephemeral: false,
            }),
        },
        Message::Peer {
            sender_id: q.clone(),
            target_id: p.clone(),
            selected_protocol_version: "1".into(),
            metadata: Some(PeerMetadata::default()),
        },
        Message::Request {
            sender_id: p.clone(),
            target_id: q.clone(),
            document_id: doc,
            data: vec![0x42, 1, 2],
        },
        Message::Sync {
            sender_id: p.clone(),
            target_id: q.clone(),
            document_id: doc,
            data: vec![0x42],
        },
        Message::DocUnavailable {
            sender_id: q.clone(),
            target_id: p.clone(),
            document_id: doc,
        },
        Message::Ephemeral {
            sender_id: p.clone(),
            target_id: q.clone(),
            document_id: doc,
            session_id: "sess".into(),
            count: 7,
            data: vec![0xa0],
        },
        Message::Error {
            message: "bad".into(),
            sender_id: Some(q.clone()),
            target_id: None,
        },
        Message::Leave {
            sender_id: p.clone(),
        },
        Message::RemoteSubscriptionChange {
            sender_id: p.clone(),
            target_id: q.clone(),
            add: vec![StorageId("x".into())],
            remove: vec![],
        },
        Message::RemoteHeadsChanged {
            sender_id: p.clone(),
            target_id: q.clone(),
            document_id: doc,
            new_heads,
        },
    ];
    let bare = Message::Join {
        sender_id: p.clone(),
        supported_protocol_versions: Some(vec!["1".into()]),
        metadata: None,
    };
    for m in msgs.into_iter().chain([bare]) {
        let bytes = m.encode();
        assert_eq!(Message::decode(&bytes).unwrap(), m, "{:?}", m.kind());
    }
}

#[test]
fn accepts_float_integers_undefined_storage_id_and_tagged_bytes() {
    let doc = DocumentId::random();
    // cbor-x writes `count` as a float64 and may tag Uint8Arrays with tag 64.
    let frame = cbor(map(vec![
        ("type", text("ephemeral")),
        ("senderId", text("js")),
        ("targetId", text("server")),
        ("documentId", text(&doc.to_string())),
        ("sessionId", text("s")),
        ("count", Value::Float(12.0)),
        ("data", Value::Tag(64, Box::new(Value::Bytes(vec![1, 2])))),
    ]));
    match Message::decode(&frame).unwrap() {
        Message::Ephemeral { count, data, .. } => {
            assert_eq!(count, 12);
            assert_eq!(data, vec![1, 2]);
        }
        other => panic!("{other:?}"),
    }

    // storageId: undefined (CBOR simple 23), isEphemeral missing, no versions.
    let mut frame = cbor(map(vec![
        ("type", text("join")),
        ("senderId", text("js")),
        (
            "peerMetadata",
            map(vec![
                ("storageId", Value::Null),
                ("isEphemeral", Value::Bool(true)),
            ]),
        ),
    ]));
    let null_at = frame.iter().rposition(|b| *b == 0xf6).unwrap();
    frame[null_at] = 0xf7; // undefined
    match Message::decode(&frame).unwrap() {
        Message::Join {
            supported_protocol_versions,
            metadata,
            ..
        } => {
            assert_eq!(supported_protocol_versions, None);
            assert_eq!(
                metadata,
                Some(PeerMetadata {
                    storage_id: None,
                    is_ephemeral: true
                })
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rejects_with_errors_that_name_the_field() {
    let doc = DocumentId::random().to_string();
    let sync = |data: Value| {
        cbor(map(vec![
            ("type", text("sync")),
            ("senderId", text("a")),
            ("targetId", text("b")),
            ("documentId", text(&doc)),
            ("data", data),
        ]))
    };
    assert_eq!(
        Message::decode(&sync(text("not bytes"))),
        Err(WireError::WrongType {
            field: "data",
            expected: "a byte string"
        })
    );
    assert_eq!(
        Message::decode(&sync(Value::Null)),
        Err(WireError::MissingField("data"))
    );
    let fractional = cbor(map(vec![
        ("type", text("ephemeral")),
        ("senderId", text("a")),
        ("targetId", text("b")),
        ("documentId", text(&doc)),
        ("sessionId", text("s")),
        ("count", Value::Float(1.5)),
        ("data", Value::Bytes(vec![])),
    ]));
    assert!(matches!(
        Message::decode(&fractional),
        Err(WireError::WrongType { field: "count", .. })
    ));
    let bad_doc = cbor(map(vec![
        ("type", text("request")),
        ("senderId", text("a")),
        ("targetId", text("b")),
        ("documentId", text("nope")),
        ("data", Value::Bytes(vec![0x42])),
    ]));
    assert!(matches!(
        Message::decode(&bad_doc),
        Err(WireError::BadDocumentId(_))
    ));
    assert!(matches!(
        Message::decode(&cbor(Value::Array(vec![]))),
        Err(WireError::NotAMap)
    ));
    assert!(matches!(
        Message::decode(&cbor(map(vec![("type", text("gossip"))]))),
        Err(WireError::UnknownType(_))
    ));
    let good = sync(Value::Bytes(vec![0x42]));
    assert!(matches!(
        Message::decode(&good[..good.len() - 3]),
        Err(WireError::Shape(ShapeError::Truncated))
    ));
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(Message::decode(&trailing), Err(WireError::TrailingBytes(1)));
    assert!(Message::decode(&[]).is_err());
}
