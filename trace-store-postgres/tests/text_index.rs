//! The text index is filled after the saves, in batches: text queries are exact before,
//! during and after, a re-saved trace is never found by its old text, and layout 2
//! (keys in the trace's row) is migrated.

use trace_store_core::{Step, Trace, TraceFilter, TraceStore};
use trace_store_postgres::{PostgresOptions, PostgresStore, SCHEMA_VERSION};
use trace_store_test_support::PostgresServer;

fn trace(i: usize, word: &str) -> Trace {
    Trace::new(format!("run-{i:04}"))
        .with_step(Step::llm_call("m").with_output(format!("answer {word}{i:04}x")))
}

/// `(pending, indexed)` row counts of the store in `schema`.
fn index_rows(url: &str, schema: &str) -> (i64, i64) {
    sql(url, |client| async move {
        let row = client
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM {schema}.text_pending),
                            (SELECT count(*) FROM {schema}.text_keys)"
                ),
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    })
}

fn sql<T, F: Future<Output = T>>(url: &str, work: impl FnOnce(tokio_postgres::Client) -> F) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        work(client).await
    })
}

fn assert_found_once(store: &PostgresStore, text: &str, run_id: &str) {
    let found = store.query(&TraceFilter::new().with_text(text)).unwrap();
    let ids: Vec<&str> = found.iter().map(|s| s.run_id.as_str()).collect();
    assert_eq!(ids, [run_id], "text {text:?}");
}

#[test]
fn text_queries_are_exact_before_and_after_the_keys_are_computed() {
    let Some(server) = PostgresServer::start_unless_missing() else {
        return;
    };
    let url = server.url();
    let store =
        PostgresStore::open_with(&url, PostgresOptions::default().with_schema("text")).unwrap();
    for i in 0..100 {
        store.save(&trace(i, "alpha")).unwrap();
    }
    assert_eq!(index_rows(&url, "text"), (100, 0), "saves leave the keys");
    assert_found_once(&store, "alpha0042x", "run-0042");

    for i in 100..600 {
        store.save(&trace(i, "alpha")).unwrap();
    }
    let (pending, indexed) = index_rows(&url, "text");
    assert!(
        indexed >= 512,
        "batches ran: {pending} pending, {indexed} indexed"
    );
    assert_eq!(pending + indexed, 600);
    for i in [0, 42, 255, 256, 599] {
        assert_found_once(&store, &format!("alpha{i:04}x"), &format!("run-{i:04}"));
    }

    // Re-saved with other text: the stale keys must not bring the old text back, and
    // the new text is found before and after its keys are computed.
    store.save(&trace(42, "omega")).unwrap();
    assert_eq!(
        store
            .count(&TraceFilter::new().with_text("alpha0042x"))
            .unwrap(),
        0
    );
    assert_found_once(&store, "omega0042x", "run-0042");
    store
        .save_many(&(600..1000).map(|i| trace(i, "alpha")).collect::<Vec<_>>())
        .unwrap();
    let (pending, _) = index_rows(&url, "text");
    assert!(
        pending < 256,
        "a batch of saves is indexed with it: {pending}"
    );
    assert_found_once(&store, "omega0042x", "run-0042");
    assert_eq!(
        store
            .count(&TraceFilter::new().with_text("answer alpha"))
            .unwrap(),
        999
    );

    // Deleting a trace removes its keys and its mark.
    assert!(store.delete("run-0042").unwrap());
    assert_eq!(
        store
            .delete_where(&TraceFilter::new().with_text("alpha07"))
            .unwrap(),
        100
    );
    let (pending, indexed) = index_rows(&url, "text");
    assert_eq!(pending + indexed, 899);
}

#[test]
fn layout_2_keeps_its_keys_in_a_table_of_their_own() {
    let Some(server) = PostgresServer::start_unless_missing() else {
        return;
    };
    let url = server.url();
    let options = PostgresOptions::default().with_schema("two");
    let store = PostgresStore::open_with(&url, options.clone()).unwrap();
    store
        .save_many(&(0..300).map(|i| trace(i, "beta")).collect::<Vec<_>>())
        .unwrap();
    store.save(&trace(300, "beta")).unwrap();
    drop(store);
    // Layout 2 as it was: the keys in the row under a GIN index, every row indexed.
    sql(&url, |client| async move {
        client
            .batch_execute(
                "DELETE FROM two.text_pending;
                 ALTER TABLE two.traces ADD COLUMN search_keys INTEGER[] NOT NULL DEFAULT '{}';
                 UPDATE two.traces t SET search_keys = k.keys FROM two.text_keys k
                     WHERE k.run_id = t.run_id;
                 UPDATE two.traces SET search_keys = '{1}' WHERE run_id = 'run-0300';
                 CREATE INDEX traces_keys ON two.traces USING gin (search_keys);
                 DROP TABLE two.text_keys, two.text_pending;
                 UPDATE two.schema_version SET version = 2;",
            )
            .await
            .unwrap();
    });

    let store = PostgresStore::open_with(&url, options).unwrap();
    assert_eq!(index_rows(&url, "two"), (0, 301));
    for i in [0, 150, 299] {
        assert_found_once(&store, &format!("beta{i:04}x"), &format!("run-{i:04}"));
    }
    // Layout 2's keys are kept as they were, so a trace whose keys lack the query's
    // windows is not found: the table is the one the queries read.
    assert_eq!(
        store
            .count(&TraceFilter::new().with_text("beta0300x"))
            .unwrap(),
        0
    );
    let version: i32 = sql(&url, |client| async move {
        client
            .query_one("SELECT max(version) FROM two.schema_version", &[])
            .await
            .unwrap()
            .get(0)
    });
    assert_eq!(version, SCHEMA_VERSION);
    // Bodies and texts written from now on are LZ4-compressed where the server has it.
    let (lz4, body, text): (bool, bool, bool) = sql(&url, |client| async move {
        let lz4 = client
            .batch_execute("CREATE TEMP TABLE probe (a TEXT COMPRESSION lz4)")
            .await
            .is_ok();
        let row = client
            .query_one(
                "SELECT bool_or(attname = 'body' AND attcompression = 'l'),
                        bool_or(attname = 'search_text' AND attcompression = 'l')
                 FROM pg_attribute WHERE attrelid = 'two.traces'::regclass",
                &[],
            )
            .await
            .unwrap();
        (lz4, row.get(0), row.get(1))
    });
    assert_eq!((body, text), (lz4, lz4));
}
