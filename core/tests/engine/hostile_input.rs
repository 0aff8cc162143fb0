//! Garbage gets an error and a close while the others carry on.

use super::*;

#[test]
fn garbage_gets_error_and_close_and_the_others_carry_on() {
    let mut w = World::new();
    let doc = w.create_doc();
    let a = w.add_client("a");
    let b = w.add_client("b");
    w.connect(a, Access::ReadWrite);
    w.connect(b, Access::ReadWrite);
    w.open(a, doc);
    w.open(b, doc);
    w.settle();

    let valid_sync = {
        let base = w.server.document(&doc).unwrap().clone();
        sync_with_new_change(&base, "z").0
    };
    let mut bad_change = valid_sync.clone();
    let n = bad_change.len();
    bad_change[n - 10] ^= 0xff; // inside the change chunk: checksum breaks
    let wrong_types = {
        let mut out = Vec::new();
        ciborium::ser::into_writer(
            &Cbor::Map(vec![
                (Cbor::Text("type".into()), Cbor::Text("sync".into())),
                (Cbor::Text("senderId".into()), Cbor::Integer(5.into())),
                (Cbor::Text("targetId".into()), Cbor::Text("server".into())),
                (Cbor::Text("documentId".into()), Cbor::Text(doc.to_string())),
                (Cbor::Text("data".into()), Cbor::Text("hello".into())),
            ]),
            &mut out,
        )
        .unwrap();
        out
    };
    let full = sync_frame(doc, valid_sync.clone(), "g");
    let mut random = vec![0u8; 64];
    let mut x: u32 = 0x1234_5678;
    for byte in random.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *byte = x as u8;
    }
    random[0] = 0xff; // a CBOR "break" out of place: never valid
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", random),
        ("truncated CBOR", full[..full.len() / 2].to_vec()),
        ("wrong field types", wrong_types),
        (
            "not a sync message",
            sync_frame(doc, b"\x42garbage".to_vec(), "g"),
        ),
        ("invalid change bytes", sync_frame(doc, bad_change, "g")),
    ];
    for (k, (what, frame)) in cases.into_iter().enumerate() {
        let c = ConnId(200 + k as u64);
        w.raw_join(c, Access::ReadWrite, &format!("g{k}"));
        let outs = w.raw_send(c, &frame);
        let msgs = sends(&outs, c);
        assert!(
            matches!(msgs.as_slice(), [Message::Error { .. }]),
            "{what}: {msgs:?}"
        );
        assert!(closed(&outs, c), "{what}: not closed");
        assert!(
            outs.iter().all(|o| match o {
                Output::Send { conn, .. } | Output::Close { conn, .. } => *conn == c,
                _ => true,
            }),
            "{what}: others affected"
        );
        // After the close the connection is forgotten.
        assert!(w.raw_send(c, &full).is_empty(), "{what}");
    }
    assert!(!has_key(w.server.document(&doc).unwrap(), "z"));

    // Messages before the handshake are refused too.
    let c = ConnId(300);
    w.server.connect(c, ConnInfo::full_access());
    let outs = w.raw_send(c, &full);
    assert!(matches!(
        sends(&outs, c).as_slice(),
        [Message::Error { .. }]
    ));
    assert!(closed(&outs, c));

    // An unsupported version gets an error and a close.
    let c = ConnId(301);
    w.server.connect(c, ConnInfo::full_access());
    let join2 = Message::Join {
        sender_id: PeerId::from("future"),
        supported_protocol_versions: Some(vec!["2".into()]),
        metadata: None,
    };
    let outs = w.raw_send(c, &join2.encode());
    assert!(matches!(
        sends(&outs, c).as_slice(),
        [Message::Error { message, .. }] if message.contains("version")
    ));
    assert!(closed(&outs, c));

    // The honest peers are unaffected.
    w.edit(a, doc, "after", 1);
    w.settle();
    assert_eq!(w.client_get(b, doc, "after"), Some(1));
}

fn has_key(am: &Automerge, key: &str) -> bool {
    am.get(ROOT, key).unwrap().is_some()
}
