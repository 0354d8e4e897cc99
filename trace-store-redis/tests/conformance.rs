//! The whole conformance suite, through the public API only, on one server.
//!
//! Each case gets a fresh directory from the suite; it is mapped to a prefix of its
//! own on one server, and the URL and prefix are written into the directory so that
//! every handle on it, in this process or a child process, reaches the same store.

mod support;

use std::path::Path;

use trace_store_redis::RedisStore;

fn open(dir: &Path) -> RedisStore {
    support::open_location(dir, support::shared_url)
}

trace_store_conformance::conformance_tests!(durable, open);
