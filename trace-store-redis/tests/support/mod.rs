//! Where the tests find a Redis server: `TRACE_STORE_REDIS_URL` if set, otherwise a
//! private redis-server that this test binary starts once and that dies with it.

#![allow(dead_code, unreachable_pub)]

pub mod proxy;

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use std::path::Path;

use trace_store_redis::{RedisOptions, RedisStore};
use trace_store_test_support::{RedisCluster, RedisServer, redis_url, shared_redis_cluster};

/// Set it to run the tests against an existing server instead of starting one.
pub const URL_ENV: &str = trace_store_test_support::REDIS_URL_ENV;

/// The URL of the server this binary shares between its tests, or `None` (after
/// saying why) when there is none and the tests may skip. Under `CI=true` a missing
/// server fails the test instead.
pub fn shared_url() -> Option<String> {
    match redis_url() {
        Ok(url) => Some(url),
        Err(why) => unavailable(&why.to_string()),
    }
}

/// Set it to run the cluster tests against an existing Redis Cluster
/// (`redis+cluster://host:port`) instead of starting one.
pub const CLUSTER_URL_ENV: &str = "TRACE_STORE_REDIS_CLUSTER_URL";

/// The store URL of a cluster's nodes: the first as the URL's host, the others as
/// `node` parameters.
pub fn cluster_url(cluster: &RedisCluster) -> String {
    let addresses = cluster.addresses();
    let nodes: Vec<String> = addresses[1..]
        .iter()
        .map(|address| format!("node={address}"))
        .collect();
    format!("redis+cluster://{}?{}", addresses[0], nodes.join("&"))
}

/// The URL of the Redis Cluster this binary shares between its tests (or
/// `TRACE_STORE_REDIS_CLUSTER_URL`), or `None` as for [`shared_url`].
pub fn shared_cluster_url() -> Option<String> {
    if let Ok(url) = std::env::var(CLUSTER_URL_ENV) {
        return Some(url);
    }
    match shared_redis_cluster() {
        Ok(cluster) => Some(cluster_url(cluster)),
        Err(why) => unavailable(&why.to_string()),
    }
}

/// A cluster of the test's own, for tests that restart its nodes.
pub fn own_cluster() -> Option<RedisCluster> {
    match RedisCluster::start() {
        Ok(cluster) => Some(cluster),
        Err(why) => unavailable(&why.to_string()),
    }
}

/// The file in a conformance case's directory that names the store there.
const LOCATION_FILE: &str = "redis-store";

/// Opens the store of a conformance case's directory: a fresh prefix on the server
/// `url` gives, written with that URL into the directory so that every handle on it,
/// in this process or a child process, reaches the same store. (A prefix derived from
/// the path alone would not do: a child process would start a server of its own.)
pub fn open_location(dir: &Path, url: fn() -> Option<String>) -> RedisStore {
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
            let url = url().unwrap_or_else(|| {
                panic!("the conformance suite needs a Redis server: install redis-server, or set {URL_ENV} (or {CLUSTER_URL_ENV})")
            });
            let prefix = unique_prefix("conformance");
            let staged = dir.join(format!("{LOCATION_FILE}.tmp"));
            std::fs::write(&staged, format!("{url}\n{prefix}")).expect("write location");
            std::fs::rename(&staged, &file).expect("publish location");
            (url, prefix)
        }
    };
    RedisStore::open_with(&url, RedisOptions::default().with_prefix(prefix)).expect("open")
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
