//! `list --json` and `query --json` print one page envelope, `{"traces", "next",
//! "total"}`, and `--after NEXT` continues where a page ended.

mod common;

use common::{Page, Sandbox, run_ids};

/// Every page of `command` (`list` or `query` with `args`), following `next`.
fn pages(sandbox: &Sandbox, url: &str, command: &[&str]) -> Vec<Page> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut args = vec!["--store", url];
        args.extend_from_slice(command);
        if let Some(cursor) = &after {
            args.extend(["--after", cursor.as_str()]);
        }
        let page: Page = sandbox.json(&args);
        after = page.next.clone();
        pages.push(page);
        if after.is_none() {
            return pages;
        }
        assert!(pages.len() < 1000, "paging does not end");
    }
}

#[test]
fn list_and_query_page_through_everything_once() {
    let sandbox = Sandbox::new();
    let url = sandbox.url("sqlite", "t.db");
    sandbox.ok(&["--store", &url, "demo", "--runs", "20"]);
    let all = sandbox.query_page(&url, &[]);
    assert_eq!(all.next, None, "no limit: one page");
    assert_eq!(all.total, all.traces.len() as u64);
    assert_eq!(all.total, common::load_all(&url).len() as u64);

    let listed = pages(&sandbox, &url, &["list", "--limit", "5"]);
    assert_eq!(listed.len(), all.traces.len().div_ceil(5));
    assert!(listed.iter().all(|page| page.total == all.total));
    let ids: Vec<&str> = listed
        .iter()
        .flat_map(|page| run_ids(&page.traces))
        .collect();
    assert_eq!(ids, run_ids(&all.traces));

    // The most common name, so its query spans several pages.
    let mut names: Vec<&str> = all
        .traces
        .iter()
        .filter_map(|s| s.name.as_deref())
        .collect();
    names.sort_unstable();
    let name = names
        .chunk_by(|a, b| a == b)
        .max_by_key(|same| same.len())
        .map(|same| same[0].to_owned())
        .expect("demo runs are named");
    let named: Vec<&str> = all
        .traces
        .iter()
        .filter(|s| s.name.as_deref() == Some(name.as_str()))
        .map(|s| s.run_id.as_str())
        .collect();
    assert!(named.len() > 2, "{named:?}");
    let queried = pages(&sandbox, &url, &["query", "--name", &name, "--limit", "2"]);
    assert!(queried.iter().all(|page| page.total == named.len() as u64));
    let ids: Vec<&str> = queried
        .iter()
        .flat_map(|page| run_ids(&page.traces))
        .collect();
    assert_eq!(ids, named);
    // A full last page has no successor: `next` says so instead of one empty page more.
    let exact = named.len().to_string();
    let one = sandbox.query_page(&url, &["--name", &name, "--limit", &exact]);
    assert_eq!((one.traces.len(), one.next), (named.len(), None));
}

#[test]
fn the_text_list_points_to_the_next_cursor_page() {
    let sandbox = Sandbox::new();
    let url = sandbox.url("sqlite", "t.db");
    sandbox.ok(&["--store", &url, "demo", "--runs", "4"]);
    let first: Page = sandbox.json(&["--store", &url, "list", "--limit", "1"]);
    let next = first.next.unwrap();
    let second: Page = sandbox.json(&["--store", &url, "list", "--limit", "1", "--after", &next]);
    let table = sandbox.ok(&["--store", &url, "list", "--limit", "1", "--after", &next]);
    assert!(table.contains(&second.traces[0].run_id), "{table}");
    let hint = format!(
        "next page: trace-store --store {url} list --limit 1 --after {}",
        second.next.unwrap()
    );
    assert!(table.trim_end().ends_with(&hint), "{table}");
}

#[test]
fn a_garbled_cursor_is_one_line() {
    let sandbox = Sandbox::new();
    let url = sandbox.url("sqlite", "t.db");
    sandbox.ok(&["--store", &url, "demo", "--runs", "2"]);
    for command in ["list", "query"] {
        let message = sandbox.fails(&["--store", &url, command, "--after", "demo-0001"], 2);
        assert!(message.contains("not a cursor"), "{message}");
    }
}
