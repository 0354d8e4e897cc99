//! The PostgreSQL server the bench talks to: `TRACE_STORE_POSTGRES_URL` when set,
//! otherwise a private one (`initdb` on a random loopback port), stopped when the bench
//! ends. Each store lives in a schema of its own, named after the run.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use trace_store_test_support::PostgresServer;

use crate::BenchResult;

/// Environment variable naming an existing server to use instead of a private one.
pub(crate) const POSTGRES_URL_ENV: &str = "TRACE_STORE_POSTGRES_URL";

pub(crate) struct PostgresEnv {
    url: String,
    /// Makes every schema of this run unique, so a shared server is left as it was found.
    token: String,
    runtime: tokio::runtime::Runtime,
    /// Kept alive for the run; `None` when using `TRACE_STORE_POSTGRES_URL`.
    server: Option<PostgresServer>,
}

impl fmt::Debug for PostgresEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresEnv")
            .field("private", &self.server.is_some())
            .finish_non_exhaustive()
    }
}

impl PostgresEnv {
    pub(crate) fn start() -> BenchResult<PostgresEnv> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let token = format!("tsbench{}x{nanos}", std::process::id());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        if let Ok(url) = std::env::var(POSTGRES_URL_ENV)
            && !url.is_empty()
        {
            return Ok(PostgresEnv {
                url,
                token,
                runtime,
                server: None,
            });
        }
        let server = PostgresServer::start().map_err(|e| {
            format!("cannot start a private PostgreSQL (install postgresql, or set {POSTGRES_URL_ENV}): {e}")
        })?;
        Ok(PostgresEnv {
            url: server.url(),
            token,
            runtime,
            server: Some(server),
        })
    }

    pub(crate) fn schema(&self, name: &str) -> String {
        format!("{}_{name}", self.token).replace('-', "_")
    }

    pub(crate) fn store_url(&self, name: &str) -> String {
        format!("{}?schema={}", self.url, self.schema(name))
    }

    /// A plain client for the bare baseline, driven by `block_on`.
    pub(crate) fn connect(&self) -> BenchResult<tokio_postgres::Client> {
        let (client, connection) = self
            .runtime
            .block_on(tokio_postgres::connect(&self.url, tokio_postgres::NoTls))?;
        self.runtime.spawn(connection);
        Ok(client)
    }

    pub(crate) fn block_on<F: Future>(&self, work: F) -> F::Output {
        self.runtime.block_on(work)
    }

    pub(crate) fn remove_store(&self, name: &str) -> BenchResult<()> {
        let client = self.connect()?;
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema(name));
        self.block_on(client.batch_execute(&sql))?;
        Ok(())
    }
}
