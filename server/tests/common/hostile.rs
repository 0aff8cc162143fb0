//! Hand-made hostile payloads for the attack tests (`server/tests/attacks.rs`): sync
//! messages byte by byte, CBOR frames through `ciborium::Value` (which can hold
//! duplicate keys), a compressed change chunk that inflates far beyond its size, and
//! oversized but valid automerge changes.

use std::io::Read;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ScalarValue};
use ciborium::Value;
use dealersync_core::protocol::{DocumentId, PeerId};
use flate2::{Compress, Compression, FlushCompress};

/// Appends `v` as unsigned LEB128.
pub fn leb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// One `have` of a sync message: the sender's last-sync heads and a Bloom filter.
pub struct Have {
    pub last_sync: Vec<[u8; 32]>,
    pub bloom: Vec<u8>,
}

/// The bytes of a Bloom filter as automerge encodes it: entries, bits per entry,
/// probes, then the bit array.
pub fn bloom(num_entries: u64, bits_per_entry: u64, num_probes: u64, bits: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    leb(&mut out, num_entries);
    leb(&mut out, bits_per_entry);
    leb(&mut out, num_probes);
    out.extend_from_slice(bits);
    out
}

fn hashes(out: &mut Vec<u8>, hs: &[[u8; 32]]) {
    leb(out, hs.len() as u64);
    for h in hs {
        out.extend_from_slice(h);
    }
}

/// An automerge v1 sync message (first byte 0x42) from its parts.
pub fn sync_message(
    heads: &[[u8; 32]],
    need: &[[u8; 32]],
    haves: &[Have],
    changes: &[Vec<u8>],
) -> Vec<u8> {
    let mut out = vec![0x42];
    hashes(&mut out, heads);
    hashes(&mut out, need);
    leb(&mut out, haves.len() as u64);
    for h in haves {
        hashes(&mut out, &h.last_sync);
        leb(&mut out, h.bloom.len() as u64);
        out.extend_from_slice(&h.bloom);
    }
    leb(&mut out, changes.len() as u64);
    for c in changes {
        leb(&mut out, c.len() as u64);
        out.extend_from_slice(c);
    }
    out
}

/// The sync message a peer sends to add `changes` (hash, bytes) on top of the relay's
/// heads `theirs`: our heads (theirs and the new ones, sorted as automerge asserts in
/// debug builds), one `have` of the relay's heads with an empty filter, the changes.
pub fn changes_message(theirs: &[[u8; 32]], changes: &[([u8; 32], Vec<u8>)]) -> Vec<u8> {
    let mut heads: Vec<[u8; 32]> = theirs.to_vec();
    heads.extend(changes.iter().map(|(h, _)| *h));
    heads.sort();
    let bytes: Vec<Vec<u8>> = changes.iter().map(|(_, c)| c.clone()).collect();
    sync_message(
        &heads,
        &[],
        &[Have {
            last_sync: theirs.to_vec(),
            bloom: vec![],
        }],
        &bytes,
    )
}

/// The sync message of defect 1: one `have` whose Bloom filter claims one entry at
/// zero bits per entry (automerge divided by zero on it).
pub const ZERO_BIT_BLOOM: [u8; 10] = [0x42, 0x00, 0x00, 0x01, 0x00, 0x03, 0x01, 0x00, 0x07, 0x00];

/// A sync message with `haves` Bloom filters that each ask for `probes` probes per
/// lookup. automerge computes every probe of a lookup before it looks at a bit, and
/// with every bit clear no filter claims a change, so each filter is looked up for
/// every change of the document.
pub fn max_probe_bloom(probes: u32, haves: usize) -> Vec<u8> {
    let have = || Have {
        last_sync: vec![],
        bloom: bloom(1, 10, probes.into(), &[0x00, 0x00]),
    };
    sync_message(
        &[],
        &[],
        &(0..haves).map(|_| have()).collect::<Vec<_>>(),
        &[],
    )
}

/// An empty but valid sync message: no heads, no needs, no haves, no changes.
pub fn empty_sync_message() -> Vec<u8> {
    sync_message(&[], &[], &[], &[])
}

/// Raw deflate data that inflates to `mib` MiB of zeros, built from one compressed
/// MiB repeated (byte-aligned by sync flushes), so building it costs ~2 MiB of
/// compression whatever `mib` is.
pub fn deflate_zeros(mib: usize) -> Vec<u8> {
    assert!(mib >= 2);
    let zeros = vec![0u8; 1 << 20];
    let mut c = Compress::new(Compression::best(), false);
    let mut step = |input: &[u8], flush| {
        let mut out = Vec::with_capacity(64 * 1024);
        c.compress_vec(input, &mut out, flush).unwrap();
        out
    };
    // The first MiB starts with a literal; the second is back-references only and
    // valid after any run of zeros, so it can repeat.
    let first = step(&zeros, FlushCompress::Sync);
    let repeat = step(&zeros, FlushCompress::Sync);
    let end = step(&[], FlushCompress::Finish);
    let mut out = first;
    for _ in 1..mib {
        out.extend_from_slice(&repeat);
    }
    out.extend_from_slice(&end);
    out
}

/// Checks [`deflate_zeros`] on a small size: it inflates to exactly that many zeros.
pub fn check_deflate_zeros() {
    let data = deflate_zeros(3);
    let mut inflated = Vec::new();
    flate2::read::DeflateDecoder::new(&data[..])
        .read_to_end(&mut inflated)
        .unwrap();
    assert_eq!(inflated.len(), 3 << 20);
    assert!(inflated.iter().all(|b| *b == 0));
}

/// An automerge compressed change chunk (type 2) around `deflate` data: magic,
/// a checksum that is not checked before inflating (and is wrong), type, length.
pub fn compressed_change_chunk(deflate: &[u8]) -> Vec<u8> {
    let mut out = vec![0x85, 0x6f, 0x4a, 0x83, 0xde, 0xad, 0xbe, 0xef, 0x02];
    leb(&mut out, deflate.len() as u64);
    out.extend_from_slice(deflate);
    out
}

/// A sync message carrying one compressed change chunk that inflates to `mib` MiB.
pub fn deflate_bomb(mib: usize) -> Vec<u8> {
    sync_message(
        &[],
        &[],
        &[],
        &[compressed_change_chunk(&deflate_zeros(mib))],
    )
}

/// CBOR bytes of a value.
pub fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

/// A text key and its value, for `Value::Map`.
pub fn kv(k: &str, v: impl Into<Value>) -> (Value, Value) {
    (Value::Text(k.into()), v.into())
}

/// A `sync` (or `request`) frame whose `documentId` is any CBOR value.
pub fn sync_frame_with_id(
    kind: &str,
    sender: &PeerId,
    target: &PeerId,
    document_id: Value,
    data: Vec<u8>,
) -> Vec<u8> {
    cbor(&Value::Map(vec![
        kv("type", kind),
        kv("senderId", sender.0.as_str()),
        kv("targetId", target.0.as_str()),
        ("documentId".into(), document_id),
        kv("data", Value::Bytes(data)),
    ]))
}

/// A `sync` (or `request`) frame for `doc` carrying `data`.
pub fn sync_frame(
    kind: &str,
    sender: &PeerId,
    target: &PeerId,
    doc: DocumentId,
    data: Vec<u8>,
) -> Vec<u8> {
    sync_frame_with_id(kind, sender, target, doc.to_string().into(), data)
}

/// A document id of `len` base58 characters (valid alphabet, far too long).
pub fn long_document_id(len: usize) -> String {
    "z".repeat(len)
}

/// The `join` of defect 5: `senderId` twice, `null` first (what the transport looked
/// at) and then the victim's peer id (what the engine used).
pub fn duplicate_sender_join(first: Value, victim: &str) -> Vec<u8> {
    cbor(&Value::Map(vec![
        kv("type", "join"),
        ("senderId".into(), first),
        kv("senderId", victim),
        kv("supportedProtocolVersions", Value::Array(vec!["1".into()])),
        kv(
            "peerMetadata",
            Value::Map(vec![kv("isEphemeral", Value::Bool(true))]),
        ),
    ]))
}

/// A CBOR array of `n` zeros (one byte each): a frame that is not a message at all.
pub fn cbor_array_of_zeros(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 9);
    // Major type 4 (array) with an 8-byte length.
    out.push(0x9b);
    out.extend_from_slice(&(n as u64).to_be_bytes());
    out.resize(n + 9, 0x00);
    out
}

/// CBOR nested `depth` arrays deep: `[[[[...]]]]`.
pub fn deep_cbor(depth: usize) -> Vec<u8> {
    let mut out = vec![0x81; depth];
    out.push(0x00);
    out
}

/// Deterministic incompressible bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The oversized edits of defect 7, each one change in one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oversized {
    /// A scalar string of 1,000,000 characters (3 MB of UTF-8).
    Text,
    /// A map of 300,000 keys.
    Keys,
    /// 200,000 list insertions of a small integer: few bytes, many ops.
    ListOps,
    /// A 12 MB bytes value.
    Blob,
}

impl Oversized {
    /// Applies the edit to `doc` as one change.
    pub fn apply(self, doc: &mut AutoCommit) {
        match self {
            Oversized::Text => {
                doc.put(automerge::ROOT, "notes", "汉".repeat(1_000_000))
                    .unwrap();
            }
            Oversized::Keys => {
                // 300,000 separate `put`s take minutes in a debug build; one batch
                // creation makes the same ops (one per key) in seconds.
                let keys: std::collections::HashMap<String, automerge::hydrate::Value> = (0
                    ..300_000i64)
                    .map(|i| (format!("k{i}"), ScalarValue::Int(i).into()))
                    .collect();
                doc.batch_create_object(
                    automerge::ROOT,
                    "keys",
                    &automerge::hydrate::Value::Map(keys.into()),
                    false,
                )
                .unwrap();
            }
            Oversized::ListOps => {
                let list = doc
                    .put_object(automerge::ROOT, "list", automerge::ObjType::List)
                    .unwrap();
                doc.splice(&list, 0, 0, (0..200_000).map(|_| ScalarValue::Int(0)))
                    .unwrap();
            }
            Oversized::Blob => {
                doc.put(
                    automerge::ROOT,
                    "blob",
                    ScalarValue::Bytes(noise(12_000_000, 7)),
                )
                .unwrap();
            }
        }
        doc.commit();
    }

    /// The edit as one change with no dependencies (valid on top of any document):
    /// its hash and bytes, cached (building some takes seconds in a debug build).
    pub fn change(self) -> ([u8; 32], Vec<u8>) {
        cached_change(&format!("oversized-{self:?}"), |doc| self.apply(doc))
    }
}

/// A change of one `blob{n}` key holding 1,000,000 random bytes, just under the
/// 1 MiB change limit, with no dependencies; cached like [`Oversized::change`].
pub fn megabyte_change(n: u64) -> ([u8; 32], Vec<u8>) {
    cached_change(&format!("megabyte-{n}"), |doc| {
        doc.put(
            automerge::ROOT,
            format!("blob{n}"),
            ScalarValue::Bytes(noise(1_000_000, n + 1)),
        )
        .unwrap();
        doc.commit();
    })
}

/// The one change `build` makes on an empty document, as (hash, bytes), cached in
/// the tests' temporary directory under `name`.
pub fn cached_change(name: &str, build: impl FnOnce(&mut AutoCommit)) -> ([u8; 32], Vec<u8>) {
    let path =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dealersync-{name}-v1.bin"));
    if let Ok(cached) = std::fs::read(&path)
        && cached.len() > 32
    {
        let hash: [u8; 32] = cached[..32].try_into().unwrap();
        return (hash, cached[32..].to_vec());
    }
    let mut doc = AutoCommit::new();
    build(&mut doc);
    let change = doc.get_last_local_change().unwrap();
    let (hash, bytes) = (change.hash().0, change.raw_bytes().to_vec());
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&tmp, [&hash[..], &bytes].concat()).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    (hash, bytes)
}
