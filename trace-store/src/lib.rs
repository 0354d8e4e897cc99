#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "tokio")]
mod async_store;
mod registry;
mod store_url;

pub use registry::register;
pub use store_url::StoreUrl;
pub use trace_store_core::*;

/// The in-memory backend (feature `memory`).
#[cfg(feature = "memory")]
pub use trace_store_memory as memory;
#[cfg(feature = "memory")]
pub use trace_store_memory::MemoryStore;

/// The SQLite backend (feature `sqlite`).
#[cfg(feature = "sqlite")]
pub use trace_store_sqlite as sqlite;
#[cfg(feature = "sqlite")]
pub use trace_store_sqlite::SqliteStore;

/// The JSON Lines backend (feature `jsonl`).
#[cfg(feature = "jsonl")]
pub use trace_store_jsonl as jsonl;
#[cfg(feature = "jsonl")]
pub use trace_store_jsonl::JsonlStore;

/// The Redis backend (feature `redis`).
#[cfg(feature = "redis")]
pub use trace_store_redis as redis;
#[cfg(feature = "redis")]
pub use trace_store_redis::RedisStore;

/// The PostgreSQL backend (feature `postgres`).
#[cfg(feature = "postgres")]
pub use trace_store_postgres as postgres;
#[cfg(feature = "postgres")]
pub use trace_store_postgres::PostgresStore;

/// Async access to any store on Tokio's blocking pool (feature `tokio`).
#[cfg(feature = "tokio")]
pub use async_store::AsyncStore;

/// Recording while the agent runs (feature `recorder`): [`recorder::Recorder`],
/// [`recorder::Run`], pricing, capture, and with its `tracing` feature the `TraceLayer`.
#[cfg(feature = "recorder")]
pub use trace_store_recorder as recorder;
#[cfg(feature = "recorder")]
pub use trace_store_recorder::{
    Capture, Pricing, Recorder, RecorderOptions, Run, RunOptions, StepGuard,
};

/// Opens the store a URL names, picking the backend at run time.
///
/// See [`StoreUrl`] for the built-in URL forms; a scheme added with [`register`] is
/// opened by its opener. An unknown scheme, or one whose Cargo feature is not enabled,
/// is [`Error::InvalidInput`] naming the problem.
///
/// ```
/// # #[cfg(feature = "memory")] {
/// let store = trace_store::open("memory://")?;
/// store.save(&trace_store::Trace::new("run-1"))?;
/// assert_eq!(store.list(10, 0)?.len(), 1);
/// # }
/// # Ok::<(), trace_store::Error>(())
/// ```
pub fn open(url: &str) -> Result<Box<dyn TraceStore>> {
    if let Some(opener) = registry::opener_for(url) {
        return opener(url);
    }
    store_url::open_built_in(url)
}

// The top-level README's quick start runs as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
