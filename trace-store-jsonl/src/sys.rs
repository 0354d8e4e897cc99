//! Platform pieces: file identity, positioned I/O, directory sync, error context.

use std::fs::{File, Metadata};
use std::io;
use std::path::Path;

use trace_store_core::Error;

/// Which file a path or a handle refers to.
///
/// Compaction renames a new file over the old one, so a handle notices a rewrite by
/// another handle when the path stops naming the file it has open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileId {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
    #[cfg(not(unix))]
    created: Option<std::time::SystemTime>,
}

impl FileId {
    pub(crate) fn of(metadata: &Metadata) -> FileId {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            FileId {
                dev: metadata.dev(),
                ino: metadata.ino(),
            }
        }
        #[cfg(not(unix))]
        {
            FileId {
                created: metadata.created().ok(),
            }
        }
    }
}

impl FileId {
    /// Device and inode, where the platform has them: what an index snapshot records.
    pub(crate) fn raw(&self) -> Option<(u64, u64)> {
        #[cfg(unix)]
        {
            Some((self.dev, self.ino))
        }
        #[cfg(not(unix))]
        {
            None
        }
    }
}

/// Reads at `offset` without moving any shared file cursor; returns 0 at the end.
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        std::os::windows::fs::FileExt::seek_read(file, buf, offset)
    }
}

/// Fills `buf` from `offset`; a short file is `UnexpectedEof`.
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match read_at(file, buf, offset) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file is shorter than its index says",
                ));
            }
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes all of `buf` at `offset`.
pub(crate) fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        #[cfg(unix)]
        let written = std::os::unix::fs::FileExt::write_at(file, buf, offset);
        #[cfg(windows)]
        let written = std::os::windows::fs::FileExt::seek_write(file, buf, offset);
        match written {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Makes a rename or a file creation in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Windows has no directory handles to flush; NTFS journals renames itself.
        let _ = dir;
        Ok(())
    }
}

/// An I/O failure on one of the store's files: what failed and where, for a person,
/// and the operating system's error kept whole as the `source`.
#[derive(Debug)]
struct FileFailure {
    message: String,
    source: io::Error,
}

impl std::fmt::Display for FileFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FileFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// An [`Error::Io`] of `source`'s kind that reads `message` and keeps `source`.
pub(crate) fn io_failure(message: String, source: io::Error) -> Error {
    Error::Io(io::Error::new(
        source.kind(),
        FileFailure { message, source },
    ))
}

/// An [`Error::Io`] that keeps `error` and says what failed on which path.
pub(crate) fn io_error(what: &str, path: &Path, error: io::Error) -> Error {
    let message = format!("{what} {}: {error}", path.display());
    io_failure(message, error)
}

/// The same failure again, for a second report of one error: its kind and, when the
/// operating system gave one, its error code.
pub(crate) fn copy_of(error: &io::Error) -> io::Error {
    error.raw_os_error().map_or_else(
        || io::Error::from(error.kind()),
        io::Error::from_raw_os_error,
    )
}
