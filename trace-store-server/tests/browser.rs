//! The viewer in a real headless Chromium: list, filters, detail, scores, links, live
//! updates from another process, sessions, stats, keyboard, delete and purge.
//! Fails on any browser console error. Screenshots go to target/screenshots/.

mod support_browser;

use std::process::Command;
use std::sync::Arc;

use support_browser::fixtures::{
    self, CHILD_RUN, PARENT_RUN, SEARCH_RUN, SEARCH_WORDS, SESSION, SPECIAL_USER_RUNS,
};
use support_browser::{Browser, browser_binaries, serve};
use trace_store_core::{Status, Step, Timestamp, Trace, TraceStore};
use trace_store_sqlite::SqliteStore;

/// Set in the child process this test spawns: the SQLite file to write one run into.
const WRITER_ENV: &str = "TRACE_STORE_VIEWER_TEST_WRITER";
const LIVE_RUN: &str = "live-run-from-another-process";
/// Rows on one page of the list.
const PAGE: usize = 50;

/// Runs in the child process: saves the live run with `steps` steps (a run that grows
/// while it is watched) into the shared SQLite file.
fn write_live_run(db: &str, steps: usize) {
    let store = SqliteStore::open(db).expect("child opens the store");
    let started = Timestamp::now();
    let mut trace = Trace::new(LIVE_RUN)
        .with_name("live-agent")
        .with_created_at(started)
        .with_status(Status::Running);
    for i in 0..steps {
        trace = trace.with_step(
            Step::llm_call("gpt-4o-mini")
                .with_id(format!("live-{i}"))
                .with_usage(10, 2)
                .with_duration_us(1_000),
        );
    }
    store.merge(&trace).expect("child saves the run");
}

/// Saves the live run with `steps` steps from a separate OS process: this test
/// binary, re-run in writer mode.
fn save_from_another_process(db: &std::path::Path, steps: usize) {
    let status = Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "--exact",
            "viewer_end_to_end",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WRITER_ENV, format!("{steps}:{}", db.display()))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("spawn the writer process");
    assert!(status.success(), "the writer process failed: {status}");
}

fn rows_js() -> &'static str {
    "document.querySelectorAll('table.traces tbody tr').length"
}

fn row_ids_js() -> &'static str {
    "return [...document.querySelectorAll('table.traces tbody tr')].map(r => r.dataset.runId)"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_end_to_end() {
    if let Ok(job) = std::env::var(WRITER_ENV) {
        let (steps, db) = job.split_once(':').expect("steps:path");
        write_live_run(db, steps.parse().expect("a step count"));
        return;
    }
    let Some((chromium, driver)) = browser_binaries() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("viewer.db");
    let store = SqliteStore::open(&db).expect("open sqlite");
    let sample = fixtures::sample(Timestamp::now());
    store.save_many(&sample).expect("save the sample");
    let total = sample.len();
    let addr = serve(Arc::new(store)).await;
    let base = format!("http://{addr}");
    let browser = Browser::start(&chromium, &driver, 1280, 800).await;

    // Each stage starts where the one before left the browser, as a user's visit would.
    list_and_paging(&browser, &base, total).await;
    text_search(&browser).await;
    metadata_filter(&browser, &base).await;
    trace_detail(&browser, &base).await;
    scores(&browser, &base, total).await;
    parent_and_child_links(&browser, &base).await;
    keyboard(&browser, &base).await;
    live_updates(&browser, &db).await;
    sessions(&browser, &base).await;
    stats(&browser, &base).await;
    delete_run(&browser, &base).await;
    purge(&browser).await;
    narrow_window(&browser, &base).await;
    dark_mode(&browser).await;

    browser.assert_no_console_errors("at the end").await;
    browser.client.clone().close().await.unwrap();
}

/// The list: newest first, the pinned metadata keys as columns.
async fn list_and_paging(browser: &Browser, base: &str, total: usize) {
    browser.open(&format!("{base}/")).await;
    browser
        .wait_for("the first page", &format!("{} === {PAGE}", rows_js()))
        .await;
    let ids = browser.js(row_ids_js()).await;
    assert_eq!(ids[0], "chat-42-turn-3", "newest run first");
    let headers = browser
        .js("return [...document.querySelectorAll('table.traces th')].map(t => t.textContent)")
        .await;
    assert!(
        headers.as_array().unwrap().iter().any(|h| h == "user_id"),
        "pinned metadata column: {headers}"
    );
    assert!(
        browser
            .text("#view")
            .await
            .contains(&format!("{total} runs"))
    );
    browser.assert_no_console_errors("loading the list").await;
    browser.screenshot("list").await;
    // Keyset paging: "Load more" appends the next page.
    browser.click("button.load-more").await;
    browser
        .wait_for("the second page", &format!("{} === {total}", rows_js()))
        .await;
    assert_eq!(
        browser
            .js("return document.querySelector('button.load-more').hidden")
            .await,
        true,
        "no more pages"
    );
}

/// Text search (debounced) narrows the list and goes into the URL.
async fn text_search(browser: &Browser) {
    browser.type_into("#search", SEARCH_WORDS).await;
    browser
        .wait_for("the search result", &format!("{} === 1", rows_js()))
        .await;
    assert_eq!(browser.js(row_ids_js()).await[0], SEARCH_RUN);
    let url = browser.client.current_url().await.unwrap();
    assert!(
        url.query()
            .unwrap_or_default()
            .contains("text=quantum+gardening"),
        "{url}"
    );
    // The URL reproduces the view on reload.
    browser.client.refresh().await.unwrap();
    browser
        .wait_for("the reloaded search", &format!("{} === 1", rows_js()))
        .await;
    assert_eq!(
        browser
            .js("return document.querySelector('#search').value")
            .await,
        SEARCH_WORDS
    );
}

/// A metadata filter, typed into "More filters".
async fn metadata_filter(browser: &Browser, base: &str) {
    browser.open(&format!("{base}/")).await;
    browser
        .wait_for("the list", &format!("{} === {PAGE}", rows_js()))
        .await;
    browser.js("[...document.querySelectorAll('.filters button')].find(b => b.textContent === 'More filters').click()").await;
    browser
        .type_into("input[name=meta]", "user_id=u_special\n")
        .await;
    browser
        .wait_for("the metadata filter", &format!("{} === 2", rows_js()))
        .await;
    let mut ids: Vec<String> = serde_json::from_value(browser.js(row_ids_js()).await).unwrap();
    ids.sort();
    let mut expected = SPECIAL_USER_RUNS.map(str::to_owned).to_vec();
    expected.sort();
    assert_eq!(ids, expected);
    let url = browser.client.current_url().await.unwrap();
    assert!(
        url.query()
            .unwrap_or_default()
            .contains("meta.user_id=u_special"),
        "{url}"
    );
}

/// Open a trace, expand the tree, open a tool step and see its arguments.
async fn trace_detail(browser: &Browser, base: &str) {
    browser.open(&format!("{base}/?text=quantum")).await;
    browser
        .wait_for("the search result", &format!("{} === 1", rows_js()))
        .await;
    browser.click("table.traces tbody tr a.name").await;
    browser
        .wait_for(
            "the step tree",
            "document.querySelectorAll('.tree-row.step').length > 0",
        )
        .await;
    let tool_rows = "[...document.querySelectorAll('.tree-row.step')].filter(r => r.dataset.kind === 'tool_call')";
    assert_eq!(
        browser.js(&format!("return {tool_rows}.length")).await,
        0,
        "web-researcher starts folded"
    );
    browser.click(".tree-row.step .toggle:not(.open)").await;
    browser
        .wait_for("the unfolded tools", &format!("{tool_rows}.length === 4"))
        .await;
    browser.js(&format!("{tool_rows}[1].click()")).await;
    browser
        .wait_for(
            "the tool panel",
            "document.querySelector('.panel-body') !== null",
        )
        .await;
    let panel = browser.text(".panel").await;
    assert!(
        panel.contains("ARGUMENTS") && panel.contains("\"q\": \"quantum gardening\""),
        "{panel}"
    );
    assert!(
        panel.contains("RESULT") && panel.contains("\"results\": 10"),
        "{panel}"
    );
    // Parallel steps share time: their bars overlap on the axis.
    let overlap = browser.js(&format!(
        "const bars = {tool_rows}.slice(2).map(r => r.querySelector('.bar').getBoundingClientRect()); \
         return bars[0].right > bars[1].left && bars[1].left > bars[0].left"
    )).await;
    assert_eq!(overlap, true, "parallel steps drawn side by side in time");
    // An LLM step renders its chat messages with roles.
    browser.js("[...document.querySelectorAll('.tree-row.step')].find(r => r.dataset.kind === 'llm_call').click()").await;
    browser
        .wait_for(
            "the chat panel",
            "document.querySelectorAll('.panel .msg').length >= 3",
        )
        .await;
    let roles = browser
        .js("return [...document.querySelectorAll('.panel .msg .role')].map(r => r.textContent)")
        .await;
    assert_eq!(roles, serde_json::json!(["system", "user", "assistant"]));
    assert!(
        browser.text(".panel").await.contains("cost.source")
            || browser.text(".panel").await.contains("computed")
    );
    // Jump to the first error.
    browser.click("#jump-error").await;
    browser
        .wait_for(
            "the failed step",
            "document.querySelector('.tree-row.step.selected.row-error') !== null",
        )
        .await;
    assert!(browser.text(".panel").await.contains("RateLimitError"));
    browser.assert_no_console_errors("on the detail view").await;
    browser.js("window.scrollTo(0, 0)").await;
    browser.screenshot("detail").await;
}

/// Thumbs down with a note, then seen in the list and filterable.
async fn scores(browser: &Browser, base: &str, total: usize) {
    browser
        .type_into("input.note", "searched the wrong topic")
        .await;
    browser.click("button.thumb-down").await;
    browser
        .wait_for(
            "the score",
            "document.querySelector('.title-row .score-down') !== null",
        )
        .await;
    browser
        .open(&format!("{base}/?score=user_feedback%3A..0"))
        .await;
    browser.wait_for("the thumbs-down filter", &format!(
        "[...document.querySelectorAll('table.traces tbody tr')].some(r => r.dataset.runId === '{SEARCH_RUN}')"
    )).await;
    let scored = browser
        .js(&format!(
            "return document.querySelector('tr[data-run-id=\"{SEARCH_RUN}\"] .score-down') !== null"
        ))
        .await;
    assert_eq!(scored, true, "the score shows in the list");
    let rows = browser
        .js(&format!("return {}", rows_js()))
        .await
        .as_u64()
        .unwrap();
    assert!(rows < total as u64, "the score filter narrows the list");
}

/// Parent and child runs are linked.
async fn parent_and_child_links(browser: &Browser, base: &str) {
    browser.open(&format!("{base}/trace/{CHILD_RUN}")).await;
    browser
        .wait_for(
            "the child run",
            "document.querySelector('.parent-link') !== null",
        )
        .await;
    browser.click(".parent-link").await;
    browser
        .wait_for(
            "the parent run",
            &format!("location.pathname === '/trace/{PARENT_RUN}'"),
        )
        .await;
    browser.wait_for("the child link", &format!(
        "[...document.querySelectorAll('.children a')].some(a => a.getAttribute('href') === '/trace/{CHILD_RUN}')"
    )).await;
}

/// Keyboard: j/j/Enter opens the second run, Esc comes back to the same list.
async fn keyboard(browser: &Browser, base: &str) {
    browser.open(&format!("{base}/")).await;
    browser
        .wait_for("the list", &format!("{} > 2", rows_js()))
        .await;
    let second = browser.js(row_ids_js()).await[1]
        .as_str()
        .unwrap()
        .to_owned();
    let body = browser
        .client
        .find(fantoccini::Locator::Css("body"))
        .await
        .unwrap();
    body.send_keys("jj\u{E007}").await.unwrap();
    browser
        .wait_for(
            "the second run",
            &format!("location.pathname === '/trace/{}'", second),
        )
        .await;
    browser
        .wait_for(
            "its tree",
            "document.querySelector('.tree-row.step') !== null",
        )
        .await;
    body.send_keys("j").await.unwrap();
    browser
        .wait_for(
            "a selected step",
            "document.querySelector('.tree-row.step.selected') !== null",
        )
        .await;
    body.send_keys("\u{E00C}").await.unwrap();
    browser.wait_for("the list again", "location.pathname === '/' && document.querySelector('table.traces tbody tr.selected') !== null").await;
}

/// A run saved by another process appears at the top without a reload, and a reader
/// scrolled down stays on the rows they were reading.
async fn live_updates(browser: &Browser, db: &std::path::Path) {
    browser.client.set_window_size(1280, 500).await.unwrap();
    browser.js("window.scrollTo(0, 300)").await;
    let before = browser.js("return document.querySelector('table.traces tbody tr:nth-child(12)').getBoundingClientRect().top").await;
    save_from_another_process(db, 1);
    browser
        .wait_for(
            "the live run",
            &format!(
                "document.querySelector('table.traces tbody tr').dataset.runId === '{LIVE_RUN}'"
            ),
        )
        .await;
    let after = browser.js("return document.querySelector('table.traces tbody tr:nth-child(13)').getBoundingClientRect().top").await;
    assert!(
        (before.as_f64().unwrap() - after.as_f64().unwrap()).abs() < 2.0,
        "the rows being read stay put: {before} vs {after}"
    );
    assert_eq!(
        browser
            .js("return !document.querySelector('.pill').hidden")
            .await,
        true,
        "the new-runs pill shows"
    );
    browser.client.set_window_size(1280, 800).await.unwrap();

    // The detail of a running run follows it as it grows.
    browser
        .click(&format!("tr[data-run-id=\"{LIVE_RUN}\"] a.name"))
        .await;
    browser
        .wait_for(
            "one step",
            "document.querySelectorAll('.tree-row.step').length === 1",
        )
        .await;
    save_from_another_process(db, 3);
    browser
        .wait_for(
            "the new steps",
            "document.querySelectorAll('.tree-row.step').length === 3",
        )
        .await;
    browser.js("history.back()").await;
    browser
        .wait_for("the list", "location.pathname === '/'")
        .await;
}

/// Sessions: the list of sessions, then one session's turns oldest first, with
/// their input and output.
async fn sessions(browser: &Browser, base: &str) {
    browser.open(&format!("{base}/sessions")).await;
    browser
        .wait_for(
            "the session list",
            &format!(
                "document.querySelector('.view-sessions a[href=\"/session/{SESSION}\"]') !== null"
            ),
        )
        .await;
    browser.open(&format!("{base}/session/{SESSION}")).await;
    browser
        .wait_for(
            "the turns",
            "document.querySelectorAll('.turn').length === 3",
        )
        .await;
    browser
        .wait_for(
            "the turn previews",
            "[...document.querySelectorAll('.turn-input')].every(n => n.textContent !== '…')",
        )
        .await;
    let inputs = browser
        .js("return [...document.querySelectorAll('.turn-input')].map(n => n.textContent)")
        .await;
    assert_eq!(inputs[0], "Hi, I need help with an order");
    assert_eq!(inputs[2], "Thanks, that works");
    browser.screenshot("session").await;
}

/// Stats: charts drawn as SVG, error rate shown.
async fn stats(browser: &Browser, base: &str) {
    browser.open(&format!("{base}/stats")).await;
    browser
        .wait_for(
            "the charts",
            "document.querySelectorAll('svg.chart rect').length > 5",
        )
        .await;
    let stats = browser.text(".view-stats").await;
    assert!(
        stats.contains("Error rate")
            && stats.contains("Cost by model")
            && stats.contains("gpt-4o-mini"),
        "{stats}"
    );
    browser.screenshot("stats").await;
}

/// Delete one run behind a confirmation.
async fn delete_run(browser: &Browser, base: &str) {
    browser.open(&format!("{base}/trace/{PARENT_RUN}")).await;
    browser
        .wait_for("the run", "document.querySelector('#delete-run') !== null")
        .await;
    browser.click("#delete-run").await;
    browser
        .wait_for(
            "the confirmation",
            "document.querySelector('dialog[open] #confirm-yes') !== null",
        )
        .await;
    browser.click("#confirm-yes").await;
    browser
        .wait_for(
            "the list",
            &format!("location.pathname === '/' && {} > 0", rows_js()),
        )
        .await;
    browser.wait_for("the run gone", &format!(
        "![...document.querySelectorAll('table.traces tbody tr')].some(r => r.dataset.runId === '{PARENT_RUN}')"
    )).await;
}

/// Purge: a dry run counts, then the purge deletes after confirming.
async fn purge(browser: &Browser) {
    browser.click("#purge-button").await;
    browser
        .type_into("dialog[open] input[name=keep]", "10")
        .await;
    browser.click("#purge-check").await;
    browser
        .wait_for(
            "the dry run",
            "document.querySelector('.purge-result').textContent.includes('would delete')",
        )
        .await;
    let now_rows = browser
        .js(&format!("return {}", rows_js()))
        .await
        .as_u64()
        .unwrap();
    assert!(now_rows > 10, "the dry run deleted nothing yet");
    browser.click("#purge-run").await;
    browser
        .wait_for("the purged list", &format!("{} === 10", rows_js()))
        .await;
}

/// Narrow window.
async fn narrow_window(browser: &Browser, base: &str) {
    browser.client.set_window_size(420, 800).await.unwrap();
    browser.open(&format!("{base}/")).await;
    browser
        .wait_for("the list", &format!("{} === 10", rows_js()))
        .await;
    let overflow = browser
        .js("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        .await;
    assert_eq!(overflow, true, "no horizontal scrolling at 420 px");
    browser.screenshot("list-narrow").await;
    // One of the ten newest runs the purge kept.
    browser.open(&format!("{base}/trace/run-research-00")).await;
    browser
        .wait_for(
            "the tree",
            "document.querySelector('.tree-row.step') !== null",
        )
        .await;
    browser
        .js("document.querySelector('.tree-row.step:nth-child(2)').click()")
        .await;
    browser.screenshot("detail-narrow").await;
}

/// Dark mode follows the system.
async fn dark_mode(browser: &Browser) {
    browser.client.set_window_size(1280, 800).await.unwrap();
    browser.prefer_dark().await;
    browser.click(".tree-row.step:nth-child(2)").await;
    let background = browser
        .js("return getComputedStyle(document.body).backgroundColor")
        .await;
    assert_eq!(background, "rgb(15, 18, 23)", "dark background");
    browser.screenshot("detail-dark").await;
}
