//! The OTLP json decoders on arbitrary bytes; see `check_otlp` for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trace_store_otlp::Encoding;

fuzz_target!(|data: &[u8]| trace_store_fuzz::check_otlp(data, Encoding::Json));
