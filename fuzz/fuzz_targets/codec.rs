//! core's codec: `Trace::from_json_slice` on arbitrary bytes never panics and fails
//! with a typed error; whatever decodes re-encodes and decodes to the same trace, with
//! stable bytes and stable canonical JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use trace_store_core::Trace;
use trace_store_fuzz::{assert_input_error, check_canonical, check_trace};

fuzz_target!(|data: &[u8]| {
    match Trace::from_json_slice(data) {
        Ok(trace) => check_trace(&trace),
        Err(error) => assert_input_error("Trace::from_json_slice", &error),
    }
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        check_canonical(&value);
    }
});
