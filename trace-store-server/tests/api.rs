//! Every `/api` endpoint over real HTTP and a real SQLite file, errors included.

mod common;

use common::{TestServer, error_kind, segment};
use serde_json::{Value, json};
use trace_store_core::{Score, Status, Step, Timestamp, Trace, TraceStore};

const HOUR: i64 = 3_600_000_000;

fn at(hours_ago: i64) -> Timestamp {
    Timestamp::now().saturating_add_micros(-hours_ago * HOUR)
}

/// Ten traces, one an hour apart, newest `t0`: alternating names and sessions, two
/// models, a failed one, metadata and scores.
fn seed(store: &dyn TraceStore) {
    for i in 0..10i64 {
        let mut trace = Trace::new(format!("run-{i}"))
            .with_name(if i % 2 == 0 { "researcher" } else { "writer" })
            .with_created_at(at(i))
            .with_status(if i == 3 { Status::Error } else { Status::Ok })
            .with_metadata("user_id", format!("u{}", i % 3))
            .with_metadata("tier", i % 2)
            .with_step(
                Step::llm_call(if i < 5 { "gpt-4o" } else { "claude" })
                    .with_id("s1")
                    .with_usage(100, 10)
                    .with_input(json!({"prompt": format!("question number {i}")})),
            );
        if i < 6 {
            trace = trace.with_session_id(format!("sess-{}", i % 2));
        }
        if i == 4 {
            trace = trace.with_step(Step::tool_call("web_search").with_id("s2"));
            trace = trace.with_score(Score::new("thumbs").with_value(1.0));
        }
        if i == 5 {
            trace = trace.with_score(Score::new("thumbs").with_value(0.0));
        }
        store.save(&trace).unwrap();
    }
    let child = Trace::new("run-4/child:1")
        .with_parent_run_id("run-4")
        .with_created_at(at(4).saturating_add_micros(1));
    store.save(&child).unwrap();
}

fn ids(body: &Value, key: &str) -> Vec<String> {
    body[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {body}"))
        .iter()
        .map(|summary| summary["run_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_and_pages() {
    let server = TestServer::start().await;
    seed(&*server.store);

    let (status, body) = server.get("/api/traces").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["traces"].as_array().unwrap().len(), 11);
    assert_eq!(body["next"], Value::Null, "a short page has no next");
    let first = &body["traces"][0];
    assert_eq!(first["run_id"], "run-0");
    assert_eq!(first["models"]["gpt-4o"]["input_tokens"], 100);

    let cases: &[(&str, &[&str])] = &[
        ("name=writer&limit=2", &["run-1", "run-3"]),
        ("status=error", &["run-3"]),
        ("session=sess-1", &["run-1", "run-3", "run-5"]),
        ("parent=run-4", &["run-4/child:1"]),
        ("text=QUESTION%20NUMBER%207", &["run-7"]),
        ("meta.user_id=u2&meta.tier=0", &["run-2", "run-8"]),
        ("meta.tier=%221%22", &[]),
        ("score=thumbs:0.5..", &["run-4"]),
        ("score=thumbs:..0.5", &["run-5"]),
        ("min_steps=2", &["run-4"]),
        ("max_steps=0", &["run-4/child:1"]),
        ("since=90m&name=researcher", &["run-0"]),
        ("until=8h30m&name=writer", &["run-9"]),
        ("offset=9", &["run-8", "run-9"]),
    ];
    for (query, expected) in cases {
        let (status, body) = server.get(&format!("/api/traces?{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(ids(&body, "traces"), *expected, "{query}");
    }

    // Keyset paging through `next` visits every trace once, in order.
    let mut seen = Vec::new();
    let mut path = "/api/traces?limit=4".to_owned();
    loop {
        let (status, body) = server.get(&path).await;
        assert_eq!(status, 200, "{body}");
        seen.extend(ids(&body, "traces"));
        match body["next"].as_str() {
            Some(next) => path = format!("/api/traces?limit=4&after={next}"),
            None => break,
        }
    }
    let (_, all) = server.get("/api/traces?limit=1000").await;
    assert_eq!(seen, ids(&all, "traces"));
    assert_eq!(seen.len(), 11);

    let (status, body) = server.get("/api/count?name=researcher").await;
    assert_eq!((status, body["count"].as_u64()), (200, Some(5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_400_naming_the_parameter() {
    let server = TestServer::start().await;
    for (query, named) in [
        ("status=fine", "status"),
        ("limit=ten", "limit"),
        ("limit=1001", "limit"),
        ("min_steps=-1", "min_steps"),
        ("since=last%20tuesday", "since"),
        ("until=2026-13-45", "until"),
        ("after=garbled!!", "after"),
        ("after=WzEsMl0", "after"),
        ("score=thumbs", "score"),
        ("score=thumbs:a..b", "score"),
        ("nmae=typo", "nmae"),
        ("name=a&name=b", "name"),
        ("min_steps=5&max_steps=2", "min_steps"),
    ] {
        let (status, body) = server.get(&format!("/api/traces?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        let (kind, message) = error_kind(&body);
        assert_eq!(kind, "invalid_input", "{query}");
        assert!(
            message.contains(named),
            "{query}: {message:?} should name {named}"
        );
    }
    let (status, body) = server.get("/api/stats?group=week").await;
    assert_eq!(status, 400, "{body}");
    assert!(error_kind(&body).1.contains("group"));
    let (status, body) = server.get("/api/nothing-here").await;
    assert_eq!((status, error_kind(&body).0), (404, "not_found"));
    let (status, body) = server.post_empty("/api/count").await;
    assert_eq!(status, 405, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_with_children_and_awkward_run_ids() {
    let server = TestServer::start().await;
    seed(&*server.store);
    let (status, body) = server.get("/api/traces/run-4").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["trace"]["run_id"], "run-4");
    assert_eq!(body["trace"]["steps"].as_array().unwrap().len(), 2);
    assert_eq!(body["summary"]["steps"], 2);
    assert_eq!(body["summary"]["scores"]["thumbs"], 1.0);
    assert_eq!(ids(&body, "children"), ["run-4/child:1"]);
    let stored: Trace = serde_json::from_value(body["trace"].clone()).unwrap();
    assert_eq!(stored, server.store.load("run-4").unwrap());

    for run_id in ["a/b c%d", "你好 \"quoted\"", "run-4/child:1", "?#&="] {
        server.store.save(&Trace::new(run_id)).unwrap();
        let (status, body) = server
            .get(&format!("/api/traces/{}", segment(run_id)))
            .await;
        assert_eq!(status, 200, "{run_id}: {body}");
        assert_eq!(body["trace"]["run_id"], run_id);
    }
    let (status, body) = server.get("/api/traces/missing").await;
    assert_eq!((status, error_kind(&body).0), (404, "not_found"));
    let (status, body) = server.get("/api/traces/%FF%FE").await;
    assert_eq!(
        (status, error_kind(&body).0),
        (400, "invalid_input"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_are_added_and_replaced() {
    let server = TestServer::start().await;
    seed(&*server.store);
    let before = server.store.load("run-0").unwrap();
    let path = "/api/traces/run-0/scores";
    let (status, body) = server
        .post_json(
            path,
            &json!({"name": "thumbs", "value": 0.0, "comment": "wrong tool"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["summary"]["scores"]["thumbs"], 0.0);
    let (status, body) = server
        .post_json(
            path,
            &json!({"name": "thumbs", "value": 1.0, "comment": "fine after all"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["summary"]["scores"]["thumbs"], 1.0);
    let (_, body) = server
        .post_json(
            path,
            &json!({"name": "tool_choice", "label": "bad", "source": "llm", "step_id": "s1"}),
        )
        .await;
    assert_eq!(
        body["summary"]["scores"].as_object().unwrap().len(),
        1,
        "step scores are not trace scores"
    );

    let after = server.store.load("run-0").unwrap();
    assert_eq!(after.scores.len(), 2, "{:?}", after.scores);
    assert_eq!(after.scores[0].comment.as_deref(), Some("fine after all"));
    assert_eq!(after.scores[1].step_id.as_deref(), Some("s1"));
    assert_eq!(
        (after.created_at, &after.steps, &after.name),
        (before.created_at, &before.steps, &before.name)
    );
    let (_, found) = server.get("/api/traces?score=thumbs:1..1").await;
    assert!(ids(&found, "traces").contains(&"run-0".to_owned()));

    let (status, body) = server
        .post_json("/api/traces/nope/scores", &json!({"name": "x", "value": 1}))
        .await;
    assert_eq!((status, error_kind(&body).0), (404, "not_found"));
    assert!(
        server.store.load("nope").is_err(),
        "a score on a missing trace creates nothing"
    );
    for bad in [
        json!({"value": 1}),
        json!({"name": "x", "value": "high"}),
        json!({"name": "x", "colour": 1}),
    ] {
        let (status, body) = server.post_json(path, &bad).await;
        assert_eq!(
            (status, error_kind(&body).0),
            (400, "invalid_input"),
            "{bad}"
        );
    }
    let response = server
        .client
        .post(server.url(path))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_grouped_and_sessions() {
    let server = TestServer::start().await;
    seed(&*server.store);
    let (status, body) = server.get("/api/stats").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"]["count"], 11);
    assert_eq!(body["total"]["input_tokens"], 1000);
    assert_eq!(body["groups"], json!([]));

    let (_, body) = server.get("/api/stats?group=model").await;
    let groups = body["groups"].as_array().unwrap();
    let labels: Vec<&str> = groups
        .iter()
        .map(|g| g["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["claude", "gpt-4o"]);
    assert_eq!(groups[1]["stats"]["count"], 5);
    assert_eq!(groups[1]["key"], json!({"model": "gpt-4o"}));

    let (_, body) = server
        .get("/api/stats?group=meta:user_id&name=researcher")
        .await;
    let labels: Vec<&str> = body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["\"u0\"", "\"u1\"", "\"u2\""]);
    assert_eq!(body["total"]["count"], 5);
    let (_, body) = server.get("/api/stats?group=day").await;
    assert!(!body["groups"].as_array().unwrap().is_empty());

    let (status, body) = server.get("/api/sessions").await;
    assert_eq!(status, 200, "{body}");
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0]["session_id"], "sess-0", "newest first");
    assert_eq!(sessions[0]["stats"]["count"], 3);
    assert_eq!(sessions[1]["stats"]["count"], 3);
    assert_eq!(
        sessions[0]["last"],
        json!(server.store.load("run-0").unwrap().created_at)
    );
    assert_eq!(
        sessions[0]["first"],
        json!(server.store.load("run-4").unwrap().created_at)
    );
    let (_, body) = server.get("/api/sessions?status=error").await;
    assert_eq!(body["sessions"].as_array().unwrap().len(), 1);

    let (status, body) = server.get("/api/sessions/sess-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        ids(&body, "turns"),
        ["run-5", "run-3", "run-1"],
        "oldest first"
    );
    let (status, body) = server.get("/api/sessions/none").await;
    assert_eq!((status, error_kind(&body).0), (404, "not_found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_one_and_by_filter() {
    let server = TestServer::start().await;
    seed(&*server.store);
    let (status, body) = server.delete("/api/traces/run-9").await;
    assert_eq!((status, body["deleted"].clone()), (200, json!(true)));
    let (_, body) = server.delete("/api/traces/run-9").await;
    assert_eq!(body["deleted"], false);
    assert!(server.store.load("run-9").is_err());

    let (status, body) = server.post_empty("/api/delete?name=writer").await;
    assert_eq!(
        (status, error_kind(&body).0),
        (400, "invalid_input"),
        "confirm is required"
    );
    assert!(error_kind(&body).1.contains("confirm"));
    assert_eq!(
        server.store.count(&Default::default()).unwrap(),
        10,
        "nothing deleted without confirm"
    );

    let (status, body) = server
        .post_empty("/api/delete?name=writer&confirm=true")
        .await;
    assert_eq!((status, body["deleted"].clone()), (200, json!(4)), "{body}");
    let (_, body) = server.get("/api/count?name=writer").await;
    assert_eq!(body["count"], 0);
    let (_, body) = server.get("/api/count").await;
    assert_eq!(body["count"], 6);
    let (status, _) = server
        .post_empty("/api/delete?nmae=researcher&confirm=true")
        .await;
    assert_eq!(status, 400, "a typo never widens a delete");
    assert_eq!(server.store.count(&Default::default()).unwrap(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_with_dry_run() {
    let server = TestServer::start().await;
    seed(&*server.store); // 11 traces, 0..9 hours old (+ a child)
    let (status, body) = server
        .post_json(
            "/api/purge",
            &json!({"older_than": "6h30m", "keep": 4, "dry_run": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"deleted_by_age": 3, "deleted_by_count": 4, "dry_run": true})
    );
    assert_eq!(
        server.store.count(&Default::default()).unwrap(),
        11,
        "dry run deletes nothing"
    );

    let (status, body) = server
        .post_json("/api/purge", &json!({"older_than": "6h30m", "keep": 4}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"deleted_by_age": 3, "deleted_by_count": 4, "dry_run": false})
    );
    let (_, body) = server.get("/api/traces").await;
    assert_eq!(ids(&body, "traces"), ["run-0", "run-1", "run-2", "run-3"]);

    for bad in [
        json!({}),
        json!({"older_than": "soon"}),
        json!({"keep": -1}),
        json!({"keep": 1, "extra": true}),
    ] {
        let (status, body) = server.post_json("/api/purge", &bad).await;
        assert_eq!(
            (status, error_kind(&body).0),
            (400, "invalid_input"),
            "{bad}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_config() {
    let mut server = TestServer::start().await;
    seed(&*server.store);
    let (status, body) = server.get("/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(body["ok"], true);
    assert!(body["store"].as_str().unwrap().starts_with("sqlite://"));
    let (status, body) = server.get("/api/config").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["pinned_metadata"], json!(["tier", "user_id"]));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_url_secrets_are_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let store: std::sync::Arc<dyn TraceStore> = std::sync::Arc::new(
        trace_store_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap(),
    );
    let app = trace_store_server::app(
        store,
        trace_store_server::ServerOptions::new()
            .with_store_label("redis://user:hunter2@127.0.0.1:6379/0"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    for path in ["/healthz", "/api/config"] {
        let body = reqwest::get(format!("http://{addr}{path}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!body.contains("hunter2"), "{path}: {body}");
        assert!(
            body.contains("redis://user:***@127.0.0.1:6379/0"),
            "{path}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exactly_full_last_page_has_no_next() {
    let server = TestServer::start().await;
    seed(&*server.store);
    let (_, body) = server.get("/api/traces?limit=11").await;
    assert_eq!(ids(&body, "traces").len(), 11);
    assert_eq!(
        body["next"],
        Value::Null,
        "nothing follows a page holding the rest"
    );
    let (_, body) = server.get("/api/traces?limit=10").await;
    let next = body["next"]
        .as_str()
        .expect("a page with one more behind it")
        .to_owned();
    let (_, body) = server
        .get(&format!("/api/traces?limit=1&after={next}"))
        .await;
    assert_eq!(ids(&body, "traces"), ["run-9"]);
    assert_eq!(body["next"], Value::Null);
    let (_, body) = server.get("/api/traces?limit=0").await;
    assert_eq!(
        (ids(&body, "traces").len(), &body["next"]),
        (0, &Value::Null)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_named_count_is_reachable() {
    let server = TestServer::start().await;
    server
        .store
        .save(&Trace::new("count").with_name("counted"))
        .unwrap();
    let (status, body) = server.get("/api/traces/count").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["trace"]["name"], "counted");
    let (_, body) = server.get("/api/count").await;
    assert_eq!(body["count"], 1);
    let (status, body) = server.delete("/api/traces/count").await;
    assert_eq!((status, &body["deleted"]), (200, &json!(true)));
}

/// Sessions ordered by their newest matching trace, with totals, first and last,
/// checked against a brute-force reading of every summary, over more traces than
/// the server reads per step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_page_over_many_traces() {
    let server = TestServer::start().await;
    let base = Timestamp::now().saturating_add_micros(-2000 * HOUR);
    let traces: Vec<Trace> = (0..1300i64)
        .map(|i| {
            let mut trace = Trace::new(format!("t-{i:04}"))
                .with_created_at(base.saturating_add_micros(i * HOUR))
                .with_status(if i % 7 == 0 {
                    Status::Error
                } else {
                    Status::Ok
                })
                .with_step(Step::llm_call("m").with_usage(u64::try_from(i).unwrap(), 1));
            // Session k holds traces k, k+37, ...: newest activity order is k descending
            // among those still under 1300; a third of the traces have no session.
            if i % 3 != 0 {
                trace = trace.with_session_id(format!("s-{:02}", i % 37));
            }
            trace
        })
        .collect();
    server.store.save_many(&traces).unwrap();

    let expected = |filter: &trace_store_core::TraceFilter| -> Vec<Value> {
        let summaries = server.store.query(filter).unwrap();
        let mut rows: Vec<(String, Timestamp, Timestamp, u64, u64)> = Vec::new();
        for summary in &summaries {
            let Some(session) = &summary.session_id else {
                continue;
            };
            match rows.iter_mut().find(|row| &row.0 == session) {
                Some(row) => {
                    row.2 = summary.created_at;
                    row.3 += 1;
                    row.4 += summary.input_tokens;
                }
                None => rows.push((
                    session.clone(),
                    summary.created_at,
                    summary.created_at,
                    1,
                    summary.input_tokens,
                )),
            }
        }
        rows.into_iter()
            .map(|(id, last, first, count, tokens)| {
                json!({"session_id": id, "last": last, "first": first, "count": count, "tokens": tokens})
            })
            .collect()
    };
    let shown = |body: &Value| -> Vec<Value> {
        body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                json!({"session_id": s["session_id"], "last": s["last"], "first": s["first"],
                       "count": s["stats"]["count"], "tokens": s["stats"]["input_tokens"]})
            })
            .collect()
    };
    let all = expected(&trace_store_core::TraceFilter::new());
    assert_eq!(all.len(), 37);
    let (status, body) = server.get("/api/sessions?limit=1000").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(shown(&body), all);
    let (_, body) = server.get("/api/sessions?limit=5&offset=30").await;
    assert_eq!(shown(&body), all[30..35]);
    let (_, body) = server.get("/api/sessions").await;
    assert_eq!(shown(&body), all, "the default page (50) holds all 37");
    let errors = trace_store_core::TraceFilter::new().with_status(Status::Error);
    let (_, body) = server
        .get("/api/sessions?status=error&limit=3&offset=2")
        .await;
    assert_eq!(shown(&body), expected(&errors)[2..5]);
    let (_, body) = server.get("/api/sessions?offset=100").await;
    assert_eq!(shown(&body), Vec::<Value>::new());
}
