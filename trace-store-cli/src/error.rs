//! What a failed command reports: one line and an exit code.

use std::fmt;
use std::io;

use trace_store::Error;

/// A failure, with the exit code it maps to and a one-line message naming the problem.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) code: u8,
    pub(crate) message: String,
}

/// Exit code: the one thing asked for is not there.
pub(crate) const NOT_FOUND: u8 = 1;
/// Exit code: bad usage, bad input, or a store that cannot be used.
pub(crate) const USAGE: u8 = 2;

pub(crate) type CliResult<T = ()> = Result<T, CliError>;

impl CliError {
    pub(crate) fn usage(message: impl Into<String>) -> CliError {
        CliError {
            code: USAGE,
            message: one_line(&message.into()),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> CliError {
        CliError {
            code: NOT_FOUND,
            message: one_line(&message.into()),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The text of a store error, without the variant prefix where it adds nothing.
pub(crate) fn describe(error: &Error) -> String {
    match error {
        Error::InvalidInput { message } => message.clone(),
        other => other.to_string(),
    }
}

impl From<Error> for CliError {
    fn from(error: Error) -> CliError {
        match error {
            Error::NotFound { run_id } => {
                CliError::not_found(format!("no trace with run_id {run_id:?}"))
            }
            // `export` writes through the store's `export_jsonl`, so a closed standard
            // output comes back as a store I/O error.
            Error::Io(error) => error.into(),
            other => CliError::usage(describe(&other)),
        }
    }
}

impl From<io::Error> for CliError {
    fn from(error: io::Error) -> CliError {
        if error.kind() == io::ErrorKind::BrokenPipe {
            // The reader went away (`trace-store list | head`): nothing left to say.
            return CliError {
                code: 0,
                message: String::new(),
            };
        }
        CliError::usage(format!("I/O error: {error}"))
    }
}

impl From<serde_json::Error> for CliError {
    fn from(error: serde_json::Error) -> CliError {
        if error.is_io() {
            // Writing `--json` output failed: the same as any other failed write.
            return io::Error::from(error).into();
        }
        CliError::usage(format!("cannot encode JSON: {error}"))
    }
}

/// Adds what was being done to an error: "cannot open x: reason".
pub(crate) trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> CliResult<T>;
}

impl<T, E: Into<CliError>> Context<T> for Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> CliResult<T> {
        self.map_err(|error| {
            let error = error.into();
            CliError {
                code: error.code,
                message: format!("{}: {}", what(), error.message),
            }
        })
    }
}

/// Messages are single lines: a multi-line engine message is folded.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_single_lines() {
        let missing: CliError = Error::not_found("r1").into();
        assert_eq!(
            (missing.code, missing.message.as_str()),
            (1, "no trace with run_id \"r1\"")
        );
        let bad: CliError = Error::invalid("line 1\n  line 2").into();
        assert_eq!((bad.code, bad.message.as_str()), (2, "line 1 line 2"));
        let io: CliResult = Err(io::Error::other("disk")).context(|| "cannot read f".into());
        assert_eq!(io.unwrap_err().message, "cannot read f: I/O error: disk");
    }
}
