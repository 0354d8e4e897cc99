//! Where `export -o` writes, with the semantics of `curl -o` and `sort -o`.
//!
//! A regular file is replaced atomically (a temp file in its directory, renamed over it),
//! keeping its mode and owner, so a failed export never leaves half a file where a good
//! one was. Anything else (a device such as `/dev/null`, a FIFO, a terminal, a
//! descriptor of this process such as `/dev/stdout` or the `/dev/fd/N` of a process
//! substitution) is opened and written into, and stays what it is. Symlinks are
//! followed and stay symlinks: their target gets the data.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{CliError, CliResult, Context};

/// Mode of a file `export` creates: traces hold prompts and user data.
pub(crate) const DEFAULT_MODE: u32 = 0o600;

/// Symlinks followed before giving up, as the kernel does (`ELOOP`).
const MAX_LINKS: usize = 40;

/// What `-o PATH` names once symlinks are followed.
#[derive(Debug)]
enum Plan {
    /// `-o -`, or no `-o`.
    Stdout,
    /// Not a regular file: opened and written into.
    Into(PathBuf),
    /// A regular file at its real path: replaced by a finished temp file.
    Replace(PathBuf, Metadata),
    /// Nothing there yet: a finished temp file is renamed into place.
    Create(PathBuf),
}

/// The `-o` of `export`, resolved before anything is written.
#[derive(Debug)]
pub(crate) struct Target {
    /// As the user wrote it, for messages.
    given: PathBuf,
    plan: Plan,
}

impl Target {
    /// Resolves `-o` (`None` and `-` are standard output).
    pub(crate) fn resolve(path: Option<&Path>) -> CliResult<Target> {
        let given = path.unwrap_or(Path::new("-")).to_path_buf();
        let what = || format!("cannot write {}", given.display());
        let mut plan = plan(&given).context(what)?;
        if let Plan::Into(path) = &plan
            && is_stdout(path)
        {
            // `-o /dev/stdout` and the like: the report line must not join the data.
            plan = Plan::Stdout;
        }
        if let Plan::Create(path) = &plan {
            check_directory(path).context(what)?;
        }
        Ok(Target { given, plan })
    }

    /// The file written, for messages; `None` for standard output.
    pub(crate) fn file(&self) -> Option<&Path> {
        (!matches!(self.plan, Plan::Stdout)).then_some(self.given.as_path())
    }

    /// Runs `write` on the target, then finishes it: flushes, and for a regular file
    /// syncs and renames it into place. A file created gets `mode`.
    pub(crate) fn write<T>(
        self,
        mode: u32,
        write: impl FnOnce(&mut dyn Write) -> CliResult<T>,
    ) -> CliResult<T> {
        let what = || format!("cannot write {}", self.given.display());
        match &self.plan {
            Plan::Stdout => {
                let mut out = BufWriter::new(io::stdout().lock());
                let value = write(&mut out)?;
                out.flush()?;
                Ok(value)
            }
            Plan::Into(path) => into(&open_into(path).context(what)?, write, what),
            Plan::Replace(path, metadata) => match temp_like(path, metadata).context(what)? {
                Some(temp) => finish(temp, path, write, what),
                // No new file can keep the owner, or none can be made there: the file
                // is written in place, as `sort -o` does; ownership wins over atomicity.
                None => into(&open_into(path).context(what)?, write, what),
            },
            Plan::Create(path) => {
                finish(temp_with_mode(path, mode).context(what)?, path, write, what)
            }
        }
    }
}

/// Follows `path` to what it names, link by link, without creating anything.
fn plan(path: &Path) -> io::Result<Plan> {
    if path == Path::new("-") {
        return Ok(Plan::Stdout);
    }
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let metadata = match fs::symlink_metadata(&current) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(Plan::Create(current));
            }
            Err(error) => return Err(error),
        };
        let kind = metadata.file_type();
        if kind.is_symlink() {
            let dir = directory_of(&current);
            // `/proc/self/fd/N` (also reached as /dev/stdout or /dev/fd/N) is this
            // process's open descriptor, not a name of a file to replace: a pipe, a
            // terminal, or the file a shell redirected into, which must keep receiving.
            if is_under_proc(dir) {
                return Ok(Plan::Into(current));
            }
            current = dir.join(fs::read_link(&current)?);
        } else if kind.is_file() {
            return Ok(Plan::Replace(current, metadata));
        } else if kind.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "it is a directory",
            ));
        } else {
            return Ok(Plan::Into(current));
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

fn is_stdout(path: &Path) -> bool {
    same_file::Handle::stdout().is_ok_and(|stdout| names(path, &stdout))
}

/// True if `path` names the file `handle` has open. The path is looked at, never
/// opened: opening a FIFO blocks until a writer comes, and opening some devices acts.
pub(crate) fn names(path: &Path, handle: &same_file::Handle) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(path)
            .is_ok_and(|metadata| (metadata.dev(), metadata.ino()) == (handle.dev(), handle.ino()))
    }
    #[cfg(not(unix))]
    {
        same_file::Handle::from_path(path).is_ok_and(|file| file == *handle)
    }
}

fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn is_under_proc(dir: &Path) -> bool {
    fs::canonicalize(dir).is_ok_and(|dir| dir.starts_with("/proc"))
}

/// A file to create needs an existing directory; say which one is missing rather than
/// naming the temp file that could not be created in it.
fn check_directory(path: &Path) -> CliResult {
    let dir = directory_of(path);
    match fs::metadata(dir) {
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(_) => Err(CliError::usage(format!(
            "{} is not a directory",
            dir.display()
        ))),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Err(CliError::usage(format!(
            "directory {} does not exist",
            dir.display()
        ))),
        Err(error) => Err(CliError::usage(format!(
            "cannot use directory {}: {}",
            dir.display(),
            error.kind()
        ))),
    }
}

/// Opens a non-regular target (or a regular one whose owner a new file cannot keep)
/// for writing, as `>` in a shell does.
fn open_into(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).truncate(true).open(path)
}

fn into<T>(
    file: &File,
    write: impl FnOnce(&mut dyn Write) -> CliResult<T>,
    what: impl Fn() -> String,
) -> CliResult<T> {
    let mut out = BufWriter::new(file);
    let value = write(&mut out).context(&what)?;
    out.flush().context(&what)?;
    Ok(value)
}

/// Writes the temp file, makes it durable, and renames it over `path`: readers see the
/// old file or the whole new one, never a part.
fn finish<T>(
    temp: tempfile::NamedTempFile,
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> CliResult<T>,
    what: impl Fn() -> String,
) -> CliResult<T> {
    let mut out = BufWriter::new(temp.as_file());
    let value = write(&mut out).context(&what)?;
    out.flush().context(&what)?;
    drop(out);
    temp.as_file().sync_all().context(&what)?;
    temp.persist(path).map_err(|e| e.error).context(&what)?;
    Ok(value)
}

/// An empty temp file beside `path`, named after it so a leftover is recognizable.
fn temp_beside(path: &Path) -> io::Result<tempfile::NamedTempFile> {
    let name = path
        .file_name()
        .map_or_else(|| "export".into(), |name| name.to_string_lossy());
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".part");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(DEFAULT_MODE));
    }
    builder.tempfile_in(directory_of(path)).map_err(|error| {
        // tempfile's message names the temp file; the user knows only the directory.
        io::Error::new(
            error.kind(),
            format!(
                "cannot create a file in {}: {}",
                directory_of(path).display(),
                error.kind()
            ),
        )
    })
}

/// A temp file with exactly `mode`, whatever the umask (as `install -m` does).
fn temp_with_mode(path: &Path, mode: u32) -> io::Result<tempfile::NamedTempFile> {
    let temp = temp_beside(path)?;
    set_mode(temp.as_file(), mode)?;
    Ok(temp)
}

/// A temp file with the mode and owner of the regular file it will replace; `None` if
/// the owner cannot be given to it (not root, someone else's file) or the directory
/// takes no new file.
fn temp_like(path: &Path, existing: &Metadata) -> io::Result<Option<tempfile::NamedTempFile>> {
    let temp = match temp_beside(path) {
        Ok(temp) => temp,
        // A writable file in a directory that is not: only writing in place can work.
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => return Ok(None),
        Err(error) => return Err(error),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let created = temp.as_file().metadata()?;
        if (created.uid(), created.gid()) != (existing.uid(), existing.gid()) {
            match std::os::unix::fs::fchown(
                temp.as_file(),
                Some(existing.uid()),
                Some(existing.gid()),
            ) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
                    return Ok(None);
                }
                Err(error) => return Err(error),
            }
        }
    }
    // After the chown, which clears set-user-ID and set-group-ID bits.
    temp.as_file().set_permissions(existing.permissions())?;
    Ok(Some(temp))
}

/// Sets exactly `mode` (permission bits); elsewhere than Unix files have none to set.
fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (file, mode);
        Ok(())
    }
}

/// `--mode`: octal permission bits such as `600`, `0640` or `0o644`.
pub(crate) fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 && !digits.is_empty() => Ok(mode),
        _ => Err(format!(
            "expected permission bits in octal (600, 640, 644), not {text:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal_permission_bits() {
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("0o644"), Ok(0o644));
        for bad in ["", "0o", "8", "rw-", "1777", "-1"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
    }
}
