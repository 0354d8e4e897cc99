//! The selectools sample (testdata/selectools-200.jsonl) round-trips through OTLP, and
//! its steps travel as GenAI attributes, not as raw JSON.

mod common;

use std::io::BufReader;

use trace_store_core::Trace;
use trace_store_interop::{Format, read_traces};
use trace_store_otlp::Encoding;

fn sample() -> Vec<Trace> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/selectools-200.jsonl"
    );
    let file = std::fs::File::open(path).unwrap();
    let mut reader = BufReader::new(file);
    read_traces(&mut reader, Format::Selectools)
        .map(|line| line.trace.unwrap())
        .collect()
}

#[test]
fn the_selectools_sample_round_trips_in_both_encodings() {
    let traces = sample();
    assert_eq!(traces.len(), 200);
    for encoding in [Encoding::Json, Encoding::Protobuf] {
        let back = common::model_round_trip(&traces, encoding);
        assert_eq!(back.len(), traces.len());
        for (back, trace) in back.iter().zip(&traces) {
            assert_eq!(back, trace, "{encoding:?} {}", trace.run_id);
        }
    }
    assert_eq!(
        common::raw_steps(&traces),
        0,
        "every step maps to span attributes"
    );
}
