//! A trace whose entry in the `{P}:ix` hash is gone (a hand edit, or an `allkeys-*`
//! eviction): `delete`, `delete_where` and `clear` still remove it from every view,
//! and `clear` returns. Also the eviction-policy check at open.

mod support;

use serde_json::json;
use trace_store_core::{Status, Timestamp, Trace, TraceFilter, TraceStore};
use trace_store_redis::{RedisOptions, RedisStore};

fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(1_767_225_600_000_000 + micros).expect("valid")
}

fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .expect("raw connection")
}

fn trace(run_id: &str, micros: i64) -> Trace {
    Trace::new(run_id)
        .with_created_at(at(micros))
        .with_status(Status::Ok)
        .with_name("agent")
        .with_metadata("user", "u1")
}

fn ids(store: &RedisStore, filter: &TraceFilter) -> Vec<String> {
    store
        .query(filter)
        .expect("query")
        .into_iter()
        .map(|summary| summary.run_id)
        .collect()
}

/// Removes the index record of `run_id` behind the store's back.
fn lose_record(url: &str, prefix: &str, run_id: &str) {
    let removed: u64 = redis::cmd("HDEL")
        .arg(format!("{}ix", support::key_base(prefix)))
        .arg(run_id)
        .query(&mut raw(url))
        .expect("HDEL");
    assert_eq!(removed, 1, "the record of {run_id} was there");
}

fn keys_of(url: &str, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", support::key_base(prefix)))
        .query(&mut raw(url))
        .expect("KEYS");
    keys.sort();
    keys
}

#[test]
fn delete_and_delete_where_remove_a_trace_whose_index_record_is_gone() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let prefix = support::unique_prefix("lost-record");
    let store = RedisStore::open_with(&url, RedisOptions::default().with_prefix(prefix.clone()))
        .expect("open");
    store
        .save_many(&[trace("a", 1), trace("b", 2), trace("c", 3), trace("d", 4)])
        .expect("save");
    lose_record(&url, &prefix, "b");
    assert!(store.delete("b").expect("delete"), "b was there");
    assert!(!store.delete("b").expect("delete again"));
    let everyone = TraceFilter::new();
    let by_user = TraceFilter::new().with_metadata("user", "u1");
    let by_name = TraceFilter::new()
        .with_name("agent")
        .with_status(Status::Ok);
    for filter in [&everyone, &by_user, &by_name] {
        assert_eq!(ids(&store, filter), ["d", "c", "a"], "{filter:?}");
        assert_eq!(store.count(filter).expect("count"), 3, "{filter:?}");
    }

    lose_record(&url, &prefix, "c");
    assert_eq!(store.delete_where(&by_user).expect("delete_where"), 3);
    for filter in [&everyone, &by_user, &by_name] {
        assert!(ids(&store, filter).is_empty(), "{filter:?}");
        assert_eq!(store.count(filter).expect("count"), 0, "{filter:?}");
    }
    assert_eq!(keys_of(&url, &prefix), Vec::<String>::new());
}

#[test]
fn clear_returns_and_leaves_nothing_when_index_records_are_gone() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let prefix = support::unique_prefix("lost-clear");
    let store = RedisStore::open_with(&url, RedisOptions::default().with_prefix(prefix.clone()))
        .expect("open");
    let traces: Vec<Trace> = (0..5)
        .map(|i| trace(&format!("r{i}"), i).with_metadata("n", json!(i)))
        .collect();
    store.save_many(&traces).expect("save");
    lose_record(&url, &prefix, "r1");
    lose_record(&url, &prefix, "r3");
    assert_eq!(store.clear().expect("clear"), 5);
    assert!(store.list(10, 0).expect("list").is_empty());
    assert_eq!(keys_of(&url, &prefix), Vec::<String>::new());
    // The store works as before.
    store.save(&trace("again", 9)).expect("save");
    assert_eq!(ids(&store, &TraceFilter::new()), ["again"]);
}

#[test]
fn open_tolerates_every_eviction_policy_and_a_disabled_config_command() {
    let Some(server) = support::own_server() else {
        return;
    };
    let mut admin = raw(&server.url());
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query(&mut admin)
        .expect("CONFIG SET");
    // Warned about on stderr, not refused (see the README).
    let store = RedisStore::open(&format!("{}?prefix=evicting", server.url())).expect("open");
    store.save(&trace("a", 1)).expect("save");
    // CONFIG renamed away, as managed services do: the check is skipped.
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("noconfig")
        .arg("on")
        .arg("nopass")
        .arg("~*")
        .arg("+@all")
        .arg("-config")
        .query(&mut admin)
        .expect("ACL SETUSER");
    let limited = format!(
        "redis://noconfig@127.0.0.1:{}/0?prefix=evicting",
        server.port()
    );
    let store = RedisStore::open(&limited).expect("open without CONFIG");
    assert_eq!(store.load("a").expect("load").run_id, "a");
}
