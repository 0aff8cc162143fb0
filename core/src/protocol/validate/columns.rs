//! The column readers of [`super::validate_sync`]: automerge's run-length encoded
//! columns counted and checked by their runs, so that a few bytes claiming billions of
//! entries cost one step, and a document's shape measured without loading it.

use std::io::Read;

use super::{COLUMN_DEFLATE, Reader, SyncRejected, malformed};

/// How many bytes raw deflate `data` inflates to, counting at most `cap`.
fn inflated_size(data: &[u8], cap: u64) -> Result<u64, SyncRejected> {
    let decoder = flate2::bufread::DeflateDecoder::new(data);
    std::io::copy(&mut decoder.take(cap), &mut std::io::sink())
        .map_err(|e| malformed(format!("compressed data does not inflate: {e}")))
}

/// What a document chunk holds, measured without loading it.
pub(super) struct DocumentShape {
    /// Its body's size with deflated columns inflated (counting stops past the cap).
    pub(super) inflated: u64,
    /// Operations, from the length of the operation action column.
    pub(super) ops: u64,
    /// Changes, from the length of the change actor column.
    pub(super) changes: u64,
}

/// Measures a document chunk's body, inflating at most `cap` bytes. Walks the layout
/// automerge writes (actors, heads, change and operation column metadata, then the
/// column data) and counts the operations and changes from the run-length encoded
/// columns that decide them, so that a column claiming billions of entries in a few
/// bytes is refused before automerge iterates it.
pub(super) fn document_shape(
    body: &[u8],
    cap: u64,
    max_ops: u64,
) -> Result<DocumentShape, SyncRejected> {
    let mut r = Reader::new(body);
    let actors = r.count("actors", 1, usize::MAX)?;
    for _ in 0..actors {
        let len = r.uleb("actor id length")?;
        r.take(len, "actor id")?;
    }
    let heads = r.count("document heads", 32, usize::MAX)?;
    r.take(heads * 32, "document heads")?;
    let mut columns = Vec::new();
    for (group, what) in ["change columns", "operation columns"]
        .into_iter()
        .enumerate()
    {
        let n = r.count(what, 2, usize::MAX)?;
        for _ in 0..n {
            let spec = r.uleb("column specification")?;
            let len = r.uleb("column length")?;
            columns.push((group, spec, len));
        }
    }
    let mut shape = DocumentShape {
        inflated: r.pos as u64,
        ops: 0,
        changes: 0,
    };
    for (group, spec, len) in columns {
        let data = r.take(len, "column data")?;
        let counted = (group == 0 && is_column(spec, CHANGE_ACTOR_COLUMN))
            || (group == 1 && is_column(spec, ACTION_COLUMN));
        let left = cap.saturating_sub(shape.inflated);
        let size = if spec & COLUMN_DEFLATE != 0 {
            if counted {
                let bytes = inflate(data, left)?;
                count_into(&mut shape, group, rle_len(&bytes, max_ops)?);
                bytes.len() as u64
            } else {
                inflated_size(data, left)?
            }
        } else {
            if counted {
                count_into(&mut shape, group, rle_len(data, max_ops)?);
            }
            len
        };
        shape.inflated = shape.inflated.saturating_add(size);
        if shape.inflated >= cap {
            return Ok(shape);
        }
    }
    shape.inflated = shape.inflated.saturating_add(r.remaining() as u64);
    Ok(shape)
}

fn count_into(shape: &mut DocumentShape, group: usize, n: u64) {
    if group == 0 {
        shape.changes = n;
    } else {
        shape.ops = n;
    }
}

/// Column id and type (the specification without its deflate bit) of the operation
/// action column, whose length is the number of operations, in changes and documents.
const ACTION_COLUMN: (u64, u64) = (4, 2);
/// The same for a document's change actor column: its length is the number of changes.
const CHANGE_ACTOR_COLUMN: (u64, u64) = (0, 1);

fn is_column(spec: u64, (id, ty): (u64, u64)) -> bool {
    spec >> 4 == id && spec & 0b111 == ty
}

/// Raw deflate `data` inflated, at most `cap` bytes of it.
pub(super) fn inflate(data: &[u8], cap: u64) -> Result<Vec<u8>, SyncRejected> {
    let mut out = Vec::new();
    flate2::bufread::DeflateDecoder::new(data)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| malformed(format!("compressed data does not inflate: {e}")))?;
    Ok(out)
}

/// One step through a run-length encoded column of unsigned integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// `count` entries of one value.
    Repeat { count: u64, value: u64 },
    /// One entry of a literal run.
    Literal(u64),
    /// `count` null entries.
    Nulls(u64),
}

impl Run {
    /// Entries it stands for.
    fn entries(self) -> u64 {
        match self {
            Run::Repeat { count, .. } | Run::Nulls(count) => count,
            Run::Literal(_) => 1,
        }
    }

    /// The value, if not null.
    fn value(self) -> Option<u64> {
        match self {
            Run::Repeat { value, .. } | Run::Literal(value) => Some(value),
            Run::Nulls(_) => None,
        }
    }
}

/// The runs of a column of unsigned integers in automerge's RLE (a signed count, then
/// one value repeated, that many literal values, or a count of nulls): the one reader
/// of such columns, for counting and for checking them. A run of 2^60 is one step.
struct UintRuns<'a> {
    r: Reader<'a>,
    /// Literal values still to read in the current literal run.
    literals: u64,
}

impl<'a> UintRuns<'a> {
    fn new(col: &'a [u8]) -> Self {
        UintRuns {
            r: Reader::new(col),
            literals: 0,
        }
    }

    fn step(&mut self) -> Result<Run, SyncRejected> {
        if self.literals > 0 {
            self.literals -= 1;
            return self.r.uleb("literal value").map(Run::Literal);
        }
        let n = self.r.sleb("run length")?;
        if n > 0 {
            let value = self.r.uleb("run value")?;
            Ok(Run::Repeat {
                count: n as u64,
                value,
            })
        } else if n < 0 {
            self.literals = n.unsigned_abs() - 1;
            self.r.uleb("literal value").map(Run::Literal)
        } else {
            self.r.uleb("null run length").map(Run::Nulls)
        }
    }
}

impl Iterator for UintRuns<'_> {
    type Item = Result<Run, SyncRejected>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.literals == 0 && self.r.is_empty() {
            return None;
        }
        Some(self.step())
    }
}

/// Entries in a run-length encoded column of unsigned integers; stops once past `cap`
/// and returns the count so far.
fn rle_len(col: &[u8], cap: u64) -> Result<u64, SyncRejected> {
    let mut total: u64 = 0;
    for run in UintRuns::new(col) {
        if total > cap {
            break;
        }
        total = total.saturating_add(run?.entries());
    }
    Ok(total)
}

/// Entries in a column of actor indices or operation counters, each checked to fit
/// the 32 bits automerge 0.12 unwraps them into (a larger one panicked it).
fn id_column_len(col: &[u8]) -> Result<u64, SyncRejected> {
    let mut total: u64 = 0;
    for run in UintRuns::new(col) {
        let run = run?;
        if run.value().is_some_and(|v| v > u64::from(u32::MAX)) {
            return Err(malformed(
                "an actor index or operation counter does not fit 32 bits",
            ));
        }
        total = total.saturating_add(run.entries());
    }
    Ok(total)
}

/// Operations in a change, from its body (what follows the chunk header): the length
/// of its action column. Walks deps, actor, seq, start op, time, message, other
/// actors and the column metadata as automerge writes them.
pub(super) fn change_ops(body: &[u8], cap: u64) -> Result<u64, SyncRejected> {
    let mut r = Reader::new(body);
    let deps = r.count("dependencies", 32, usize::MAX)?;
    r.take(deps * 32, "dependencies")?;
    let len = r.uleb("actor id length")?;
    r.take(len, "actor id")?;
    r.uleb("seq")?;
    let start_op = r.uleb("start op")?;
    r.sleb("time")?;
    let len = r.uleb("message length")?;
    r.take(len, "message")?;
    let others = r.count("other actors", 1, usize::MAX)?;
    for _ in 0..others {
        let len = r.uleb("actor id length")?;
        r.take(len, "actor id")?;
    }
    let n = r.count("operation columns", 2, usize::MAX)?;
    let mut columns = Vec::new();
    for _ in 0..n {
        let spec = r.uleb("column specification")?;
        let len = r.uleb("column length")?;
        columns.push((spec, len));
    }
    let mut ops = 0;
    for (spec, len) in columns {
        let data = r.take(len, "column data")?;
        if is_column(spec, ACTION_COLUMN) {
            // An integer column: one walk counts the operations and checks the values.
            ops = id_column_len(data)?;
        } else {
            check_id_column(spec & 0b111, data)?;
        }
    }
    // Past the cap the caller refuses it by the limit, which says more.
    if ops <= cap && start_op.saturating_add(ops) > u64::from(u32::MAX) {
        return Err(malformed("operation counters do not fit 32 bits"));
    }
    Ok(ops)
}

/// Column types whose values are actor indices or operation counters, which automerge
/// 0.12 unwraps into 32 bits while it verifies a change (a larger one panicked it).
const COLUMN_ACTOR: u64 = 1;
const COLUMN_INTEGER: u64 = 2;
const COLUMN_DELTA: u64 = 3;

/// Checks that every value of an actor, integer or delta column fits 32 bits (a delta
/// column's running sum, from 0). Other column types are not ids.
fn check_id_column(ty: u64, col: &[u8]) -> Result<(), SyncRejected> {
    let too_big = || malformed("an actor index or operation counter does not fit 32 bits");
    let max = i128::from(u32::MAX);
    let mut r = Reader::new(col);
    let mut sum: i128 = 0;
    match ty {
        COLUMN_ACTOR | COLUMN_INTEGER => {
            id_column_len(col)?;
        }
        COLUMN_DELTA => {
            while !r.is_empty() {
                let n = r.sleb("run length")?;
                if n == 0 {
                    r.uleb("null run length")?;
                } else if n > 0 {
                    // A run of one delta: the sums move one way, so the ends bound them.
                    let d = i128::from(r.sleb("delta")?);
                    let first = sum + d;
                    sum += d * i128::from(n);
                    if !(0..=max).contains(&first) || !(0..=max).contains(&sum) {
                        return Err(too_big());
                    }
                } else {
                    for _ in 0..n.unsigned_abs() {
                        sum += i128::from(r.sleb("delta")?);
                        if !(0..=max).contains(&sum) {
                            return Err(too_big());
                        }
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_each_kind_are_counted_by_run_and_checked_once() {
        // LEB128: a run of 2^40 sevens, a literal run (-3) of three values, a null
        // run of 5.
        let col = [0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 7, 0x7d, 1, 2, 3, 0, 5];
        let runs: Vec<Run> = UintRuns::new(&col).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            runs,
            vec![
                Run::Repeat {
                    count: 1 << 40,
                    value: 7
                },
                Run::Literal(1),
                Run::Literal(2),
                Run::Literal(3),
                Run::Nulls(5),
            ]
        );
        assert_eq!(id_column_len(&col).unwrap(), (1 << 40) + 8);
        // Counting stops once past the cap.
        assert_eq!(rle_len(&col, 10).unwrap(), 1 << 40);
        // A value over 32 bits (one literal of 2^32) is refused wherever it is.
        assert!(id_column_len(&[0x7f, 0x80, 0x80, 0x80, 0x80, 0x10]).is_err());
        // A literal run cut short is malformed, not counted.
        assert!(id_column_len(&[0x7d, 1]).is_err());
    }
}
