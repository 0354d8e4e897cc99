//! Reading the file into the index: whole at open, and the new tail afterwards.

use std::fs::File;
use std::io;
use std::path::Path;

use trace_store_core::{CorruptAt, Error, Result};

use crate::format::{Record, Unreadable, could_be_ours, is_blank, parse_record, recover_glued};
use crate::index::{Index, Loc};
use crate::sys::{io_error, read_at};

/// Most bytes read per call; lines longer than this are assembled across reads.
const CHUNK: usize = 1 << 20;
/// Least bytes read per call, so a read past the expected end sees the end quickly.
const MIN_CHUNK: usize = 16 << 10;
/// A file whose first this many bytes hold no record and do not start like one is
/// refused without reading further (a large database or binary file opened by mistake
/// would otherwise be read into memory whole before being refused).
const OWNERSHIP_PROBE: u64 = 1 << 20;

/// Bytes of a line too long to hold kept in memory: enough to recognise it again and
/// to judge whether it could have been written by this library.
const OVERSIZE_PREFIX: usize = 4 << 10;

/// Bytes that are not a record, and where they were.
#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub(crate) offset: u64,
    /// All its bytes, or for a line longer than the maximum record size only the first
    /// [`OVERSIZE_PREFIX`]: the rest is copied from the file when it is moved out.
    pub(crate) bytes: Vec<u8>,
    /// Its length in the file.
    pub(crate) len: u64,
    pub(crate) reason: String,
}

impl Segment {
    fn held(offset: u64, bytes: Vec<u8>, reason: String) -> Segment {
        let len = bytes.len() as u64;
        Segment {
            offset,
            bytes,
            len,
            reason,
        }
    }

    /// Whether all its bytes are in memory.
    pub(crate) fn is_held(&self) -> bool {
        self.bytes.len() as u64 == self.len
    }
}

/// A line found longer than the maximum record size, being skipped.
struct Oversize {
    offset: u64,
    prefix: Vec<u8>,
}

/// What a scan found besides records, which it applied to the index.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Just past the last complete line.
    pub(crate) end: u64,
    /// Just past the last byte read: `end` plus the incomplete tail, if any.
    pub(crate) observed: u64,
    /// Complete lines, or the damaged front of a line, that are not records.
    pub(crate) corrupt: Vec<Segment>,
    /// Bytes after the last newline: a line still being written, or a torn one.
    pub(crate) tail: Option<Segment>,
}

impl Index {
    /// Applies a record whose line starts at `offset` and is `len` bytes long.
    pub(crate) fn apply(&mut self, offset: u64, len: u64, record: Record) {
        match record {
            Record::Save {
                summary,
                trace_start,
                trace_len,
            } => {
                let loc = Loc {
                    offset,
                    len,
                    trace_offset: offset + trace_start,
                    trace_len,
                };
                self.save(*summary, loc);
            }
            Record::Delete { run_id } => self.delete(&run_id),
        }
    }
}

/// Reads `file` from `from` (the start of a line) to its end, applying every record to
/// `index`. `whole` says the scan starts at the beginning of the file, so line numbers
/// are known and the file's ownership is decided here. A line longer than `max_line`
/// bytes is never held whole: it becomes a [`Segment`] holding only its front.
///
/// A well-formed JSON line that is not a trace-store record, in a file where no record
/// was seen before it, means the file belongs to someone else (a selectools store, for
/// example): that is [`Error::Corrupt`] naming the line, and nothing is changed. In a
/// file of ours such a line is damage like any other and is reported for quarantine.
pub(crate) fn scan(
    file: &File,
    path: &Path,
    from: u64,
    expected_len: u64,
    index: &mut Index,
    whole: bool,
    max_line: u64,
) -> Result<Scan> {
    let mut lines = Lines {
        path,
        index,
        corrupt: Vec::new(),
        line_number: whole.then_some(0),
    };
    let mut buf: Vec<u8> = Vec::new();
    // File offset of buf[0], and how much of buf is known to hold no newline.
    let mut buf_offset = from;
    let mut searched = 0;
    // Whether the ownership of the file was checked early (a scan of a tail never does).
    let mut probed = !whole;
    let mut oversize: Option<Oversize> = None;
    loop {
        let remaining = expected_len.saturating_sub(buf_offset + buf.len() as u64);
        let want = (remaining as usize).clamp(MIN_CHUNK, CHUNK);
        let filled = buf.len();
        // Exact growth: doubling would leave a long line's buffer up to twice the
        // maximum record size, and copying it would hold both at once.
        buf.reserve_exact(want);
        buf.resize(filled + want, 0);
        let read = loop {
            match read_at(file, &mut buf[filled..], buf_offset + filled as u64) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let read = read.map_err(|e| io_error("cannot read", path, e))?;
        buf.truncate(filled + read);
        if read == 0 {
            break;
        }
        let mut line_start = 0;
        while let Some(newline) = memchr::memchr(b'\n', &buf[searched..]) {
            let line_end = searched + newline + 1;
            let line = &buf[line_start..line_end];
            let offset = buf_offset + line_start as u64;
            if line.len() as u64 - 1 > max_line && !is_blank(&line[..line.len() - 1]) {
                // Whether a long line ends within one read must not decide its fate.
                let prefix = line[..OVERSIZE_PREFIX.min(line.len())].to_vec();
                lines.oversize(offset, prefix, line.len() as u64 - 1, max_line);
            } else {
                lines.line(offset, line)?;
            }
            line_start = line_end;
            searched = line_end;
        }
        buf.drain(..line_start);
        buf_offset += line_start as u64;
        searched = buf.len();
        if !probed && buf_offset + buf.len() as u64 >= OWNERSHIP_PROBE {
            // Once: the pieces checked only grow, and a check reads them whole.
            probed = true;
            if !lines.index.native {
                let reason = "no trace-store line starts here";
                let front = &buf[..buf.len().min(OWNERSHIP_PROBE as usize)];
                lines.refuse_if_foreign((buf_offset, front, reason), Some(OWNERSHIP_PROBE))?;
            }
        }
        if buf.len() as u64 > max_line {
            // Too long to be a record: keep its front, find its end without holding it.
            let offset = buf_offset;
            let skip_from = buf_offset + buf.len() as u64;
            let prefix = buf[..OVERSIZE_PREFIX.min(buf.len())].to_vec();
            let blank = is_blank(&buf);
            // Frees the line's buffer now: the scan goes on with a small one.
            buf = Vec::new();
            searched = 0;
            match find_newline(file, path, skip_from)? {
                Ok((newline, rest_blank)) => {
                    if blank && rest_blank {
                        // A long damaged line blanked before: nothing to move.
                        lines.count_line();
                    } else {
                        lines.oversize(offset, prefix, newline - offset, max_line);
                    }
                    buf_offset = newline + 1;
                }
                Err(eof) => {
                    oversize = Some(Oversize { offset, prefix });
                    buf_offset = eof;
                    break;
                }
            }
        }
    }
    let reason = "incomplete last line: its writer stopped in the middle of it";
    let (end, observed, tail) = match oversize {
        Some(long) => {
            let len = buf_offset - long.offset;
            let tail = Segment {
                offset: long.offset,
                bytes: long.prefix,
                len,
                reason: format!(
                    "incomplete last line of at least {len} bytes, longer than the maximum \
                     record size ({max_line} bytes): its writer stopped in the middle of it"
                ),
            };
            (long.offset, buf_offset, Some(tail))
        }
        None => {
            let end = buf_offset;
            let observed = end + buf.len() as u64;
            let tail = (!buf.is_empty()).then(|| Segment::held(end, buf, reason.to_owned()));
            (end, observed, tail)
        }
    };
    if whole && !lines.index.native {
        let front = tail.as_ref().map_or(&[][..], |tail| &tail.bytes[..]);
        lines.refuse_if_foreign((end, front, reason), None)?;
    }
    Ok(Scan {
        end,
        observed,
        corrupt: lines.corrupt,
        tail,
    })
}

/// The offset of the first newline at or after `from`, read a piece at a time and
/// not kept, and whether the bytes before it are all blank; `Err(end)` if the file ends
/// at `end` first.
fn find_newline(file: &File, path: &Path, from: u64) -> Result<Result<(u64, bool), u64>> {
    let mut buf = vec![0; CHUNK];
    let mut at = from;
    let mut blank = true;
    loop {
        let read = match read_at(file, &mut buf, at) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => other.map_err(|e| io_error("cannot read", path, e))?,
        };
        if read == 0 {
            return Ok(Err(at));
        }
        if let Some(newline) = memchr::memchr(b'\n', &buf[..read]) {
            blank &= is_blank(&buf[..newline]);
            return Ok(Ok((at + newline as u64, blank)));
        }
        blank &= is_blank(&buf[..read]);
        at += read as u64;
    }
}

struct Lines<'a> {
    path: &'a Path,
    index: &'a mut Index,
    corrupt: Vec<Segment>,
    line_number: Option<u64>,
}

impl Lines<'_> {
    /// In a file with no record so far (in all of it, or in its first `read` bytes):
    /// refuses it if its first damaged piece, or else `partial` (the offset, bytes and
    /// state of the line being read), could not have been written by this library.
    fn refuse_if_foreign(&self, partial: (u64, &[u8], &str), read: Option<u64>) -> Result<()> {
        let (offset, bytes, reason) = match self.corrupt.first() {
            Some(first) => (first.offset, &first.bytes[..], &first.reason[..]),
            None => partial,
        };
        if could_be_ours(bytes) {
            return Ok(());
        }
        let path = self.path.display();
        let at = CorruptAt::default()
            .with_file(self.path)
            .with_offset(offset);
        Err(Error::corrupt_at(
            at,
            match read {
                None => format!(
                    "{path} holds no trace-store record and does not look like a trace-store JSON \
                 Lines file (byte offset {offset}: {reason}); the file was left untouched"
                ),
                Some(read) => format!(
                    "{path} does not look like a trace-store JSON Lines file: its first {read} bytes \
                 hold no record (byte offset {offset}: {reason}); the file was left untouched \
                 (were it a store whose start is damaged, cut the damaged bytes off by hand)"
                ),
            },
        ))
    }

    /// One complete line, newline included.
    fn line(&mut self, offset: u64, line: &[u8]) -> Result<()> {
        if let Some(n) = &mut self.line_number {
            *n += 1;
        }
        let body = &line[..line.len() - 1];
        if is_blank(body) {
            return Ok(());
        }
        let unreadable = match parse_record(body) {
            Ok(record) => {
                self.index.apply(offset, line.len() as u64, record);
                return Ok(());
            }
            Err(unreadable) => unreadable,
        };
        if let Some((at, record)) = recover_glued(body) {
            self.corrupt.push(Segment::held(
                offset,
                body[..at].to_vec(),
                format!(
                    "damaged bytes in front of a record ({})",
                    unreadable.reason()
                ),
            ));
            self.index
                .apply(offset + at as u64, (line.len() - at) as u64, record);
            return Ok(());
        }
        if let Unreadable::Foreign(reason) = &unreadable
            && !self.index.native
        {
            let place = match self.line_number {
                Some(n) => format!("line {n} (byte offset {offset})"),
                None => format!("the line at byte offset {offset}"),
            };
            let mut at = CorruptAt::default()
                .with_file(self.path)
                .with_offset(offset);
            if let Some(n) = self.line_number {
                at = at.with_line(n);
            }
            return Err(Error::corrupt_at(
                at,
                format!(
                    "{} {place} is not a trace-store record: {reason}; the file was left untouched \
                 (to move a selectools store into trace-store, use `trace-store import`)",
                    self.path.display()
                ),
            ));
        }
        self.corrupt.push(Segment::held(
            offset,
            body.to_vec(),
            unreadable.reason().to_owned(),
        ));
        Ok(())
    }

    /// A line passed over without being looked at.
    fn count_line(&mut self) {
        if let Some(n) = &mut self.line_number {
            *n += 1;
        }
    }

    /// A complete line of `len` bytes (newline excluded) longer than any record.
    fn oversize(&mut self, offset: u64, prefix: Vec<u8>, len: u64, max_line: u64) {
        if let Some(n) = &mut self.line_number {
            *n += 1;
        }
        self.corrupt.push(Segment {
            offset,
            bytes: prefix,
            len,
            reason: format!(
                "line of {len} bytes, longer than the maximum record size ({max_line} bytes)"
            ),
        });
    }
}
