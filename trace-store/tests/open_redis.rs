//! `trace_store::open("redis://..")` gives a working Redis store (feature `redis`).
#![cfg(feature = "redis")]

use std::io::Write as _;

use trace_store::{Error, Trace, TraceFilter, TraceStore};
use trace_store_test_support::RedisServer;

/// The server in `TRACE_STORE_REDIS_URL` (then with prefixes unique to this run), or
/// a private redis-server (kept alive by the returned value), or `None` (after saying
/// why) when there is neither outside CI; under `CI=true` a missing server fails.
fn server() -> Option<(String, String, Option<RedisServer>)> {
    if let Ok(url) = std::env::var("TRACE_STORE_REDIS_URL") {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return Some((
            url,
            format!("open-redis-{}-{nanos}-", std::process::id()),
            None,
        ));
    }
    match RedisServer::start() {
        Ok(server) => Some((server.url(), String::new(), Some(server))),
        Err(why) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("a Redis server is required under CI=true: {why}")
        }
        Err(why) => {
            // Straight to stderr: the harness would capture eprintln! of a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: no redis-server ({why}); or set TRACE_STORE_REDIS_URL"
            );
            None
        }
    }
}

#[test]
fn redis_urls_open_working_stores() {
    let Some((url, unique, _server)) = server() else {
        return;
    };
    let at = |prefix: &str, more: &str| format!("{url}?prefix={unique}{prefix}{more}");
    let store = trace_store::open(&at("x", "")).expect("open");
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
    let other = trace_store::open(&at("y", "")).expect("open");
    assert!(other.list(10, 0).expect("list").is_empty());
    let again = trace_store::open(&at("x", "&ttl=3600")).expect("open");
    assert_eq!(again.list(10, 0).expect("list").len(), 1);

    assert!(matches!(
        trace_store::open(&at("x", "&colour=blue")),
        Err(Error::InvalidInput { .. })
    ));
    assert!(store.delete("a").expect("delete"));
}
