//! The connections of a store: one writer, a few readers, the checkpoint thread's, and
//! the checks that keep a write from going to a file that is no longer there.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use trace_store_core::{Durability, Error, Result};

use crate::checkpoint::{self, Checkpointer};
use crate::{SqliteOptions, error, schema};

/// Every connection of one store.
pub(crate) struct Connections {
    // Fields drop in order: the checkpoint thread and the readers go before the
    // writer, whose close, as the last connection, folds the write-ahead log into the
    // database and removes it.
    checkpointer: Option<Checkpointer>,
    readers: Box<[Mutex<Connection>]>,
    next_reader: AtomicUsize,
    /// Shared with the checkpoint thread, which holds it while it rewinds the log.
    writer: Arc<Mutex<Connection>>,
    /// The file's absolute path (immune to a later change of the working directory)
    /// and identity when it was opened.
    file: Option<(PathBuf, FileIdentity)>,
    /// Opened with [`SqliteOptions::read_only`]: `writer` refuses.
    read_only: bool,
    /// Held only for its `Drop`, which must run after every connection has closed:
    /// hence last.
    _side_files: Option<SideFiles>,
}

impl Connections {
    /// Opens the database file at `path`; see `SqliteStore::open`.
    pub(crate) fn open_file(
        path: &Path,
        options: &SqliteOptions,
        location: &str,
    ) -> Result<Connections> {
        let path = &*not_a_uri(path);
        if options.read_only {
            return Connections::open_read_only(path, options, location);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        // Whether someone else's write-ahead log lies beside the file: see below.
        let foreign_log = log_path(path).exists();
        create_private(path, options.file_mode)
            .map_err(|e| error::io(location, "creating the database file", e))?;
        let mut writer = connect(path, flags, options, location)?;
        // Before anything can change the file, not even its journal mode.
        if let Err(refused) = schema::check_before_writing(&writer, location) {
            // Closing the last connection would copy a log that was already there
            // into the file and delete it: a refused file must keep its bytes. (A log
            // SQLite created itself, for a database in WAL mode, holds nothing, and is
            // better removed.)
            if foreign_log {
                let _ = writer.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
            }
            return Err(refused);
        }
        let map = |e| error::map(location, "configuring the writer connection", e);
        let mode = switch_to_wal(&writer, busy_timeout(options)).map_err(map)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::backend(
                "sqlite",
                format!(
                    "{location}: cannot switch to write-ahead logging (journal_mode stayed {mode:?}); \
                     the file system may not support shared memory (network file systems often do not)"
                ),
            ));
        }
        // NORMAL: a commit is in the log (the OS) when it returns, which survives the
        // process; FULL also fsyncs the log, which survives the machine.
        let synchronous = match options.durability {
            Durability::Sync => "FULL",
            _ => "NORMAL",
        };
        writer
            .pragma_update(None, "synchronous", synchronous)
            .map_err(map)?;
        writer
            .pragma_update(
                None,
                "wal_autocheckpoint",
                checkpoint::WRITER_AUTOCHECKPOINT,
            )
            .map_err(map)?;
        // After a burst of writes, rewinding the log also trims its file to this size.
        writer
            .pragma_update(None, "journal_size_limit", checkpoint::LOG_SIZE_LIMIT)
            .map_err(map)?;
        schema::migrate(&mut writer, location)?;

        // The other connections never create the file: it exists now, and should it
        // vanish in between, an error is better than a new empty database.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let readers = (0..options.readers)
            .map(|_| {
                let reader = connect(path, flags, options, location)?;
                // Reads only: a bug can never write through a reader.
                reader
                    .pragma_update(None, "query_only", true)
                    .map_err(|e| error::map(location, "configuring a reader connection", e))?;
                Ok(Mutex::new(reader))
            })
            .collect::<Result<Box<[_]>>>()?;
        let writer = Arc::new(Mutex::new(writer));
        let checkpoints = connect(path, flags, options, location)?;
        checkpoints
            .busy_timeout(checkpoint::LOCK_WAIT)
            .map_err(|e| error::map(location, "configuring the checkpoint connection", e))?;
        let checkpointer =
            Checkpointer::start(checkpoints, Arc::downgrade(&writer)).map_err(|e| {
                Error::backend(
                    "sqlite",
                    format!("{location}: cannot start the checkpoint thread: {e}"),
                )
            })?;
        let absolute = std::fs::canonicalize(path).map_err(|e| file_gone(location, &e))?;
        let identity = FileIdentity::of(&absolute).map_err(|e| file_gone(location, &e))?;
        Ok(Connections {
            checkpointer: Some(checkpointer),
            readers,
            next_reader: AtomicUsize::new(0),
            writer,
            _side_files: Some(SideFiles::of(&absolute, identity)),
            file: Some((absolute, identity)),
            read_only: false,
        })
    }

    /// Opens an existing database for reading only: no file is created, no journal
    /// mode switched, no schema migrated, no checkpoint run.
    fn open_read_only(path: &Path, options: &SqliteOptions, location: &str) -> Result<Connections> {
        let absolute = std::fs::canonicalize(path)
            .map_err(|e| error::io(location, "opening the database read-only", e))?;
        let identity = FileIdentity::of(&absolute).map_err(|e| file_gone(location, &e))?;
        // With no log beside it, no store has the file open for writing: read it as
        // it is, as SQLite would otherwise create a log and an index beside it (and
        // leave them) even for a reader, and cannot in a directory it may not write.
        // With a log, a writer is at work: read through the log and its index.
        let immutable = !log_path(&absolute).exists();
        let open = || {
            if immutable {
                connect_immutable(&absolute, options, location)
            } else {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                connect(&absolute, flags, options, location)
            }
        };
        let first = open()?;
        schema::check_readable(&first, location)?;
        let readers = (0..options.readers)
            .map(|_| open().map(Mutex::new))
            .collect::<Result<Box<[_]>>>()?;
        Ok(Connections {
            checkpointer: None,
            readers,
            next_reader: AtomicUsize::new(0),
            writer: Arc::new(Mutex::new(first)),
            file: Some((absolute, identity)),
            read_only: true,
            _side_files: None,
        })
    }

    /// A private in-memory database on one connection that serves reads and writes
    /// (in-memory databases have no write-ahead log; separate readers would only
    /// contend for table locks).
    pub(crate) fn open_memory(options: &SqliteOptions, location: &str) -> Result<Connections> {
        let mut conn =
            Connection::open_in_memory().map_err(|e| error::map(location, "opening", e))?;
        configure(&conn, options, location)?;
        schema::migrate(&mut conn, location)?;
        Ok(Connections {
            checkpointer: None,
            readers: Box::new([]),
            next_reader: AtomicUsize::new(0),
            writer: Arc::new(Mutex::new(conn)),
            file: None,
            read_only: false,
            _side_files: None,
        })
    }

    /// A reader connection: a free one if any, else the next in turn.
    pub(crate) fn reader(&self) -> MutexGuard<'_, Connection> {
        let count = self.readers.len();
        if count == 0 {
            return self.writer.lock();
        }
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed) % count;
        (0..count)
            .find_map(|i| self.readers[(start + i) % count].try_lock())
            .unwrap_or_else(|| self.readers[start].lock())
    }

    /// The writer connection, after checking that the file is still the one opened.
    ///
    /// SQLite in WAL mode goes on writing to a deleted file without complaint, and
    /// every save after that would vanish when the store closes; one `stat` per write
    /// turns that into an error.
    pub(crate) fn writer(&self, location: &str) -> Result<MutexGuard<'_, Connection>> {
        if self.read_only {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                ReadOnly(location.to_owned()),
            )));
        }
        if let Some((path, identity)) = &self.file {
            match FileIdentity::of(path) {
                Ok(now) if now == *identity => {}
                Ok(_) => {
                    return Err(file_gone(
                        location,
                        &std::io::Error::other("another file now has its name"),
                    ));
                }
                Err(e) => return Err(file_gone(location, &e)),
            }
        }
        Ok(self.writer.lock())
    }

    /// Counts committed traces, for the checkpoint thread.
    pub(crate) fn committed(&self, traces: u64) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.committed(traces);
        }
    }

    /// Closes every connection, the writer last.
    pub(crate) fn close(self, location: &str) -> Result<()> {
        let Connections {
            checkpointer,
            readers,
            writer,
            ..
        } = self;
        drop(checkpointer);
        for reader in readers.into_vec() {
            reader
                .into_inner()
                .close()
                .map_err(|(_, e)| error::map(location, "closing a reader connection", e))?;
        }
        // The checkpoint thread, which shared the writer, has ended.
        match Arc::try_unwrap(writer) {
            Ok(writer) => writer
                .into_inner()
                .close()
                .map_err(|(_, e)| error::map(location, "closing the writer connection", e)),
            Err(_) => Ok(()),
        }
    }
}

/// The write-ahead log and shared-memory index this store's connections use beside
/// the database file.
///
/// When the database was moved, deleted or replaced while open, SQLite's last close
/// neither checkpoints nor removes them (it will not write to a file that is no longer
/// at its path), and the next open of whatever file then has the name would replay the
/// old file's log over it, losing the new file's data. So once every connection has
/// closed and the path no longer names the file that was opened, they are removed, if
/// they are still the very files that were opened (never another store's).
struct SideFiles {
    database: PathBuf,
    identity: FileIdentity,
    files: Vec<(PathBuf, FileIdentity)>,
}

impl SideFiles {
    fn of(database: &Path, identity: FileIdentity) -> SideFiles {
        let files = ["-wal", "-shm"]
            .into_iter()
            .filter_map(|suffix| {
                let mut side = database.as_os_str().to_owned();
                side.push(suffix);
                let side = PathBuf::from(side);
                FileIdentity::of(&side).ok().map(|id| (side, id))
            })
            .collect();
        SideFiles {
            database: database.to_owned(),
            identity,
            files,
        }
    }
}

impl Drop for SideFiles {
    fn drop(&mut self) {
        if FileIdentity::of(&self.database).is_ok_and(|now| now == self.identity) {
            return;
        }
        for (side, identity) in &self.files {
            if FileIdentity::of(side).is_ok_and(|now| now == *identity) {
                let _ = std::fs::remove_file(side);
            }
        }
    }
}

/// What identifies a file across renames: device and inode on Unix; elsewhere only
/// its existence is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileIdentity {
    device: u64,
    inode: u64,
}

impl FileIdentity {
    fn of(path: &Path) -> std::io::Result<FileIdentity> {
        let metadata = std::fs::metadata(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Ok(FileIdentity {
                device: metadata.dev(),
                inode: metadata.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = metadata;
            Ok(FileIdentity {
                device: 0,
                inode: 0,
            })
        }
    }
}

fn file_gone(location: &str, error: &std::io::Error) -> Error {
    Error::backend(
        "sqlite",
        format!(
            "{location}: the database file was deleted or moved while the store was open ({error}); \
             nothing was written. Reopen the store"
        ),
    )
}

/// Opens one connection and applies the per-connection settings.
fn connect(
    path: &Path,
    flags: OpenFlags,
    options: &SqliteOptions,
    location: &str,
) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| error::map(location, "opening the database", e))?;
    configure(&conn, options, location)?;
    Ok(conn)
}

/// `path`, spelled so that SQLite takes it for a file name: the bundled SQLite reads a
/// name that starts with "file:" as a URI (where "file:x.db?mode=memory" is no file at
/// all), but "./file:..." as a path.
fn not_a_uri(path: &Path) -> Cow<'_, Path> {
    if path.as_os_str().as_encoded_bytes().starts_with(b"file:") {
        Cow::Owned(Path::new(".").join(path))
    } else {
        Cow::Borrowed(path)
    }
}

/// Sets `journal_mode = WAL` and returns the mode the database is in.
///
/// On a database already in WAL mode this takes no lock. Switching a new file needs
/// an exclusive lock, and when several connections switch the same new file at once,
/// SQLite refuses all but one of them at once, without waiting (its busy handler would
/// deadlock there): those retry until the busy timeout.
fn switch_to_wal(conn: &Connection, timeout: Duration) -> rusqlite::Result<String> {
    let start = Instant::now();
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)) {
            Err(e) if error::is_busy(&e) && start.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(2));
            }
            mode => return mode,
        }
    }
}

/// Why a store opened read-only refuses a write.
#[derive(Debug)]
struct ReadOnly(String);

impl std::fmt::Display for ReadOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} was opened read-only (SqliteOptions::with_read_only, or mode=ro in its URL); reopen it writable to change it",
            self.0
        )
    }
}

impl std::error::Error for ReadOnly {}

/// A read-only connection that treats the file as unchangeable (SQLite's `immutable`
/// URI parameter): no locks, no shared memory, no log.
fn connect_immutable(path: &Path, options: &SqliteOptions, location: &str) -> Result<Connection> {
    const ESCAPE: &percent_encoding::AsciiSet =
        &percent_encoding::CONTROLS.add(b'%').add(b'?').add(b'#');
    let uri = format!(
        "file:{}?immutable=1",
        percent_encoding::utf8_percent_encode(&path.to_string_lossy(), ESCAPE)
    );
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(uri, flags)
        .map_err(|e| error::map(location, "opening the database read-only", e))?;
    configure(&conn, options, location)?;
    Ok(conn)
}

/// Creates an empty database file with `mode` unless something exists at `path`:
/// SQLite would create it world-readable (0644 under the usual umask), and gives its
/// log and shared-memory files the database file's mode.
fn create_private(path: &Path, mode: u32) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The write-ahead log of the database at `path`.
fn log_path(path: &Path) -> PathBuf {
    let mut log = path.as_os_str().to_owned();
    log.push("-wal");
    log.into()
}

/// The busy timeout to give SQLite. It counts in i32 milliseconds (rusqlite panics
/// past that): anything longer is as good as forever.
fn busy_timeout(options: &SqliteOptions) -> Duration {
    options
        .busy_timeout
        .min(Duration::from_millis(i32::MAX as u64))
}

/// Page cache of each connection, at most: 16 MiB.
const PAGE_CACHE_KIB: i64 = 16 * 1024;

fn configure(conn: &Connection, options: &SqliteOptions, location: &str) -> Result<()> {
    conn.busy_timeout(busy_timeout(options))
        .map_err(|e| error::map(location, "setting the busy timeout", e))?;
    // Query shapes vary with the filter's criteria; keep the common ones prepared.
    conn.set_prepared_statement_cache_capacity(64);
    // Plans that do not depend on bound values are not prepared again at each bind
    // (a bound LIMIT otherwise makes the cached statement re-prepare every time).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(|e| error::map(location, "configuring the query planner", e))?;
    crate::sql::register_functions(conn)
        .map_err(|e| error::map(location, "registering the text search function", e))?;
    // SQLite's default cache (2 MiB) is smaller than what a since query over half of
    // 10,000 traces reads, so each such query read its pages again from the OS
    // (BENCHMARKS.md has the figures). The cache fills only as pages are read; negative
    // means KiB.
    conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)
        .map_err(|e| error::map(location, "sizing the page cache", e))?;
    Ok(())
}
