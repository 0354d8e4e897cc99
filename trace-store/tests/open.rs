//! `trace_store::open` picks the backend from the URL, or says why it cannot.

use trace_store::Error;
#[cfg(feature = "memory")]
use trace_store::{Trace, TraceFilter};

#[cfg(feature = "memory")]
#[test]
fn memory_urls_open_working_stores() {
    let store = trace_store::open("memory://").expect("open memory://");
    store.save(&Trace::new("a")).expect("save");
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), 1);

    let bounded = trace_store::open("memory://?capacity=1").expect("open bounded");
    bounded.save(&Trace::new("a")).expect("save");
    bounded.save(&Trace::new("b")).expect("save");
    assert_eq!(
        bounded.list(10, 0).expect("list").len(),
        1,
        "capacity 1 holds one trace"
    );
    assert!(matches!(
        trace_store::open("memory://?capacity=0"),
        Err(Error::InvalidInput { .. })
    ));
    // A huge bound is a bound, not an allocation.
    let huge = trace_store::open(&format!("memory://?capacity={}", usize::MAX)).expect("open");
    huge.save(&Trace::new("a")).expect("save");
}

#[test]
fn unknown_scheme_is_invalid_input_listing_the_known_ones() {
    let Err(Error::InvalidInput { message }) = trace_store::open("mysql://localhost/db") else {
        panic!("mysql:// must be rejected");
    };
    assert!(
        message.contains("mysql")
            && message.contains("sqlite://")
            && message.contains("postgres://"),
        "{message}"
    );
}

#[cfg(not(feature = "redis"))]
#[test]
fn disabled_feature_is_named() {
    let Err(Error::InvalidInput { message }) = trace_store::open("redis://127.0.0.1:6379/0") else {
        panic!("redis:// without the feature must be rejected");
    };
    assert!(message.contains("`redis` feature"), "{message}");
}
