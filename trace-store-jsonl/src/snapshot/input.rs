//! Reading a snapshot: its body a piece at a time, bounds-checked, with its checksum
//! computed on the way.

use std::io::Read;

use serde_json::{Number, Value};

/// Deepest nesting of a metadata value read back; deeper is damage.
const MAX_DEPTH: usize = 128;

/// Fixed-size members of one piece taken from an [`In`]: one check of what is left per
/// piece rather than per member.
pub(super) struct Fields<'a>(pub(super) &'a [u8]);

impl Fields<'_> {
    pub(super) fn u8(&mut self) -> Option<u8> {
        let (&n, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(n)
    }
    pub(super) fn u32(&mut self) -> Option<u32> {
        let (n, rest) = self.0.split_first_chunk()?;
        self.0 = rest;
        Some(u32::from_le_bytes(*n))
    }
    pub(super) fn u64(&mut self) -> Option<u64> {
        let (n, rest) = self.0.split_first_chunk()?;
        self.0 = rest;
        Some(u64::from_le_bytes(*n))
    }
}

/// Bytes of a snapshot's body being read a piece at a time, with the CRC-32 of all read
/// so far; every read is bounds-checked and `None` past the end.
pub(super) struct In<R> {
    source: R,
    buf: Vec<u8>,
    /// Where the next read starts in `buf`.
    at: usize,
    /// Bytes of the body not in `buf` yet.
    left: u64,
    crc: crc32fast::Hasher,
}

/// Bytes read from the snapshot at a time.
const PIECE: usize = 1 << 20;

impl<R: Read> In<R> {
    /// A body of `len` bytes, followed in `source` by its CRC-32.
    pub(super) fn new(source: R, len: u64) -> Self {
        In {
            source,
            buf: Vec::new(),
            at: 0,
            left: len,
            crc: crc32fast::Hasher::new(),
        }
    }

    /// Bytes of the body not read yet.
    pub(super) fn remaining(&self) -> u64 {
        (self.buf.len() - self.at) as u64 + self.left
    }

    /// Reads on until at least `n` bytes wait in `buf`.
    fn fill(&mut self, n: usize) -> Option<()> {
        self.buf.drain(..self.at);
        self.at = 0;
        let want = (n.saturating_sub(self.buf.len()).max(PIECE) as u64).min(self.left);
        let before = self.buf.len();
        (&mut self.source)
            .take(want)
            .read_to_end(&mut self.buf)
            .ok()?;
        let read = &self.buf[before..];
        if read.len() as u64 != want {
            return None;
        }
        self.crc.update(read);
        self.left -= want;
        (self.buf.len() >= n).then_some(())
    }

    pub(super) fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.buf.len() - self.at < n {
            self.fill(n)?;
        }
        let bytes = self.buf.get(self.at..self.at + n)?;
        self.at += n;
        Some(bytes)
    }

    /// Whether the whole body was read and the checksum after it holds.
    pub(super) fn finish(mut self) -> Option<()> {
        if self.remaining() != 0 {
            return None;
        }
        let mut crc = [0; 4];
        self.source.read_exact(&mut crc).ok()?;
        let mut rest = [0; 1];
        let trailing = self.source.read(&mut rest).ok()?;
        (trailing == 0 && self.crc.finalize().to_le_bytes() == crc).then_some(())
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    pub(super) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    pub(super) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    pub(super) fn text(&mut self) -> Option<&str> {
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }
    /// A count of items at least `min` bytes each, checked against what is left.
    pub(super) fn count(&mut self, min: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n.checked_mul(min)? as u64 <= self.remaining()).then_some(n)
    }
    /// A counted list of items of `size` bytes each, taken in one piece.
    pub(super) fn records<T>(
        &mut self,
        size: usize,
        mut item: impl FnMut(&mut Fields<'_>) -> Option<T>,
    ) -> Option<Box<[T]>> {
        let n = self.count(size)?;
        let mut fields = Fields(self.take(n * size)?);
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(item(&mut fields)?);
        }
        Some(items.into_boxed_slice())
    }
    pub(super) fn slots<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Vec<Option<T>>> {
        let n = self.count(1)?;
        (0..n)
            .map(|_| match self.u8()? {
                0 => Some(None),
                1 => item(self).map(Some),
                _ => None,
            })
            .collect()
    }
    pub(super) fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        Some(match self.u8()? {
            0 => Value::Null,
            1 => Value::Bool(false),
            2 => Value::Bool(true),
            3 => Value::Number(self.u64()?.into()),
            4 => Value::Number((self.u64()? as i64).into()),
            5 => Value::Number(Number::from_f64(f64::from_bits(self.u64()?))?),
            6 => Value::String(self.text()?.to_owned()),
            7 => {
                let n = self.count(1)?;
                Value::Array(
                    (0..n)
                        .map(|_| self.value(depth + 1))
                        .collect::<Option<_>>()?,
                )
            }
            8 => {
                let n = self.count(5)?;
                let mut members = serde_json::Map::new();
                for _ in 0..n {
                    let key = self.text()?.to_owned();
                    members.insert(key, self.value(depth + 1)?);
                }
                Value::Object(members)
            }
            _ => return None,
        })
    }
}
