//! `TraceStoreExt` conveniences, on a real store.

use std::io::Cursor as IoCursor;

use trace_store_core::{Error, Step, Timestamp, Trace, TraceFilter, TraceStore, TraceStoreExt};
use trace_store_memory::MemoryStore;

fn trace(i: i64) -> Trace {
    Trace::new(format!("r{i:03}"))
        .with_created_at(Timestamp::from_micros(i).expect("valid"))
        .with_metadata("even", i % 2 == 0)
        .with_step(Step::llm_call("m").with_usage(i as u64, 1))
}

fn filled(n: i64) -> MemoryStore {
    let store = MemoryStore::unbounded();
    store
        .save_many(&(0..n).map(trace).collect::<Vec<_>>())
        .expect("save_many");
    store
}

#[test]
fn load_opt_maps_only_not_found_to_none() {
    let store = filled(3);
    assert_eq!(store.load_opt("r001").expect("load_opt"), Some(trace(1)));
    assert_eq!(store.load_opt("nope").expect("load_opt"), None);
}

#[test]
fn iter_summaries_walks_every_match_in_order_across_pages() {
    let store = filled(23);
    let ids: Vec<String> = store
        .iter_summaries(TraceFilter::new().with_metadata("even", true), 4)
        .map(|s| s.expect("page").run_id)
        .collect();
    let expected: Vec<String> = (0..23)
        .rev()
        .filter(|i| i % 2 == 0)
        .map(|i| format!("r{i:03}"))
        .collect();
    assert_eq!(ids, expected);

    let limited: Vec<_> = store
        .iter_summaries(TraceFilter::new().with_offset(2).with_limit(5), 2)
        .map(|s| s.expect("page").run_id)
        .collect();
    assert_eq!(limited, ["r020", "r019", "r018", "r017", "r016"]);
}

#[test]
fn iter_summaries_reports_a_bad_filter_once() {
    let store = filled(3);
    let bad = TraceFilter::new().with_min_steps(2).with_max_steps(1);
    let results: Vec<_> = store.iter_summaries(bad, 10).collect();
    assert_eq!(results.len(), 1);
    assert!(matches!(results[0], Err(Error::InvalidInput { .. })));
}

#[test]
fn copy_to_copies_exactly_the_selection() {
    let source = filled(600);
    let target = MemoryStore::unbounded();
    let copied = source
        .copy_to(&target, &TraceFilter::new().with_metadata("even", false))
        .expect("copy");
    assert_eq!(copied, 300);
    assert_eq!(target.load("r599").expect("load"), trace(599));
    assert!(target.load_opt("r598").expect("load_opt").is_none());
}

#[test]
fn export_then_import_round_trips() {
    let source = filled(300);
    let mut buffer = Vec::new();
    assert_eq!(
        source
            .export_jsonl(&TraceFilter::new(), &mut buffer)
            .expect("export"),
        300
    );
    assert_eq!(buffer.iter().filter(|b| **b == b'\n').count(), 300);
    let target = MemoryStore::unbounded();
    assert_eq!(
        target
            .import_jsonl(&mut IoCursor::new(&buffer))
            .expect("import"),
        300
    );
    for i in [0, 150, 299] {
        assert_eq!(target.load(&format!("r{i:03}")).expect("load"), trace(i));
    }
}

#[test]
fn import_names_the_bad_line() {
    let good = trace(1).to_json_string().expect("encode");
    let input = format!("{good}\n\n{{not json\n");
    let store = MemoryStore::unbounded();
    match store.import_jsonl(&mut IoCursor::new(input.as_bytes())) {
        Err(Error::InvalidInput { message }) => {
            assert!(message.starts_with("line 3:"), "{message}")
        }
        other => panic!("expected InvalidInput naming line 3, got {other:?}"),
    }
    let invalid_id = Trace::new("bad\nid").to_json_string().expect("encode");
    let result = store.import_jsonl(&mut IoCursor::new(format!("{invalid_id}\n").as_bytes()));
    assert!(
        matches!(result, Err(Error::InvalidInput { .. })),
        "{result:?}"
    );
}
