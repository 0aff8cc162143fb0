//! A walk over the structure of a CBOR item, before it is decoded into values.
//!
//! Decoding CBOR into `ciborium::Value`s costs about 32 bytes of memory per item: an
//! 8 MB frame of one-byte integers becomes a quarter of a gigabyte. Protocol messages
//! are small maps, so [`check`] refuses any frame with more items or deeper nesting
//! than a message can have, reading headers only and allocating nothing.

use super::limits::{MAX_CBOR_DEPTH, MAX_CBOR_ITEMS};

/// Why a frame's CBOR structure is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// The bytes end inside an item.
    #[error("truncated CBOR item")]
    Truncated,
    /// Header bytes CBOR does not define.
    #[error("malformed CBOR header")]
    Malformed,
    /// More items than any protocol message has.
    #[error("more than {MAX_CBOR_ITEMS} CBOR items in one message")]
    TooManyItems,
    /// Deeper nesting than any protocol message has.
    #[error("CBOR nested deeper than {MAX_CBOR_DEPTH} levels")]
    TooDeep,
}

struct Walk<'a> {
    bytes: &'a [u8],
    pos: usize,
    items: usize,
}

/// Argument of a header: a length, a count or a value; `None` for indefinite length.
enum Arg {
    Definite(u64),
    Indefinite,
}

impl Walk<'_> {
    fn byte(&mut self) -> Result<u8, ShapeError> {
        let b = *self.bytes.get(self.pos).ok_or(ShapeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn skip(&mut self, n: u64) -> Result<(), ShapeError> {
        let left = (self.bytes.len() - self.pos) as u64;
        if n > left {
            return Err(ShapeError::Truncated);
        }
        self.pos += n as usize;
        Ok(())
    }

    fn header(&mut self) -> Result<(u8, Arg), ShapeError> {
        let b = self.byte()?;
        let (major, info) = (b >> 5, b & 0x1f);
        let arg = match info {
            0..=23 => Arg::Definite(u64::from(info)),
            24..=27 => {
                let n = 1usize << (info - 24);
                let mut v = 0u64;
                for _ in 0..n {
                    v = (v << 8) | u64::from(self.byte()?);
                }
                Arg::Definite(v)
            }
            31 if matches!(major, 2..=5 | 7) => Arg::Indefinite,
            _ => return Err(ShapeError::Malformed),
        };
        Ok((major, arg))
    }

    fn count(&mut self, n: u64) -> Result<(), ShapeError> {
        self.items = self
            .items
            .saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
        if self.items > MAX_CBOR_ITEMS {
            return Err(ShapeError::TooManyItems);
        }
        Ok(())
    }

    /// Whether the next byte is the "break" that ends an indefinite-length item.
    fn at_break(&mut self) -> Result<bool, ShapeError> {
        if *self.bytes.get(self.pos).ok_or(ShapeError::Truncated)? == 0xff {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    fn item(&mut self, depth: usize) -> Result<(), ShapeError> {
        if depth > MAX_CBOR_DEPTH {
            return Err(ShapeError::TooDeep);
        }
        self.count(1)?;
        let (major, arg) = self.header()?;
        match (major, arg) {
            (0 | 1 | 7, Arg::Definite(_)) => Ok(()),
            (2 | 3, Arg::Definite(len)) => self.skip(len),
            (2 | 3, Arg::Indefinite) => {
                while !self.at_break()? {
                    match self.header()? {
                        (m, Arg::Definite(len)) if m == major => self.skip(len)?,
                        _ => return Err(ShapeError::Malformed),
                    }
                }
                Ok(())
            }
            (4 | 5, Arg::Definite(n)) => {
                let per = if major == 5 { 2 } else { 1 };
                self.count(n.saturating_mul(per))?;
                for _ in 0..n * per {
                    self.item(depth + 1)?;
                }
                Ok(())
            }
            (4 | 5, Arg::Indefinite) => {
                while !self.at_break()? {
                    self.item(depth + 1)?;
                    if major == 5 {
                        self.item(depth + 1)?;
                    }
                }
                Ok(())
            }
            (6, Arg::Definite(_)) => self.item(depth + 1),
            _ => Err(ShapeError::Malformed),
        }
    }
}

/// Checks that `frame` starts with one CBOR item within the item and depth bounds.
/// Returns the item's length in bytes (trailing bytes are the decoder's concern).
pub fn check(frame: &[u8]) -> Result<usize, ShapeError> {
    let mut w = Walk {
        bytes: frame,
        pos: 0,
        items: 0,
    };
    w.item(0)?;
    Ok(w.pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbor(v: &ciborium::Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }

    #[test]
    fn real_messages_pass() {
        use ciborium::Value;
        let msg = Value::Map(vec![
            ("type".into(), "sync".into()),
            ("senderId".into(), "peer-1".into()),
            ("data".into(), Value::Bytes(vec![0; 100_000])),
            (
                "newHeads".into(),
                Value::Map(vec![(
                    "storage".into(),
                    Value::Map(vec![
                        ("heads".into(), Value::Array(vec!["a".into(), "b".into()])),
                        ("timestamp".into(), Value::Float(1.7e12)),
                    ]),
                )]),
            ),
            (
                "tagged".into(),
                Value::Tag(64, Box::new(Value::Bytes(vec![1]))),
            ),
        ]);
        let bytes = cbor(&msg);
        assert_eq!(check(&bytes), Ok(bytes.len()));
    }

    #[test]
    fn large_arrays_and_deep_nesting_are_refused_without_decoding() {
        use ciborium::Value;
        let wide = cbor(&Value::Array(vec![
            Value::Integer(1.into());
            MAX_CBOR_ITEMS + 1
        ]));
        assert_eq!(check(&wide), Err(ShapeError::TooManyItems));
        // A header that claims 2^60 elements is refused at once, not iterated.
        let claim = [0x9b, 0x10, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(check(&claim), Err(ShapeError::TooManyItems));
        let mut deep = Value::Null;
        for _ in 0..=MAX_CBOR_DEPTH {
            deep = Value::Array(vec![deep]);
        }
        assert_eq!(check(&cbor(&deep)), Err(ShapeError::TooDeep));
        // Indefinite-length nesting is bounded the same way.
        let mut indefinite = vec![0x9f; MAX_CBOR_DEPTH + 2];
        indefinite.extend(vec![0xff; MAX_CBOR_DEPTH + 2]);
        assert_eq!(check(&indefinite), Err(ShapeError::TooDeep));
    }

    #[test]
    fn truncated_and_malformed_headers_are_refused() {
        assert_eq!(check(&[]), Err(ShapeError::Truncated));
        assert_eq!(
            check(&[0x5a, 0xff, 0xff, 0xff, 0xff]),
            Err(ShapeError::Truncated)
        );
        assert_eq!(check(&[0x1c]), Err(ShapeError::Malformed));
        assert_eq!(check(&[0x1f]), Err(ShapeError::Malformed));
    }
}
