//! `merge_many` on the JSON Lines store: one append for the whole batch, each run_id
//! written once, and nothing written when any part or fold is refused.

use trace_store_core::{Error, Score, Step, Timestamp, Trace, TraceStore};
use trace_store_jsonl::{JsonlOptions, JsonlStore};

fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros).expect("valid")
}

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("read");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

#[test]
fn each_run_id_is_written_once_per_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.jsonl");
    let store =
        JsonlStore::open_with(&path, JsonlOptions::default().without_auto_compact()).expect("open");
    store
        .save(&Trace::new("a").with_step(Step::llm_call("a0").with_id("0")))
        .expect("save");
    let parts: Vec<Trace> = (0..6)
        .map(|i| {
            Trace::new(["a", "b", "c"][i % 3])
                .with_created_at(at(i as i64))
                .with_step(Step::llm_call(format!("m{i}")).with_id(format!("p{i}")))
        })
        .collect();
    let ids = store.merge_many(&parts).expect("merge_many");
    assert_eq!(ids, ["a", "b", "c", "a", "b", "c"]);
    let written = lines(&path);
    let run_ids: Vec<&str> = written[1..]
        .iter()
        .map(|line| line["run_id"].as_str().expect("run_id"))
        .collect();
    assert_eq!(
        run_ids,
        ["a", "b", "c"],
        "one line per run_id, in order of first appearance"
    );
    assert_eq!(store.load("a").expect("load").steps.len(), 3);
    assert_eq!(store.load("c").expect("load").steps.len(), 2);
    // A second handle reads what one append wrote.
    let other = JsonlStore::open(&path).expect("open again");
    assert_eq!(
        other.load("b").expect("load"),
        store.load("b").expect("load")
    );
}

#[test]
fn a_refused_batch_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.jsonl");
    let store = JsonlStore::open_with(&path, JsonlOptions::default().with_max_record_bytes(4096))
        .expect("open");
    store.save(&Trace::new("r")).expect("save");
    let before = std::fs::read(&path).expect("read");

    let invalid = [
        Trace::new("fresh"),
        Trace::new("r").with_score(Score::new("q").with_value(f64::NAN)),
    ];
    assert!(matches!(
        store.merge_many(&invalid),
        Err(Error::InvalidInput { .. })
    ));
    // Every part is small; their fold is over the maximum record size.
    let big = "x".repeat(1500);
    let growing: Vec<Trace> = (0..4)
        .map(|i| Trace::new("r").with_step(Step::llm_call(&big).with_id(i.to_string())))
        .chain([Trace::new("other")])
        .collect();
    assert!(matches!(
        store.merge_many(&growing),
        Err(Error::InvalidInput { .. })
    ));
    assert_eq!(std::fs::read(&path).expect("read"), before);
    assert!(store.load("fresh").is_err() && store.load("other").is_err());
    assert_eq!(store.health().expect("health").dead_records, 0);
}
