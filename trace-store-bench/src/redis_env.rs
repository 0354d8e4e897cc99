//! The Redis server the bench talks to: `TRACE_STORE_REDIS_URL` when set, otherwise a
//! private `redis-server` on a random loopback port, stopped when the bench ends.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use trace_store_test_support::RedisServer;

use crate::BenchResult;

/// Environment variable naming an existing server to use instead of a private one.
pub(crate) const REDIS_URL_ENV: &str = "TRACE_STORE_REDIS_URL";

pub(crate) struct RedisEnv {
    url: String,
    /// Makes every key of this run unique, so a shared server is left as it was found.
    token: String,
    /// Kept alive for the run; `None` when using `TRACE_STORE_REDIS_URL`.
    server: Option<RedisServer>,
}

impl fmt::Debug for RedisEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisEnv")
            .field("url", &self.url)
            .field("private", &self.server.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisEnv {
    pub(crate) fn start() -> BenchResult<RedisEnv> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let token = format!("tsbench{}x{nanos}", std::process::id());
        if let Ok(url) = std::env::var(REDIS_URL_ENV)
            && !url.is_empty()
        {
            return Ok(RedisEnv {
                url,
                token,
                server: None,
            });
        }
        let server = RedisServer::start().map_err(|e| {
            format!("cannot start a private redis-server (install redis-server, or set {REDIS_URL_ENV}): {e}")
        })?;
        Ok(RedisEnv {
            url: server.url(),
            token,
            server: Some(server),
        })
    }

    /// The server, as a `redis://` URL without a prefix.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn is_private(&self) -> bool {
        self.server.is_some()
    }

    /// The URL of the store called `name`: the server URL with a prefix unique to this run.
    pub(crate) fn store_url(&self, name: &str) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}prefix={}", self.url, self.prefix(name))
    }

    /// Key prefix for `name` in this run; baselines use it for their raw keys too.
    pub(crate) fn prefix(&self, name: &str) -> String {
        format!("{}-{name}", self.token)
    }

    pub(crate) fn connection(&self) -> BenchResult<redis::Connection> {
        redis::Client::open(self.url.as_str())
            .and_then(|client| client.get_connection())
            .map_err(|e| format!("cannot connect to Redis at {}: {e}", self.url).into())
    }

    /// Deletes every key whose name contains the prefix of `name`.
    pub(crate) fn remove_store(&self, name: &str) -> BenchResult<()> {
        let mut con = self.connection()?;
        let pattern = format!("*{}*", self.prefix(name));
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query(&mut con)?;
            if !keys.is_empty() {
                redis::cmd("UNLINK").arg(keys).query::<()>(&mut con)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}
