//! Contract v2 on Redis: sessions, parents, scores and text as query criteria (each
//! index path answering exactly as `MemoryStore` does), merge as compare-and-set under
//! contention (threads and a second process), grouped stats, bulk delete, TTL.

mod support;

use std::sync::Arc;

use serde_json::json;
use trace_store_core::{
    ErrorInfo, GroupBy, Score, Status, Step, Timestamp, Trace, TraceFilter, TraceStore,
};
use trace_store_memory::MemoryStore;
use trace_store_redis::{RedisOptions, RedisStore};

fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(1_767_225_600_000_000 + micros).expect("valid")
}

fn open(url: &str, label: &str) -> RedisStore {
    RedisStore::open_with(
        url,
        RedisOptions::default().with_prefix(support::unique_prefix(label)),
    )
    .expect("open")
}

/// 300 traces with ties on created_at, 4 sessions, 3 parents, two scores with
/// repeated and boundary values, and searchable text in every place core reads.
fn traces() -> Vec<Trace> {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let words = [
        "Alpha",
        "你好世界",
        "emoji 😀 here",
        "say \"hi\"",
        "ZETA",
        "a:b*c",
    ];
    (0..300)
        .map(|i| {
            let mut trace = Trace::new(format!("run-{:03}", next(400)))
                .with_created_at(at(next(60) as i64))
                .with_status([Status::Ok, Status::Error][next(2) as usize]);
            if next(5) > 0 {
                trace = trace.with_session_id(format!("sess {}", next(4)));
            }
            if next(3) == 0 {
                trace = trace.with_parent_run_id(["p:1", "p 2", "p{3}"][next(3) as usize]);
            }
            if next(2) == 0 {
                trace = trace.with_score(Score::new("quality").with_value(next(5) as f64 / 4.0));
            }
            if next(4) == 0 {
                trace = trace.with_score(Score::new("cost score").with_value(-(next(3) as f64)));
            }
            // A step-level score is not a trace-level one.
            if next(4) == 0 {
                trace = trace.with_score(Score::new("quality").with_step_id("s").with_value(9.0));
            }
            let word = words[next(words.len() as u64) as usize];
            let step = match i % 4 {
                0 => Step::llm_call("gpt").with_input(json!({"m": [word]})),
                1 => Step::tool_call("t").with_output(json!(word)),
                2 => Step::llm_call("m").with_error(ErrorInfo::new(word)),
                _ => Step::tool_call("t").with_attribute("a", json!({"deep": word})),
            };
            trace.with_step(step.with_usage(next(10), 1))
        })
        .collect()
}

fn filters() -> Vec<TraceFilter> {
    let mut out = vec![
        TraceFilter::new().with_session_id("sess 1"),
        TraceFilter::new().with_session_id("sess 9"),
        TraceFilter::new().with_parent_run_id("p{3}"),
        TraceFilter::new()
            .with_parent_run_id("p:1")
            .with_session_id("sess 2"),
        TraceFilter::new().with_score("quality", Some(0.5), Some(0.75)),
        TraceFilter::new().with_score("quality", None, None),
        TraceFilter::new().with_score("quality", Some(0.0), Some(0.0)),
        TraceFilter::new().with_score("quality", Some(9.0), None),
        TraceFilter::new().with_score("cost score", None, Some(-1.0)),
        TraceFilter::new().with_score("nothing", None, None),
        TraceFilter::new()
            .with_score("quality", Some(0.25), None)
            .with_status(Status::Ok)
            .with_max_steps(1),
        TraceFilter::new().with_text("alpha"),
        TraceFilter::new().with_text("你好"),
        TraceFilter::new().with_text("😀"),
        TraceFilter::new().with_text("SAY \"HI"),
        TraceFilter::new().with_text("\\\""),
        TraceFilter::new().with_text("u4f60"),
        TraceFilter::new().with_text("*"),
        TraceFilter::new().with_text("%"),
        TraceFilter::new().with_text("gpt"),
        TraceFilter::new()
            .with_text("a")
            .with_session_id("sess 0")
            .with_score("quality", Some(0.25), None),
    ];
    let paged: Vec<TraceFilter> = out
        .iter()
        .flat_map(|f| {
            [
                f.clone().with_limit(3),
                f.clone().with_offset(2).with_limit(5),
                f.clone().with_since(at(20)).with_until(at(40)),
            ]
        })
        .collect();
    out.extend(paged);
    out
}

#[test]
fn new_criteria_answer_as_the_reference_store_does() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let redis = open(&url, "v2-query");
    let memory = MemoryStore::unbounded();
    let all = traces();
    redis.save_many(&all).expect("save");
    memory.save_many(&all).expect("save");
    let mut nonempty = 0;
    for filter in filters() {
        let expected = memory.query(&filter).expect("memory");
        let got = redis.query(&filter).expect("redis");
        assert_eq!(got, expected, "query {filter:?}");
        nonempty += usize::from(!expected.is_empty());
        assert_eq!(
            redis.count(&filter).expect("count"),
            memory.count(&filter).expect("count"),
            "count {filter:?}"
        );
        assert_eq!(
            redis.stats(&filter).expect("stats"),
            memory.stats(&filter).expect("stats"),
            "stats {filter:?}"
        );
    }
    // The fixture must exercise the criteria, not agree on empty answers.
    assert!(nonempty > 40, "only {nonempty} filters matched anything");
    for group in [
        GroupBy::Day,
        GroupBy::Name,
        GroupBy::Session,
        GroupBy::Status,
        GroupBy::Model,
        GroupBy::Metadata("user".into()),
    ] {
        for filter in [
            TraceFilter::new(),
            TraceFilter::new().with_text("alpha").with_limit(20),
        ] {
            assert_eq!(
                redis.stats_by(&filter, group.clone()).expect("redis"),
                memory.stats_by(&filter, group.clone()).expect("memory"),
                "stats_by {group} {filter:?}"
            );
        }
    }
    redis.clear().expect("clear");
}

#[test]
fn upserts_and_deletes_leave_no_stale_session_parent_score_or_text_entry() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let store = open(&url, "v2-upsert");
    let old = Trace::new("r")
        .with_session_id("s-old")
        .with_parent_run_id("p-old")
        .with_name("needle-old")
        .with_score(Score::new("q").with_value(1.0));
    store.save(&old).expect("save");
    let new = Trace::new("r")
        .with_session_id("s-new")
        .with_name("needle-new")
        .with_score(Score::new("q").with_value(0.0));
    store.save(&new).expect("re-save");
    let ids = |filter: TraceFilter| -> Vec<String> {
        let found = store.query(&filter).expect("query");
        found.into_iter().map(|s| s.run_id).collect()
    };
    assert!(ids(TraceFilter::new().with_session_id("s-old")).is_empty());
    assert!(ids(TraceFilter::new().with_parent_run_id("p-old")).is_empty());
    assert!(ids(TraceFilter::new().with_text("needle-old")).is_empty());
    assert!(ids(TraceFilter::new().with_score("q", Some(1.0), None)).is_empty());
    assert_eq!(ids(TraceFilter::new().with_session_id("s-new")), ["r"]);
    assert_eq!(ids(TraceFilter::new().with_text("NEEDLE-NEW")), ["r"]);
    assert_eq!(
        ids(TraceFilter::new().with_score("q", None, Some(0.0))),
        ["r"]
    );
    assert!(store.delete("r").expect("delete"));
    assert!(ids(TraceFilter::new().with_text("needle")).is_empty());
    let mut con = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .expect("raw connection");
    let base = support::key_base(&store.options().prefix);
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{base}*"))
        .query(&mut con)
        .expect("KEYS");
    assert!(left.is_empty(), "delete left keys behind: {left:?}");
}

#[test]
fn text_search_never_reaches_another_namespace() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let mine = open(&url, "v2-text-a");
    let theirs = open(&url, "v2-text-b");
    theirs
        .save(&Trace::new("x").with_name("shared needle"))
        .expect("save");
    mine.save(&Trace::new("y").with_name("other"))
        .expect("save");
    let filter = TraceFilter::new().with_text("needle");
    assert!(mine.query(&filter).expect("query").is_empty());
    assert_eq!(mine.count(&filter).expect("count"), 0);
    assert_eq!(theirs.count(&filter).expect("count"), 1);
    mine.clear().expect("clear");
    theirs.clear().expect("clear");
}

#[test]
fn concurrent_merges_of_disjoint_steps_lose_none() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let store = Arc::new(open(&url, "v2-merge"));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..25 {
                    let part = Trace::new("shared")
                        .with_metadata(format!("t{t}"), i)
                        .with_step(Step::llm_call("m").with_id(format!("{t}-{i}")));
                    store.merge(&part).expect("merge");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    let merged = store.load("shared").expect("load");
    assert_eq!(merged.steps.len(), 200, "lost steps");
    for t in 0..8 {
        assert_eq!(merged.metadata[&format!("t{t}")], json!(24));
    }
    let listed = store.query(&TraceFilter::new()).expect("query");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].steps, 200, "the summary follows the merged body");
    store.clear().expect("clear");
}

fn merge_steps(store: &RedisStore, who: &str) {
    for i in 0..100 {
        let part = Trace::new("shared").with_step(Step::llm_call(who).with_id(format!("{who}{i}")));
        store.merge(&part).expect("merge");
    }
}

/// Names the store a child process (this test, run again) merges into.
const CHILD_ENV: &str = "TRACE_STORE_REDIS_V2_MERGE_CHILD";

#[test]
fn merges_from_two_processes_lose_none() {
    if let Ok(location) = std::env::var(CHILD_ENV) {
        let (url, prefix) = location.split_once('\n').expect("url and prefix");
        let store =
            RedisStore::open_with(url, RedisOptions::default().with_prefix(prefix)).expect("open");
        merge_steps(&store, "child");
        return;
    }
    let Some(url) = support::shared_url() else {
        return;
    };
    let prefix = support::unique_prefix("v2-merge2");
    let store =
        RedisStore::open_with(&url, RedisOptions::default().with_prefix(&prefix)).expect("open");
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "merges_from_two_processes_lose_none"])
        .env(CHILD_ENV, format!("{url}\n{prefix}"))
        .spawn()
        .expect("spawn child");
    merge_steps(&store, "parent");
    assert!(child.wait().expect("wait").success(), "child failed");
    let merged = store.load("shared").expect("load");
    let by = |who: &str| {
        merged
            .steps
            .iter()
            .filter(|s| s.model.as_deref() == Some(who))
            .count()
    };
    assert_eq!((by("parent"), by("child")), (100, 100));
    store.clear().expect("clear");
}

#[test]
fn merge_folds_like_core_and_rejects_bad_parts() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let store = open(&url, "v2-fold");
    let first = Trace::new("r")
        .with_created_at(at(10))
        .with_status(Status::Running)
        .with_step(Step::llm_call("m").with_id("a"));
    let part = Trace::new("r")
        .with_created_at(at(5))
        .with_session_id("s")
        .with_status(Status::Ok)
        .with_score(Score::new("q").with_value(0.5))
        .with_step(Step::llm_call("m2").with_id("a"))
        .with_step(Step::tool_call("t"));
    assert_eq!(store.merge(&first).expect("merge absent"), first);
    let mut expected = first.clone();
    expected.merge(&part);
    assert_eq!(store.merge(&part).expect("merge"), expected);
    assert_eq!(store.load("r").expect("load"), expected);
    let found = store
        .query(
            &TraceFilter::new()
                .with_session_id("s")
                .with_score("q", Some(0.5), Some(0.5)),
        )
        .expect("query");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].created_at, at(5));
    assert!(store.merge(&Trace::new("bad\nid")).is_err());
    assert!(store.load("bad\nid").is_err());
    store.clear().expect("clear");
}

#[test]
fn delete_where_deletes_exactly_the_page() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let redis = open(&url, "v2-delete");
    let memory = MemoryStore::unbounded();
    let all = traces();
    redis.save_many(&all).expect("save");
    memory.save_many(&all).expect("save");
    for filter in [
        TraceFilter::new()
            .with_session_id("sess 1")
            .with_offset(3)
            .with_limit(4),
        TraceFilter::new().with_text("alpha").with_limit(5),
        TraceFilter::new().with_score("quality", Some(0.5), None),
        TraceFilter::new().with_limit(0),
    ] {
        let expected = memory.delete_where(&filter).expect("memory");
        assert_eq!(
            redis.delete_where(&filter).expect("redis"),
            expected,
            "{filter:?}"
        );
        assert_eq!(
            redis.query(&TraceFilter::new()).expect("redis"),
            memory.query(&TraceFilter::new()).expect("memory"),
            "after delete_where {filter:?}"
        );
    }
    assert!(
        redis
            .delete_where(&TraceFilter::new().with_text(""))
            .is_err()
    );
    redis.clear().expect("clear");
}

#[test]
fn expired_traces_leave_the_new_indexes_too() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let store = RedisStore::open_with(
        &url,
        RedisOptions::default()
            .with_prefix(support::unique_prefix("v2-ttl"))
            .with_ttl(std::time::Duration::from_secs(1)),
    )
    .expect("open");
    let trace = Trace::new("r")
        .with_session_id("s")
        .with_parent_run_id("p")
        .with_name("needle")
        .with_score(Score::new("q").with_value(1.0));
    store.save(&trace).expect("save");
    let filters = [
        TraceFilter::new().with_session_id("s"),
        TraceFilter::new().with_parent_run_id("p"),
        TraceFilter::new().with_text("needle"),
        TraceFilter::new().with_score("q", None, None),
    ];
    for filter in &filters {
        assert_eq!(store.count(filter).expect("count"), 1, "{filter:?}");
    }
    // Waiting for the server's clock to pass the expiry is the point of the test, not a
    // timing assertion.
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    for filter in &filters {
        assert!(store.query(filter).expect("query").is_empty(), "{filter:?}");
        assert_eq!(store.count(filter).expect("count"), 0, "{filter:?}");
    }
    assert!(
        store
            .stats_by(&TraceFilter::new(), GroupBy::Session)
            .expect("stats_by")
            .is_empty()
    );
    assert_eq!(
        store
            .delete_where(&TraceFilter::new())
            .expect("delete_where"),
        0
    );
    store.clear().expect("clear");
}

#[test]
fn reindex_upgrades_traces_written_before_v2() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let prefix = support::unique_prefix("v2-reindex");
    let store =
        RedisStore::open_with(&url, RedisOptions::default().with_prefix(&prefix)).expect("open");
    let expiring = RedisStore::open_with(
        &url,
        RedisOptions::default()
            .with_prefix(&prefix)
            .with_ttl(std::time::Duration::from_secs(600)),
    )
    .expect("open");
    let legacy = Trace::new("legacy")
        .with_created_at(at(2))
        .with_name("Legacy Needle")
        .with_step(Step::llm_call("m").with_error(ErrorInfo::new("boom")));
    store.save(&legacy).expect("save");
    expiring
        .save(
            &Trace::new("expiring")
                .with_created_at(at(1))
                .with_name("needle too"),
        )
        .expect("save");
    // What the v1 code left: no searchable text, no version, a summary without the
    // v2 fields.
    let base = support::key_base(&prefix);
    let mut con = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .expect("raw connection");
    let texts: Vec<String> = redis::cmd("HKEYS")
        .arg(format!("{base}txt"))
        .query(&mut con)
        .expect("HKEYS");
    assert_eq!(texts.len(), 2);
    for member in &texts {
        let summary: String = redis::cmd("HGET")
            .arg(format!("{base}s"))
            .arg(member)
            .query(&mut con)
            .expect("HGET");
        let mut v1: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&summary).expect("summary");
        v1.remove("failed_steps");
        let _: () = redis::pipe()
            .cmd("HSET")
            .arg(format!("{base}s"))
            .arg(member)
            .arg(serde_json::to_string(&v1).expect("json"))
            .cmd("HDEL")
            .arg(format!("{base}txt"))
            .arg(member)
            .query(&mut con)
            .expect("make it v1");
    }
    let _: () = redis::cmd("DEL")
        .arg(format!("{base}ver"))
        .query(&mut con)
        .expect("DEL");
    let expiry = |con: &mut redis::Connection| -> Option<f64> {
        redis::cmd("ZSCORE")
            .arg(format!("{base}exp"))
            .arg("expiring")
            .query(con)
            .expect("ZSCORE")
    };
    let expires_at = expiry(&mut con).expect("expiring has an expiry");
    let needle = TraceFilter::new().with_text("needle");
    assert!(store.query(&needle).expect("query").is_empty());
    assert_eq!(
        store.query(&TraceFilter::new()).expect("query")[0].failed_steps,
        0
    );

    assert_eq!(store.reindex().expect("reindex"), 2);
    let found = store.query(&needle).expect("query");
    let ids: Vec<_> = found.iter().map(|s| s.run_id.as_str()).collect();
    assert_eq!(ids, ["legacy", "expiring"]);
    assert_eq!(found[0].failed_steps, 1);
    assert_eq!(store.load("legacy").expect("load"), legacy);
    assert_eq!(
        expiry(&mut con),
        Some(expires_at),
        "reindex kept the expiry"
    );
    // A merge after the upgrade finds the version the reindex wrote.
    store
        .merge(&Trace::new("legacy").with_session_id("s"))
        .expect("merge");
    assert_eq!(
        store
            .count(&TraceFilter::new().with_session_id("s"))
            .expect("count"),
        1
    );
    // More than one page of 500.
    let many: Vec<Trace> = (0..1_100).map(|i| Trace::new(format!("m{i}"))).collect();
    store.save_many(&many).expect("save_many");
    assert_eq!(store.reindex().expect("reindex"), 1_102);
    store.clear().expect("clear");
}
