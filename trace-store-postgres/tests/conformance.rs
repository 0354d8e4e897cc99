//! The whole conformance suite, through the public API only.
//!
//! Each case gets a fresh directory from the suite; it is mapped to a schema of its own
//! on one server, and the URL and schema are written into the directory so that every
//! handle on it, in this process or a child process, reaches the same store.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use trace_store_postgres::{PostgresOptions, PostgresStore};

const LOCATION_FILE: &str = "postgres-store";

fn open(dir: &Path) -> PostgresStore {
    let file = dir.join(LOCATION_FILE);
    let (url, schema) = match std::fs::read_to_string(&file) {
        Ok(text) => {
            let (url, schema) = text
                .split_once('\n')
                .unwrap_or_else(|| panic!("malformed {}: {text:?}", file.display()));
            (url.to_owned(), schema.to_owned())
        }
        Err(_) => {
            // The suite opens each location first in the test process, so this runs
            // there, never in a child writer; children read the file written here.
            let url = trace_store_test_support::postgres_url()
                .unwrap_or_else(|e| panic!("the conformance suite needs PostgreSQL: {e}"));
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let schema = format!(
                "conformance_{}_{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let staged = dir.join(format!("{LOCATION_FILE}.tmp"));
            std::fs::write(&staged, format!("{url}\n{schema}")).expect("write location");
            std::fs::rename(&staged, &file).expect("publish location");
            (url, schema)
        }
    };
    PostgresStore::open_with(&url, PostgresOptions::default().with_schema(schema)).expect("open")
}

trace_store_conformance::conformance_tests!(durable, open);
