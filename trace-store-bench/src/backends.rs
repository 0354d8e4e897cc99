//! Which backends exist, and where the bench keeps their stores: files in one temporary
//! directory, Redis keys under a per-run prefix on a private (or given) server.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;
use tempfile::TempDir;
use trace_store::jsonl::JsonlOptions;
use trace_store::sqlite::SqliteOptions;
use trace_store::{
    Durability, JsonlStore, MemoryStore, PostgresStore, RedisStore, SqliteStore, TraceStore,
};

use crate::BenchResult;
use crate::postgres_env::PostgresEnv;
use crate::redis_env::RedisEnv;

/// A backend the bench can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Backend {
    Memory,
    Sqlite,
    Jsonl,
    Redis,
    Postgres,
}

impl Backend {
    pub(crate) const ALL: [Backend; 5] = [
        Backend::Memory,
        Backend::Sqlite,
        Backend::Jsonl,
        Backend::Redis,
        Backend::Postgres,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Sqlite => "sqlite",
            Backend::Jsonl => "jsonl",
            Backend::Redis => "redis",
            Backend::Postgres => "postgres",
        }
    }

    /// Backends whose data lives on after the handle is dropped, so "open" is timed.
    pub(crate) fn reopens(self) -> bool {
        matches!(self, Backend::Sqlite | Backend::Jsonl)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> Result<Backend, String> {
        Backend::ALL
            .into_iter()
            .find(|b| b.as_str() == s.trim())
            .ok_or_else(|| {
                format!("unknown backend {s:?} (expected memory, sqlite, jsonl, redis, postgres)")
            })
    }
}

/// An open store, keeping the concrete type for backend-specific calls (`compact`).
#[derive(Debug)]
pub(crate) enum StoreHandle {
    Memory(MemoryStore),
    Sqlite(SqliteStore),
    Jsonl(Box<JsonlStore>),
    Redis(RedisStore),
    Postgres(PostgresStore),
    /// A store the tests build (deliberately wrong ones, to prove the checks fail).
    #[cfg(test)]
    Test(Box<dyn TraceStore>),
}

impl StoreHandle {
    pub(crate) fn store(&self) -> &dyn TraceStore {
        match self {
            StoreHandle::Memory(s) => s,
            StoreHandle::Sqlite(s) => s,
            StoreHandle::Jsonl(s) => &**s,
            StoreHandle::Redis(s) => s,
            StoreHandle::Postgres(s) => s,
            #[cfg(test)]
            StoreHandle::Test(s) => s,
        }
    }
}

/// Where the stores of one bench run live.
#[derive(Debug)]
pub(crate) struct Env {
    dir: TempDir,
    durability: Durability,
    redis: Option<RedisEnv>,
    postgres: Option<PostgresEnv>,
    /// Replaces the memory backend in tests.
    #[cfg(test)]
    pub(crate) memory_factory: Option<fn() -> Box<dyn TraceStore>>,
}

impl Env {
    /// A fresh temporary directory (under `base` if given) and, if asked for, a Redis
    /// server and a PostgreSQL server: `TRACE_STORE_REDIS_URL` /
    /// `TRACE_STORE_POSTGRES_URL` if set, otherwise private ones.
    pub(crate) fn new(
        base: Option<&PathBuf>,
        durability: Durability,
        with_redis: bool,
        with_postgres: bool,
    ) -> BenchResult<Env> {
        let dir = match base {
            Some(base) => tempfile::Builder::new()
                .prefix("trace-store-bench-")
                .tempdir_in(base)?,
            None => tempfile::Builder::new()
                .prefix("trace-store-bench-")
                .tempdir()?,
        };
        let redis = if with_redis {
            Some(RedisEnv::start()?)
        } else {
            None
        };
        let postgres = if with_postgres {
            Some(PostgresEnv::start()?)
        } else {
            None
        };
        Ok(Env {
            dir,
            durability,
            redis,
            postgres,
            #[cfg(test)]
            memory_factory: None,
        })
    }

    pub(crate) fn durability(&self) -> Durability {
        self.durability
    }

    pub(crate) fn redis(&self) -> BenchResult<&RedisEnv> {
        self.redis
            .as_ref()
            .ok_or_else(|| "no Redis server was started for this run".into())
    }

    pub(crate) fn postgres(&self) -> BenchResult<&PostgresEnv> {
        self.postgres
            .as_ref()
            .ok_or_else(|| "no PostgreSQL server was started for this run".into())
    }

    /// A path in the run's directory.
    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// Opens the store called `name` of `backend`, creating it if needed. Opening the
    /// same name again reopens the same data (except for memory).
    pub(crate) fn open(&self, backend: Backend, name: &str) -> BenchResult<StoreHandle> {
        let d = self.durability;
        #[cfg(test)]
        if let (Backend::Memory, Some(factory)) = (backend, self.memory_factory) {
            return Ok(StoreHandle::Test(factory()));
        }
        Ok(match backend {
            Backend::Memory => StoreHandle::Memory(MemoryStore::unbounded()),
            Backend::Sqlite => StoreHandle::Sqlite(SqliteStore::open_with(
                self.path(&format!("{name}.db")),
                SqliteOptions::default().with_durability(d),
            )?),
            Backend::Jsonl => StoreHandle::Jsonl(Box::new(JsonlStore::open_with(
                self.path(&format!("{name}.jsonl")),
                JsonlOptions::default().with_durability(d),
            )?)),
            Backend::Redis => StoreHandle::Redis(RedisStore::open(&self.redis()?.store_url(name))?),
            Backend::Postgres => {
                StoreHandle::Postgres(PostgresStore::open(&self.postgres()?.store_url(name))?)
            }
        })
    }

    /// Frees what the store called `name` holds (files, Redis keys).
    pub(crate) fn remove(&self, backend: Backend, name: &str) -> BenchResult<()> {
        match backend {
            Backend::Memory => {}
            Backend::Sqlite => {
                for suffix in ["db", "db-wal", "db-shm"] {
                    remove_if_exists(self.path(&format!("{name}.{suffix}")))?;
                }
            }
            Backend::Jsonl => {
                for suffix in ["jsonl", "jsonl.corrupt", "jsonl.lock"] {
                    remove_if_exists(self.path(&format!("{name}.{suffix}")))?;
                }
            }
            Backend::Redis => self.redis()?.remove_store(name)?,
            Backend::Postgres => self.postgres()?.remove_store(name)?,
        }
        Ok(())
    }

    /// Bytes the store called `name` occupies on disk, where that is meaningful.
    pub(crate) fn disk_bytes(&self, backend: Backend, name: &str) -> Option<u64> {
        let files: &[&str] = match backend {
            Backend::Sqlite => &["db", "db-wal"],
            Backend::Jsonl => &["jsonl"],
            Backend::Memory | Backend::Redis | Backend::Postgres => return None,
        };
        Some(
            files
                .iter()
                .filter_map(|s| std::fs::metadata(self.path(&format!("{name}.{s}"))).ok())
                .map(|m| m.len())
                .sum(),
        )
    }
}

fn remove_if_exists(path: PathBuf) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_round_trip() {
        for b in Backend::ALL {
            assert_eq!(b.as_str().parse::<Backend>(), Ok(b));
        }
        assert!("mysql".parse::<Backend>().is_err());
    }
}
