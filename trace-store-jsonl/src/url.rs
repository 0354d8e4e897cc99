//! The JSON Lines store's URL: `jsonl://PATH[?durability=flush|sync][&mode=ro|rw]`.

use std::path::PathBuf;

use trace_store_core::Result;
use trace_store_core::url::FileUrl;

use crate::{JsonlOptions, JsonlStore};

/// The URL scheme of the JSON Lines store.
pub const SCHEME: &str = "jsonl";

impl JsonlOptions {
    /// The file and the options a `jsonl://` URL names. The path follows core's
    /// [file URL grammar](trace_store_core::url): taken as written, `%XX` decoded,
    /// relative to the working directory unless absolute.
    ///
    /// ```
    /// use trace_store_jsonl::{Durability, JsonlOptions};
    ///
    /// let (path, options) = JsonlOptions::from_url("jsonl://runs/t.jsonl?mode=ro")?;
    /// assert_eq!(path, std::path::Path::new("runs/t.jsonl"));
    /// assert_eq!((options.durability, options.read_only), (Durability::Flush, true));
    /// assert!(JsonlOptions::from_url("jsonl://").is_err());
    /// # Ok::<(), trace_store_core::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<(PathBuf, JsonlOptions)> {
        let (file, params) = FileUrl::parse(url, SCHEME)?;
        params.finish()?;
        let options = JsonlOptions::default()
            .with_durability(file.durability)
            .with_read_only(file.read_only);
        Ok((file.path, options))
    }
}

impl JsonlStore {
    /// The store a `jsonl://` URL names (see [`JsonlOptions::from_url`]).
    pub fn open_url(url: &str) -> Result<JsonlStore> {
        let (path, options) = JsonlOptions::from_url(url)?;
        JsonlStore::open_with(path, options)
    }
}
