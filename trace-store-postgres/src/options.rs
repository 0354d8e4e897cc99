//! `postgres://` URLs and [`PostgresOptions`].

use std::fmt;
use std::time::Duration;

use trace_store_core::{Error, Result};

/// The URL schemes this backend opens: `postgres://...` and `postgresql://...`.
pub const SCHEMES: [&str; 2] = ["postgres", "postgresql"];

/// Query parameters of a store URL that belong to the store, not to the connection.
const STORE_PARAMS: [&str; 4] = [
    "schema",
    "pool_size",
    "connect_timeout",
    "statement_timeout",
];

/// How a [`PostgresStore`](crate::PostgresStore) connects and where it keeps its tables.
///
/// Read from the URL's query (`?schema=team_a&pool_size=16&statement_timeout=10s`) or
/// set with the `with_*` methods.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// The schema holding the store's tables (created if missing), so several stores
    /// share one database. Default `trace_store`.
    pub schema: String,
    /// Most connections the store keeps open. Default 8.
    pub pool_size: usize,
    /// How long a connection attempt, or a wait for a free connection, may take.
    /// Default 5 s.
    pub connect_timeout: Duration,
    /// The server cancels a statement running longer than this. Default 30 s.
    pub statement_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> PostgresOptions {
        PostgresOptions {
            schema: "trace_store".to_owned(),
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

impl PostgresOptions {
    /// Keeps the tables in this schema.
    #[must_use]
    pub fn with_schema(mut self, schema: impl Into<String>) -> PostgresOptions {
        self.schema = schema.into();
        self
    }

    /// Keeps at most this many connections.
    #[must_use]
    pub fn with_pool_size(mut self, pool_size: usize) -> PostgresOptions {
        self.pool_size = pool_size;
        self
    }

    /// Bounds connecting and waiting for a connection.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> PostgresOptions {
        self.connect_timeout = timeout;
        self
    }

    /// Bounds each statement on the server.
    #[must_use]
    pub fn with_statement_timeout(mut self, timeout: Duration) -> PostgresOptions {
        self.statement_timeout = timeout;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.schema.is_empty() || self.schema.len() > 63 || self.schema.contains('\0') {
            return Err(Error::invalid(format!(
                "schema {:?} is not a PostgreSQL identifier (1..=63 bytes, no NUL)",
                self.schema
            )));
        }
        if self.pool_size == 0 {
            return Err(Error::invalid("pool_size must be at least 1"));
        }
        Ok(())
    }
}

/// Splits a store URL into the connection URL (for tokio-postgres) and options read
/// from the store's own query parameters.
pub(crate) fn parse_url(
    url: &str,
    mut options: PostgresOptions,
) -> Result<(String, PostgresOptions)> {
    let scheme = url
        .split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    if !scheme.is_some_and(|scheme| SCHEMES.contains(&scheme.as_str())) {
        return Err(Error::invalid(format!(
            "{} is not a postgres:// or postgresql:// URL",
            redact(url)
        )));
    }
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (url, ""),
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| Error::invalid(format!("URL parameter {key} is not UTF-8")))?;
        if !STORE_PARAMS.contains(&key) {
            kept.push(pair);
            continue;
        }
        let bad = |what: &str| Error::invalid(format!("URL parameter {key}={value:?}: {what}"));
        match key {
            "schema" => options.schema = value.into_owned(),
            "pool_size" => {
                options.pool_size = value.parse().map_err(|_| bad("expected a number"))?;
            }
            "connect_timeout" => {
                options.connect_timeout = parse_duration(&value).map_err(|e| bad(&e))?
            }
            _ => options.statement_timeout = parse_duration(&value).map_err(|e| bad(&e))?,
        }
    }
    options.validate()?;
    let connection = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((connection, options))
}

/// A number of seconds, or an age in core's one syntax (`250ms`, `5s`, `2m`, `1h 30m`).
fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    trace_store_core::parse_age(text)
        .map_err(|_| "expected a duration such as 5s or 250ms".to_owned())
}

pub(crate) use trace_store_core::redact_url as redact;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_parameters_are_taken_and_the_rest_kept() {
        let (conn, options) = parse_url(
            "postgres://u:p@h:5/db?schema=team%5Fa&sslmode=disable&pool_size=3&statement_timeout=250ms",
            PostgresOptions::default(),
        )
        .unwrap();
        assert_eq!(conn, "postgres://u:p@h:5/db?sslmode=disable");
        assert_eq!(options.schema, "team_a");
        assert_eq!(options.pool_size, 3);
        assert_eq!(options.statement_timeout, Duration::from_millis(250));
        assert!(parse_url("mysql://h/db", PostgresOptions::default()).is_err());
        assert!(parse_url("postgres://h/db?pool_size=0", PostgresOptions::default()).is_err());
        for bad in ["soon", "999999999999999999m", "1.5s", "-1s"] {
            let url = format!("postgres://h/db?connect_timeout={bad}");
            assert!(
                parse_url(&url, PostgresOptions::default()).is_err(),
                "{bad}"
            );
        }
        let (_, options) = parse_url(
            "postgres://h/db?connect_timeout=7&statement_timeout=1m%2030s",
            PostgresOptions::default(),
        )
        .unwrap();
        assert_eq!(options.connect_timeout, Duration::from_secs(7));
        assert_eq!(options.statement_timeout, Duration::from_secs(90));
    }

    #[test]
    fn passwords_never_show() {
        for url in [
            "postgres://me:hunter2@db:5432/x",
            "postgresql://db/x?password=hunter2",
            "postgres://db/x?p%61ssword=hunter2&sslmode=require",
        ] {
            let shown = redact(url);
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        assert_eq!(redact("postgres://me@db/x"), "postgres://me@db/x");
    }
}
