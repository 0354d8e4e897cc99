//! The options of a file store.

use std::time::Duration;

use trace_store_core::Durability;

/// Options of [`SqliteStore::open_with`](crate::SqliteStore::open_with), built from [`Default`] with the `with_*` setters.
///
/// ```
/// use std::time::Duration;
/// use trace_store_sqlite::{Durability, SqliteOptions};
///
/// let options = SqliteOptions::default()
///     .with_durability(Durability::Sync)
///     .with_busy_timeout(Duration::from_secs(30))
///     .with_readers(8);
/// assert_eq!(options.readers, 8);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// What a successful save survives: [`Durability::Flush`] (the default, SQLite's
    /// `synchronous = NORMAL` in WAL mode) survives a crash of the process;
    /// [`Durability::Sync`] (`synchronous = FULL`) also survives power loss.
    pub durability: Durability,
    /// How long a write waits for another process's write lock before it fails with
    /// [`Error::Backend`](trace_store_core::Error::Backend). Default 5 s; anything
    /// past SQLite's longest wait (`i32::MAX` ms, about 24.8 days) waits that long.
    pub busy_timeout: Duration,
    /// Connections that serve `load`, `list`, `query`, `count` and `stats`, beside the
    /// one writer connection; in WAL mode they never wait for a writer. Default 4; 0
    /// makes reads share the writer connection.
    pub readers: usize,
    /// Permission bits of a database file the store creates, which SQLite gives its
    /// write-ahead log and shared-memory files too ([`DEFAULT_FILE_MODE`], `0o600`, by
    /// default: traces hold prompts and user data). The process's umask still applies;
    /// an existing file keeps its mode. Ignored on platforms without Unix permissions.
    pub file_mode: u32,
    /// Open without writing anything: the file must exist at this library's schema
    /// version; reads work, and every write is an [`Error::Io`] of kind
    /// `PermissionDenied` saying so. Nothing is created beside the file: a database
    /// with no write-ahead log beside it (no store has it open for writing) is read as
    /// it is, immutable, and writes another store starts later are not seen by this
    /// handle (open it again to see them); with a log, it is read through the log, so
    /// a live writer's commits are seen. Default `false`.
    ///
    /// [`Error::Io`]: trace_store_core::Error::Io
    pub read_only: bool,
}

/// The default [`SqliteOptions::file_mode`]: readable and writable by the owner only.
pub const DEFAULT_FILE_MODE: u32 = 0o600;

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::Flush,
            busy_timeout: Duration::from_secs(5),
            readers: 4,
            file_mode: DEFAULT_FILE_MODE,
            read_only: false,
        }
    }
}

impl SqliteOptions {
    /// Sets the durability of each save.
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets how long a write waits for another process's lock.
    #[must_use]
    pub fn with_busy_timeout(mut self, busy_timeout: Duration) -> Self {
        self.busy_timeout = busy_timeout;
        self
    }

    /// Sets the number of reader connections.
    #[must_use]
    pub fn with_readers(mut self, readers: usize) -> Self {
        self.readers = readers;
        self
    }

    /// Opens the database read-only (see [`SqliteOptions::read_only`]).
    #[must_use]
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Sets the permission bits of a database file the store creates (for example
    /// `0o640` to let the owner's group read it).
    #[must_use]
    pub fn with_file_mode(mut self, mode: u32) -> Self {
        self.file_mode = mode;
        self
    }
}
