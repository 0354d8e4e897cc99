//! Moving a line too long to hold in memory to `<file>.corrupt`, a piece at a time.

use std::fs::File;
use std::io::{self, Write};

use serde::Serialize;
use trace_store_core::Timestamp;

use crate::sys::read_exact_at;

/// Bytes read from the store file at a time.
const PIECE: usize = 1 << 20;

/// Writes the `.corrupt` entry of the `len` bytes at `offset` in `source`: the entry
/// `format::quarantine_entry` makes of bytes in memory (`zeros`, else `text` when they
/// are UTF-8, else `hex`), built from two passes over the file instead.
pub(crate) fn write_streamed_entry(
    source: &File,
    offset: u64,
    len: u64,
    reason: &str,
    out: &mut impl Write,
) -> io::Result<()> {
    #[derive(Serialize)]
    struct Head<'a> {
        offset: u64,
        length: u64,
        reason: &'a str,
        quarantined_at: Timestamp,
    }
    let mut zeros = true;
    let nothing = vec![0; PIECE.min(len as usize)];
    pieces(source, offset, len, |bytes| {
        zeros &= bytes == &nothing[..bytes.len()];
        Ok(())
    })?;
    let text = !zeros && text_pieces(source, offset, len, |_| Ok(()))?;
    let head = Head {
        offset,
        length: len,
        reason,
        quarantined_at: Timestamp::now(),
    };
    let mut line = serde_json::to_vec(&head).map_err(io::Error::other)?;
    line.pop(); // its closing brace: more members follow
    out.write_all(&line)?;
    if zeros {
        return out.write_all(b",\"zeros\":true}\n");
    }
    if text {
        out.write_all(b",\"text\":\"")?;
        text_pieces(source, offset, len, |piece| {
            let quoted = serde_json::to_vec(piece).map_err(io::Error::other)?;
            out.write_all(&quoted[1..quoted.len() - 1])
        })?;
    } else {
        out.write_all(b",\"hex\":\"")?;
        let mut hex = Vec::with_capacity(PIECE * 2);
        pieces(source, offset, len, |bytes| {
            hex.clear();
            for b in bytes {
                hex.extend_from_slice(format!("{b:02x}").as_bytes());
            }
            out.write_all(&hex)
        })?;
    }
    out.write_all(b"\"}\n")
}

/// Calls `visit` with the `len` bytes at `offset`, a piece at a time.
fn pieces(
    source: &File,
    offset: u64,
    len: u64,
    mut visit: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = vec![0; PIECE.min(len as usize)];
    let mut at = 0;
    while at < len {
        let n = ((len - at) as usize).min(PIECE);
        read_exact_at(source, &mut buf[..n], offset + at)?;
        visit(&buf[..n])?;
        at += n as u64;
    }
    Ok(())
}

/// Calls `visit` with the bytes as UTF-8 text, a piece at a time (pieces end on
/// character boundaries); false, part way, if they are not UTF-8.
fn text_pieces(
    source: &File,
    offset: u64,
    len: u64,
    mut visit: impl FnMut(&str) -> io::Result<()>,
) -> io::Result<bool> {
    // A character split between two pieces waits here for the rest of its bytes.
    let mut pending: Vec<u8> = Vec::new();
    let mut broken = false;
    let walked = pieces(source, offset, len, |bytes| {
        pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&pending) {
            Ok(text) => text.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => {
                broken = true;
                return Err(io::Error::from(io::ErrorKind::InvalidData));
            }
        };
        if let Ok(text) = std::str::from_utf8(&pending[..valid]) {
            visit(text)?;
        }
        pending.drain(..valid);
        Ok(())
    });
    match walked {
        Err(_) if broken => Ok(false),
        Err(e) => Err(e),
        Ok(()) => Ok(pending.is_empty()),
    }
}
