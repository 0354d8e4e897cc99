//! Contract v2 on the JSON Lines store beyond the conformance suite: lines written by
//! the v1 code, merges from two processes, text search over bodies across handles and
//! compactions, and bulk deletes that leave the file compacted.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use trace_store_core::{
    Error, GroupBy, RetentionPolicy, Status, Step, Timestamp, Trace, TraceFilter, TraceStore,
    TraceStoreExt,
};
use trace_store_jsonl::{JsonlOptions, JsonlStore};

const FILE: &str = "traces.jsonl";
const ROLE_ENV: &str = "TRACE_STORE_JSONL_V2_ROLE";

fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros).expect("valid")
}

fn ids(store: &JsonlStore, filter: &TraceFilter) -> Vec<String> {
    let page = store.query(filter).expect("query");
    page.into_iter().map(|s| s.run_id).collect()
}

/// Two save lines and a tombstone exactly as the v1 code wrote them: a summary without
/// `failed_steps`, `parent_run_id`, `session_id` or `scores`, beside a trace that has a
/// parent run and one failure recorded twice (a failed tool call inside a failed agent
/// step, in a failed run).
const V1_LINES: &str = concat!(
    r#"{"run_id":"v1-failed","name":"agent","status":"error","created_at":"2026-01-16T09:30:00.000000Z","steps":3,"total_ms":1.5,"error_count":3,"input_tokens":7,"output_tokens":2,"cost_nano_usd":0,"models":{"m":{"calls":1,"input_tokens":7,"output_tokens":2,"cost_nano_usd":0}},"metadata":{"user_id":"u_1"},"trace":{"schema_version":1,"run_id":"v1-failed","parent_run_id":"parent-1","name":"agent","created_at":"2026-01-16T09:30:00.000000Z","status":"error","error":{"type":"ToolError","message":"search failed"},"metadata":{"user_id":"u_1"},"steps":[{"kind":"agent","id":"a","duration_us":1500,"status":"error"},{"kind":"tool_call","id":"t","parent_id":"a","duration_us":1000,"status":"error","tool":{"name":"search"},"error":{"type":"Timeout","message":"no answer from the index"}},{"kind":"llm_call","parent_id":"a","duration_us":200,"model":"m","usage":{"input_tokens":7,"output_tokens":2}}]}}"#,
    "\n",
    r#"{"run_id":"v1-ok","status":"ok","created_at":"2026-01-15T08:00:00.000000Z","steps":1,"total_ms":0.25,"error_count":0,"input_tokens":0,"output_tokens":0,"cost_nano_usd":0,"trace":{"schema_version":1,"run_id":"v1-ok","created_at":"2026-01-15T08:00:00.000000Z","status":"ok","steps":[{"kind":"tool_call","duration_us":250,"tool":{"name":"calculator"}}]}}"#,
    "\n",
    r#"{"run_id":"v1-gone","created_at":"2026-01-14T08:00:00.000000Z","steps":0,"total_ms":0.0,"error_count":0,"input_tokens":0,"output_tokens":0,"cost_nano_usd":0,"trace":{"schema_version":1,"run_id":"v1-gone","created_at":"2026-01-14T08:00:00.000000Z"}}"#,
    "\n",
    r#"{"run_id":"v1-gone","deleted_at":"2026-01-16T11:02:03.000000Z"}"#,
    "\n",
);

#[test]
fn lines_written_by_the_v1_code_open_with_correct_summaries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE);
    std::fs::write(&path, V1_LINES).expect("write");
    let store = JsonlStore::open(&path).expect("open a v1 file");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        V1_LINES,
        "opening must not rewrite v1 lines"
    );

    let failed = store
        .query(&TraceFilter::new().with_name("agent"))
        .expect("query");
    assert_eq!(failed.len(), 1);
    let summary = &failed[0];
    // Literal answers: the failed tool call inside the failed agent step is one failure.
    assert_eq!(
        (summary.error_count, summary.failed_steps, summary.steps),
        (3, 1, 3)
    );
    assert_eq!(summary.parent_run_id.as_deref(), Some("parent-1"));
    assert_eq!((summary.input_tokens, summary.output_tokens), (7, 2));
    assert_eq!(summary.total_ms, 1.5);
    assert_eq!(
        ids(&store, &TraceFilter::new().with_parent_run_id("parent-1")),
        ["v1-failed"]
    );
    assert_eq!(ids(&store, &TraceFilter::new()), ["v1-failed", "v1-ok"]);
    let stats = store.stats(&TraceFilter::new()).expect("stats");
    assert_eq!(
        (stats.count, stats.error_count, stats.failed_steps),
        (2, 3, 1)
    );
    assert_eq!(
        ids(&store, &TraceFilter::new().with_text("NO ANSWER from")),
        ["v1-failed"]
    );
    let loaded = store.load("v1-failed").expect("load");
    assert_eq!(loaded.steps[1].status, Status::Error);
    assert!(matches!(store.load("v1-gone"), Err(Error::NotFound { .. })));

    // New lines beside old ones, then a compaction that copies the old ones verbatim.
    store
        .merge(
            &Trace::new("v1-ok")
                .with_session_id("s-1")
                .with_status(Status::Ok),
        )
        .expect("merge into a v1 trace");
    store.compact().expect("compact");
    let reopened = JsonlStore::open(&path).expect("reopen");
    let summaries = reopened.query(&TraceFilter::new()).expect("query");
    let failed = summaries
        .iter()
        .find(|s| s.run_id == "v1-failed")
        .expect("kept");
    assert_eq!(failed.failed_steps, 1);
    assert_eq!(
        ids(&reopened, &TraceFilter::new().with_session_id("s-1")),
        ["v1-ok"]
    );
}

#[test]
fn text_search_reads_bodies_across_handles_and_compactions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE);
    let writer = JsonlStore::open(&path).expect("open");
    let reader = JsonlStore::open(&path).expect("open");
    for i in 0..20 {
        let output = if i % 4 == 0 {
            "Le café est prêt"
        } else {
            "nothing"
        };
        writer
            .save(
                &Trace::new(format!("r{i:02}"))
                    .with_created_at(at(i))
                    .with_step(Step::tool_call("brew").with_output(output)),
            )
            .expect("save");
    }
    let cafe = TraceFilter::new().with_text("CAFÉ EST");
    assert_eq!(ids(&reader, &cafe), ["r16", "r12", "r08", "r04", "r00"]);
    assert_eq!(
        ids(&reader, &cafe.clone().with_offset(1).with_limit(2)),
        ["r12", "r08"]
    );
    assert_eq!(reader.count(&cafe).expect("count"), 5);
    for i in (0..20).filter(|i| i % 8 != 0) {
        writer.delete(&format!("r{i:02}")).expect("delete");
    }
    writer.compact().expect("compact");
    assert_eq!(
        ids(&reader, &cafe),
        ["r16", "r08", "r00"],
        "after another handle compacted"
    );
    let days = reader.stats_by(&cafe, GroupBy::Day).expect("stats_by");
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].1.count, 3);
}

#[test]
fn a_damaged_body_makes_a_text_query_a_corrupt_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE);
    let store = JsonlStore::open(&path).expect("open");
    store
        .save(&Trace::new("a").with_step(Step::tool_call("needle")))
        .expect("save");
    let text = std::fs::read_to_string(&path).expect("read");
    // The line stays a well-formed record whose summary reads fine; only its body no
    // longer decodes as a trace.
    let damaged = text.replace("\"kind\":\"tool_call\"", "\"kind\":[\"tool_call\"]");
    assert_ne!(damaged, text);
    std::fs::write(&path, damaged).expect("write");
    let reopened = JsonlStore::open(&path).expect("open");
    assert_eq!(reopened.count(&TraceFilter::new()).expect("count"), 1);
    let error = reopened.count(&TraceFilter::new().with_text("needle"));
    assert!(matches!(error, Err(Error::Corrupt { .. })), "{error:?}");
    let error = reopened.query(&TraceFilter::new().with_text("needle"));
    assert!(matches!(error, Err(Error::Corrupt { .. })), "{error:?}");
}

#[test]
fn purging_half_of_a_store_leaves_it_compacted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE);
    // Default options: the file stays far below the 1 MiB threshold of automatic
    // compaction after single writes; a bulk delete compacts anyway.
    let store = JsonlStore::open(&path).expect("open");
    let traces: Vec<Trace> = (0..200)
        .map(|i| {
            Trace::new(format!("r{i:03}"))
                .with_created_at(at(i))
                .with_step(Step::llm_call("m").with_usage(10, 1))
        })
        .collect();
    store.save_many(&traces).expect("save_many");
    let health = store.health().expect("health");
    assert_eq!((health.live_records, health.dead_bytes), (200, 0));

    let report = store
        .purge(&RetentionPolicy::new().with_max_count(100), at(1_000))
        .expect("purge");
    assert_eq!(report.deleted_by_count, 100);
    let health = store.health().expect("health");
    assert_eq!(
        (health.live_records, health.dead_records, health.dead_bytes),
        (100, 0, 0),
        "C15: purge of half must leave the file compacted: {health:?}"
    );
    assert_eq!(health.file_bytes, health.live_bytes);
    let reopened = JsonlStore::open(&path).expect("reopen");
    assert_eq!(ids(&reopened, &TraceFilter::new().with_limit(1)), ["r199"]);
    assert_eq!(reopened.count(&TraceFilter::new()).expect("count"), 100);

    // A small bulk delete leaves dead bytes below live ones: no rewrite.
    assert_eq!(
        store
            .delete_where(&TraceFilter::new().with_limit(3))
            .expect("delete_where"),
        3
    );
    let health = store.health().expect("health");
    assert_eq!((health.live_records, health.dead_records), (97, 6));
}

#[test]
fn bulk_deletes_never_compact_when_automatic_compaction_is_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = JsonlStore::open_with(
        dir.path().join(FILE),
        JsonlOptions::default().without_auto_compact(),
    )
    .expect("open");
    for i in 0..10 {
        store
            .save(&Trace::new(format!("r{i}")).with_created_at(at(i)))
            .expect("save");
    }
    assert_eq!(
        store
            .delete_where(&TraceFilter::new())
            .expect("delete_where"),
        10
    );
    let health = store.health().expect("health");
    assert_eq!((health.live_records, health.dead_records), (0, 20));
}

#[test]
fn two_handles_and_eight_threads_merging_lose_no_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let handles = [
        Arc::new(JsonlStore::open(dir.path().join(FILE)).expect("open")),
        Arc::new(JsonlStore::open(dir.path().join(FILE)).expect("open")),
    ];
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&handles[t % 2]);
            std::thread::spawn(move || {
                for i in 0..25 {
                    let step = Step::llm_call("m").with_id(format!("t{t}-{i}"));
                    store
                        .merge(&Trace::new("shared").with_step(step))
                        .expect("merge");
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().expect("thread"));
    for store in &handles {
        assert_eq!(
            store.load("shared").expect("load").steps.len(),
            200,
            "C12: lost steps"
        );
    }
}

/// A child process of `two_processes_merging_into_one_run_lose_no_step`.
fn merge_in_child(dir: &Path, prefix: &str) {
    let store = JsonlStore::open_with(
        dir.join(FILE),
        JsonlOptions::default().with_auto_compact_min_bytes(0),
    )
    .expect("open");
    for i in 0..100 {
        let step = Step::llm_call("m").with_id(format!("{prefix}-{i}"));
        store
            .merge(&Trace::new("shared").with_step(step))
            .expect("merge");
    }
}

#[test]
fn two_processes_merging_into_one_run_lose_no_step() {
    const TEST: &str = "two_processes_merging_into_one_run_lose_no_step";
    if let Ok(spec) = std::env::var(ROLE_ENV) {
        let (dir, prefix) = spec.split_once('\t').expect("dir\tprefix");
        merge_in_child(Path::new(dir), prefix);
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current_exe");
    let children: Vec<_> = ["p1", "p2"]
        .iter()
        .map(|prefix| {
            Command::new(&exe)
                .args([TEST, "--exact", "--test-threads=1"])
                .env(ROLE_ENV, format!("{}\t{prefix}", dir.path().display()))
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().expect("wait").success(), "a child failed");
    }
    let store = JsonlStore::open(dir.path().join(FILE)).expect("open");
    let merged = store.load("shared").expect("load");
    let mut step_ids: Vec<String> = merged.steps.iter().filter_map(|s| s.id.clone()).collect();
    step_ids.sort();
    step_ids.dedup();
    assert_eq!(
        step_ids.len(),
        200,
        "C12: merges from two processes lost steps"
    );
}
