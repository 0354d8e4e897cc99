//! How writes reach the server: a large `save_many` goes out in bounded script calls
//! with all-or-nothing validation, and a read never deletes a trace whose summary
//! went missing behind the store's back.

mod support;

use serde_json::json;
use trace_store_core::{Error, Timestamp, Trace, TraceFilter, TraceStore};
use trace_store_redis::{RedisOptions, RedisStore};

fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(1_767_225_600_000_000 + micros).expect("valid")
}

fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .expect("raw connection")
}

/// How many EVALSHA calls the server has run.
fn evalsha_calls(con: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(con)
        .expect("INFO");
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().expect("calls"))
}

#[test]
fn a_large_save_many_is_cut_into_bounded_script_calls() {
    // A server of its own, so no other test's calls are counted.
    let Some(server) = support::own_server() else {
        return;
    };
    let store = RedisStore::open_with(
        &server.url(),
        RedisOptions::default().with_prefix("batches"),
    )
    .expect("open");
    let mut con = raw(&server.url());
    let mut traces: Vec<Trace> = (0..450)
        .map(|i| Trace::new(format!("r{i:03}")).with_created_at(at(i)))
        .collect();
    // One run_id at both ends: the later one wins across batches too.
    traces[0] = Trace::new("dup").with_metadata("v", 1);
    traces[449] = Trace::new("dup").with_metadata("v", 2);
    // Big traces: a byte bound as well as a count bound.
    for trace in &mut traces[10..14] {
        trace
            .metadata
            .insert("blob".into(), json!("x".repeat(600_000)));
    }
    let before = evalsha_calls(&mut con);
    let ids = store.save_many(&traces).expect("save_many");
    let calls = evalsha_calls(&mut con) - before;
    assert_eq!(ids.len(), 450);
    assert!(calls >= 5, "450 traces went out in {calls} script call(s)");
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), 449);
    assert_eq!(store.load("dup").expect("load").metadata["v"], json!(2));
    assert_eq!(
        store
            .query(&TraceFilter::new().with_metadata("v", 1))
            .expect("query"),
        []
    );

    // Validation still covers the whole batch before anything is written.
    let mut bad: Vec<Trace> = (0..300).map(|i| Trace::new(format!("new{i}"))).collect();
    bad[299].run_id = "bad\nid".into();
    let before = evalsha_calls(&mut con);
    assert!(matches!(
        store.save_many(&bad),
        Err(Error::InvalidInput { .. })
    ));
    assert_eq!(evalsha_calls(&mut con), before);
    assert!(matches!(store.load("new0"), Err(Error::NotFound { .. })));
}

#[test]
fn a_read_never_deletes_a_trace_whose_summary_is_missing() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let store = RedisStore::open_with(
        &url,
        RedisOptions::default().with_prefix(support::unique_prefix("damage")),
    )
    .expect("open");
    let kept = Trace::new("kept").with_created_at(at(2));
    let lost = Trace::new("lost").with_created_at(at(1));
    store.save_many(&[kept.clone(), lost]).expect("save");
    let base = support::key_base(&store.options().prefix);
    let mut con = raw(&url);
    // As an eviction would: the whole summary table goes, and one body with it.
    let _: () = redis::cmd("DEL")
        .arg(format!("{base}s"))
        .arg(format!("{base}b:lost"))
        .query(&mut con)
        .expect("DEL");
    match store.list(10, 0) {
        Err(Error::Corrupt { message, .. }) => {
            assert!(message.contains("\"kept\""), "{message}");
            assert!(message.contains("noeviction"), "{message}");
        }
        other => panic!("a missing summary gave {other:?}"),
    }
    // The trace is still there to be loaded and saved again, which repairs it; what
    // was left of the trace whose body had gone too has been cleaned up.
    assert_eq!(store.load("kept").expect("load"), kept);
    store.save(&kept).expect("save again");
    let listed = store.list(10, 0).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].run_id, "kept");
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), 1);
    store.clear().expect("clear");
}

#[test]
fn a_save_that_fails_halfway_is_undone_by_the_next_delete() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let store = RedisStore::open_with(
        &url,
        RedisOptions::default().with_prefix(support::unique_prefix("halfway")),
    )
    .expect("open");
    let base = support::key_base(&store.options().prefix);
    let mut con = raw(&url);
    // Something else wrote a plain string where the index of metadata k=1 goes, so
    // the save script stops with WRONGTYPE after some of its writes (Redis does not
    // roll a script back).
    let blocker = format!("{base}m:k:1");
    let _: () = redis::cmd("SET")
        .arg(&blocker)
        .arg("not a sorted set")
        .query(&mut con)
        .expect("SET");
    let trace = Trace::new("r").with_created_at(at(1)).with_metadata("k", 1);
    match store.save(&trace) {
        Err(Error::Backend { source, .. }) => {
            assert!(source.to_string().contains("WRONGTYPE"), "{source}");
        }
        other => panic!("a save into a wrong-typed key gave {other:?}"),
    }
    let _: () = redis::cmd("DEL")
        .arg(&blocker)
        .query(&mut con)
        .expect("DEL");
    // Whatever the failed save left, a delete removes all of it.
    store.delete("r").expect("delete");
    assert_eq!(store.list(10, 0).expect("list"), []);
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), 0);
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", base.replace('[', "\\[").replace('*', "\\*")))
        .query(&mut con)
        .expect("KEYS");
    assert_eq!(left, Vec::<String>::new());
}
