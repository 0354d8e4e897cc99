//! Keeping a handle current, the write lock, appends and repairs.
//!
//! # The write path
//!
//! Three locks, always taken in this order and released in the reverse one:
//!
//! - **W**, the writer mutex ([`JsonlStore`]'s `writer`): one writing thread per handle;
//! - **F**, the file lock: an exclusive `flock` of the open file ([`FileGuard`]), polled
//!   until [`JsonlOptions::lock_timeout`](crate::JsonlOptions::lock_timeout): one
//!   writing handle per file, in any process;
//! - **S**, the state lock ([`JsonlStore`]'s `state`, a read-write lock over [`State`]):
//!   the index and the positions below. Readers take only S, shared (and, to repair
//!   damage they found, try W and F without waiting).
//!
//! Five positions in the file, in bytes from its start:
//!
//! - `probe.len` ([`Probe::len`]): the length a `stat` of the path gives now;
//! - `seen_len` ([`State::seen_len`]): the length at this handle's last look; the same
//!   length and identity mean nothing changed;
//! - `end` ([`State::end`]): just past the last complete line in the index, where the
//!   next append goes;
//! - `tail` (the offset of [`State::tail`]): where an incomplete last line starts (at
//!   `end`): a line being written by another handle, or one torn by a crash;
//! - `covered` (the offset in [`State::snapshot`]): how far `<file>.index` covers.
//!
//! ```text
//!  0                        covered                  end = tail        seen_len
//!  |== lines in the snapshot ==|== lines indexed since ==|~ incomplete ~|
//!                                                         (none: tail = seen_len = end)
//!
//!  save(trace)
//!    |  validate, derive the summary, encode the line into a batch      (no lock)
//!    v
//!  take W  (waits for this handle's other writers)
//!    v
//!  take F  (try_lock, polled: waits for other handles and processes)
//!    |  stat the path: probe.len and the file's identity
//!    v
//!  take S, exclusive: catch up
//!    |  identity changed, or probe.len < end -> read the whole file again (from
//!    |                                          the snapshot if it is valid)
//!    |  probe.len != seen_len, or a tail      -> read [end, probe.len): end,
//!    |                                          seen_len and tail move
//!    |  F is on a file compacted away meanwhile -> release S and F, take F again
//!    |  repair: damaged lines copied to <file>.corrupt, then blanked; a tail
//!    |  (torn, since F is held) copied there, then cut off: seen_len = tail
//!    v
//!  release S; write the batch at end        (readers go on; no one else appends)
//!    |  fsync under Durability::Sync
//!    v
//!  take S, exclusive: index the lines; end = seen_len = end + batch
//!    |  dead bytes > live ones -> compact, still under F: new file renamed over,
//!    |                            snapshot written (covered = end)
//!    v
//!  release S, F, W; save returns
//!
//!  close (drop): covered < end -> snapshot written (covered = end)
//! ```
//!
//! A read ([`JsonlStore::refresh`]) stats the path without any lock; if `probe.len`
//! and the identity are what S says (`seen_len`, no tail), the index is current. Else
//! it takes S exclusive, stats again (a writer of this handle may have moved `end`
//! meanwhile) and catches up as above, without W or F.

use std::cell::OnceCell;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::MutexGuard;
use trace_store_core::{Durability, Error, Result};

use crate::format::{Encoded, Record, quarantine_entry};
use crate::quarantine::write_streamed_entry;
use crate::state::{OpenFile, Probe, State};
use crate::sys::{FileId, copy_of, io_error, io_failure, read_exact_at, sync_dir, write_all_at};
use crate::{JsonlStore, parent_dir};

/// Holds the exclusive lock of one open file; releases it when dropped.
#[derive(Debug)]
pub(crate) struct FileGuard(pub(crate) Arc<OpenFile>);

impl Drop for FileGuard {
    fn drop(&mut self) {
        // Closing the file would release it too; this releases it even while a reader
        // still holds the Arc.
        let _ = self.0.file.unlock();
    }
}

/// The right to write: no other thread of this handle and no other handle writes while
/// it lives, and the index is current with the file it names.
#[derive(Debug)]
pub(crate) struct WriteLock<'a> {
    // Dropped in this order: the file lock first, then the writer mutex.
    pub(crate) file: FileGuard,
    _writer: MutexGuard<'a, ()>,
}

impl JsonlStore {
    /// One `stat` of the path.
    pub(crate) fn probe(&self) -> Result<Probe> {
        match std::fs::metadata(&self.path) {
            Ok(metadata) => Ok(Probe {
                id: FileId::of(&metadata),
                len: metadata.len(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::Io(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "trace file {} was removed or renamed while the store was open; \
                     reopen the store to start a new file there",
                    self.path.display()
                ),
            ))),
            Err(e) => Err(io_error("cannot stat", &self.path, e)),
        }
    }

    /// Makes the index current before a read: one `stat` when nothing changed, a read
    /// of the new tail when another handle appended, a full read after a rewrite.
    pub(crate) fn refresh(&self) -> Result<()> {
        let probe = self.probe()?;
        let current = self.state.read().is_current(&probe);
        if current {
            return Ok(());
        }
        let damaged = {
            let mut state = self.state.write();
            if state.is_current(&probe) {
                return Ok(());
            }
            // The stat above was taken without the lock: a writer of this handle may have
            // appended and indexed lines since, and the file would look shorter than the
            // index, as if it had been cut, and be read again whole. Look again now that
            // nothing can move the index.
            let probe = self.probe()?;
            if state.catch_up(&probe, &self.path, self.options.read_only)? {
                self.full_reads.fetch_add(1, Ordering::Relaxed);
            }
            !state.pending.is_empty() || state.tail.is_some()
        };
        if damaged && !self.options.read_only {
            // Repair only if no one is writing: an incomplete tail is then torn, not
            // in progress. A failure is kept for health() and retried by the next write.
            let _ = self.acquire(false);
        }
        Ok(())
    }

    /// Takes the write lock, waiting for other writers.
    pub(crate) fn lock(&self) -> Result<WriteLock<'_>> {
        self.acquire(true)?.ok_or_else(|| {
            Error::backend("jsonl", "the file lock was not granted although waited for")
        })
    }

    /// Takes the write lock (`None` if `wait` is false and someone holds it), follows a
    /// rewrite by another handle, reads what others appended, and repairs damage. Only
    /// a torn last line that cannot be moved out is an error: appending after it would
    /// glue the next record to it.
    pub(crate) fn acquire(&self, wait: bool) -> Result<Option<WriteLock<'_>>> {
        if self.options.read_only {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} was opened read-only (JsonlOptions::with_read_only); reopen it writable to change it",
                    self.path.display()
                ),
            )));
        }
        // The clock is read only once a lock is found taken: most writes wait for none.
        let deadline = OnceCell::new();
        let deadline = || *deadline.get_or_init(|| Instant::now() + self.options.lock_timeout);
        let writer = match self.writer.try_lock() {
            Some(writer) => writer,
            None if !wait => return Ok(None),
            None => match self.writer.try_lock_until(deadline()) {
                Some(writer) => writer,
                None => return Err(self.lock_timed_out("another thread of this handle")),
            },
        };
        loop {
            let file = Arc::clone(&self.state.read().file);
            if wait {
                self.lock_file_until(&file.file, &deadline)?;
            } else {
                match file.file.try_lock() {
                    Ok(()) => {}
                    Err(TryLockError::WouldBlock) => return Ok(None),
                    Err(TryLockError::Error(e)) => {
                        return Err(io_error("cannot lock", &self.path, e));
                    }
                }
            }
            let guard = FileGuard(file);
            let probe = self.probe()?;
            let mut state = self.state.write();
            if state.catch_up(&probe, &self.path, false)? {
                self.full_reads.fetch_add(1, Ordering::Relaxed);
            }
            if probe.id != guard.0.id {
                // Compacted by another handle while we waited: lock the new file.
                continue;
            }
            self.repair(&mut state)?;
            return Ok(Some(WriteLock {
                file: guard,
                _writer: writer,
            }));
        }
    }

    /// Takes the exclusive lock of `file`, polling until `deadline`: the platform's
    /// blocking lock cannot be given a timeout. The first retries come quickly, so an
    /// ordinary write by another handle costs little wait; later ones back off.
    fn lock_file_until(&self, file: &File, deadline: &impl Fn() -> Instant) -> Result<()> {
        let mut pause = Duration::from_micros(100);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(()),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(io_error("cannot lock", &self.path, e)),
            }
            let deadline = deadline();
            let now = Instant::now();
            if now >= deadline {
                return Err(self.lock_timed_out("another handle or process"));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    fn lock_timed_out(&self, holder: &str) -> Error {
        Error::retryable_backend(
            "jsonl",
            format!(
                "timed out after {:?} waiting for the write lock of {}, held by {holder} \
                 (a long write or compaction, a stopped process, or `flock`); nothing was \
                 written: retry later, or raise JsonlOptions::lock_timeout",
                self.options.lock_timeout,
                self.path.display()
            ),
        )
    }

    /// Appends a batch of encoded lines as one write, then indexes them.
    pub(crate) fn append(
        &self,
        lock: &mut WriteLock<'_>,
        batch: &[u8],
        records: Vec<Encoded>,
    ) -> Result<()> {
        let max = self.options.max_record_bytes;
        // Newline excluded: a reader measures a line up to its newline.
        if let Some(long) = records.iter().find(|encoded| encoded.len - 1 > max) {
            let run_id = match &long.record {
                Record::Save { summary, .. } => summary.run_id.as_str(),
                Record::Delete { run_id } => run_id.as_str(),
            };
            return Err(Error::invalid(format!(
                "trace {run_id:?} would be a line of {} bytes in {}, longer than the maximum \
                 record size of {max} bytes (JsonlOptions::max_record_bytes); nothing was written",
                long.len - 1,
                self.path.display()
            )));
        }
        let offset = self.state.read().end;
        let file = &lock.file.0.file;
        if let Err(error) = write_all_at(file, batch, offset) {
            return Err(self.keep_whole_lines(file, offset, batch, records, error));
        }
        let synced = match self.options.durability {
            Durability::Sync => file.sync_data(),
            _ => Ok(()),
        };
        let count = records.len();
        let compact = {
            let mut state = self.state.write();
            state.apply_appended(offset, records, batch.len() as u64);
            self.should_compact(&state)
        };
        if let Err(error) = synced {
            // The lines are in the file, where other handles may have read them: they
            // stay, but the caller must know they may not survive a power loss.
            let message = format!(
                "cannot fsync {} after appending {count} line(s): {error}; they are in \
                 the file but may not survive a power loss",
                self.path.display()
            );
            return Err(io_failure(message, error));
        }
        if compact && let Err(error) = self.compact_locked(lock) {
            self.state.write().last_error = Some(format!("automatic compaction failed: {error}"));
        }
        Ok(())
    }

    /// After a write that failed part way (a full disk stops a write short, then fails
    /// the next one): the lines of the batch that were written whole stay, because
    /// other handles may have read them already, and removing them would move the
    /// bytes under those handles' positions. Only the partial line after them is cut.
    fn keep_whole_lines(
        &self,
        file: &File,
        offset: u64,
        batch: &[u8],
        records: Vec<Encoded>,
        error: io::Error,
    ) -> Error {
        let total = records.len();
        let hint = match error.kind() {
            io::ErrorKind::StorageFull
            | io::ErrorKind::QuotaExceeded
            | io::ErrorKind::FileTooLarge => "; free space (or raise the limit) and retry",
            _ => "",
        };
        let fail = |detail: String| {
            let message = format!(
                "cannot append to {}: {error}; {detail}{hint}",
                self.path.display()
            );
            io_failure(message, copy_of(&error))
        };
        // Under the lock nobody else appends: the length says how much got written.
        let written = match file.metadata() {
            Ok(metadata) => metadata
                .len()
                .saturating_sub(offset)
                .min(batch.len() as u64),
            Err(stat_error) => {
                // How much is in the file is unknown: read it all again at the next look;
                // the next write moves out any partial line.
                self.state.write().stale = true;
                return fail(format!(
                    "and cannot stat it to see what was written ({stat_error})"
                ));
            }
        };
        let whole = memchr::memrchr(b'\n', &batch[..written as usize]).map_or(0, |at| at + 1);
        if written > whole as u64 {
            // Should this fail, the next write finds the partial line torn and moves it out.
            let _ = file.set_len(offset + whole as u64);
        }
        let kept: Vec<Encoded> = records
            .into_iter()
            .take_while(|encoded| encoded.start + encoded.len <= whole as u64)
            .collect();
        let kept_count = kept.len();
        if kept_count > 0 && self.options.durability == Durability::Sync {
            // Best effort: the call fails either way, but lines other handles may act
            // on should be as durable as the option promises.
            let _ = file.sync_data();
        }
        self.state
            .write()
            .apply_appended(offset, kept, whole as u64);
        fail(match kept_count {
            0 => "nothing was written".to_owned(),
            _ => format!(
                "the first {kept_count} of {total} lines were written whole and stay in the \
                 file (other handles may have read them already); the rest were not written"
            ),
        })
    }

    fn should_compact(&self, state: &State) -> bool {
        let live = state.index.live_bytes;
        let dead = state.end.saturating_sub(live);
        self.options
            .auto_compact_min_bytes
            .is_some_and(|min| state.end >= min && dead > live)
    }

    /// Moves damaged lines to `<file>.corrupt` (synced first), then blanks them in the
    /// file, and cuts off a torn last line. Must hold the write lock.
    fn repair(&self, state: &mut State) -> Result<()> {
        if state.pending.is_empty() && state.tail.is_none() {
            return Ok(());
        }
        let file = Arc::clone(&state.file);
        let mut entries = Vec::new();
        // Lines too long to hold, copied from the file into their entries.
        let mut streamed = Vec::new();
        let mut blanks = Vec::new();
        for segment in &state.pending {
            // Another handle may have moved it out already; then its bytes are blank.
            let mut now = vec![0; segment.bytes.len()];
            if read_exact_at(&file.file, &mut now, segment.offset).is_ok() && now == segment.bytes {
                if segment.is_held() {
                    entries.extend(quarantine_entry(
                        segment.offset,
                        &segment.bytes,
                        &segment.reason,
                    ));
                } else {
                    streamed.push(segment);
                }
                blanks.push((segment.offset, segment.len));
            }
        }
        // The look under the lock just before this read the tail as it is now, and
        // nobody writes while the lock is held: the tail is torn, not being written.
        let torn_at = state.tail.as_ref().map(|tail| {
            if tail.is_held() {
                entries.extend(quarantine_entry(tail.offset, &tail.bytes, &tail.reason));
            } else {
                streamed.push(tail);
            }
            tail.offset
        });
        if !(entries.is_empty() && streamed.is_empty())
            && let Err(error) = self.append_to_corrupt(|out| {
                out.write_all(&entries)?;
                for segment in &streamed {
                    let (offset, len) = (segment.offset, segment.len);
                    write_streamed_entry(&file.file, offset, len, &segment.reason, out)?;
                }
                Ok(())
            })
        {
            let message = format!(
                "cannot move damaged lines of {} to {}: {error}",
                self.path.display(),
                self.corrupt_path.display()
            );
            state.last_error = Some(message.clone());
            return match torn_at {
                Some(_) => Err(io_failure(message, error)),
                None => Ok(()),
            };
        }
        for (offset, len) in blanks {
            if let Err(error) = blank(&file.file, offset, len) {
                // The bytes are safe in the .corrupt file; a later pass moves them again.
                state.last_error = Some(format!(
                    "cannot blank a damaged line of {}: {error}",
                    self.path.display()
                ));
            }
        }
        if let Some(offset) = torn_at {
            file.file
                .set_len(offset)
                .map_err(|e| io_error("cannot cut the torn last line of", &self.path, e))?;
            state.seen_len = offset;
            state.tail = None;
        }
        if self.options.durability == Durability::Sync {
            file.file
                .sync_data()
                .map_err(|e| io_error("cannot sync", &self.path, e))?;
        }
        state.pending.clear();
        Ok(())
    }

    /// Appends entries to `<file>.corrupt` and syncs them. On failure the file is cut
    /// back, so a partial entry never has the next one glued to it.
    fn append_to_corrupt(
        &self,
        entries: impl FnOnce(&mut io::BufWriter<&File>) -> io::Result<()>,
    ) -> io::Result<()> {
        let existed = self.corrupt_path.exists();
        let mut options = OpenOptions::new();
        options.read(true).create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, self.options.file_mode);
        let file = options.open(&self.corrupt_path)?;
        let len = file.metadata()?.len();
        let mut last = [b'\n'];
        if len > 0 {
            read_exact_at(&file, &mut last, len - 1)?;
        }
        let written = (|| {
            let mut out = io::BufWriter::with_capacity(1 << 20, &file);
            if last != [b'\n'] {
                // An entry torn by a crash: end its line, so this one starts its own.
                out.write_all(b"\n")?;
            }
            entries(&mut out)?;
            out.flush()?;
            drop(out);
            file.sync_all()
        })();
        if let Err(error) = written {
            let _ = file.set_len(len);
            return Err(error);
        }
        if !existed {
            sync_dir(parent_dir(&self.path))?;
        }
        Ok(())
    }
}

/// Overwrites `len` bytes at `offset` with spaces, a piece at a time.
fn blank(file: &File, offset: u64, len: u64) -> io::Result<()> {
    const PIECE: u64 = 1 << 20;
    let spaces = vec![b' '; len.min(PIECE) as usize];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(PIECE);
        write_all_at(file, &spaces[..n as usize], offset + at)?;
        at += n;
    }
    Ok(())
}
