//! Where the tests find a Redis server: `TRACE_STORE_REDIS_URL` if set, otherwise a
//! private redis-server that this test binary starts once and that dies with it.

#![allow(dead_code, unreachable_pub)]

pub mod proxy;

use std::io::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use trace_store_redis::server::RedisServer;

/// Set it to run the tests against an existing server instead of starting one.
pub const URL_ENV: &str = "TRACE_STORE_REDIS_URL";

/// The URL of the server this binary shares between its tests, or `None` (after
/// saying why) when there is none and the tests may skip. Under `CI=true` a missing
/// server fails the test instead.
pub fn shared_url() -> Option<String> {
    if let Ok(url) = std::env::var(URL_ENV) {
        return Some(url);
    }
    static SERVER: OnceLock<Result<RedisServer, String>> = OnceLock::new();
    match SERVER.get_or_init(|| RedisServer::start().map_err(|e| e.to_string())) {
        Ok(server) => Some(server.url()),
        Err(why) => unavailable(why),
    }
}

/// A server of the test's own, for tests that stop or restart it.
pub fn own_server() -> Option<RedisServer> {
    match RedisServer::start() {
        Ok(server) => Some(server),
        Err(why) => unavailable(&why.to_string()),
    }
}

fn unavailable<T>(why: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("a Redis server is required under CI=true: {why}");
    }
    // Straight to stderr: the test harness would capture eprintln! of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED (no Redis server): {why}; or set {URL_ENV} to use a running one"
    );
    None
}

/// `{P}:`, the start of every key of a store with this prefix, written out here (as
/// the README documents it) so tests can look at keys around the store: bytes other
/// than ASCII letters, digits, `_`, `.` and `-` become `%XX`.
pub fn key_base(prefix: &str) -> String {
    let encoded: String = prefix
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"_.-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{{{encoded}}}:")
}

/// A prefix no other test (in this process or another) uses, full of characters that
/// mean something in key names and patterns.
pub fn unique_prefix(label: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{label}:{{{}}}*{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
