//! Opening the store a URL names, with messages that say what to do.

use std::path::{Component, Path, PathBuf};

use trace_store::{StoreUrl, TraceStore};

use crate::args::DEFAULT_STORE;
use crate::error::{CliError, CliResult, Context};

/// Whether a command needs the store to exist already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// Reading commands: a missing file store is an error, not a new empty store, and
    /// a file store is opened read-only, so a store the user may not write can be read.
    Read,
    /// Commands that change an existing store: a missing file store is an error.
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

/// Every file a file-backed store keeps its traces in: the file itself and, for SQLite,
/// its write-ahead log, shared memory and rollback journal beside it.
pub(crate) fn files_of(url: &StoreUrl) -> Vec<PathBuf> {
    let Some(path) = file_of(url) else {
        return Vec::new();
    };
    let mut files = vec![path.to_path_buf()];
    if matches!(url, StoreUrl::Sqlite { .. }) {
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            files.push(PathBuf::from(side));
        }
    }
    files
}

/// A store path starting with `~` is taken as written (a directory named `~` in the
/// current one): no shell expanded it inside the URL. A missing store is an error that
/// says so; an existing one gets a warning, since it is seldom what was meant.
pub(crate) fn check_tilde(url: &StoreUrl, need: Need) -> CliResult {
    let Some(path) = file_of(url) else {
        return Ok(());
    };
    let Some(Component::Normal(first)) = path.components().next() else {
        return Ok(());
    };
    if !first.to_string_lossy().starts_with('~') {
        return Ok(());
    }
    let home = std::env::var_os("HOME")
        .filter(|_| first == "~")
        .map(|home| {
            let rest: PathBuf = path.components().skip(1).collect();
            format!(" (for example {})", Path::new(&home).join(rest).display())
        })
        .unwrap_or_default();
    let hint = format!("`~` is not expanded in store URLs; write the full path{home}");
    let dir_exists = path
        .parent()
        .is_some_and(|dir| dir.as_os_str().is_empty() || dir.is_dir());
    if !path.exists() && (need != Need::Create || !dir_exists) {
        return Err(CliError::usage(format!(
            "store {url} does not exist (no file {}); {hint}",
            path.display()
        )));
    }
    eprintln!(
        "trace-store: warning: using {} under the current directory; {hint}",
        path.display()
    );
    Ok(())
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
    check_tilde(&parsed, need)?;
    if need != Need::Create
        && let Some(path) = file_of(&parsed)
        && !path.exists()
    {
        return Err(CliError::usage(format!(
            "store {parsed} does not exist (no file {}); create it with `{} demo` or `import`, or pick another with --store",
            path.display(),
            command_for(url),
        )));
    }
    let context = || format!("cannot open store {parsed}");
    if need == Need::Read {
        let read_only = parsed.clone().into_read_only();
        return match read_only.open() {
            Ok(store) => Ok(store),
            // A database an older version wrote must be upgraded, which only a
            // writable open does; if that fails too, the read-only error says more.
            Err(error) => parsed.open().or(Err(error)).context(context),
        };
    }
    parsed.open().context(context)
}
