//! How TraceLayer finds a span's parent step: contextual and explicit parents, explicit
//! roots, and parents a per-layer filter hides from the layer.
#![cfg(feature = "tracing")]

use std::sync::Arc;

use trace_store_core::{Trace, TraceStore};
use trace_store_memory::MemoryStore;
use trace_store_recorder::{Recorder, RecorderOptions, TraceLayer};
use tracing::Dispatch;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

fn record(dispatch: &Dispatch, recorder: &Recorder, spans: impl FnOnce()) {
    tracing::dispatcher::with_default(dispatch, spans);
    recorder.flush().expect("flush");
}

/// Each step's name and its parent's name.
fn tree(trace: &Trace) -> Vec<(String, Option<String>)> {
    let name_of = |id: &Option<String>| {
        trace
            .steps
            .iter()
            .find(|step| step.id == *id)
            .and_then(|step| step.name.clone())
    };
    trace
        .steps
        .iter()
        .map(|step| {
            let parent = step
                .parent_id
                .as_ref()
                .and_then(|_| name_of(&step.parent_id));
            (step.name.clone().unwrap_or_default(), parent)
        })
        .collect()
}

fn pair(name: &str, parent: Option<&str>) -> (String, Option<String>) {
    (name.to_owned(), parent.map(str::to_owned))
}

#[test]
fn a_parent_hidden_by_a_per_layer_filter_is_skipped() {
    let store = Arc::new(MemoryStore::unbounded());
    let recorder = Recorder::spawn(store.clone(), RecorderOptions::new());
    let layer = TraceLayer::new(recorder.clone()).with_filter(
        tracing_subscriber::filter::filter_fn(|metadata| metadata.name() != "hidden"),
    );
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    record(&dispatch, &recorder, || {
        let root = tracing::info_span!(
            "agent",
            trace_store.run_id = "filtered",
            gen_ai.operation.name = "invoke_agent"
        );
        let _root = root.enter();
        let hidden = tracing::info_span!("hidden", gen_ai.operation.name = "chain");
        let _hidden = hidden.enter();
        tracing::info_span!("chat", gen_ai.operation.name = "chat").in_scope(|| {
            tracing::info_span!("tool", gen_ai.tool.name = "search").in_scope(|| {});
        });
    });
    let trace = store.load("filtered").expect("load");
    assert_eq!(
        tree(&trace),
        [
            pair("agent", None),
            pair("chat", Some("agent")),
            pair("tool", Some("chat")),
        ]
    );
}

#[test]
fn explicit_parents_and_explicit_roots_are_followed() {
    let store = Arc::new(MemoryStore::unbounded());
    let recorder = Recorder::spawn(store.clone(), RecorderOptions::new());
    let dispatch =
        Dispatch::new(tracing_subscriber::registry().with(TraceLayer::new(recorder.clone())));
    record(&dispatch, &recorder, || {
        let first = tracing::info_span!(
            "first",
            trace_store.run_id = "first",
            gen_ai.operation.name = "invoke_agent"
        );
        let second = tracing::info_span!(
            "second",
            trace_store.run_id = "second",
            gen_ai.operation.name = "invoke_agent"
        );
        let _second = second.enter();
        // Entered inside `second`, but its parent is `first`.
        tracing::info_span!(parent: &first, "chat", gen_ai.operation.name = "chat").in_scope(
            || {
                tracing::info_span!("tool", gen_ai.tool.name = "search").in_scope(|| {});
            },
        );
        // Inside `second`, but a run of its own.
        tracing::info_span!(parent: None, "own", trace_store.run_id = "own",
            gen_ai.operation.name = "invoke_agent")
        .in_scope(|| {});
        tracing::info_span!("embed", gen_ai.operation.name = "embeddings").in_scope(|| {});
    });
    let first = store.load("first").expect("first");
    assert_eq!(
        tree(&first),
        [
            pair("first", None),
            pair("chat", Some("first")),
            pair("tool", Some("chat")),
        ]
    );
    let second = store.load("second").expect("second");
    assert_eq!(
        tree(&second),
        [pair("second", None), pair("embed", Some("second"))]
    );
    assert_eq!(tree(&store.load("own").expect("own")), [pair("own", None)]);
}

/// Logs from its `Debug`, as a value recorded on a span might.
struct Chatty;

impl std::fmt::Debug for Chatty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        tracing::info!("formatting");
        tracing::info_span!("nested", gen_ai.operation.name = "chat").in_scope(|| {});
        f.write_str("chatty")
    }
}

#[test]
fn a_recorded_value_whose_debug_logs_does_not_deadlock() {
    let store = Arc::new(MemoryStore::unbounded());
    let recorder = Recorder::spawn(store.clone(), RecorderOptions::new());
    let dispatch =
        Dispatch::new(tracing_subscriber::registry().with(TraceLayer::new(recorder.clone())));
    let (done, finished) = std::sync::mpsc::channel();
    let agent = recorder.clone();
    std::thread::spawn(move || {
        record(&dispatch, &agent, || {
            let root = tracing::info_span!(
                "agent",
                trace_store.run_id = "chatty",
                gen_ai.operation.name = "invoke_agent",
                value = tracing::field::Empty
            );
            let _entered = root.enter();
            // The Debug runs inside the root: its event and span would go to the root.
            root.record("value", tracing::field::debug(Chatty));
            tracing::info!("after");
        });
        done.send(()).expect("send");
    });
    finished
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("recording a value whose Debug logs must not wait on the layer's lock");
    let trace = store.load("chatty").expect("load");
    assert_eq!(
        trace.steps.len(),
        1,
        "nothing from inside the Debug is recorded"
    );
    assert_eq!(trace.steps[0].attributes["value"], "chatty");
    let events = trace.steps[0].attributes["events"]
        .as_array()
        .expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["name"], "after");
}
