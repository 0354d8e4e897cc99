//! Encode and decode throughput on the selectools sample (200 traces, 2,144 steps).

use std::io::BufReader;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trace_store_core::Trace;
use trace_store_interop::{Format, read_traces};
use trace_store_otlp::{Encoding, decode_request, decode_traces, encode_traces};

fn sample() -> Vec<Trace> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/selectools-200.jsonl"
    );
    let mut reader = BufReader::new(std::fs::File::open(path).expect("the sample is in testdata"));
    read_traces(&mut reader, Format::Selectools)
        .map(|line| line.trace.expect("the sample is valid"))
        .collect()
}

fn codec(c: &mut Criterion) {
    let traces = sample();
    let mut group = c.benchmark_group("otlp");
    for encoding in [Encoding::Protobuf, Encoding::Json] {
        let body = encode_traces(&traces, encoding).expect("encodes");
        let spans: usize = decode_request(&body, encoding)
            .expect("decodes")
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum();
        group.throughput(Throughput::Elements(spans as u64));
        group.bench_function(format!("encode/{encoding:?}"), |b| {
            b.iter(|| encode_traces(&traces, encoding).expect("encodes"))
        });
        group.bench_function(format!("decode/{encoding:?}"), |b| {
            b.iter(|| decode_traces(&body, encoding).expect("decodes"))
        });
    }
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
