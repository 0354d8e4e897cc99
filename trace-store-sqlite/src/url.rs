//! The SQLite store's URL: `sqlite://PATH[?durability=flush|sync][&mode=ro|rw]`, or
//! `sqlite::memory:` for a private in-memory database.

use std::path::PathBuf;

use trace_store_core::Result;
use trace_store_core::url::FileUrl;

use crate::{SqliteOptions, SqliteStore};

/// The URL scheme of the SQLite store.
pub const SCHEME: &str = "sqlite";

/// The URL of a private in-memory database, as in the `sqlx` and `diesel` crates.
pub const IN_MEMORY_URL: &str = "sqlite::memory:";

impl SqliteOptions {
    /// The database file (`None` for [`IN_MEMORY_URL`]) and the options a SQLite URL
    /// names. The path follows core's [file URL grammar](trace_store_core::url): taken
    /// as written, `%XX` decoded, relative to the working directory unless absolute.
    ///
    /// ```
    /// use trace_store_sqlite::{Durability, SqliteOptions};
    ///
    /// let (path, options) = SqliteOptions::from_url("sqlite://data/t.db?durability=sync&mode=ro")?;
    /// assert_eq!(path.unwrap(), std::path::Path::new("data/t.db"));
    /// assert_eq!((options.durability, options.read_only), (Durability::Sync, true));
    /// assert!(SqliteOptions::from_url("sqlite://t.db?journal=off").is_err());
    /// # Ok::<(), trace_store_core::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<(Option<PathBuf>, SqliteOptions)> {
        if url == IN_MEMORY_URL {
            return Ok((None, SqliteOptions::default()));
        }
        let (file, params) = FileUrl::parse(url, SCHEME)?;
        params.finish()?;
        let options = SqliteOptions::default()
            .with_durability(file.durability)
            .with_read_only(file.read_only);
        Ok((Some(file.path), options))
    }
}

impl SqliteStore {
    /// The store a SQLite URL names (see [`SqliteOptions::from_url`]).
    pub fn open_url(url: &str) -> Result<SqliteStore> {
        match SqliteOptions::from_url(url)? {
            (Some(path), options) => SqliteStore::open_with(path, options),
            (None, options) => SqliteStore::in_memory_with(options),
        }
    }
}
