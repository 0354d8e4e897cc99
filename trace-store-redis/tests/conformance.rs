//! The whole conformance suite, through the public API only.
//!
//! Each case gets a fresh directory from the suite; it is mapped to a prefix of its
//! own on one server, and the URL and prefix are written into the directory so that
//! every handle on it, in this process or a child process, reaches the same store.

mod support;

use std::path::Path;

use trace_store_redis::{RedisOptions, RedisStore};

const LOCATION_FILE: &str = "redis-store";

fn open(dir: &Path) -> RedisStore {
    let file = dir.join(LOCATION_FILE);
    let (url, prefix) = match std::fs::read_to_string(&file) {
        Ok(text) => {
            let (url, prefix) = text
                .split_once('\n')
                .unwrap_or_else(|| panic!("malformed {}: {text:?}", file.display()));
            (url.to_owned(), prefix.to_owned())
        }
        Err(_) => {
            // The suite opens each location first in the test process, so this runs
            // there, never in a child writer; children read the file written here.
            let url = support::shared_url().unwrap_or_else(|| {
                panic!("the conformance suite needs a Redis server: install redis-server or set TRACE_STORE_REDIS_URL")
            });
            let prefix = support::unique_prefix("conformance");
            let staged = dir.join(format!("{LOCATION_FILE}.tmp"));
            std::fs::write(&staged, format!("{url}\n{prefix}")).expect("write location");
            std::fs::rename(&staged, &file).expect("publish location");
            (url, prefix)
        }
    };
    RedisStore::open_with(&url, RedisOptions::default().with_prefix(prefix)).expect("open")
}

trace_store_conformance::conformance_tests!(durable, open);
