//! The one error type of every store.

/// A `Result` whose error defaults to [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a [`TraceStore`](crate::TraceStore).
///
/// Backends map their engine's errors into these variants, so code written against
/// the trait can react to "not found" or "bad input" without knowing which backend runs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No trace with this run_id is stored.
    #[error("trace {run_id:?} not found")]
    NotFound {
        /// The run_id that was asked for.
        run_id: String,
    },

    /// The caller passed something the store cannot accept; nothing was written.
    #[error("invalid input: {message}")]
    InvalidInput {
        /// What is wrong with the input.
        message: String,
    },

    /// Stored bytes could not be decoded.
    #[error("corrupt data: {message}")]
    Corrupt {
        /// What could not be decoded, and where, for a person to read.
        message: String,
        /// Where, for a program: file, byte offset, line, key, as far as the backend
        /// knows them.
        at: Box<CorruptAt>,
    },

    /// The data was written by a newer schema than this library supports.
    #[error(
        "unsupported schema version {found} (this library supports up to {supported}); upgrade trace-store"
    )]
    UnsupportedVersion {
        /// The version found in the data.
        found: u32,
        /// The newest version this library reads.
        supported: u32,
    },

    /// A file-system operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// The storage engine failed (server down, database locked, ...).
    #[error("{backend} backend error: {source}")]
    Backend {
        /// Which backend failed, for example `"sqlite"`.
        backend: &'static str,
        /// The engine's own error, with what failed and how to fix it.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// An [`Error::InvalidInput`] with this message.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::InvalidInput {
            message: message.into(),
        }
    }

    /// An [`Error::Corrupt`] with this message, its place unknown.
    pub fn corrupt(message: impl Into<String>) -> Error {
        Error::corrupt_at(CorruptAt::default(), message)
    }

    /// An [`Error::Corrupt`] with this message, found `at` this place.
    ///
    /// ```
    /// use trace_store_core::{CorruptAt, Error};
    ///
    /// let error = Error::corrupt_at(
    ///     CorruptAt::default().with_file("t.jsonl").with_offset(4096).with_key("run-1"),
    ///     "t.jsonl at byte offset 4096: truncated record",
    /// );
    /// let at = error.corrupt_place().expect("a corrupt error");
    /// assert_eq!(at.offset, Some(4096));
    /// assert_eq!(at.key.as_deref(), Some("run-1"));
    /// assert_eq!(error.to_string(), "corrupt data: t.jsonl at byte offset 4096: truncated record");
    /// ```
    pub fn corrupt_at(at: CorruptAt, message: impl Into<String>) -> Error {
        Error::Corrupt {
            message: message.into(),
            at: Box::new(at),
        }
    }

    /// Where the damage of an [`Error::Corrupt`] is; `None` for other errors.
    pub fn corrupt_place(&self) -> Option<&CorruptAt> {
        match self {
            Error::Corrupt { at, .. } => Some(at),
            _ => None,
        }
    }

    /// An [`Error::NotFound`] for this run_id.
    pub fn not_found(run_id: impl Into<String>) -> Error {
        Error::NotFound {
            run_id: run_id.into(),
        }
    }

    /// An [`Error::Backend`] wrapping an engine error.
    pub fn backend(
        backend: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::Backend {
            backend,
            source: source.into(),
        }
    }

    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// An [`Error::Backend`] for a transient failure (a lock held by someone else, a
    /// timeout): the same call may succeed if retried later. [`Error::is_retryable`]
    /// is true for it; its message is `source`'s.
    ///
    /// ```
    /// use trace_store_core::Error;
    ///
    /// let error = Error::retryable_backend("jsonl", "timed out waiting for the lock of t.jsonl");
    /// assert!(error.is_retryable());
    /// assert_eq!(error.to_string(), "jsonl backend error: timed out waiting for the lock of t.jsonl");
    /// assert!(!Error::backend("jsonl", "disk on fire").is_retryable());
    /// ```
    pub fn retryable_backend(
        backend: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::Backend {
            backend,
            source: Box::new(Retryable(source.into())),
        }
    }

    /// True for errors made by [`Error::retryable_backend`]: the operation failed for
    /// a transient reason and nothing was written, so retrying it later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Backend { source, .. } if source.is::<Retryable>())
    }
}

/// Marks the source of a retryable [`Error::Backend`]; shows as the error it wraps.
#[derive(Debug)]
struct Retryable(Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for Retryable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Retryable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Where stored bytes were found damaged, as far as the backend knows: what
/// [`Error::Corrupt`] carries beside its message, so a program can point at the damage
/// (open the file at the offset, delete the key) without parsing text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CorruptAt {
    /// The store's file (JSON Lines, SQLite).
    pub file: Option<std::path::PathBuf>,
    /// Byte offset of the damaged record in `file`.
    pub offset: Option<u64>,
    /// Line number (from 1) of the damaged record in `file`, where lines were counted.
    pub line: Option<u64>,
    /// The key (Redis) or run_id (a table row) whose stored bytes are damaged.
    pub key: Option<String>,
}

impl CorruptAt {
    /// Sets the file.
    #[must_use]
    pub fn with_file(mut self, file: impl Into<std::path::PathBuf>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// Sets the byte offset.
    #[must_use]
    pub fn with_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// Sets the line number.
    #[must_use]
    pub fn with_line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }

    /// Sets the key or run_id.
    #[must_use]
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}
