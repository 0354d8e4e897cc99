//! A backend outside this workspace joins `trace_store::open` through `register`.
#![cfg(feature = "memory")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use trace_store::{Error, MemoryStore, Trace, TraceStore};

#[test]
fn a_registered_scheme_is_opened_with_the_whole_url() {
    let seen = Arc::new(seen::Seen::default());
    let record = Arc::clone(&seen);
    trace_store::register("Acme+Mem", move |url| {
        record.push(url);
        Ok(Box::new(MemoryStore::unbounded()))
    })
    .expect("register");

    let store = trace_store::open("acme+mem://bucket/x?opt=1").expect("open");
    store.save(&Trace::new("r1")).expect("save");
    assert_eq!(store.load("r1").expect("load").run_id, "r1");
    // Schemes are case-insensitive, as RFC 3986 says.
    trace_store::open("ACME+MEM://other").expect("open upper case");
    assert_eq!(
        seen.urls(),
        vec!["acme+mem://bucket/x?opt=1", "ACME+MEM://other"],
        "the opener gets each URL whole"
    );
}

#[test]
fn an_opener_error_reaches_the_caller() {
    trace_store::register("failing", |url| {
        Err(Error::invalid(format!("{url}: no such bucket")))
    })
    .expect("register");
    let error = trace_store::open("failing://b").expect_err("opener error");
    assert!(
        error.to_string().contains("failing://b: no such bucket"),
        "{error}"
    );
}

#[test]
fn built_in_taken_and_malformed_schemes_are_refused() {
    let opened = Arc::new(AtomicUsize::new(0));
    for scheme in ["sqlite", "SQLite", "redis+cluster", "postgresql", "memory"] {
        let count = Arc::clone(&opened);
        let error = trace_store::register(scheme, move |_| {
            count.fetch_add(1, Ordering::SeqCst);
            Ok(Box::new(MemoryStore::unbounded()))
        })
        .expect_err("a built-in scheme cannot be registered");
        assert!(
            matches!(error, Error::InvalidInput { .. }) && error.to_string().contains("built into"),
            "{scheme}: {error}"
        );
    }
    for scheme in ["", "1abc", "a b", "a/b", "a:b"] {
        let error = trace_store::register(scheme, |_| Ok(Box::new(MemoryStore::unbounded())))
            .expect_err("malformed scheme");
        assert!(
            matches!(error, Error::InvalidInput { .. }),
            "{scheme:?}: {error}"
        );
    }
    trace_store::register("twice", |_| Ok(Box::new(MemoryStore::unbounded()))).expect("first");
    let error = trace_store::register("TWICE", |_| Ok(Box::new(MemoryStore::unbounded())))
        .expect_err("second registration");
    assert!(error.to_string().contains("registered already"), "{error}");

    // The built-in backends still open what they always opened.
    let store = trace_store::open("memory://").expect("memory");
    store.save(&Trace::new("m")).expect("save");
    assert_eq!(opened.load(Ordering::SeqCst), 0, "no refused opener ran");
    let error = trace_store::open("nosuch://x").expect_err("unknown scheme");
    assert!(
        error.to_string().contains("unknown store scheme"),
        "{error}"
    );
}

mod seen {
    use std::sync::Mutex;

    #[derive(Default)]
    pub(crate) struct Seen(Mutex<Vec<String>>);

    impl Seen {
        pub(crate) fn push(&self, url: &str) {
            self.0.lock().unwrap().push(url.to_owned());
        }
        pub(crate) fn urls(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }
}
