//! Checks an automerge sync message before automerge sees it.
//!
//! automerge 0.12 trusts what a sync message says about itself: a Bloom filter with
//! zero bits per entry makes it divide by zero, one with ten million probes makes every
//! lookup allocate and loop ten million times, and a compressed change is inflated in
//! full before its size or checksum is looked at. [`validate_sync`] walks the message's
//! structure itself, with every count and length bounded by the bytes actually present
//! and by [`SyncLimits`], inflates compressed data only up to the limit, and only then
//! hands the bytes to automerge. It does all the per-message work that does not need
//! the document (parsing changes, listing their hashes), so a driver can run it on
//! the connection's own task and the engine thread only applies.

use automerge::sync;
use automerge::{Automerge, Change, ChangeHash};

use super::limits::{
    MAX_BLOOM_BITS_PER_ENTRY, MAX_BLOOM_PROBES, MAX_HASHES, MAX_HAVES, SyncLimits,
};

mod columns;
use columns::{change_ops, document_shape, inflate};

/// A sync message that passed [`validate_sync`].
#[derive(Debug, Clone)]
pub struct ValidSync {
    /// The decoded message, safe to give to automerge.
    pub message: sync::Message,
    /// The changes it carries, a document chunk's changes included, in order.
    pub changes: Vec<ChangeSummary>,
    /// When the message carried a whole document: each of its changes as a chunk of
    /// its own, in the order of `changes`, so that the engine can apply only those it
    /// lacks ([`ValidSync::keep_new`]) instead of loading the whole document again.
    pub expanded: Option<Vec<Vec<u8>>>,
}

/// One change of a sync message, as measured by [`validate_sync`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeSummary {
    /// Its hash.
    pub hash: ChangeHash,
    /// Its size, uncompressed.
    pub bytes: u64,
    /// Its operations.
    pub ops: u64,
}

/// What a sync message would add to a document: the changes it does not have yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Growth {
    /// Hashes of the new changes.
    pub hashes: Vec<ChangeHash>,
    /// Their size, uncompressed.
    pub bytes: u64,
    /// Their operations.
    pub ops: u64,
}

impl ValidSync {
    /// Replaces a message that carried a whole document by the changes `has` says are
    /// new, each as a chunk of its own: applying them costs what they hold, not what
    /// the document holds (a device that has more than a third of a document to send
    /// sends all of it). A message without a document chunk is left as it is.
    pub fn keep_new(&mut self, has: impl Fn(&ChangeHash) -> bool) {
        let Some(expanded) = self.expanded.take() else {
            return;
        };
        let new: Vec<Vec<u8>> = expanded
            .into_iter()
            .zip(&self.changes)
            .filter(|(_, c)| !has(&c.hash))
            .map(|(raw, _)| raw)
            .collect();
        self.message.changes = sync::ChunkList::from(new);
    }

    /// The changes a document that `has` some changes would gain. A peer sends a whole
    /// document when it has much to send, so the limits on a message's changes and
    /// operations count only these.
    pub fn growth(&self, has: impl Fn(&ChangeHash) -> bool) -> Growth {
        let mut g = Growth::default();
        for c in self.changes.iter().filter(|c| !has(&c.hash)) {
            g.hashes.push(c.hash);
            g.bytes = g.bytes.saturating_add(c.bytes);
            g.ops = g.ops.saturating_add(c.ops);
        }
        g
    }
}

impl Growth {
    /// Adds another message's growth to this one (messages applied together).
    pub fn add(&mut self, other: Growth) {
        self.hashes.extend(other.hashes);
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.ops = self.ops.saturating_add(other.ops);
    }

    /// Checks the new changes against the per-message limits, and the document they
    /// would grow against its limit. `stored_bytes` is the document's size in storage;
    /// the new changes count uncompressed, so the check errs on the safe side.
    pub fn check(&self, stored_bytes: u64, limits: &SyncLimits) -> Result<(), SyncRejected> {
        over(
            "new changes in one sync message",
            self.hashes.len() as u64,
            limits.max_changes_per_message,
            "max-changes-per-message",
        )?;
        over(
            "operations of new changes in one sync message",
            self.ops,
            limits.max_ops_per_message,
            "max-ops-per-message",
        )?;
        over(
            "document size in bytes with these changes",
            stored_bytes.saturating_add(self.bytes),
            limits.max_document_bytes,
            "max-document-bytes",
        )
    }
}

/// Why a sync message is refused. The text goes to the peer in an `error` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncRejected {
    /// The bytes are not a well-formed automerge sync message.
    #[error("not a valid automerge sync message: {0}")]
    Malformed(String),
    /// A `have` carries a Bloom filter automerge cannot safely use.
    #[error("Bloom filter of have {index} is invalid: {why}")]
    BadBloom {
        /// Which `have`.
        index: usize,
        /// What is wrong with it.
        why: String,
    },
    /// A change or the message is larger than the relay accepts.
    #[error("{what} of {actual} exceeds the limit of {limit} (setting {setting})")]
    OverLimit {
        /// What was measured, e.g. "change size in bytes".
        what: &'static str,
        /// The measure (a lower bound where counting stopped at the limit).
        actual: u64,
        /// The limit.
        limit: u64,
        /// The relay setting that sets it.
        setting: &'static str,
    },
}

impl SyncRejected {
    /// Whether a configured size limit (rather than malformed data) refused it.
    pub fn is_limit(&self) -> bool {
        matches!(self, SyncRejected::OverLimit { .. })
    }
}

/// The automerge storage chunk kinds (the byte after magic and checksum).
pub(crate) const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
pub(crate) const CHUNK_DOCUMENT: u8 = 0;
pub(crate) const CHUNK_CHANGE: u8 = 1;
pub(crate) const CHUNK_COMPRESSED: u8 = 2;
pub(crate) const CHUNK_BUNDLE: u8 = 3;

/// Bit of a column specification that says its data is deflated.
const COLUMN_DEFLATE: u64 = 0b1000;

fn malformed(why: impl Into<String>) -> SyncRejected {
    SyncRejected::Malformed(why.into())
}

/// A cursor over untrusted bytes; every read is bounded by what is there.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn byte(&mut self, what: &str) -> Result<u8, SyncRejected> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| malformed(format!("truncated {what}")))?;
        self.pos += 1;
        Ok(b)
    }

    /// Unsigned LEB128, at most 64 bits.
    fn uleb(&mut self, what: &str) -> Result<u64, SyncRejected> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte(what)?;
            let low = u64::from(b & 0x7f);
            if shift == 63 && low > 1 {
                return Err(malformed(format!("{what} overflows 64 bits")));
            }
            value |= low << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed(format!("{what} overflows 64 bits")))
    }

    /// Signed LEB128, at most 64 bits.
    fn sleb(&mut self, what: &str) -> Result<i64, SyncRejected> {
        let mut value: i64 = 0;
        let mut shift = 0;
        loop {
            let b = self.byte(what)?;
            if shift >= 64 {
                return Err(malformed(format!("{what} overflows 64 bits")));
            }
            value |= i64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Ok(value);
            }
        }
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], SyncRejected> {
        let n = usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.remaining())
            .ok_or_else(|| malformed(format!("{what} is longer than the message")))?;
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// A count of items at least `min_item_bytes` each, bounded by what is left and
    /// by `max`.
    fn count(
        &mut self,
        what: &str,
        min_item_bytes: usize,
        max: usize,
    ) -> Result<u64, SyncRejected> {
        let n = self.uleb(what)?;
        if n > max as u64 {
            return Err(malformed(format!(
                "{what}: {n} exceeds the maximum of {max}"
            )));
        }
        if n.saturating_mul(min_item_bytes as u64) > self.remaining() as u64 {
            return Err(malformed(format!(
                "{what}: {n} items do not fit in the message"
            )));
        }
        Ok(n)
    }

    /// A list of change hashes, sorted as automerge writes them (it asserts the order
    /// of lists it encodes, so an unsorted one from a peer must never reach it).
    fn hashes(&mut self, what: &str) -> Result<(), SyncRejected> {
        let n = self.count(what, 32, MAX_HASHES)?;
        let bytes = self.take(n * 32, what)?;
        if bytes
            .chunks(32)
            .zip(bytes.chunks(32).skip(1))
            .any(|(a, b)| a > b)
        {
            return Err(malformed(format!("{what} are not sorted")));
        }
        Ok(())
    }
}

/// Running totals of one message against the limits.
struct Budget<'l> {
    limits: &'l SyncLimits,
    inflated: u64,
    changes: Vec<ChangeSummary>,
    /// Each change's bytes, aligned with `changes`.
    raw: Vec<Vec<u8>>,
    /// Whether a document chunk was among them.
    had_document: bool,
}

impl Budget<'_> {
    fn inflate(&mut self, bytes: u64) -> Result<(), SyncRejected> {
        self.inflated = self.inflated.saturating_add(bytes);
        over(
            "sync message size once inflated, in bytes",
            self.inflated,
            self.limits.max_inflated_bytes,
            "max-inflated-bytes",
        )
    }

    fn change(&mut self, change: &Change, raw: Vec<u8>) -> Result<(), SyncRejected> {
        let l = self.limits;
        over(
            "change size in bytes",
            change.raw_bytes().len() as u64,
            l.max_change_bytes,
            "max-change-bytes",
        )?;
        over(
            "operations in one change",
            change.len() as u64,
            l.max_change_ops,
            "max-change-ops",
        )?;
        self.changes.push(ChangeSummary {
            hash: change.hash(),
            bytes: change.raw_bytes().len() as u64,
            ops: change.len() as u64,
        });
        self.raw.push(raw);
        Ok(())
    }
}

fn over(
    what: &'static str,
    actual: u64,
    limit: u64,
    setting: &'static str,
) -> Result<(), SyncRejected> {
    if actual > limit {
        Err(SyncRejected::OverLimit {
            what,
            actual,
            limit,
            setting,
        })
    } else {
        Ok(())
    }
}

/// Checks `data` (the `data` of a `sync` or `request`) against its format and
/// `limits`, and decodes it. See the module docs.
pub fn validate_sync(data: &[u8], limits: &SyncLimits) -> Result<ValidSync, SyncRejected> {
    let mut r = Reader::new(data);
    match r.byte("message type")? {
        0x42 | 0x43 => {}
        other => return Err(malformed(format!("unknown sync message type {other:#04x}"))),
    }
    r.hashes("heads")?;
    r.hashes("need")?;
    let haves = r.count("have entries", 2, MAX_HAVES)?;
    for index in 0..haves as usize {
        r.hashes("lastSync")?;
        let len = r.uleb("Bloom filter length")?;
        let bloom = r.take(len, "Bloom filter")?;
        check_bloom(bloom).map_err(|why| SyncRejected::BadBloom { index, why })?;
    }
    let mut budget = Budget {
        limits,
        inflated: 0,
        changes: Vec::new(),
        raw: Vec::new(),
        had_document: false,
    };
    let entries = r.count("change entries", 1, usize::MAX)?;
    over(
        "change entries in one sync message",
        entries,
        limits.max_changes_per_message,
        "max-changes-per-message",
    )?;
    for _ in 0..entries {
        let len = r.uleb("change length")?;
        let entry = r.take(len, "change")?;
        for (kind, chunk) in split_chunks(entry)? {
            check_chunk(kind, chunk, &mut budget)?;
        }
    }
    if !r.is_empty() {
        let len = r.uleb("flags length")?;
        r.take(len, "flags")?;
        if !r.is_empty() {
            return Err(malformed(format!(
                "{} bytes after the end of the message",
                r.remaining()
            )));
        }
    }
    let message = guarded("the sync message", || sync::Message::decode(data))?
        .map_err(|e| malformed(e.to_string()))?;
    Ok(ValidSync {
        message,
        changes: budget.changes,
        expanded: budget.had_document.then_some(budget.raw),
    })
}

/// Runs one of automerge's parsers on peer bytes. automerge 0.12 still unwraps on some
/// malformed input (an operation counter or actor index that does not fit 32 bits,
/// found by fuzzing): such a panic is a refusal of the message, not the end of the
/// connection's task.
fn guarded<T>(what: &str, parse: impl FnOnce() -> T) -> Result<T, SyncRejected> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse))
        .map_err(|_| malformed(format!("automerge cannot parse {what} in it")))
}

/// A Bloom filter as automerge writes it: empty, or entries ≥ 1, bits per entry and
/// probes within bounds, and exactly the bits those call for.
fn check_bloom(bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut r = Reader::new(bytes);
    let mut u32_field = |what: &str| -> Result<u32, String> {
        let v = r.uleb(what).map_err(|e| e.to_string())?;
        u32::try_from(v).map_err(|_| format!("{what} {v} does not fit 32 bits"))
    };
    let entries = u32_field("number of entries")?;
    let bits_per_entry = u32_field("bits per entry")?;
    let probes = u32_field("number of probes")?;
    if entries == 0 {
        return Err("a filter of zero entries must be empty".into());
    }
    if !(1..=MAX_BLOOM_BITS_PER_ENTRY).contains(&bits_per_entry) {
        return Err(format!(
            "{bits_per_entry} bits per entry (1 to {MAX_BLOOM_BITS_PER_ENTRY} accepted)"
        ));
    }
    if !(1..=MAX_BLOOM_PROBES).contains(&probes) {
        return Err(format!(
            "{probes} probes (1 to {MAX_BLOOM_PROBES} accepted)"
        ));
    }
    let want = (u64::from(entries) * u64::from(bits_per_entry)).div_ceil(8);
    if r.remaining() as u64 != want {
        return Err(format!(
            "{} bytes of bits where {entries} entries of {bits_per_entry} bits need {want}",
            r.remaining()
        ));
    }
    Ok(())
}

/// Splits automerge storage bytes into chunks by their headers (magic, checksum,
/// type, LEB128 length); the chunks themselves are verified by their parsers.
pub(crate) fn split_chunks(bytes: &[u8]) -> Result<Vec<(u8, &[u8])>, SyncRejected> {
    let mut out = Vec::new();
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        let start = r.pos;
        if r.take(4, "chunk magic")? != MAGIC {
            return Err(malformed(
                "chunk does not start with the automerge magic bytes",
            ));
        }
        r.take(4, "chunk checksum")?;
        let kind = r.byte("chunk type")?;
        let len = r.uleb("chunk length")?;
        r.take(len, "chunk")?;
        out.push((kind, &bytes[start..r.pos]));
    }
    Ok(out)
}

/// The body of a chunk: what follows its header.
fn chunk_body(chunk: &[u8]) -> Result<&[u8], SyncRejected> {
    let mut r = Reader::new(chunk);
    r.take(9, "chunk header")?;
    let len = r.uleb("chunk length")?;
    r.take(len, "chunk")
}

fn check_chunk(kind: u8, chunk: &[u8], budget: &mut Budget<'_>) -> Result<(), SyncRejected> {
    let invalid = |e: automerge::AutomergeError| malformed(format!("invalid change: {e}"));
    match kind {
        CHUNK_CHANGE => {
            budget.inflate(chunk.len() as u64)?;
            over(
                "change size in bytes",
                chunk.len() as u64,
                budget.limits.max_change_bytes,
                "max-change-bytes",
            )?;
            let limit = budget.limits.max_change_ops;
            over(
                "operations in one change",
                change_ops(chunk_body(chunk)?, limit)?,
                limit,
                "max-change-ops",
            )?;
            let change = guarded("a change", || Change::try_from(chunk))?
                .map_err(|e| malformed(format!("invalid change: {e}")))?;
            budget.change(&change, chunk.to_vec())
        }
        CHUNK_COMPRESSED => {
            // Inflate at most one byte past the limit: enough to know it is over.
            let limit = budget.limits.max_change_bytes;
            let body = inflate(chunk_body(chunk)?, limit.saturating_add(1))?;
            let inflated = body.len() as u64;
            over(
                "change size in bytes (inflated)",
                inflated,
                limit,
                "max-change-bytes",
            )?;
            budget.inflate(inflated)?;
            let ops_limit = budget.limits.max_change_ops;
            over(
                "operations in one change",
                change_ops(&body, ops_limit)?,
                ops_limit,
                "max-change-ops",
            )?;
            let change = guarded("a compressed change", || Change::try_from(chunk))?
                .map_err(|e| malformed(format!("invalid compressed change: {e}")))?;
            budget.change(&change, chunk.to_vec())
        }
        CHUNK_DOCUMENT => {
            let left = budget
                .limits
                .max_inflated_bytes
                .saturating_sub(budget.inflated);
            let max_ops = budget.limits.max_document_ops;
            let shape = document_shape(chunk_body(chunk)?, left.saturating_add(1), max_ops)?;
            budget.inflate(shape.inflated)?;
            over(
                "operations in a document chunk",
                shape.ops.max(shape.changes),
                max_ops,
                "max-document-ops",
            )?;
            let doc = guarded("a document", || Automerge::load(chunk))?.map_err(invalid)?;
            budget.had_document = true;
            for change in doc.get_changes(&[]) {
                budget.change(&change, change.raw_bytes().to_vec())?;
            }
            Ok(())
        }
        CHUNK_BUNDLE => Err(malformed(
            "bundle chunks are not accepted in sync messages; send changes or a document",
        )),
        other => Err(malformed(format!("unknown chunk type {other}"))),
    }
}
