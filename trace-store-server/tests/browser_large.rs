//! A 5,000-step run with 5 MB of payload stays usable: the tree renders only the rows
//! in view, the error deep inside is one click away, and a large payload is clipped
//! until asked for. Prints time-to-interactive figures (not asserted: see the report).

mod support_browser;

use std::sync::Arc;

use support_browser::fixtures::large;
use support_browser::{Browser, browser_binaries, serve};
use trace_store_core::{Timestamp, TraceStore};
use trace_store_sqlite::SqliteStore;

/// Milliseconds from navigation to the tree drawn, and of those, the API fetch.
async fn time_to_interactive(browser: &Browser, url: &str) -> (f64, f64) {
    browser.open(url).await;
    browser
        .wait_for(
            "the tree",
            "performance.getEntriesByName('trace-interactive').length > 0",
        )
        .await;
    let times = browser
        .js("return [performance.getEntriesByName('trace-interactive')[0].startTime, \
             performance.getEntriesByType('resource').find(e => e.name.includes('/api/traces/')).duration]")
        .await;
    (
        times[0].as_f64().expect("a time"),
        times[1].as_f64().expect("a time"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_traces_stay_responsive() {
    let Some((chromium, driver)) = browser_binaries() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("large.db")).expect("open sqlite");
    let now = Timestamp::now();
    // 50 steps of 100 KB: a 5 MB run.
    store
        .save(&large("big-5000", 5_000, 50, 100_000, now))
        .expect("save 5,000 steps");
    store
        .save(&large("big-1000", 1_000, 0, 0, now))
        .expect("save 1,000 steps");
    let addr = serve(Arc::new(store)).await;
    let browser = Browser::start(&chromium, &driver, 1280, 800).await;

    let mut thousand = Vec::new();
    for _ in 0..3 {
        thousand
            .push(time_to_interactive(&browser, &format!("http://{addr}/trace/big-1000")).await);
    }
    let five_thousand =
        time_to_interactive(&browser, &format!("http://{addr}/trace/big-5000")).await;
    eprintln!(
        "(time to interactive, of which API fetch) in ms: 1,000 steps {thousand:.0?}; 5,000 steps with 5 MB {five_thousand:.0?}"
    );

    // Only the rows in view (plus a margin) are in the DOM, even with everything open.
    browser.click("#jump-error").await;
    browser
        .wait_for(
            "the deep error",
            "document.querySelector('.tree-row.step.selected.row-error') !== null",
        )
        .await;
    assert!(browser.text(".panel").await.contains("DeepError"));
    browser.js("[...document.querySelectorAll('.tree .toolbar button')].find(b => b.textContent === 'Expand all').click()").await;
    browser
        .wait_for(
            "the open tree",
            "document.querySelector('.tree-spacer').style.height === (5000 * 28) + 'px'",
        )
        .await;
    let rows = browser
        .js("return document.querySelectorAll('.tree-row.step').length")
        .await
        .as_u64()
        .unwrap();
    assert!(
        (10..200).contains(&rows),
        "{rows} rows in the DOM for 5,000 steps"
    );
    // Scrolling to the end renders the last steps.
    browser
        .js("const b = document.querySelector('.tree-body'); b.scrollTop = b.scrollHeight;")
        .await;
    browser
        .wait_for(
            "the last rows",
            "document.querySelector('.tree-row.step[data-index=\"4999\"]') !== null",
        )
        .await;

    // A 100 KB message is clipped to a preview with a "show all" button.
    browser
        .js("const b = document.querySelector('.tree-body'); b.scrollTop = 0;")
        .await;
    browser
        .wait_for(
            "the first rows",
            "document.querySelector('.tree-row.step[data-index=\"1\"]') !== null",
        )
        .await;
    browser.click(".tree-row.step[data-index=\"1\"]").await;
    browser
        .wait_for(
            "the clipped message",
            "document.querySelector('.panel .show-all') !== null",
        )
        .await;
    let shown = browser
        .js("return document.querySelector('.panel .msg-text').textContent.length")
        .await
        .as_u64()
        .unwrap();
    assert!(shown < 3_000, "preview holds {shown} characters");
    browser.click(".panel .show-all").await;
    let shown = browser
        .js("return document.querySelector('.panel .msg-text').textContent.length")
        .await
        .as_u64()
        .unwrap();
    assert!(
        shown >= 100_000,
        "show all reveals the whole message ({shown})"
    );

    browser.assert_no_console_errors("with large traces").await;
    browser.client.clone().close().await.unwrap();
}
