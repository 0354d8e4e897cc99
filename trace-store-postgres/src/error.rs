//! This backend's failures, mapped into core's [`Error`] in one place.

use trace_store_core::Error;

/// What can go wrong in this backend, before it becomes an [`Error`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// A statement or the connection failed.
    #[error("{what}: {detail}")]
    Postgres {
        what: String,
        /// The server's own words where there are some: tokio-postgres displays a
        /// server error as just "db error".
        detail: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// Every connection of the pool stayed busy for the connect timeout.
    #[error("{0}")]
    PoolTimeout(String),
    /// The tables are in a state this code cannot use.
    #[error("{0}")]
    Schema(String),
    /// Stored bytes that do not decode.
    #[error("{0}")]
    Corrupt(String),
}

impl Failure {
    /// A failure that says nothing about the request itself: the server went away or
    /// is restarting, no connection could be had in time, or the server gave up a
    /// transaction to let another one through (deadlock, serialization). The same call
    /// may succeed later. A connection lost while a write was in flight may or may not
    /// have committed it; saves are idempotent, merges fold the part in again.
    fn is_transient(&self) -> bool {
        match self {
            Failure::Postgres { source, .. } => is_transient(source),
            Failure::PoolTimeout(_) => true,
            _ => false,
        }
    }
}

fn is_transient(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    if let Some(code) = error.code() {
        return code.code().starts_with("08")
            || [
                SqlState::T_R_SERIALIZATION_FAILURE,
                SqlState::T_R_DEADLOCK_DETECTED,
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::TOO_MANY_CONNECTIONS,
                SqlState::LOCK_NOT_AVAILABLE,
            ]
            .contains(code);
    }
    // No SQLSTATE: the failure is the connection's, not the statement's (closed,
    // refused, reset, timed out), unless it is the client's own encoding or decoding.
    error.is_closed()
        || std::error::Error::source(error).is_some_and(|cause| cause.is::<std::io::Error>())
        || error.to_string().contains("timeout")
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Error {
        match failure {
            Failure::Corrupt(message) => Error::corrupt(message),
            other if other.is_transient() => Error::retryable_backend("postgres", other),
            other => Error::Backend {
                backend: "postgres",
                source: Box::new(other),
            },
        }
    }
}

pub(crate) fn backend(what: impl Into<String>, source: tokio_postgres::Error) -> Error {
    Failure::Postgres {
        what: what.into(),
        detail: describe(&source),
        source,
    }
    .into()
}

fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{}: {}", db.severity(), db.message());
        if let Some(hint) = db.hint() {
            text.push_str(&format!(" (hint: {hint})"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    text
}
