//! Recorder, Run and StepGuard against real stores.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::StalledStore;
use trace_store_core::{ErrorInfo, Status, StepKind, Trace, TraceStore, Usage};
use trace_store_memory::MemoryStore;
use trace_store_recorder::{
    Capture, ModelPrice, Pricing, QueueFull, Recorder, RecorderOptions, RunOptions,
};
use trace_store_sqlite::SqliteStore;

fn sqlite() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("traces.db")).expect("open SQLite");
    (dir, Arc::new(store))
}

#[test]
fn records_land_in_sqlite_and_versions_of_one_run_coalesce() {
    let (_dir, store) = sqlite();
    let stalled = Arc::new(StalledStore::new(store.clone()));
    let recorder = Recorder::spawn(stalled.clone(), RecorderOptions::new());
    // While the store is stalled everything piles up in the queue, so it is written
    // as one batch once the store opens.
    for version in 0..5 {
        recorder.record(Trace::new("same").with_metadata("version", version));
    }
    for i in 0..100 {
        recorder.record(Trace::new(format!("run-{i}")));
    }
    stalled.open();
    recorder.flush().expect("flush");
    assert_eq!(
        store.load("same").expect("load").metadata["version"],
        json!(4)
    );
    assert_eq!(store.list(1000, 0).expect("list").len(), 101);
    let health = recorder.health();
    assert_eq!(
        (health.written, health.dropped, health.failed),
        (105, 0, 0),
        "{health:?}"
    );
    assert!(
        health.batches <= 2,
        "expected the queued records in one batch: {health:?}"
    );
    // 105 records, 101 runs: the five versions of "same" were written as one (the
    // first record may have been taken alone, before the rest queued up).
    assert!(
        stalled.saved_in_batches() <= 102,
        "versions of one run did not coalesce: {} traces written",
        stalled.saved_in_batches()
    );
}

#[test]
fn an_invalid_trace_fails_alone_and_flush_reports_it() {
    let store = Arc::new(MemoryStore::unbounded());
    let recorder = Recorder::spawn(store.clone(), RecorderOptions::new());
    recorder.record(Trace::new("good-1"));
    recorder.record(Trace::new("bad\u{0}id"));
    recorder.record(Trace::new("good-2"));
    let error = recorder.flush().expect_err("the bad run_id is reported");
    assert!(error.to_string().contains("run_id"), "{error}");
    assert!(store.load("good-1").is_ok() && store.load("good-2").is_ok());
    let health = recorder.health();
    assert_eq!((health.written, health.failed), (2, 1));
    assert!(health.last_error.is_some());
    recorder.flush().expect("the error was reported once");
}

#[test]
fn a_stalled_store_never_blocks_record_and_drops_are_counted() {
    let stalled = Arc::new(StalledStore::new(MemoryStore::unbounded()));
    let recorder = Recorder::spawn(
        stalled.clone(),
        RecorderOptions::new()
            .with_queue_capacity(100)
            .with_drop_timeout(Duration::from_millis(10)),
    );
    for i in 0..10_000 {
        recorder.record(Trace::new(format!("r{i}")));
    }
    let health = recorder.health();
    // At most the queue plus the batch the writer holds got through; the rest dropped.
    assert!(health.dropped >= 10_000 - 100 - 512, "{health:?}");
    assert_eq!(health.written, 0);
    stalled.open();
    recorder.flush().expect("flush");
    let health = recorder.health();
    assert_eq!(health.written + health.dropped, 10_000, "{health:?}");
}

#[test]
fn wait_policy_waits_for_room_instead_of_dropping() {
    let stalled = Arc::new(StalledStore::new(MemoryStore::unbounded()));
    let recorder = Recorder::spawn(
        stalled.clone(),
        RecorderOptions::new()
            .with_queue_capacity(1)
            .with_max_batch(1)
            .with_queue_full(QueueFull::Wait(Duration::from_secs(30))),
    );
    let opener = {
        let stalled = stalled.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            stalled.open();
        })
    };
    for i in 0..20 {
        recorder.record(Trace::new(format!("r{i}")));
    }
    opener.join().expect("opener");
    recorder.flush().expect("flush");
    let health = recorder.health();
    assert_eq!((health.written, health.dropped), (20, 0), "{health:?}");
}

#[test]
fn dropping_the_recorder_flushes() {
    let (_dir, store) = sqlite();
    {
        let recorder = Recorder::spawn(store.clone(), RecorderOptions::new());
        recorder.record(Trace::new("written-on-drop"));
    }
    assert!(store.load("written-on-drop").is_ok());
}

#[test]
fn runs_and_guards_record_a_tree_with_durations_usage_and_cost() {
    let (_dir, store) = sqlite();
    let pricing =
        Pricing::new().with_model("gpt-4o-mini", ModelPrice::new(150_000_000, 600_000_000));
    let recorder = Recorder::spawn(store.clone(), RecorderOptions::new().with_pricing(pricing));
    let run = recorder.start_run(
        RunOptions::new()
            .with_run_id("r1")
            .with_name("bot")
            .with_session_id("s1")
            .with_metadata("user", "u1"),
    );
    {
        let agent = run.step(StepKind::Agent, "answer");
        let mut chat = agent.child(StepKind::LlmCall, "chat");
        chat.set_model("gpt-4o-mini")
            .set_usage(Usage::new(1_000, 200))
            .set_input("hi");
        chat.finish();
        let mut tool = agent.child("tool_call", "search");
        tool.set_error(ErrorInfo::new("timeout").with_type("TimeoutError"));
        let mut priced = agent.child(StepKind::LlmCall, "given");
        priced
            .set_model("gpt-4o-mini")
            .set_usage(Usage::new(10, 10))
            .set_cost(42);
    }
    let other_thread = run.clone();
    std::thread::spawn(move || {
        other_thread
            .step(StepKind::Memory, "remember")
            .set_attribute("k", 1);
    })
    .join()
    .expect("thread");
    run.finish(Status::Ok);
    recorder.flush().expect("flush");

    let trace = store.load("r1").expect("load");
    assert_eq!(
        (trace.name.as_deref(), trace.session_id.as_deref()),
        (Some("bot"), Some("s1"))
    );
    assert_eq!(trace.status, Status::Ok);
    assert!(trace.ended_at.is_some());
    let names: Vec<_> = trace
        .steps
        .iter()
        .map(|s| s.name.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(names, ["answer", "chat", "search", "given", "remember"]);
    let agent_id = trace.steps[0].id.clone();
    assert!(trace.steps[1..4].iter().all(|s| s.parent_id == agent_id));
    assert_eq!(trace.steps[4].parent_id, None);
    let chat = &trace.steps[1];
    assert_eq!(chat.cost_nano_usd, 150_000 + 120_000);
    assert_eq!(chat.attributes["cost.source"], "computed");
    assert_eq!(trace.steps[2].status, Status::Error);
    assert_eq!(
        trace.steps[3].cost_nano_usd, 42,
        "a producer's cost is never recomputed"
    );
    assert!(trace.steps.iter().all(|s| s.started_at.is_some()));
    assert!(trace.steps[0].duration_us >= trace.steps[1].duration_us);
}

#[test]
fn a_guard_dropped_during_a_panic_records_an_error() {
    let store = Arc::new(MemoryStore::unbounded());
    let recorder = Recorder::spawn(store.clone(), RecorderOptions::new());
    let run = recorder.start_run(RunOptions::new().with_run_id("p"));
    let in_thread = run.clone();
    let outcome = std::thread::spawn(move || {
        let _guard = in_thread.step(StepKind::ToolCall, "explodes");
        panic!("tool blew up");
    })
    .join();
    assert!(outcome.is_err());
    drop(run);
    recorder.flush().expect("flush");
    let trace = store.load("p").expect("load");
    assert_eq!(trace.steps[0].status, Status::Error);
    assert_eq!(
        trace.steps[0]
            .error
            .as_ref()
            .and_then(|e| e.error_type.as_deref()),
        Some("panic")
    );
    assert_eq!(
        trace.status,
        Status::Ok,
        "the run itself was dropped normally"
    );
}

#[test]
fn live_runs_are_merged_as_running_then_saved_when_finished() {
    let (_dir, store) = sqlite();
    let recorder = Recorder::spawn(
        store.clone(),
        RecorderOptions::new().with_live_every(Duration::from_millis(5)),
    );
    let run = recorder.start_run(RunOptions::new().with_run_id("live"));
    run.step(StepKind::LlmCall, "first").finish();
    let seen = wait_for(|| store.load("live").ok().filter(|t| t.steps.len() == 1));
    assert_eq!(seen.status, Status::Running);
    run.step(StepKind::LlmCall, "second").finish();
    let seen = wait_for(|| store.load("live").ok().filter(|t| t.steps.len() == 2));
    assert_eq!(seen.status, Status::Running);
    run.finish(Status::Ok);
    recorder.flush().expect("flush");
    let done = store.load("live").expect("load");
    assert_eq!((done.status, done.steps.len()), (Status::Ok, 2));
}

/// Polls until `probe` sees what it waits for (bounded: 10 s).
fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    for _ in 0..2_000 {
        if let Some(found) = probe() {
            return found;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("condition not reached within 10 s");
}

#[test]
fn default_redactor_keeps_secrets_out_of_the_store() {
    let (_dir, store) = sqlite();
    let recorder = Recorder::spawn(
        store.clone(),
        RecorderOptions::new().with_capture(Capture::redact_secrets()),
    );
    let run = recorder.start_run(
        RunOptions::new()
            .with_run_id("secret")
            .with_metadata("api_key", "k-123"),
    );
    run.step(StepKind::ToolCall, "call_api")
        .set_input(json!({"api_key": "k-123456", "query": "weather"}))
        .set_output("token=abcdef123 ok");
    run.set_metadata("password", "hunter2-later");
    run.set_error(ErrorInfo::new(
        "auth failed with Bearer abcdefghijklmnop1234",
    ));
    run.step(StepKind::LlmCall, "chat").set_input(json!([
        {"role": "user", "content": "my key is sk-proj-abcdefghijklmnopqrstuvwx, keep it"}
    ]));
    run.finish(Status::Ok);
    recorder.flush().expect("flush");
    let stored = serde_json::to_string(&store.load("secret").expect("load")).expect("json");
    for secret in [
        "k-123",
        "sk-proj-abcdefghijklmnopqrstuvwx",
        "abcdef123",
        "hunter2-later",
        "abcdefghijklmnop1234",
    ] {
        assert!(
            !stored.contains(secret),
            "{secret} reached the store: {stored}"
        );
    }
    assert!(
        stored.contains("weather") && stored.contains("keep it"),
        "{stored}"
    );
}

#[test]
fn metadata_only_stores_no_input_or_output() {
    let store = Arc::new(MemoryStore::unbounded());
    let recorder = Recorder::spawn(
        store.clone(),
        RecorderOptions::new().with_capture(Capture::MetadataOnly),
    );
    let run = recorder.start_run(RunOptions::new().with_run_id("m"));
    run.step(StepKind::LlmCall, "chat")
        .set_input("prompt")
        .set_output("answer")
        .set_model("m1");
    run.finish(Status::Ok);
    let mut direct = Trace::new("direct");
    direct.steps.push(
        trace_store_core::Step::llm_call("m2")
            .with_input("p")
            .with_output("o"),
    );
    recorder.record(direct);
    recorder.flush().expect("flush");
    for run_id in ["m", "direct"] {
        let trace = store.load(run_id).expect("load");
        assert!(
            trace
                .steps
                .iter()
                .all(|s| s.input.is_none() && s.output.is_none()),
            "{trace:?}"
        );
        assert!(trace.steps[0].model.is_some());
    }
}

#[test]
fn a_step_ending_after_its_run_is_merged_into_the_stored_run() {
    let (_dir, store) = sqlite();
    let recorder = Recorder::spawn(store.clone(), RecorderOptions::new());
    let run = recorder.start_run(RunOptions::new().with_run_id("late"));
    let slow = run.step(StepKind::ToolCall, "slow");
    run.step(StepKind::LlmCall, "quick").finish();
    run.finish(Status::Ok);
    recorder.flush().expect("flush");
    assert_eq!(store.load("late").expect("load").steps.len(), 1);
    slow.finish();
    recorder.flush().expect("flush");
    let trace = store.load("late").expect("load");
    let names: Vec<_> = trace
        .steps
        .iter()
        .map(|s| s.name.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(names, ["quick", "slow"]);
    assert_eq!(
        trace.status,
        Status::Ok,
        "the late step leaves the run's status alone"
    );
}
