//! The importer: `trace_store_interop` reading arbitrary input in each format.
//!
//! Never panics; every record is saved or skipped with a typed error naming its line;
//! `check` and `import` agree; a strict import fails exactly when a lenient one skips;
//! every imported trace validates and survives the codec round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trace_store_core::{TraceFilter, TraceStore};
use trace_store_fuzz::{assert_input_error, check_trace};
use trace_store_interop::{Format, ImportOptions, MAX_REPORTED_ERRORS, check, import, selectools};
use trace_store_memory::MemoryStore;

fuzz_target!(|data: &[u8]| {
    for format in [Format::Auto, Format::Native, Format::Selectools] {
        let options = ImportOptions::default()
            .with_format(format)
            .with_batch_size(3);
        let store = MemoryStore::unbounded();
        let report = import(&store, &mut &data[..], &options).expect("a lenient import of bytes");
        let dry = check(&mut &data[..], &options).expect("a lenient check of bytes");
        assert_eq!(
            (dry.saved, dry.skipped),
            (report.saved, report.skipped),
            "check != import"
        );
        assert_eq!(dry.format, report.format);
        if format != Format::Auto {
            assert_eq!(
                report.format, format,
                "the format asked for is not the one read"
            );
        }
        assert_eq!(
            report.errors.len() as u64,
            report.skipped.min(MAX_REPORTED_ERRORS as u64)
        );
        let mut last_line = 0;
        for skipped in &report.errors {
            assert_input_error("a skipped record", &skipped.error);
            // >=: the records of one JSON array document all start on its line.
            assert!(skipped.line_number >= last_line, "errors out of line order");
            last_line = skipped.line_number;
            assert!(
                skipped
                    .to_string()
                    .starts_with(&format!("line {}", skipped.line_number))
            );
        }

        let stored = store.list(usize::MAX, 0).expect("list");
        assert!(
            stored.len() as u64 <= report.saved,
            "more traces stored than saved"
        );
        assert_eq!(stored.is_empty(), report.saved == 0);
        assert_eq!(
            store.count(&TraceFilter::new()).expect("count"),
            stored.len() as u64
        );
        for summary in &stored {
            let trace = store
                .load(&summary.run_id)
                .expect("an imported trace loads");
            trace.validate().expect("an imported trace is valid");
            check_trace(&trace);
        }

        let strict = options.clone().with_strict(true);
        let strict_store = MemoryStore::unbounded();
        match import(&strict_store, &mut &data[..], &strict) {
            Ok(strict_report) => {
                assert_eq!(
                    report.skipped, 0,
                    "a strict import passed over a bad record"
                );
                assert_eq!(strict_report.saved, report.saved);
            }
            Err(error) => {
                assert!(
                    report.skipped > 0,
                    "a strict import failed on good input: {error}"
                );
                assert_input_error("a strict import", &error);
                assert!(error.to_string().contains("line "), "{error} names no line");
            }
        }
    }

    // The selectools decoder by itself, on the whole input as one record.
    match selectools::trace_from_line(data) {
        Ok(trace) => check_trace(&trace),
        Err(error) => assert_input_error("selectools::trace_from_line", &error),
    }
});
