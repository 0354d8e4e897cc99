//! What one handle knows about the file, and how it catches up with other handles.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use trace_store_core::{Error, Result};

use crate::format::Encoded;
use crate::index::Index;
use crate::scan::{Segment, scan};
use crate::snapshot;
use crate::sys::{FileId, io_error};

/// An open file and the identity it had when opened.
#[derive(Debug)]
pub(crate) struct OpenFile {
    pub(crate) file: File,
    pub(crate) id: FileId,
}

impl OpenFile {
    /// Opens `path`; creating it with permission bits `create` for the first open of a
    /// store, never when following a rewrite (a vanished file is an error then, not a
    /// reason to start a new one).
    pub(crate) fn open(path: &Path, read_only: bool, create_mode: Option<u32>) -> Result<OpenFile> {
        let create = create_mode.is_some();
        // Before opening: opening a FIFO read-only would block until a writer came.
        if let Ok(metadata) = std::fs::metadata(path) {
            refuse_unless_regular(path, &metadata)?;
        }
        let opened = if read_only {
            File::open(path)
        } else {
            let mut options = OpenOptions::new();
            options.read(true).write(true).create(create);
            #[cfg(unix)]
            if let Some(mode) = create_mode {
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
            }
            options.open(path)
        };
        let file = opened.map_err(|e| {
            let hint = match e.kind() {
                std::io::ErrorKind::NotFound if create && read_only => {
                    " (a store opened read-only must already exist)"
                }
                std::io::ErrorKind::NotFound if create => " (does its directory exist?)",
                std::io::ErrorKind::NotFound => " (removed while the store was open?)",
                std::io::ErrorKind::PermissionDenied if !read_only => {
                    " (to only read it, open it with JsonlOptions::with_read_only)"
                }
                _ => "",
            };
            io_error(&format!("cannot open{hint}"), path, e)
        })?;
        let metadata = file
            .metadata()
            .map_err(|e| io_error("cannot stat", path, e))?;
        refuse_unless_regular(path, &metadata)?;
        Ok(OpenFile {
            file,
            id: FileId::of(&metadata),
        })
    }
}

/// A store is a regular file: a device (`/dev/zero` never ends), a FIFO or a socket
/// cannot be indexed, positioned-read or compacted, and a directory is no file at all.
fn refuse_unless_regular(path: &Path, metadata: &std::fs::Metadata) -> Result<()> {
    if metadata.is_file() {
        return Ok(());
    }
    let kind = if metadata.is_dir() {
        "a directory"
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt as _;
            let t = metadata.file_type();
            if t.is_char_device() {
                "a character device"
            } else if t.is_block_device() {
                "a block device"
            } else if t.is_fifo() {
                "a FIFO (named pipe)"
            } else if t.is_socket() {
                "a socket"
            } else {
                "not a regular file"
            }
        }
        #[cfg(not(unix))]
        {
            "not a regular file"
        }
    };
    Err(Error::invalid(format!(
        "{} is {kind}: a JSON Lines store must be a regular file (to read traces from a \
         stream, use `trace-store import`)",
        path.display()
    )))
}

/// The file as seen through its path by one `stat`: enough to tell whether anything
/// changed since the last look.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probe {
    pub(crate) id: FileId,
    pub(crate) len: u64,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) file: Arc<OpenFile>,
    pub(crate) index: Index,
    /// Just past the last complete line read into the index.
    pub(crate) end: u64,
    /// File length at the last look; equal length and identity mean nothing changed.
    pub(crate) seen_len: u64,
    /// Damaged lines seen but not yet moved to `<file>.corrupt`.
    pub(crate) pending: Vec<Segment>,
    /// An incomplete last line: being written by someone, or torn by a crash.
    pub(crate) tail: Option<Segment>,
    /// Read everything again at the next look: a scan failed half way, or a failed
    /// write left the file in a state this handle does not know.
    pub(crate) stale: bool,
    /// The last repair or automatic compaction that failed, for `health()`.
    pub(crate) last_error: Option<String>,
    /// Lines longer than this are not read into memory.
    pub(crate) max_line: u64,
    /// Whether the last whole read started from the index snapshot.
    pub(crate) from_snapshot: bool,
    /// The file and offset the snapshot on disk covers, as far as this handle knows:
    /// when they are still the index's, there is nothing new to write.
    pub(crate) snapshot: Option<(FileId, u64)>,
}

impl State {
    /// Reads the whole file: from the index snapshot and the lines after it when the
    /// snapshot is valid for this file, else from the start.
    pub(crate) fn read(file: OpenFile, path: &Path, max_line: u64) -> Result<State> {
        let len = file
            .file
            .metadata()
            .map_err(|e| io_error("cannot stat", path, e))?
            .len();
        let snapshot = snapshot::read(&snapshot::path_of(path), &file.file, file.id, len);
        let from_snapshot = snapshot.is_some();
        let covered = snapshot.as_ref().map(|(_, end)| (file.id, *end));
        let (mut index, from) = snapshot.unwrap_or_default();
        let scan = scan(
            &file.file,
            path,
            from,
            len,
            &mut index,
            !from_snapshot,
            max_line,
        )?;
        Ok(State {
            from_snapshot,
            snapshot: covered,
            file: Arc::new(file),
            index,
            end: scan.end,
            seen_len: scan.observed,
            pending: scan.corrupt,
            tail: scan.tail,
            stale: false,
            last_error: None,
            max_line,
        })
    }

    /// Whether `probe` shows the file as this state last saw it. Never while an
    /// incomplete tail is pending: another handle may have cut it off (it was torn) and
    /// appended a line of exactly its length since, which identity and length cannot
    /// tell apart, so the tail is read again at every look until it is complete.
    pub(crate) fn is_current(&self, probe: &Probe) -> bool {
        !self.stale && self.tail.is_none() && probe.id == self.file.id && probe.len == self.seen_len
    }

    /// Brings the index up to what `probe` saw: a rewritten or shrunk file is read again
    /// from the start (then the answer is true); a longer one from where the last look
    /// stopped.
    pub(crate) fn catch_up(&mut self, probe: &Probe, path: &Path, read_only: bool) -> Result<bool> {
        if self.stale || probe.id != self.file.id || probe.len < self.end {
            let file = OpenFile::open(path, read_only, None)?;
            *self = State::read(file, path, self.max_line)?;
            return Ok(true);
        }
        if probe.len == self.seen_len && self.tail.is_none() {
            return Ok(false);
        }
        // A failed scan may have applied part of the tail; start over next time.
        self.stale = true;
        let scan = scan(
            &self.file.file,
            path,
            self.end,
            probe.len,
            &mut self.index,
            false,
            self.max_line,
        )?;
        self.stale = false;
        self.end = scan.end;
        self.seen_len = scan.observed;
        self.pending.extend(scan.corrupt);
        self.tail = scan.tail;
        Ok(false)
    }

    /// Indexes records this handle appended at `offset`, skipping any that a concurrent
    /// catch-up already read back from the file.
    pub(crate) fn apply_appended(&mut self, offset: u64, records: Vec<Encoded>, batch_len: u64) {
        for encoded in records {
            let at = offset + encoded.start;
            if self.end > at {
                continue;
            }
            self.index.apply(at, encoded.len, encoded.record);
            self.end = at + encoded.len;
        }
        self.seen_len = offset + batch_len;
        if self
            .tail
            .as_ref()
            .is_some_and(|tail| tail.offset < self.end)
        {
            self.tail = None;
        }
    }
}
