#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod compact;
mod format;
mod index;
mod intern;
mod quarantine;
mod scan;
mod select;
mod snapshot;
mod state;
mod sys;
mod url;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
pub use trace_store_core::Durability;
use trace_store_core::{
    Error, GroupBy, GroupKey, Result, Trace, TraceFilter, TraceStats, TraceStore, TraceSummary,
    validate_run_id,
};

use crate::format::{push_save, push_tombstone};
use crate::index::Index;
use crate::state::{OpenFile, State};
use crate::sys::{io_error, sync_dir};
pub use crate::url::SCHEME;

/// Files smaller than this are never compacted automatically (1 MiB).
pub const DEFAULT_AUTO_COMPACT_MIN_BYTES: u64 = 1 << 20;

/// Options of [`JsonlStore::open_with`].
///
/// ```
/// use trace_store_jsonl::{Durability, JsonlOptions};
///
/// let options = JsonlOptions::default()
///     .with_durability(Durability::Sync)
///     .with_auto_compact_min_bytes(64 << 20);
/// assert_eq!(options.auto_compact_min_bytes, Some(64 << 20));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JsonlOptions {
    /// [`Durability::Flush`] (the default): a save is in the operating system when it
    /// returns, so it survives the process being killed. [`Durability::Sync`]: each
    /// append is fsynced, so it survives power loss.
    pub durability: Durability,
    /// Compact by itself after a write once dead bytes (superseded and deleted records,
    /// tombstones, blanked damage) outweigh live ones and the file is at least this
    /// large. `None` never compacts by itself; [`JsonlStore::compact`] always works.
    pub auto_compact_min_bytes: Option<u64>,
    /// Open without write access: reads work, writes are errors, and damage is reported
    /// by [`JsonlStore::health`] but not repaired.
    pub read_only: bool,
    /// How long a write waits for the file lock (another handle's or process's write,
    /// or a compaction) before failing with a retryable [`Error::Backend`] naming the
    /// file; [`DEFAULT_LOCK_TIMEOUT`] (5 s, SQLite's default busy timeout) by default.
    pub lock_timeout: Duration,
    /// Permission bits of the files the store creates: the store file and its
    /// `.corrupt` side file ([`DEFAULT_FILE_MODE`], `0o600`, by default: traces hold
    /// prompts and user data). The process's umask still applies. Existing files keep
    /// their mode; compaction keeps the mode, owner and group of the file it replaces.
    /// Ignored on platforms without Unix permissions.
    pub file_mode: u32,
    /// The longest line read into memory, in bytes ([`DEFAULT_MAX_RECORD_BYTES`],
    /// 64 MiB, by default). A longer line cannot be a record this store accepts to
    /// read: it is moved to `<file>.corrupt` a piece at a time, never held whole, so a
    /// file without newlines cannot exhaust memory. Saving a trace whose line would be
    /// longer is refused with [`Error::InvalidInput`].
    pub max_record_bytes: u64,
    /// Keep an index snapshot, `<file>.index`, once the file is at least this large
    /// ([`DEFAULT_INDEX_SNAPSHOT_MIN_BYTES`], 16 MiB, by default); `None` never writes
    /// one (an existing one is still used). It is written when a handle closes, after
    /// a compaction, and after an open that had to read the whole file; an open uses
    /// it, after checking it against the file, and reads only the lines appended
    /// since. See the README ("Index snapshot").
    pub index_snapshot_min_bytes: Option<u64>,
}

/// How long a write waits for the file lock by default: 5 s, as SQLite's busy timeout.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// Permission bits of the files a store creates by default: owner read and write only.
pub const DEFAULT_FILE_MODE: u32 = 0o600;

/// The longest line read into memory by default (64 MiB), far above the largest traces
/// expected (a few MB).
pub const DEFAULT_MAX_RECORD_BYTES: u64 = 64 << 20;

/// Smallest file for which an index snapshot is kept, by default: below it, reading the
/// whole file takes well under a second.
pub const DEFAULT_INDEX_SNAPSHOT_MIN_BYTES: u64 = 16 << 20;

impl Default for JsonlOptions {
    fn default() -> Self {
        JsonlOptions {
            durability: Durability::Flush,
            auto_compact_min_bytes: Some(DEFAULT_AUTO_COMPACT_MIN_BYTES),
            read_only: false,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            file_mode: DEFAULT_FILE_MODE,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            index_snapshot_min_bytes: Some(DEFAULT_INDEX_SNAPSHOT_MIN_BYTES),
        }
    }
}

impl JsonlOptions {
    /// Sets the durability of each append.
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Compacts automatically once dead bytes outweigh live ones in a file of at least
    /// `min_bytes` (0: at any size).
    #[must_use]
    pub fn with_auto_compact_min_bytes(mut self, min_bytes: u64) -> Self {
        self.auto_compact_min_bytes = Some(min_bytes);
        self
    }

    /// Never compacts automatically.
    #[must_use]
    pub fn without_auto_compact(mut self) -> Self {
        self.auto_compact_min_bytes = None;
        self
    }

    /// Opens the file read-only (it must exist).
    #[must_use]
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Sets how long a write waits for the file lock.
    #[must_use]
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Sets the permission bits of files the store creates (`0o640` lets the group
    /// read them).
    #[must_use]
    pub fn with_file_mode(mut self, mode: u32) -> Self {
        self.file_mode = mode;
        self
    }

    /// Sets the longest line read into memory.
    #[must_use]
    pub fn with_max_record_bytes(mut self, max: u64) -> Self {
        self.max_record_bytes = max;
        self
    }

    /// Keeps an index snapshot once the file is at least `min_bytes` long (0: always).
    #[must_use]
    pub fn with_index_snapshot_min_bytes(mut self, min_bytes: u64) -> Self {
        self.index_snapshot_min_bytes = Some(min_bytes);
        self
    }

    /// Never writes an index snapshot (one already there is still used, if valid).
    #[must_use]
    pub fn without_index_snapshot(mut self) -> Self {
        self.index_snapshot_min_bytes = None;
        self
    }
}

/// The state of a store's file, as [`JsonlStore::health`] reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Health {
    /// The store's file.
    pub path: PathBuf,
    /// Its length, in bytes.
    pub file_bytes: u64,
    /// Traces stored.
    pub live_records: u64,
    /// Bytes of their save lines.
    pub live_bytes: u64,
    /// Superseded and deleted saves, and tombstones: what compaction removes.
    pub dead_records: u64,
    /// Bytes compaction would free: dead records, blanked damage, blank lines.
    pub dead_bytes: u64,
    /// Where damaged lines are moved.
    pub corrupt_path: PathBuf,
    /// Entries in the `.corrupt` file: damaged lines moved out of this file so far.
    pub quarantined_lines: u64,
    /// Damaged lines this handle saw but could not move yet (read-only, or the
    /// `.corrupt` file cannot be written; see `last_error`).
    pub unquarantined_lines: u64,
    /// Bytes after the last newline: a line being written right now, or one torn by a
    /// crash that the next write will move out.
    pub incomplete_tail_bytes: u64,
    /// The last repair or automatic compaction that failed.
    pub last_error: Option<String>,
    /// Times this handle read the whole file again since it opened: after another
    /// handle compacted it, or the file shrank. Appends (this handle's or others') are
    /// read incrementally and never count; a handle nobody rewrites the file under
    /// stays at 0.
    pub full_rereads: u64,
    /// Whether this handle's last whole read of the file (at open, or after another
    /// handle compacted it) started from a valid index snapshot, reading only the lines
    /// appended after it.
    pub index_from_snapshot: bool,
}

/// What [`JsonlStore::compact`] did.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CompactionReport {
    /// File length before.
    pub bytes_before: u64,
    /// File length after.
    pub bytes_after: u64,
    /// Traces kept.
    pub live_records: u64,
    /// Superseded and deleted saves and tombstones removed.
    pub dropped_records: u64,
    /// How long it took (`duration_ms` in JSON).
    #[serde(rename = "duration_ms", serialize_with = "as_millis")]
    pub duration: Duration,
}

fn as_millis<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64() * 1e3)
}

/// A trace store in one JSON Lines file, with an in-memory index.
///
/// See the [crate documentation](crate) for the file format, sharing and recovery.
/// Every method takes `&self`; share a store across threads with `Arc`, and open as
/// many handles on the same file, in as many processes, as you like.
pub struct JsonlStore {
    /// Canonical, so a symlinked path is compacted where the file really is.
    path: PathBuf,
    corrupt_path: PathBuf,
    options: JsonlOptions,
    /// Serialises this handle's writers; the file lock serialises handles.
    writer: Mutex<()>,
    state: RwLock<State>,
    /// Whole-file reads after the one at open, for `health()`.
    full_reads: AtomicU64,
    /// The buffer the last `save` encoded into, kept for the next: a fresh one would be
    /// allocated, and its pages touched, on every save.
    spare: Mutex<Vec<u8>>,
}

/// Largest buffer kept for the next save.
const SPARE_MAX: usize = 1 << 20;

/// Lines in the file at `path` (0 if there is none), read a piece at a time: the
/// `.corrupt` file may be large.
fn count_lines(path: &Path) -> std::io::Result<u64> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut buf = vec![0; 64 << 10];
    let mut lines = 0;
    loop {
        match std::io::Read::read(&mut file, &mut buf) {
            Ok(0) => return Ok(lines),
            Ok(n) => lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

impl JsonlStore {
    /// Opens the store in the file at `path`, creating the file if needed (not its
    /// directory), with default options.
    ///
    /// ```
    /// use trace_store_core::{Trace, TraceStore};
    /// use trace_store_jsonl::JsonlStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = JsonlStore::open(dir.path().join("traces.jsonl"))?;
    /// store.save(&Trace::new("run-1").with_metadata("user_id", "u_42"))?;
    /// assert_eq!(store.load("run-1")?.run_id, "run-1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<JsonlStore> {
        Self::open_with(path, JsonlOptions::default())
    }

    /// Opens the store in the file at `path` with `options`.
    ///
    /// Reads the whole file once to build the index (summaries only; trace bodies are
    /// skipped, not decoded), then moves any damage it found to `<file>.corrupt`.
    ///
    /// A file that trace-store did not write is refused with [`Error::Corrupt`] naming
    /// its first foreign line, and left untouched: a selectools `JSONLTraceStore` file,
    /// say, or any other JSON Lines or binary file.
    pub fn open_with(path: impl AsRef<Path>, options: JsonlOptions) -> Result<JsonlStore> {
        let given = path.as_ref();
        let file = OpenFile::open(given, options.read_only, Some(options.file_mode))?;
        let path =
            std::fs::canonicalize(given).map_err(|e| io_error("cannot resolve", given, e))?;
        if !options.read_only {
            compact::remove_abandoned_temp_files(&path);
        }
        if !options.read_only && options.durability == Durability::Sync {
            // The file may have just been created.
            sync_dir(parent_dir(&path))
                .map_err(|e| io_error("cannot sync the directory of", &path, e))?;
        }
        let state = State::read(file, &path, options.max_record_bytes)?;
        let from_snapshot = state.from_snapshot;
        let mut corrupt_name = path.file_name().unwrap_or_default().to_os_string();
        corrupt_name.push(".corrupt");
        let store = JsonlStore {
            corrupt_path: path.with_file_name(corrupt_name),
            path,
            options,
            writer: Mutex::new(()),
            state: RwLock::new(state),
            full_reads: AtomicU64::new(0),
            spare: Mutex::new(Vec::new()),
        };
        let (pending, torn) = {
            let state = store.state.read();
            (!state.pending.is_empty(), state.tail.is_some())
        };
        if !store.options.read_only && (pending || torn) {
            // Damaged complete lines are moved out now, waiting for writers if need be;
            // an incomplete tail only if no one is writing (else it is being written).
            // A failure is reported by health() and retried by the next write.
            let _ = store.acquire(pending);
        }
        if !from_snapshot {
            // So the next open is quick even if this handle is never closed cleanly.
            store.write_snapshot();
        }
        Ok(store)
    }

    /// The store's file (canonical path).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rewrites the file with only its live records, atomically: a new file in the same
    /// directory, fsynced, renamed over the old one, directory fsynced. Other handles,
    /// in this process or others, keep working throughout and follow the new file.
    ///
    /// Runs by itself after writes once dead bytes outweigh live ones (see
    /// [`JsonlOptions::auto_compact_min_bytes`]).
    ///
    /// ```
    /// use trace_store_core::{Trace, TraceStore};
    /// use trace_store_jsonl::JsonlStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = JsonlStore::open(dir.path().join("traces.jsonl"))?;
    /// store.save(&Trace::new("a"))?;
    /// store.save(&Trace::new("a"))?; // supersedes the first line
    /// let report = store.compact()?;
    /// assert_eq!((report.live_records, report.dropped_records), (1, 1));
    /// assert_eq!(store.health()?.dead_bytes, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compact(&self) -> Result<CompactionReport> {
        let mut lock = self.lock()?;
        self.compact_locked(&mut lock)
    }

    /// Live and dead records and bytes, and damaged lines moved to `<file>.corrupt`.
    pub fn health(&self) -> Result<Health> {
        self.refresh()?;
        let quarantined_lines = count_lines(&self.corrupt_path)
            .map_err(|e| io_error("cannot read", &self.corrupt_path, e))?;
        let state = self.state.read();
        Ok(Health {
            path: self.path.clone(),
            file_bytes: state.seen_len,
            live_records: state.index.len() as u64,
            live_bytes: state.index.live_bytes,
            dead_records: state.index.dead_records,
            dead_bytes: state.end.saturating_sub(state.index.live_bytes),
            corrupt_path: self.corrupt_path.clone(),
            quarantined_lines,
            unquarantined_lines: state.pending.len() as u64,
            incomplete_tail_bytes: state.tail.as_ref().map_or(0, |t| t.len),
            last_error: state.last_error.clone(),
            full_rereads: self.full_reads.load(Ordering::Relaxed),
            index_from_snapshot: state.from_snapshot,
        })
    }

    /// Answers from the index of the file as it is now. A contradictory filter is
    /// refused before any I/O.
    fn with_index<T>(&self, filter: &TraceFilter, answer: impl FnOnce(&Index) -> T) -> Result<T> {
        filter.validate()?;
        self.refresh()?;
        Ok(answer(&self.state.read().index))
    }

    fn write_batch(&self, batch: &[u8], records: Vec<format::Encoded>) -> Result<()> {
        let mut lock = self.lock()?;
        self.append(&mut lock, batch, records)
    }
}

impl Drop for JsonlStore {
    /// Writes the index snapshot if the index grew past the one on disk.
    fn drop(&mut self) {
        self.write_snapshot();
    }
}

impl std::fmt::Debug for JsonlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("JsonlStore");
        debug.field("path", &self.path);
        if let Some(state) = self.state.try_read() {
            debug.field("live_records", &state.index.len());
        }
        debug.field("options", &self.options).finish()
    }
}

impl TraceStore for JsonlStore {
    fn save(&self, trace: &Trace) -> Result<String> {
        trace.validate()?;
        // Another thread of this handle saving meanwhile takes a buffer of its own.
        let mut batch = self
            .spare
            .try_lock()
            .map(|mut spare| std::mem::take(&mut *spare))
            .unwrap_or_default();
        batch.clear();
        // A typical line (a few KB) without regrowing the buffer on the way.
        batch.reserve(8 << 10);
        let written = push_save(trace, &mut batch)
            .and_then(|encoded| self.write_batch(&batch, vec![encoded]));
        if batch.capacity() <= SPARE_MAX
            && let Some(mut spare) = self.spare.try_lock()
        {
            *spare = batch;
        }
        written?;
        Ok(trace.run_id.clone())
    }

    fn load(&self, run_id: &str) -> Result<Trace> {
        self.refresh()?;
        let (file, location, expected) = self
            .stored(run_id)
            .ok_or_else(|| Error::not_found(run_id))?;
        // Outside the lock: bytes of an indexed record never change in the file the
        // handle has open, even if a compaction renames a new file over it meanwhile.
        self.read_trace(&file, location, &expected, &mut Vec::new())
    }

    fn list(&self, limit: usize, offset: usize) -> Result<Vec<TraceSummary>> {
        self.query(&TraceFilter::new().with_limit(limit).with_offset(offset))
    }

    fn query(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>> {
        self.query_matches(filter)
    }

    fn delete(&self, run_id: &str) -> Result<bool> {
        if validate_run_id(run_id).is_err() {
            return Ok(false);
        }
        self.refresh()?;
        if !self.state.read().index.contains(run_id) {
            return Ok(false);
        }
        let mut lock = self.lock()?;
        // Another handle may have deleted it while we waited for the lock.
        if !self.state.read().index.contains(run_id) {
            return Ok(false);
        }
        let mut batch = Vec::new();
        let encoded = push_tombstone(run_id, &mut batch)?;
        self.append(&mut lock, &batch, vec![encoded])?;
        Ok(true)
    }

    fn save_many(&self, traces: &[Trace]) -> Result<Vec<String>> {
        traces.iter().try_for_each(Trace::validate)?;
        if traces.is_empty() {
            return Ok(Vec::new());
        }
        let mut batch = Vec::new();
        let records = traces
            .iter()
            .map(|trace| push_save(trace, &mut batch))
            .collect::<Result<Vec<_>>>()?;
        self.write_batch(&batch, records)?;
        Ok(traces.iter().map(|trace| trace.run_id.clone()).collect())
    }

    fn count(&self, filter: &TraceFilter) -> Result<u64> {
        self.count_matches(filter)
    }

    fn stats(&self, filter: &TraceFilter) -> Result<TraceStats> {
        self.stats_of_matches(filter)
    }

    /// Under the file lock: catch up with other handles, load, fold with core's
    /// [`Trace::merge`], append. Atomic across threads, handles and processes.
    fn merge(&self, part: &Trace) -> Result<Trace> {
        self.merge_locked(part)
    }

    /// Validates every part, then under one acquisition of the file lock folds each
    /// run_id's parts (in the order given) into its stored trace, loaded once, and
    /// appends every merged trace as one write: each run_id is written once per call.
    ///
    /// All or nothing as far as an append-only file allows: an invalid part, a fold
    /// that `merge` would refuse, or a merged trace over the maximum record size writes
    /// nothing. The batch is a single positioned write; should the disk fill part way
    /// through it, the merged traces written whole before that point stay (as with
    /// `save_many`, other handles may have read them already) and the error says how
    /// many.
    fn merge_many(&self, parts: &[Trace]) -> Result<Vec<String>> {
        self.merge_batch(parts)
    }

    fn stats_by(
        &self,
        filter: &TraceFilter,
        group: GroupBy,
    ) -> Result<Vec<(GroupKey, TraceStats)>> {
        self.grouped_stats(filter, &group)
    }

    /// Under the file lock: exactly what `query(filter)` returns, deleted by one append
    /// of tombstones; compacts afterwards once dead bytes outweigh live ones.
    fn delete_where(&self, filter: &TraceFilter) -> Result<u64> {
        self.delete_matches(filter)
    }
}
