//! A graceful stop releases the store before `run_until` returns, so a program that
//! exits right after it (as `trace-store serve` does) closes the store cleanly: SQLite
//! folds its write-ahead log back and removes `-wal` and `-shm`.

use std::sync::Arc;

use trace_store_core::{Trace, TraceStore};
use trace_store_server::{Server, ServerOptions};
use trace_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_until_returns_after_the_store_is_released() {
    for round in 0..20 {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("traces.db");
        let store = SqliteStore::open(&path).expect("sqlite");
        store.save(&Trace::new("r")).expect("save");
        let store: Arc<dyn TraceStore> = Arc::new(store);
        let released = Arc::downgrade(&store);
        let options = ServerOptions::new().with_listen("127.0.0.1:0".parse().unwrap());
        let server = Server::bind(store, options).await.expect("bind");
        server
            .run_until(std::future::ready(()))
            .await
            .expect("run_until");
        assert!(
            released.upgrade().is_none(),
            "round {round}: the store was still held when run_until returned"
        );
        let wal = dir.path().join("traces.db-wal");
        assert!(!wal.exists(), "round {round}: {} was left", wal.display());
    }
}
