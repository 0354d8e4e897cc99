//! Compaction: copy the live records to a new file beside the old one, then rename it
//! into place.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use trace_store_core::{Error, Result};

use crate::snapshot;
use crate::state::OpenFile;
use crate::sys::{FileId, io_error, read_exact_at, sync_dir};
use crate::write::{FileGuard, WriteLock};
use crate::{CompactionReport, JsonlStore, parent_dir};

/// Bytes copied per read.
const COPY_CHUNK: usize = 1 << 20;

impl JsonlStore {
    /// Rewrites the file with only its live records. Must hold the write lock, with the
    /// index current (as [`JsonlStore::lock`] leaves it).
    ///
    /// Other handles keep reading the old file through their open descriptors until
    /// their next `stat` shows the new one; writers waiting for the old file's lock find
    /// it renamed away and move to the new file, whose lock this handle holds until the
    /// write lock is released.
    pub(crate) fn compact_locked(&self, lock: &mut WriteLock<'_>) -> Result<CompactionReport> {
        let started = Instant::now();
        let (source, live, bytes_before, dropped_records, unmoved) = {
            let state = self.state.read();
            (
                Arc::clone(&state.file),
                state.index.live_in_file_order(),
                state.seen_len,
                state.index.dead_records,
                state.pending.len() + usize::from(state.tail.is_some()),
            )
        };
        if unmoved > 0 {
            return Err(Error::backend(
                "jsonl",
                format!(
                    "cannot compact {}: {unmoved} damaged lines could not be moved to {} yet, and \
                     compaction would drop them; see health().last_error",
                    self.path.display(),
                    self.corrupt_path.display()
                ),
            ));
        }
        let dir = parent_dir(&self.path);
        let prefix = temp_prefix(&self.path);
        // Under the file lock no compaction of this file is running: every one is stale.
        remove_stale_temp_files(dir, &prefix, |_| true);
        let temp = tempfile::Builder::new()
            .prefix(&format!("{prefix}{}-", std::process::id()))
            .suffix(TEMP_SUFFIX)
            .tempfile_in(dir)
            .map_err(|e| io_error("cannot create a compaction file in", dir, e))?;
        // Writers that open the new file as soon as it is renamed must wait for us.
        temp.as_file()
            .lock()
            .map_err(|e| io_error("cannot lock", temp.path(), e))?;
        let metadata = source
            .file
            .metadata()
            .map_err(|e| io_error("cannot stat", &self.path, e))?;
        keep_owner_and_mode(temp.as_file(), &metadata).map_err(|e| {
            io_error(
                "cannot give the compacted file the owner and mode of",
                &self.path,
                e,
            )
        })?;

        // Live records in file order, merged into contiguous byte ranges so each range
        // is copied with one read and one write.
        let mut moves = Vec::with_capacity(live.len());
        let mut written = 0u64;
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for (run_id, loc) in &live {
            moves.push((Arc::clone(run_id), written));
            written += loc.len;
            match ranges.last_mut() {
                Some((_, end)) if *end == loc.offset => *end += loc.len,
                _ => ranges.push((loc.offset, loc.offset + loc.len)),
            }
        }
        let mut buf = Vec::new();
        for (start, end) in ranges {
            copy(
                &source.file,
                start,
                end,
                temp.as_file(),
                &mut buf,
                &self.path,
            )?;
        }
        temp.as_file()
            .sync_all()
            .map_err(|e| io_error("cannot sync", temp.path(), e))?;
        let file = temp
            .persist(&self.path)
            .map_err(|e| io_error("cannot rename the compacted file onto", &self.path, e.error))?;

        // The path now names the new file, locked by this handle: install it.
        let id = file.metadata().map(|metadata| FileId::of(&metadata));
        let new_file = Arc::new(OpenFile {
            file,
            id: id.as_ref().map_or(lock.file.0.id, |id| *id),
        });
        let old = std::mem::replace(&mut lock.file, FileGuard(Arc::clone(&new_file)));
        {
            let mut state = self.state.write();
            state.file = new_file;
            for (run_id, offset) in moves {
                state.index.relocate(&run_id, offset);
            }
            state.index.dead_records = 0;
            state.end = written;
            state.seen_len = written;
            // Should the new file's identity be unknown, read it again at the next look.
            state.stale = id.is_err();
        }
        drop(old);
        sync_dir(dir).map_err(|e| io_error("cannot sync the directory", dir, e))?;
        let report = CompactionReport {
            bytes_before,
            bytes_after: written,
            live_records: live.len() as u64,
            dropped_records,
            duration: started.elapsed(),
        };
        // The old snapshot names the old file: without a new one, every handle that
        // follows the new file, and the next open, would read it whole.
        self.write_snapshot();
        Ok(report)
    }
}

fn copy(
    source: &fs::File,
    start: u64,
    end: u64,
    mut target: &fs::File,
    buf: &mut Vec<u8>,
    path: &Path,
) -> Result<()> {
    let mut at = start;
    while at < end {
        let n = ((end - at) as usize).min(COPY_CHUNK);
        buf.resize(n, 0);
        read_exact_at(source, buf, at).map_err(|e| io_error("cannot read", path, e))?;
        target
            .write_all(buf)
            .map_err(|e| io_error("cannot write the compacted copy of", path, e))?;
        at += n as u64;
    }
    Ok(())
}

pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// Compaction files are `.<file name>.compact-<pid>-XXXXXX.tmp` beside the store: the
/// pid of the process that wrote it tells a later open whether it is abandoned.
pub(crate) fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.compact-")
}

/// Gives the compacted file the owner, group and mode of the file it replaces, so a
/// compaction run by another user (root, say) leaves the store usable by its owner.
/// Owner first: changing it may clear set-id bits that the mode then restores.
fn keep_owner_and_mode(file: &fs::File, source: &fs::Metadata) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let own = file.metadata()?;
        if (own.uid(), own.gid()) != (source.uid(), source.gid()) {
            std::os::unix::fs::fchown(file, Some(source.uid()), Some(source.gid()))?;
        }
    }
    file.set_permissions(source.permissions())
}

/// Removes compaction files of the store at `path` left by processes that died while
/// compacting: those named with the pid of a process that no longer exists. Another
/// process's live compaction is never touched. Best effort: called at open.
pub(crate) fn remove_abandoned_temp_files(path: &Path) {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // Index snapshots are written the same way, as `.<file name>.index-<pid>-XXXXXX.tmp`.
    for prefix in [temp_prefix(path), format!(".{name}.index-")] {
        remove_stale_temp_files(parent_dir(path), &prefix, |pid| {
            pid.is_some_and(|pid| !process_exists(pid))
        });
    }
}

/// Whether a process with this id exists (possibly another user's).
fn process_exists(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return false;
        };
        // EPERM: it exists but belongs to someone else.
        !matches!(
            rustix::process::test_kill_process(pid),
            Err(rustix::io::Errno::SRCH)
        )
    }
    #[cfg(not(unix))]
    {
        // No cheap portable check: treat every process as alive, so nothing is removed
        // at open (the next compaction still removes abandoned files, under the lock).
        let _ = pid;
        true
    }
}

/// Removes this store's compaction files in `dir` for which `stale(pid)` says so; `pid`
/// is `None` for files named before pids were part of the name.
fn remove_stale_temp_files(dir: &Path, prefix: &str, stale: impl Fn(Option<u32>) -> bool) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Some(rest) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
        else {
            continue;
        };
        let pid = rest
            .split_once('-')
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if stale(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

impl JsonlStore {
    /// Writes the index snapshot, if snapshots are on, the file is large enough, and
    /// the index covers more than the snapshot on disk. Best effort: a snapshot is a
    /// cache, and a failure is only reported by `health().last_error`.
    pub(crate) fn write_snapshot(&self) {
        let Some(min) = self.options.index_snapshot_min_bytes else {
            return;
        };
        if self.options.read_only {
            return;
        }
        let state = self.state.read();
        let covers = (state.file.id, state.end);
        let clean = !state.stale && state.pending.is_empty();
        if !clean || state.end < min.max(1) || state.snapshot == Some(covers) {
            return;
        }
        // Another handle may have compacted the file: its snapshot is the one to keep.
        if self.probe().map_or(true, |probe| probe.id != covers.0) {
            return;
        }
        let target = snapshot::path_of(&self.path);
        let written = snapshot::write(&target, &state.index, &state.file.file, covers.0, covers.1);
        drop(state);
        let mut state = self.state.write();
        match written {
            Ok(true) => state.snapshot = Some(covers),
            Ok(_) => {}
            Err(error) => {
                state.last_error = Some(format!(
                    "cannot write the index snapshot {}: {error}",
                    target.display()
                ));
            }
        }
    }
}
