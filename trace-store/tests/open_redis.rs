//! `trace_store::open("redis://..")` gives a working Redis store (feature `redis`).
#![cfg(feature = "redis")]

use std::io::Write as _;

use trace_store::redis::server::RedisServer;
use trace_store::{Error, Trace, TraceFilter, TraceStore};

/// A private redis-server, or `None` (after saying why) when there is none to start
/// outside CI; under `CI=true` a missing server fails the test.
fn server() -> Option<RedisServer> {
    match RedisServer::start() {
        Ok(server) => Some(server),
        Err(why) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("a Redis server is required under CI=true: {why}")
        }
        Err(why) => {
            // Straight to stderr: the harness would capture eprintln! of a passing test.
            let _ = writeln!(std::io::stderr(), "SKIPPED: no redis-server ({why})");
            None
        }
    }
}

#[test]
fn redis_urls_open_working_stores() {
    let Some(server) = server() else {
        return;
    };
    let store = trace_store::open(&format!("{}?prefix=x", server.url())).expect("open");
    store
        .save(&Trace::new("a").with_metadata("user", "u1"))
        .expect("save");
    assert_eq!(store.load("a").expect("load").run_id, "a");
    assert_eq!(
        store
            .count(&TraceFilter::new().with_metadata("user", "u1"))
            .expect("count"),
        1
    );

    // Another prefix on the same server is another store; the same prefix is the same.
    let other = trace_store::open(&format!("{}?prefix=y", server.url())).expect("open");
    assert!(other.list(10, 0).expect("list").is_empty());
    let again = trace_store::open(&format!("{}?prefix=x&ttl=3600", server.url())).expect("open");
    assert_eq!(again.list(10, 0).expect("list").len(), 1);

    assert!(matches!(
        trace_store::open(&format!("{}?prefix=x&colour=blue", server.url())),
        Err(Error::InvalidInput { .. })
    ));
}
