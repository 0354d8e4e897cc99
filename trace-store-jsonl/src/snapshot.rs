//! The index snapshot, `<file>.index`: the index as of a byte offset of the store file,
//! so an open reads it and only the lines appended since instead of the whole file.
//!
//! It is a cache, never trusted: it is used only if its format version is this one, its
//! checksum holds, it names the store file's device and inode, the file is at least as
//! long as the offset it covers, and the last bytes before that offset are the ones it
//! saw (their CRC-32). Anything else (a snapshot of another file, of a compacted or
//! truncated file, a damaged or torn one, one written by a newer version) is ignored
//! and the index is built from the file. It is written to a temporary file beside the
//! store and renamed over the old one, with the store file's permission bits.
//!
//! Format (little-endian): magic, version (u32), the identity (device, inode, covered
//! length, length and CRC-32 of the bytes checked), the counters, the string and value
//! tables (their slots, so symbols keep their numbers), the entries in list order, and
//! a CRC-32 of everything before it.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use trace_store_core::{ModelUsage, Status, Timestamp};

use crate::index::paths::{Ids, Ordered};
use crate::index::{Entry, Index, Loc, Slot};
use crate::intern::{Map, NONE, Sym, canonical_hash};
use crate::sys::{FileId, read_exact_at};
use input::{Fields, In};

mod input;

const MAGIC: &[u8; 8] = b"TSJLIDX\n";
/// Bumped whenever the layout changes: a snapshot of another version is rebuilt.
pub(crate) const VERSION: u32 = 1;
/// Bytes before the covered end whose CRC-32 the snapshot keeps.
const CHECKED: u64 = 4096;

/// `<file>.index`.
pub(crate) fn path_of(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".index");
    store.with_file_name(name)
}

/// What the snapshot says about the store file, checked before anything else is read.
#[derive(Debug, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    end: u64,
    checked: u64,
    crc: u32,
}

impl Identity {
    /// The identity of `file` as of `end`.
    fn of(file: &File, id: FileId, end: u64) -> io::Result<Option<Identity>> {
        let Some((dev, ino)) = id.raw() else {
            return Ok(None);
        };
        let checked = end.min(CHECKED);
        let mut bytes = vec![0; checked as usize];
        read_exact_at(file, &mut bytes, end - checked)?;
        Ok(Some(Identity {
            dev,
            ino,
            end,
            checked,
            crc: crc32fast::hash(&bytes),
        }))
    }
}

/// Writes the snapshot of `index`, which covers `file` up to `end`, to `target`
/// (atomically, with the permission bits of `file`).
pub(crate) fn write(
    target: &Path,
    index: &Index,
    file: &File,
    id: FileId,
    end: u64,
) -> io::Result<bool> {
    let Some(identity) = Identity::of(file, id, end)? else {
        return Ok(false);
    };
    let dir = crate::parent_dir(target);
    let temp = tempfile::Builder::new()
        .prefix(&temp_prefix(target))
        .suffix(crate::compact::TEMP_SUFFIX)
        .tempfile_in(dir)?;
    temp.as_file()
        .set_permissions(file.metadata()?.permissions())?;
    let mut out = Out {
        inner: BufWriter::with_capacity(1 << 20, temp.as_file()),
        crc: crc32fast::Hasher::new(),
    };
    out.bytes(MAGIC)?;
    out.u32(VERSION)?;
    for n in [identity.dev, identity.ino, identity.end, identity.checked] {
        out.u64(n)?;
    }
    out.u32(identity.crc)?;
    write_index(&mut out, index)?;
    let crc = out.crc.clone().finalize();
    out.inner.write_all(&crc.to_le_bytes())?;
    out.inner.flush()?;
    drop(out);
    temp.persist(target).map_err(|e| e.error)?;
    Ok(true)
}

/// Prefix of the temporary files a snapshot is written to, for clean-up at open.
pub(crate) fn temp_prefix(target: &Path) -> String {
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    format!(".{name}-{}-", std::process::id())
}

fn write_index(out: &mut Out<impl Write>, index: &Index) -> io::Result<()> {
    out.u64(index.live_bytes)?;
    out.u64(index.dead_records)?;
    out.u8(u8::from(index.native))?;
    let strings = index.strings.slots();
    out.u32(strings.len() as u32)?;
    for slot in strings {
        match slot {
            Some(text) => {
                out.u8(1)?;
                out.text(text)?;
            }
            None => out.u8(0)?,
        }
    }
    let values = index.values.table.slots();
    out.u32(values.len() as u32)?;
    for slot in values {
        match slot {
            Some(value) => {
                out.u8(1)?;
                out.value(value)?;
            }
            None => out.u8(0)?,
        }
    }
    out.u64(index.order.len() as u64)?;
    for slot in index.order.ascending() {
        let entry = index
            .slot(slot)
            .ok_or_else(|| io::Error::other("an ordered slot without an entry"))?;
        write_entry(out, entry)?;
    }
    Ok(())
}

fn write_entry(out: &mut Out<impl Write>, e: &Entry) -> io::Result<()> {
    out.text(&e.run_id)?;
    for n in [e.loc.offset, e.loc.len, e.loc.trace_offset, e.loc.trace_len] {
        out.u64(n)?;
    }
    out.u64(e.created_at.as_micros() as u64)?;
    for sym in [e.name, e.session, e.parent] {
        out.u32(sym)?;
    }
    out.u8(status_code(e.status))?;
    out.u64(e.steps as u64)?;
    out.u64(e.total_ms.to_bits())?;
    for n in [
        e.error_count,
        e.failed_steps,
        e.input_tokens,
        e.output_tokens,
    ] {
        out.u64(n)?;
    }
    out.u64(e.cost_nano_usd as u64)?;
    out.u32(e.models.len() as u32)?;
    for (sym, usage) in e.models.iter() {
        out.u32(*sym)?;
        for n in [usage.calls, usage.input_tokens, usage.output_tokens] {
            out.u64(n)?;
        }
        out.u64(usage.cost_nano_usd as u64)?;
    }
    out.u32(e.metadata.len() as u32)?;
    for &(key, value) in e.metadata.iter() {
        out.u32(key)?;
        out.u32(value)?;
    }
    out.u32(e.scores.len() as u32)?;
    for &(name, value) in e.scores.iter() {
        out.u32(name)?;
        out.u64(value.to_bits())?;
    }
    Ok(())
}

fn status_code(status: Status) -> u8 {
    match status {
        Status::Unset => 0,
        Status::Running => 1,
        Status::Ok => 2,
        Status::Error => 3,
    }
}

fn status_of(code: u8) -> Option<Status> {
    Some(match code {
        0 => Status::Unset,
        1 => Status::Running,
        2 => Status::Ok,
        3 => Status::Error,
        _ => return None,
    })
}

/// A writer that keeps the CRC-32 of what went through it.
struct Out<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Out<W> {
    fn bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.inner.write_all(bytes)
    }
    fn u8(&mut self, n: u8) -> io::Result<()> {
        self.bytes(&[n])
    }
    fn u32(&mut self, n: u32) -> io::Result<()> {
        self.bytes(&n.to_le_bytes())
    }
    fn u64(&mut self, n: u64) -> io::Result<()> {
        self.bytes(&n.to_le_bytes())
    }
    fn text(&mut self, text: &str) -> io::Result<()> {
        self.u32(u32::try_from(text.len()).map_err(io::Error::other)?)?;
        self.bytes(text.as_bytes())
    }
    /// A metadata value, exactly: numbers keep whether they were integers or floats.
    fn value(&mut self, value: &Value) -> io::Result<()> {
        match value {
            Value::Null => self.u8(0),
            Value::Bool(b) => self.u8(1 + u8::from(*b)),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) if !n.is_f64() => {
                    self.u8(3)?;
                    self.u64(u)
                }
                (_, Some(i), _) if !n.is_f64() => {
                    self.u8(4)?;
                    self.u64(i as u64)
                }
                (_, _, Some(f)) => {
                    self.u8(5)?;
                    self.u64(f.to_bits())
                }
                _ => Err(io::Error::other("a number that is no u64, i64 or f64")),
            },
            Value::String(s) => {
                self.u8(6)?;
                self.text(s)
            }
            Value::Array(items) => {
                self.u8(7)?;
                self.u32(items.len() as u32)?;
                items.iter().try_for_each(|item| self.value(item))
            }
            Value::Object(members) => {
                self.u8(8)?;
                self.u32(members.len() as u32)?;
                members.iter().try_for_each(|(key, value)| {
                    self.text(key)?;
                    self.value(value)
                })
            }
        }
    }
}

/// The index in the snapshot at `path`, if it is valid for `file` (identity `id`, length
/// `len`), and the offset it covers the file up to.
///
/// Read a piece at a time and decoded as it comes, its checksum computed on the way and
/// compared at the end: a million traces make a 200 MB snapshot, and fresh memory that
/// size costs more to fault in than the reading itself.
pub(crate) fn read(path: &Path, file: &File, id: FileId, len: u64) -> Option<(Index, u64)> {
    let snapshot = File::open(path).ok()?;
    let body = snapshot.metadata().ok()?.len().checked_sub(4)?;
    let mut input = In::new(snapshot, body);
    if input.take(MAGIC.len())? != MAGIC || input.u32()? != VERSION {
        return None;
    }
    let identity = Identity {
        dev: input.u64()?,
        ino: input.u64()?,
        end: input.u64()?,
        checked: input.u64()?,
        crc: input.u32()?,
    };
    if identity.end > len || identity.checked != identity.end.min(CHECKED) {
        return None;
    }
    if Identity::of(file, id, identity.end).ok()?? != identity {
        return None;
    }
    let index = read_index(&mut input)?;
    input.finish()?;
    Some((index, identity.end))
}

fn read_index<R: Read>(input: &mut In<R>) -> Option<Index> {
    let live_bytes = input.u64()?;
    let dead_records = input.u64()?;
    let native = input.u8()? != 0;
    let strings = input.slots(|input| Some(Arc::<str>::from(input.text()?)))?;
    let values = input.slots(|input| Some(Arc::new(input.value(0)?)))?;
    let canonical: Vec<u64> = values
        .iter()
        .map(|value| value.as_deref().map_or(0, canonical_hash))
        .collect();
    // Each posting's slots, ascending (the entries come in list order), gathered while
    // each entry is at hand.
    let mut postings: Map<(Sym, u64), Vec<Slot>> = Map::default();
    let mut string_uses = vec![0u32; strings.len()];
    let mut value_uses = vec![0u32; values.len()];
    let count = input.u64()?;
    let mut entries = Vec::with_capacity(count.min(input.remaining() / 64) as usize);
    for _ in 0..count {
        let entry = read_entry(input)?;
        let mut strings_used = [entry.name, entry.session, entry.parent]
            .into_iter()
            .filter(|&sym| sym != NONE)
            .chain(entry.models.iter().map(|(sym, _)| *sym))
            .chain(entry.metadata.iter().map(|(key, _)| *key))
            .chain(entry.scores.iter().map(|(sym, _)| *sym));
        strings_used.try_for_each(|sym| {
            let uses = string_uses.get_mut(sym as usize)?;
            strings[sym as usize].as_ref()?;
            *uses += 1;
            Some(())
        })?;
        let slot = entries.len() as Slot;
        for &(key, value) in entry.metadata.iter() {
            value_uses.get_mut(value as usize).map(|uses| *uses += 1)?;
            values[value as usize].as_ref()?;
            let posting = (key, canonical[value as usize]);
            postings.entry(posting).or_default().push(slot);
        }
        entries.push(Some(entry));
    }
    Index::from_parts(
        entries,
        postings,
        (strings, string_uses),
        (values, value_uses),
        (live_bytes, dead_records, native),
    )
}

/// Bytes of an entry between its run_id and its lists.
const ENTRY_FIXED: usize = 4 * 8 + 8 + 3 * 4 + 1 + 8 + 8 + 4 * 8 + 8;

fn read_entry<R: Read>(input: &mut In<R>) -> Option<Entry> {
    let run_id: Arc<str> = Arc::from(input.text()?);
    trace_store_core::validate_run_id(&run_id).ok()?;
    let mut fixed = Fields(input.take(ENTRY_FIXED)?);
    let f = &mut fixed;
    let loc = Loc {
        offset: f.u64()?,
        len: f.u64()?,
        trace_offset: f.u64()?,
        trace_len: f.u64()?,
    };
    let created_at = Timestamp::from_micros(f.u64()? as i64).ok()?;
    let (name, session, parent) = (f.u32()?, f.u32()?, f.u32()?);
    let status = status_of(f.u8()?)?;
    let steps = usize::try_from(f.u64()?).ok()?;
    let total_ms = f64::from_bits(f.u64()?);
    let [error_count, failed_steps, input_tokens, output_tokens] =
        [f.u64()?, f.u64()?, f.u64()?, f.u64()?];
    let cost_nano_usd = f.u64()? as i64;
    let models = input.records(4 + 4 * 8, |f| {
        let sym = f.u32()?;
        let mut usage = ModelUsage::default();
        usage.calls = f.u64()?;
        usage.input_tokens = f.u64()?;
        usage.output_tokens = f.u64()?;
        usage.cost_nano_usd = f.u64()? as i64;
        Some((sym, usage))
    })?;
    let metadata = input.records(4 + 4, |f| Some((f.u32()?, f.u32()?)))?;
    let scores = input.records(4 + 8, |f| Some((f.u32()?, f64::from_bits(f.u64()?))))?;
    Some(Entry {
        run_id,
        loc,
        created_at,
        name,
        session,
        parent,
        status,
        steps,
        total_ms,
        error_count,
        failed_steps,
        input_tokens,
        output_tokens,
        cost_nano_usd,
        models,
        metadata,
        scores,
    })
}

impl Index {
    /// An index of `entries` (in ascending list order) over tables whose uses were
    /// counted from them; `None` if they contradict each other.
    ///
    /// The entries are in list order, so that order is their slots, and each metadata
    /// posting is its slots in the order met: no tree is built and no key copied. The
    /// run_id table, the one part that hashes every entry, is built beside the check of
    /// the order.
    fn from_parts(
        entries: Vec<Option<Entry>>,
        postings: Map<(Sym, u64), Vec<Slot>>,
        strings: (Vec<Option<Arc<str>>>, Vec<u32>),
        values: (Vec<Option<Arc<Value>>>, Vec<u32>),
        (live_bytes, dead_records, native): (u64, u64, bool),
    ) -> Option<Index> {
        let mut index = Index::default();
        index.live_bytes = live_bytes;
        index.dead_records = dead_records;
        index.native = native;
        index.strings = crate::intern::Table::from_slots(strings.0, &strings.1)?;
        index.values = crate::intern::Values::from_slots(values.0, &values.1)?;
        let entries_ref = &entries;
        let (by_id, ordered) = std::thread::scope(|scope| {
            let by_id = beside(scope, move || id_table(entries_ref));
            let ordered = in_list_order(entries_ref, live_bytes);
            (by_id(), ordered)
        });
        if !ordered {
            return None;
        }
        index.by_id = by_id?;
        index.postings = postings
            .into_iter()
            .map(|(posting, slots)| (posting, Ordered::sorted(slots, &entries)))
            .collect();
        index.order = Ordered::sorted((0..entries.len() as Slot).collect(), &entries);
        index.entries = entries;
        Some(index)
    }
}

/// Runs `work` on a thread of `scope` (or here, should no thread be available); the
/// returned function waits for its result. `work` only borrows, so it is `Copy`.
fn beside<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    work: impl FnOnce() -> T + Send + Copy + 'scope,
) -> impl FnOnce() -> T + 'scope {
    let thread = std::thread::Builder::new().spawn_scoped(scope, work).ok();
    move || match thread.map(std::thread::ScopedJoinHandle::join) {
        Some(Ok(result)) => result,
        // No thread, or it panicked: the work is done here (again).
        _ => work(),
    }
}

/// run_id → slot; `None` if a run_id is there twice.
fn id_table(entries: &[Option<Entry>]) -> Option<Ids> {
    let mut by_id = Ids::with_capacity(entries.len());
    (0..entries.len() as Slot)
        .all(|slot| by_id.insert(slot, entries))
        .then_some(by_id)
}

/// Whether the entries are strictly ascending in list order and their lines add up to
/// `live_bytes`.
fn in_list_order(entries: &[Option<Entry>], live_bytes: u64) -> bool {
    let mut live = 0u64;
    let mut last = None;
    for entry in entries {
        let Some(entry) = entry else {
            return false;
        };
        let key = (entry.created_at, &*entry.run_id);
        if last.is_some_and(|last| last >= key) {
            return false;
        }
        last = Some(key);
        let Some(sum) = live.checked_add(entry.loc.len) else {
            return false;
        };
        live = sum;
    }
    live == live_bytes
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
