//! The contract-v2 commands and flags (sessions, text, scores, grouped stats, bulk
//! delete, purge) against real SQLite and JSONL stores filled by `demo`.

mod common;

use std::collections::BTreeMap;

use common::{Sandbox, load_all, run_ids};
use serde_json::Value;
use trace_store::{Status, TraceSummary};

fn demo(sandbox: &Sandbox, url: &str) -> Vec<TraceSummary> {
    sandbox.ok(&["--store", url, "demo"]);
    sandbox.query(url, &[])
}

#[test]
fn session_text_score_and_parent_filters_select_what_the_traces_hold() {
    for scheme in ["sqlite", "jsonl"] {
        let sandbox = Sandbox::new();
        let url = sandbox.url(scheme, &format!("traces.{scheme}"));
        let all = demo(&sandbox, &url);
        let traces = load_all(&url);

        let session = all
            .iter()
            .find_map(|s| s.session_id.clone())
            .expect("demo has sessions");
        let expected: Vec<&str> = all
            .iter()
            .filter(|s| s.session_id.as_deref() == Some(session.as_str()))
            .map(|s| s.run_id.as_str())
            .collect();
        assert_eq!(
            run_ids(&sandbox.query(&url, &["--session", &session])),
            expected
        );

        // Text search is case-insensitive over step content, not only names.
        let needle = "NO TOOL CALL";
        let expected: Vec<String> = all
            .iter()
            .filter(|s| {
                let trace = traces.iter().find(|t| t.run_id == s.run_id).unwrap();
                trace.text_matches(needle)
            })
            .map(|s| s.run_id.clone())
            .collect();
        assert!(!expected.is_empty(), "{scheme}: the demo has failed runs");
        let found = sandbox.query(&url, &["--text", needle]);
        assert_eq!(run_ids(&found), expected, "{scheme}");

        let happy = sandbox.query(&url, &["--score", "user_feedback=1.."]);
        assert!(!happy.is_empty());
        assert!(happy.iter().all(|s| s.scores["user_feedback"] == 1.0));
        let unhappy = sandbox.query(&url, &["--score", "user_feedback=..0"]);
        assert!(!unhappy.is_empty());
        assert!(unhappy.iter().all(|s| s.scores["user_feedback"] == 0.0));
        let scored = all
            .iter()
            .filter(|s| s.scores.contains_key("user_feedback"))
            .count();
        assert_eq!(happy.len() + unhappy.len(), scored);

        let parent = all
            .iter()
            .find_map(|s| s.parent_run_id.clone())
            .expect("demo has sub-runs");
        let children = sandbox.query(&url, &["--parent", &parent]);
        assert_eq!(children.len(), 1);
        assert_eq!(children[0].parent_run_id.as_deref(), Some(parent.as_str()));
    }
}

#[test]
fn stats_by_groups_like_the_queries_of_each_group() {
    let sandbox = Sandbox::new();
    let url = sandbox.url("sqlite", "traces.db");
    let all = demo(&sandbox, &url);
    let out: Value = sandbox.json(&["--store", &url, "stats", "--by", "name"]);
    let groups = out["groups"].as_array().unwrap();
    let mut per_name: BTreeMap<String, u64> = BTreeMap::new();
    for summary in &all {
        *per_name
            .entry(summary.name.clone().unwrap_or_default())
            .or_default() += 1;
    }
    let got: BTreeMap<String, u64> = groups
        .iter()
        .map(|g| {
            (
                g["label"].as_str().unwrap().to_owned(),
                g["stats"]["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, per_name);

    let days: Value = sandbox.json(&["--store", &url, "stats", "--by", "day"]);
    let labels: Vec<&str> = days["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["label"].as_str().unwrap())
        .collect();
    let mut sorted = labels.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(labels, sorted, "days newest first");

    let table = sandbox.ok(&["--store", &url, "stats", "--by", "model"]);
    assert!(table.contains("gpt-4o"), "{table}");
    let error = sandbox.fails(&["--store", &url, "stats", "--by", "week"], 2);
    assert!(error.contains("unknown group"), "{error}");
}

#[test]
fn delete_where_counts_first_and_deletes_only_with_yes() {
    let sandbox = Sandbox::new();
    let url = sandbox.url("jsonl", "traces.jsonl");
    let all = demo(&sandbox, &url);
    let failed = all.iter().filter(|s| s.status == Status::Error).count();
    assert!(failed > 0);

    let dry = sandbox.ok(&["--store", &url, "delete", "--where", "--status", "error"]);
    assert!(dry.contains(&format!("{failed} trace")), "{dry}");
    assert_eq!(sandbox.query(&url, &[]).len(), all.len(), "nothing deleted");

    let done: Value = sandbox.json(&[
        "--store", &url, "delete", "--where", "--status", "error", "--yes",
    ]);
    assert_eq!(done["deleted"].as_u64(), Some(failed as u64));
    assert!(sandbox.query(&url, &["--status", "error"]).is_empty());
    assert_eq!(sandbox.query(&url, &[]).len(), all.len() - failed);

    let error = sandbox.fails(&["--store", &url, "delete", "--status", "ok"], 2);
    assert!(error.contains("--where"), "{error}");
}

#[test]
fn purge_keeps_the_newest_and_drops_the_old() {
    let sandbox = Sandbox::new();
    let url = sandbox.url("sqlite", "traces.db");
    let all = demo(&sandbox, &url);
    let dry: Value = sandbox.json(&["--store", &url, "purge", "--keep", "10", "--dry-run"]);
    assert_eq!(
        dry["deleted_by_count"].as_u64(),
        Some(all.len() as u64 - 10)
    );
    assert_eq!(sandbox.query(&url, &[]).len(), all.len());

    let old = sandbox.query(&url, &["--until", "7d"]).len() as u64;
    let report: Value = sandbox.json(&[
        "--store",
        &url,
        "purge",
        "--older-than",
        "7d",
        "--keep",
        "10",
    ]);
    assert_eq!(report["deleted_by_age"].as_u64(), Some(old));
    let left = sandbox.query(&url, &[]);
    assert_eq!(
        run_ids(&left),
        run_ids(&all[..left.len()]),
        "the newest stay"
    );
    assert!(left.len() <= 10);
    sandbox.fails(&["--store", &url, "purge"], 2);
}

#[test]
fn score_adds_and_replaces_and_show_lists_scores() {
    let sandbox = Sandbox::new();
    let url = sandbox.url("sqlite", "traces.db");
    let all = demo(&sandbox, &url);
    let run = &all[3].run_id;
    sandbox.ok(&["--store", &url, "score", run, "helpful", "--value", "0"]);
    sandbox.ok(&[
        "--store",
        &url,
        "score",
        run,
        "helpful",
        "--value",
        "1",
        "--comment",
        "fixed it",
    ]);
    let found = sandbox.query(&url, &["--score", "helpful=1..1"]);
    assert_eq!(run_ids(&found), [run.as_str()]);
    let shown = sandbox.ok(&["--store", &url, "show", run]);
    assert!(shown.contains("helpful = 1"), "{shown}");
    assert!(shown.contains("fixed it"), "{shown}");
    let trace = load_all(&url)
        .into_iter()
        .find(|t| &t.run_id == run)
        .unwrap();
    assert_eq!(
        trace.scores.iter().filter(|s| s.name == "helpful").count(),
        1,
        "replaced, not added twice"
    );
    assert_eq!(
        trace.created_at, all[3].created_at,
        "scoring keeps the run's time"
    );

    let missing = sandbox.fails(
        &["--store", &url, "score", "nope", "helpful", "--value", "1"],
        1,
    );
    assert!(missing.contains("nope"), "{missing}");
    sandbox.fails(&["--store", &url, "score", run, "helpful"], 2);
}

#[test]
fn show_previews_step_content_and_links_child_runs() {
    let sandbox = Sandbox::new();
    let url = sandbox.url("sqlite", "traces.db");
    let all = demo(&sandbox, &url);
    let child = all.iter().find(|s| s.parent_run_id.is_some()).unwrap();
    let parent = child.parent_run_id.clone().unwrap();
    let shown = sandbox.ok(&["--store", &url, "show", &parent]);
    assert!(shown.contains("children"), "{shown}");
    assert!(shown.contains(&child.run_id), "{shown}");
    assert!(
        shown.contains("args: ") || shown.contains("in: "),
        "{shown}"
    );
    let full = sandbox.ok(&["--store", &url, "show", &parent, "--full"]);
    assert!(!full.contains("--full shows all"), "{full}");
}
