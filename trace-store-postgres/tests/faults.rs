//! A real server stopped and restarted under the store, timeouts, schemas that share a
//! database, hostile strings, and calls from inside Tokio runtimes.

use std::time::{Duration, Instant};

use trace_store_core::{Error, Step, Trace, TraceFilter, TraceStore};
use trace_store_postgres::{PostgresOptions, PostgresStore};
use trace_store_test_support::PostgresServer;

fn options(schema: &str) -> PostgresOptions {
    PostgresOptions::default()
        .with_schema(schema)
        .with_connect_timeout(Duration::from_secs(2))
}

#[test]
fn a_stopped_server_is_a_backend_error_and_the_store_recovers_when_it_returns() {
    let Some(mut server) = PostgresServer::start_unless_missing() else {
        return;
    };
    let store = PostgresStore::open_with(&server.url(), options("faults")).unwrap();
    store.save(&Trace::new("before")).unwrap();

    server.stop();
    let started = Instant::now();
    let error = store.load("before").unwrap_err();
    assert!(
        matches!(
            error,
            Error::Backend {
                backend: "postgres",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by the timeouts"
    );
    let message = error.to_string();
    assert!(message.contains("postgres"), "{message}");
    assert!(
        error.is_retryable(),
        "a lost server is worth a retry: {error}"
    );
    let error = store.save(&Trace::new("while-down")).unwrap_err();
    assert!(error.is_retryable(), "{error}");

    server.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let trace = loop {
        match store.load("before") {
            Ok(trace) => break trace,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(error) => panic!("the store did not recover: {error}"),
        }
    };
    assert_eq!(trace.run_id, "before", "committed data survives the crash");
    store.save(&Trace::new("after")).unwrap();
    assert_eq!(store.list(10, 0).unwrap().len(), 2);
}

#[test]
fn stores_in_different_schemas_never_see_each_other() {
    let Some(server) = PostgresServer::start_unless_missing() else {
        return;
    };
    let a = PostgresStore::open_with(&server.url(), options("team_a")).unwrap();
    let b = PostgresStore::open(&format!("{}?schema=team%20b", server.url())).unwrap();
    a.save(&Trace::new("shared-id").with_name("a").with_metadata("k", 1))
        .unwrap();
    assert!(b.list(10, 0).unwrap().is_empty());
    assert!(matches!(b.load("shared-id"), Err(Error::NotFound { .. })));
    assert_eq!(b.count(&TraceFilter::new().with_text("a")).unwrap(), 0);
    assert_eq!(b.delete_where(&TraceFilter::new()).unwrap(), 0);
    assert_eq!(a.count(&TraceFilter::new()).unwrap(), 1);
}

#[test]
fn hostile_strings_round_trip_and_match_exactly() {
    let Some(server) = PostgresServer::start_unless_missing() else {
        return;
    };
    let store = PostgresStore::open_with(&server.url(), options("hostile")).unwrap();
    let nasty = [
        "'; DROP TABLE traces; --",
        "$1",
        "back\\slash",
        "quote\"d",
        "100%_like",
        "nul\u{0}inside",
        "ünïcødé 你好",
    ];
    for (i, text) in nasty.iter().enumerate() {
        let trace = Trace::new(format!("{}-{i}", text.replace('\0', "")))
            .with_name(*text)
            .with_session_id(*text)
            .with_metadata(*text, *text)
            .with_step(Step::llm_call(*text).with_output(*text).with_usage(1, 1));
        store.save(&trace).unwrap();
        assert_eq!(store.load(&trace.run_id).unwrap(), trace, "{text:?}");
        let by_name = store.query(&TraceFilter::new().with_name(*text)).unwrap();
        assert_eq!(by_name.len(), 1, "name {text:?}");
        let by_meta = store
            .query(&TraceFilter::new().with_metadata(*text, *text))
            .unwrap();
        assert_eq!(by_meta.len(), 1, "metadata {text:?}");
        let by_text = store.query(&TraceFilter::new().with_text(*text)).unwrap();
        assert!(
            by_text.iter().any(|s| s.run_id == trace.run_id),
            "text {text:?}"
        );
    }
    // `%` and `_` are literal in a text query, not LIKE wildcards.
    assert_eq!(
        store.count(&TraceFilter::new().with_text("0%_l")).unwrap(),
        1
    );
    assert_eq!(
        store.count(&TraceFilter::new().with_text("1__%")).unwrap(),
        0
    );
}

#[test]
fn a_statement_timeout_is_honoured() {
    let Some(server) = PostgresServer::start_unless_missing() else {
        return;
    };
    let store = PostgresStore::open_with(
        &format!("{}?statement_timeout=1ms", server.url()),
        options("timeouts"),
    );
    // Opening runs DDL; with a 1 ms budget either it or the first big query times out.
    let outcome = store.and_then(|store| {
        let traces: Vec<Trace> = (0..2000)
            .map(|i| {
                Trace::new(format!("t{i}"))
                    .with_step(Step::llm_call("m").with_output("x".repeat(2000)))
            })
            .collect();
        store.save_many(&traces)?;
        store.stats(&TraceFilter::new().with_text("xx"))
    });
    let error = outcome.expect_err("a 1 ms statement timeout must cut something off");
    assert!(error.to_string().contains("statement timeout"), "{error}");
}

#[test]
fn calls_work_from_inside_tokio_runtimes_of_both_flavours() {
    let Some(server) = PostgresServer::start_unless_missing() else {
        return;
    };
    let url = server.url();
    for flavour in ["current_thread", "multi_thread"] {
        let runtime = match flavour {
            "current_thread" => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
            _ => tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build(),
        }
        .unwrap();
        let url = url.clone();
        runtime.block_on(async move {
            let store = PostgresStore::open_with(&url, options(flavour)).unwrap();
            store.save(&Trace::new(flavour)).unwrap();
            assert_eq!(store.load(flavour).unwrap().run_id, flavour);
            // Dropping the store inside the runtime must not panic either.
            drop(store);
        });
    }
}

#[test]
fn threads_share_a_pool_smaller_than_their_number() {
    let Some(server) = PostgresServer::start_unless_missing() else {
        return;
    };
    let store =
        PostgresStore::open_with(&server.url(), options("small_pool").with_pool_size(2)).unwrap();
    std::thread::scope(|scope| {
        for thread in 0..6 {
            let store = store.clone();
            scope.spawn(move || {
                for i in 0..20 {
                    let id = format!("t{thread}-{i}");
                    store.save(&Trace::new(id.as_str())).unwrap();
                    assert_eq!(store.load(&id).unwrap().run_id, id);
                }
            });
        }
    });
    assert_eq!(store.count(&TraceFilter::new()).unwrap(), 120);
}
