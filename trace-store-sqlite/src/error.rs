//! Turning SQLite's errors into trace-store's, with the database they happened in and
//! what to do about them.

use std::fmt;

use rusqlite::ffi::ErrorCode;
use trace_store_core::Error;

use rusqlite::ffi::SQLITE_READONLY_DBMOVED as READONLY_DBMOVED;

/// An SQLite failure, the action that failed and the database it failed on.
///
/// This is the `source` of [`Error::Backend`]; its message names the file and, for the
/// failures a user can fix, how.
#[derive(Debug)]
pub(crate) struct SqliteFailure {
    action: String,
    location: String,
    source: rusqlite::Error,
}

impl fmt::Display for SqliteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {}: {}", self.action, self.location, self.source)?;
        if let Some(hint) = hint(&self.source) {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for SqliteFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn hint(error: &rusqlite::Error) -> Option<&'static str> {
    let failure = error.sqlite_error()?;
    Some(match failure.code {
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
            "another connection held the write lock longer than the busy timeout; \
             raise SqliteOptions::with_busy_timeout or shorten the other writer's transactions"
        }
        ErrorCode::ReadOnly if failure.extended_code == READONLY_DBMOVED => {
            "the database file was deleted or moved while the store was open; reopen the store"
        }
        ErrorCode::ReadOnly | ErrorCode::PermissionDenied => {
            "the file or its directory is not writable; check its permissions"
        }
        ErrorCode::CannotOpen => {
            "check that the directory exists and is writable, and that the path names a file"
        }
        ErrorCode::DiskFull => "the disk is full; free some space",
        ErrorCode::SystemIoFailure => {
            "the operating system reported an I/O error; check the disk and that the file still exists"
        }
        _ => return None,
    })
}

/// Maps an SQLite error to a trace-store error: damaged or foreign bytes are
/// [`Error::Corrupt`], everything else [`Error::Backend`]; both name `location`.
pub(crate) fn map(location: &str, action: impl Into<String>, source: rusqlite::Error) -> Error {
    let action = action.into();
    match &source {
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(
                failure.code,
                ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt
            ) =>
        {
            Error::corrupt(format!(
                "{action} in {location}: {source} (the file is not a SQLite database or is damaged; trace-store did not modify it)"
            ))
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..) => {
            Error::corrupt(format!("{action} in {location}: stored value: {source}"))
        }
        _ => {
            // Another connection held the lock past the busy timeout: nothing was
            // written, and the same call succeeds once that writer is done.
            let transient = is_busy(&source);
            let failure = SqliteFailure {
                action,
                location: location.to_owned(),
                source,
            };
            if transient {
                Error::retryable_backend("sqlite", failure)
            } else {
                Error::backend("sqlite", failure)
            }
        }
    }
}

/// A file-system failure on the database file, naming it; its `source` is the
/// operating system's error, whole.
#[derive(Debug)]
struct FileFailure {
    action: &'static str,
    location: String,
    source: std::io::Error,
}

impl fmt::Display for FileFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.action, self.location, self.source)?;
        if matches!(
            self.source.kind(),
            std::io::ErrorKind::NotFound
                | std::io::ErrorKind::PermissionDenied
                | std::io::ErrorKind::NotADirectory
                | std::io::ErrorKind::IsADirectory
                | std::io::ErrorKind::ReadOnlyFilesystem
        ) {
            f.write_str(
                " (check that the directory exists and is writable, and that the path names a file)",
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for FileFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Maps a file-system error on the database file to [`Error::Backend`] naming it.
pub(crate) fn io(location: &str, action: &'static str, source: std::io::Error) -> Error {
    Error::backend(
        "sqlite",
        FileFailure {
            action,
            location: location.to_owned(),
            source,
        },
    )
}

/// Wraps a decoding error of column `index` so that it travels through rusqlite's row
/// closures and comes out of [`map`] as [`Error::Corrupt`].
pub(crate) fn bad_column(
    index: usize,
    error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, error.into())
}

/// True for SQLite's "database is locked" (`SQLITE_BUSY`, `SQLITE_LOCKED`).
pub(crate) fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}
