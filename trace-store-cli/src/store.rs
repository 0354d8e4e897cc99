//! Opening the store a URL names, with messages that say what to do.

use std::path::Path;

use trace_store::{StoreUrl, TraceStore};

use crate::args::DEFAULT_STORE;
use crate::error::{CliError, CliResult, Context};

/// Whether a command needs the store to exist already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// Reading commands: a missing file store is an error, not a new empty store.
    Existing,
    /// Writing commands create the store.
    Create,
}

/// The file a file-backed store lives in.
pub(crate) fn file_of(url: &StoreUrl) -> Option<&Path> {
    match url {
        StoreUrl::Sqlite {
            path: Some(path), ..
        } => Some(path),
        StoreUrl::Jsonl { path, .. } => Some(path),
        _ => None,
    }
}

/// The command prefix that names this store: `trace-store` or `trace-store --store URL`.
pub(crate) fn command_for(url: &str) -> String {
    if url == DEFAULT_STORE {
        "trace-store".to_owned()
    } else {
        format!("trace-store --store {url}")
    }
}

/// The URL for messages: parsed and printed again, which hides a Redis password.
pub(crate) fn display(url: &str) -> String {
    url.parse::<StoreUrl>()
        .map_or_else(|_| url.to_owned(), |parsed| parsed.to_string())
}

pub(crate) fn parse(url: &str) -> CliResult<StoreUrl> {
    url.parse::<StoreUrl>().map_err(CliError::from)
}

pub(crate) fn open(url: &str, need: Need) -> CliResult<Box<dyn TraceStore>> {
    let parsed = parse(url)?;
    if need == Need::Existing
        && let Some(path) = file_of(&parsed)
        && !path.exists()
    {
        return Err(CliError::usage(format!(
            "store {parsed} does not exist (no file {}); create it with `{} demo` or `import`, or pick another with --store",
            path.display(),
            command_for(url),
        )));
    }
    parsed
        .open()
        .context(|| format!("cannot open store {parsed}"))
}
