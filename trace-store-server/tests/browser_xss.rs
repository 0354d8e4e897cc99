//! Hostile text in every field a trace can carry is shown as text: no markup is
//! parsed, no script runs, no request is made for an injected image.

mod support_browser;

use std::sync::Arc;

use serde_json::json;
use support_browser::{Browser, browser_binaries, serve};
use trace_store_core::{ErrorInfo, Score, Status, Step, Timestamp, Trace, TraceStore};
use trace_store_sqlite::SqliteStore;

const SCRIPT: &str = "<script>window.__xss = 'script'</script>";
const IMG: &str = "\"><img src=x onerror=\"window.__xss='img'\">";
const SVG: &str = "<svg onload=\"window.__xss='svg'\"></svg>";

fn hostile(tag: &str) -> String {
    format!("{tag} {SCRIPT}{IMG}{SVG}")
}

fn hostile_trace() -> Trace {
    let run_id = format!("xss-{IMG}");
    Trace::new(run_id)
        .with_name(hostile("name"))
        .with_session_id(hostile("session"))
        .with_created_at(Timestamp::now())
        .with_status(Status::Error)
        .with_error(ErrorInfo::new(hostile("run error")).with_type(hostile("type")))
        .with_metadata("user_id", hostile("meta-value"))
        .with_metadata(hostile("meta-key"), "v")
        .with_score(Score::new("user_feedback").with_value(0.0).with_comment(hostile("comment")))
        .with_step(
            Step::llm_call(hostile("model"))
                .with_id("m1")
                .with_name(hostile("step"))
                .with_usage(10, 5)
                .with_input(json!([
                    {"role": "system", "content": hostile("system")},
                    {"role": hostile("role"), "content": hostile("user")},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": hostile("call"), "type": "function",
                         "function": {"name": hostile("fn"), "arguments": format!("{{\"q\": \"{}\"}}", hostile("args").replace('"', "\\\""))}}
                    ]}
                ]))
                .with_output(json!({"role": "assistant", "parts": [{"type": "text", "content": hostile("output")}]}))
                .with_attribute(hostile("attr-key"), hostile("attr-value")),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_renders_as_text() {
    let Some((chromium, driver)) = browser_binaries() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("xss.db")).expect("open sqlite");
    let trace = hostile_trace();
    store.save(&trace).expect("save the hostile trace");
    let addr = serve(Arc::new(store)).await;
    let browser = Browser::start(&chromium, &driver, 1280, 800).await;
    let no_injection = "window.__xss === undefined && document.querySelectorAll('img, script:not([src]), svg[onload]').length === 0";

    browser.open(&format!("http://{addr}/")).await;
    browser
        .wait_for(
            "the row",
            "document.querySelectorAll('table.traces tbody tr').length === 1",
        )
        .await;
    let row = browser.text("table.traces tbody tr").await;
    assert!(
        row.contains(SCRIPT) && row.contains(IMG),
        "the name shows as text: {row}"
    );
    assert!(
        row.contains(&hostile("meta-value")),
        "pinned metadata shows as text: {row}"
    );
    assert_eq!(browser.js(&format!("return {no_injection}")).await, true);

    browser.click("table.traces tbody tr a.name").await;
    browser
        .wait_for(
            "the step",
            "document.querySelector('.tree-row.step') !== null",
        )
        .await;
    browser.click(".tree-row.step").await;
    browser
        .wait_for(
            "the messages",
            "document.querySelectorAll('.panel .msg').length === 4",
        )
        .await;
    // textContent: what the DOM holds as text (CSS upper-cases some labels on screen).
    let page = browser
        .js("return document.querySelector('#view').textContent")
        .await;
    let page = page.as_str().unwrap();
    for field in [
        "name",
        "run error",
        "type",
        "meta-key",
        "session",
        "step",
        "system",
        "user",
        "role",
        "fn",
        "output",
        "attr-key",
        "attr-value",
        "model",
    ] {
        assert!(page.contains(&hostile(field)), "{field} shows as text");
    }
    assert!(page.contains("args"), "tool arguments show");
    assert_eq!(browser.js(&format!("return {no_injection}")).await, true);

    // The session view and the stats view (labels come from data too).
    let session_link = browser.js("return document.querySelector('.link-row a[href^=\"/session/\"]').getAttribute('href')").await;
    browser
        .open(&format!("http://{addr}{}", session_link.as_str().unwrap()))
        .await;
    browser.wait_for("the turn", "document.querySelectorAll('.turn').length === 1 && document.querySelector('.turn-input').textContent !== '…'").await;
    assert!(browser.text("#view").await.contains(&hostile("user")));
    browser.open(&format!("http://{addr}/stats")).await;
    browser
        .wait_for(
            "the charts",
            "document.querySelectorAll('svg.chart').length > 0",
        )
        .await;
    assert!(
        browser
            .js("return document.querySelector('.view-stats').textContent")
            .await
            .as_str()
            .unwrap()
            .contains(&hostile("model"))
    );
    assert_eq!(browser.js(&format!("return {no_injection}")).await, true);

    browser
        .assert_no_console_errors("rendering hostile text")
        .await;
    browser.client.clone().close().await.unwrap();
}
