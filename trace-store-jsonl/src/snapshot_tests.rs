use super::*;
use trace_store_core::{Trace, TraceSummary};

#[test]
fn metadata_values_round_trip_exactly() {
    let values = [
        serde_json::json!(null),
        serde_json::json!([true, false, 1, -1, 1.0, 0.1, u64::MAX, i64::MIN]),
        serde_json::json!({"a": {"b": ["x", "\u{e9}", ""]}, "": 2.5e300}),
    ];
    for value in values {
        let mut index = Index::default();
        let trace = Trace::new("r").with_metadata("k", value.clone());
        let loc = Loc {
            offset: 0,
            len: 1,
            trace_offset: 0,
            trace_len: 1,
        };
        index.save(TraceSummary::from(&trace), loc);
        let mut out = Out {
            inner: Vec::new(),
            crc: crc32fast::Hasher::new(),
        };
        write_index(&mut out, &index).unwrap();
        let len = out.inner.len() as u64;
        let back = read_index(&mut In::new(&out.inner[..], len)).expect("reads back");
        let entry = back.entry("r").unwrap();
        assert_eq!(back.summary(entry).metadata["k"], value);
        assert_eq!(
            back.summary(entry),
            index.summary(index.entry("r").unwrap())
        );
    }
}
