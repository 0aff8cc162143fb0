//! Every input saved under `fuzz/regressions/<target>/` and `fuzz/corpus/<target>/`,
//! replayed through the fuzz target of the same name (`dealersync_core::fuzzing`): a
//! crash the fuzzer once found stays a test. See docs/fuzzing.md.
//!
//! Besides the targets' own checks, each input must stay under [`PEAK_BYTES`] of heap
//! at its peak, measured per thread by the counting allocator below: a decompression
//! or allocation bomb that is accepted fails here even when it does not panic.
//!
//! Inputs listed in `fuzz/regressions/OPEN` (a known crash or stall not fixed yet) are
//! skipped by the default run and replayed by
//! `cargo test -p dealersync-core --test fuzz_regressions -- --ignored open`:
//! once that passes for a line, the line is deleted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dealersync_core::fuzzing::{self, EngineInput, ctl};
use dealersync_core::protocol::{Message, PeerId};

/// The most heap one input may hold at once, above what its thread held before.
const PEAK_BYTES: usize = 64 << 20;

/// The longest one input may take (debug build, busy machine): inputs take
/// milliseconds, a stall (quadratic decoding, a huge loop) takes minutes.
const MAX_TIME: Duration = Duration::from_secs(20);

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, counting the bytes live on each thread and their peak.
struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            shrank(layout.size());
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn grew(n: usize) {
    let _ = LIVE.try_with(|l| {
        let now = l.get().saturating_add(n);
        l.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

fn shrank(n: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(n)));
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// `target/file` names listed in fuzz/regressions/OPEN (the first word of a line).
fn open_list() -> Vec<String> {
    let text = std::fs::read_to_string(fuzz_dir().join("regressions/OPEN")).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// The saved inputs of a target: (`kind/target/file`, path), sorted.
fn inputs(target: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for kind in ["regressions", "corpus"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_file() && !name.starts_with('.') && !name.ends_with(".md") {
                out.push((format!("{kind}/{target}/{name}"), e.path()));
            }
        }
    }
    out.sort();
    out
}

/// Runs one input; panics with its name if the target fails or it allocates too much.
fn replay(target: &str, run: fn(&[u8]), name: &str, path: &Path) -> Duration {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let before = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let start = Instant::now();
    let result = std::panic::catch_unwind(|| run(&data));
    let took = start.elapsed();
    let peak = PEAK.with(Cell::get).saturating_sub(before);
    if let Err(panic) = result {
        let why = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(non-text panic)");
        panic!(
            "fuzz target `{target}` fails on {name}: {why}\n\
             reproduce: cd fuzz && cargo fuzz run --sanitizer none {target} {}",
            path.display()
        );
    }
    assert!(
        peak <= PEAK_BYTES,
        "fuzz target `{target}` on {name} held {} MiB of heap at its peak (limit {} MiB)",
        peak >> 20,
        PEAK_BYTES >> 20
    );
    assert!(
        took <= MAX_TIME,
        "fuzz target `{target}` took {took:?} on {name} (limit {MAX_TIME:?})"
    );
    took
}

fn replay_target(target: &str, open: bool) {
    let run = fuzzing::TARGETS
        .iter()
        .find(|(n, _)| *n == target)
        .map(|(_, f)| *f)
        .expect("a target of that name");
    let listed = open_list();
    let mut ran = 0;
    let mut slowest = (Duration::ZERO, String::new());
    for (name, path) in inputs(target) {
        let short = name.split_once('/').map_or(name.as_str(), |(_, s)| s);
        if listed.iter().any(|l| l == short) != open {
            continue;
        }
        let took = replay(target, run, &name, &path);
        if took > slowest.0 {
            slowest = (took, name.clone());
        }
        ran += 1;
    }
    println!(
        "{target}: {ran} inputs replayed, slowest {} ({:?})",
        slowest.1, slowest.0
    );
    if !open {
        assert!(ran > 0, "no saved inputs for `{target}` under fuzz/");
    }
}

#[test]
fn frame_regressions_and_corpus() {
    replay_target("frame", false);
}

#[test]
fn sync_message_regressions_and_corpus() {
    replay_target("sync_message", false);
}

#[test]
fn engine_regressions_and_corpus() {
    replay_target("engine", false);
}

/// The inputs of fuzz/regressions/OPEN: fails while any of them still crashes.
#[test]
#[ignore = "known crashes and stalls, listed in fuzz/regressions/OPEN"]
fn open_regressions() {
    for (target, _) in fuzzing::TARGETS {
        replay_target(target, true);
    }
}

/// Every OPEN line names a file that exists, so a typo cannot hide an input.
#[test]
fn open_list_names_saved_inputs() {
    for entry in open_list() {
        let path = fuzz_dir().join("regressions").join(&entry);
        assert!(
            path.is_file(),
            "fuzz/regressions/OPEN names {entry}, which does not exist"
        );
    }
}

// ------------------------------------------------------------------------ issue 8

/// Writes the hostile inputs of issue 8 into fuzz/regressions/ (how they were made):
/// `DEALERSYNC_WRITE_REGRESSIONS=1 cargo test -p dealersync-core --test fuzz_regressions -- --ignored write_issue8`
#[test]
#[ignore = "writes files; run by hand to regenerate the issue 8 inputs"]
fn write_issue8_regressions() {
    if std::env::var_os("DEALERSYNC_WRITE_REGRESSIONS").is_none() {
        return;
    }
    for (target, name, bytes) in issue8_inputs() {
        let dir = fuzz_dir().join("regressions").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn issue8_inputs() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let zero_bits = vec![0x42, 0x00, 0x00, 0x01, 0x00, 0x03, 0x01, 0x00, 0x07, 0x00];
    // 1 entry, 10 bits per entry (2 bytes of bits), 2^32-1 probes.
    let mut huge_probes = vec![0x42, 0x00, 0x00, 0x01, 0x00];
    let bloom = [0x01, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0xff, 0xff];
    huge_probes.push(bloom.len() as u8);
    huge_probes.extend_from_slice(&bloom);
    huge_probes.push(0x00);
    let bomb = sync_with_changes(&[deflate_bomb_chunk(60 << 20)]);
    let v = |data: &[u8]| sync_frame(data, fuzzing::document_id().to_string());

    let long_id = sync_frame(&[0x42, 0, 0, 0, 0], "z".repeat(200_000));
    // As long as an engine record holds (65,535 bytes).
    let long_id_engine = sync_frame(&[0x42, 0, 0, 0, 0], "z".repeat(65_000));
    let duplicate_join = cbor_map(&[
        ("type", text("join")),
        ("senderId", text("a")),
        ("senderId", text("b")),
        ("supportedProtocolVersions", array(&[text("1")])),
    ]);
    let duplicate_type = cbor_map(&[
        ("type", text("join")),
        ("type", text("leave")),
        ("senderId", text("a")),
    ]);
    let duplicate_metadata = cbor_map(&[
        ("type", text("join")),
        ("senderId", text("a")),
        (
            "peerMetadata",
            cbor_map(&[("storageId", text("x")), ("storageId", text("y"))]),
        ),
    ]);
    let session = |frames: Vec<Vec<u8>>| {
        let mut records = vec![(ctl::COMMIT, join_frame())];
        records.extend(frames.into_iter().map(|f| (ctl::COMMIT, f)));
        EngineInput { setup: 0, records }.to_bytes()
    };
    vec![
        (
            "sync_message",
            "issue8-bloom-zero-bits-per-entry",
            zero_bits.clone(),
        ),
        (
            "sync_message",
            "issue8-bloom-huge-probes",
            huge_probes.clone(),
        ),
        ("sync_message", "issue8-deflate-bomb-change", bomb.clone()),
        ("frame", "issue8-bloom-zero-bits-per-entry", v(&zero_bits)),
        ("frame", "issue8-long-document-id", long_id),
        ("frame", "issue8-duplicate-key-join", duplicate_join.clone()),
        ("frame", "issue8-duplicate-type", duplicate_type.clone()),
        (
            "frame",
            "issue8-duplicate-key-peer-metadata",
            duplicate_metadata.clone(),
        ),
        (
            "engine",
            "issue8-bloom-zero-bits-per-entry",
            session(vec![v(&zero_bits)]),
        ),
        (
            "engine",
            "issue8-bloom-huge-probes",
            session(vec![v(&huge_probes)]),
        ),
        (
            "engine",
            "issue8-deflate-bomb-change",
            session(vec![v(&bomb)]),
        ),
        (
            "engine",
            "issue8-long-document-id",
            session(vec![long_id_engine]),
        ),
        (
            "engine",
            "issue8-duplicate-key-join",
            EngineInput {
                setup: 0,
                records: vec![
                    (ctl::COMMIT, duplicate_join),
                    (ctl::COMMIT, duplicate_metadata),
                ],
            }
            .to_bytes(),
        ),
    ]
}

fn join_frame() -> Vec<u8> {
    Message::Join {
        sender_id: PeerId::from("fuzz-peer"),
        supported_protocol_versions: Some(vec!["1".into()]),
        metadata: None,
    }
    .encode()
}

/// A `sync` frame by hand, so that the document id can be any text.
fn sync_frame(data: &[u8], document_id: String) -> Vec<u8> {
    cbor_map(&[
        ("type", text("sync")),
        ("senderId", text("fuzz-peer")),
        ("targetId", text("relay")),
        ("documentId", text(&document_id)),
        ("data", bytes(data)),
    ])
}

/// A v1 sync message with no heads, needs or haves, carrying these change chunks.
fn sync_with_changes(chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0x42, 0x00, 0x00, 0x00];
    leb(&mut out, chunks.len() as u64);
    for c in chunks {
        leb(&mut out, c.len() as u64);
        out.extend_from_slice(c);
    }
    out
}

/// A compressed change chunk (type 2) whose deflate stream inflates to `inflated`
/// zero bytes (about 1,000 times its size). The checksum is not valid: automerge
/// inflates before it checks.
fn deflate_bomb_chunk(inflated: usize) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..inflated >> 20 {
        z.write_all(&zeros).unwrap();
    }
    let body = z.finish().unwrap();
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0xde, 0xad, 0xbe, 0xef, 0x02];
    leb(&mut chunk, body.len() as u64);
    chunk.extend_from_slice(&body);
    chunk
}

fn leb(out: &mut Vec<u8>, mut v: u64) {
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

// A minimal CBOR writer: duplicate keys and over-long ids are what the standard
// encoders refuse to write.

fn head(major: u8, n: u64) -> Vec<u8> {
    let m = major << 5;
    match n {
        0..=23 => vec![m | n as u8],
        24..=0xff => vec![m | 24, n as u8],
        0x100..=0xffff => [vec![m | 25], (n as u16).to_be_bytes().to_vec()].concat(),
        0x1_0000..=0xffff_ffff => [vec![m | 26], (n as u32).to_be_bytes().to_vec()].concat(),
        _ => [vec![m | 27], n.to_be_bytes().to_vec()].concat(),
    }
}

fn text(s: &str) -> Vec<u8> {
    [head(3, s.len() as u64), s.as_bytes().to_vec()].concat()
}

fn bytes(b: &[u8]) -> Vec<u8> {
    [head(2, b.len() as u64), b.to_vec()].concat()
}

fn array(items: &[Vec<u8>]) -> Vec<u8> {
    [head(4, items.len() as u64), items.concat()].concat()
}

fn cbor_map(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = head(5, entries.len() as u64);
    for (k, v) in entries {
        out.extend(text(k));
        out.extend_from_slice(v);
    }
    out
}
