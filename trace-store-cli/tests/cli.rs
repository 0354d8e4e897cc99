//! The built binary against real SQLite and JSONL files in temporary directories.

mod common;

use std::collections::HashMap;

use common::{Page, SELECTOOLS_SAMPLE, Sandbox, load_all, run_ids};
use serde_json::Value;
use trace_store::{Status, Timestamp, TraceStats, TraceSummary};

/// `demo` into `url`; returns every summary, newest first.
fn demo(sandbox: &Sandbox, url: &str) -> Vec<TraceSummary> {
    let out = sandbox.ok(&["--store", url, "demo"]);
    assert!(out.contains("try next:"), "{out}");
    let hints: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  trace-store"))
        .collect();
    assert_eq!(hints.len(), 3, "{out}");
    let all = sandbox.query(url, &[]);
    assert!(all.len() >= 120, "{}", all.len());
    all
}

fn expect(all: &[TraceSummary], keep: impl Fn(&TraceSummary) -> bool) -> Vec<&str> {
    all.iter()
        .filter(|s| keep(s))
        .map(|s| s.run_id.as_str())
        .collect()
}

#[test]
fn demo_list_and_each_query_filter_on_sqlite() {
    let sandbox = Sandbox::new();
    let url = sandbox.url("sqlite", "traces.db");
    let all = demo(&sandbox, &url);
    let q = |filters: &[&str]| sandbox.query(&url, filters);

    // list: the first page, newest first, and the table's footer.
    let page: Page = sandbox.json(&["--store", &url, "list"]);
    assert_eq!(run_ids(&page.traces), run_ids(&all[..50]));
    let table = sandbox.ok(&["--store", &url, "list", "--limit", "3", "--offset", "2"]);
    assert_eq!(table.lines().count(), 5, "{table}");
    assert!(table.contains(&all[2].run_id) && !table.contains(&format!(" {} ", all[1].run_id)));
    assert!(
        table.contains(&format!("showing 3-5 of {}", all.len())),
        "{table}"
    );
    let ordered = all
        .windows(2)
        .all(|w| (w[0].created_at, &w[0].run_id) > (w[1].created_at, &w[1].run_id));
    assert!(ordered, "newest first");

    let user = all[0].metadata["user_id"].as_str().unwrap().to_owned();
    let meta_user = format!("user_id={user}");
    assert_eq!(
        run_ids(&q(&["--meta", &meta_user])),
        expect(&all, |s| s.metadata["user_id"] == user.as_str())
    );
    // --meta values are JSON when they parse: the number 123 is not the string "123".
    let reviewed = all.iter().find(|s| s.metadata.contains_key("pr")).unwrap();
    let pr = reviewed.metadata["pr"].as_u64().unwrap();
    let by_number = q(&["--meta", &format!("pr={pr}")]);
    assert!(run_ids(&by_number).contains(&reviewed.run_id.as_str()));
    assert!(by_number.iter().all(|s| s.metadata["pr"] == pr));
    assert!(q(&["--meta", &format!("pr=\"{pr}\"")]).is_empty());
    assert_eq!(
        run_ids(&q(&["--meta", "env=prod", "--meta", &meta_user])),
        expect(&all, |s| s.metadata["user_id"] == user.as_str()
            && s.metadata["env"] == "prod")
    );

    let middle = all[all.len() / 2].created_at;
    let at = middle.to_string();
    assert_eq!(
        run_ids(&q(&["--since", &at])),
        expect(&all, |s| s.created_at >= middle)
    );
    assert_eq!(
        run_ids(&q(&["--until", &at])),
        expect(&all, |s| s.created_at <= middle)
    );
    let before = Timestamp::now().saturating_add_micros(-7 * 86_400_000_000);
    let recent = q(&["--since", "7d"]);
    let after = Timestamp::now().saturating_add_micros(-7 * 86_400_000_000);
    assert!(recent.iter().all(|s| s.created_at >= before));
    assert_eq!(recent.len(), expect(&all, |s| s.created_at >= after).len());
    assert!(!recent.is_empty() && recent.len() < all.len());

    assert_eq!(
        run_ids(&q(&["--min-steps", "9"])),
        expect(&all, |s| s.steps >= 9)
    );
    assert_eq!(
        run_ids(&q(&["--max-steps", "5"])),
        expect(&all, |s| s.steps <= 5)
    );
    assert_eq!(
        run_ids(&q(&["--min-steps", "5", "--max-steps", "5"])),
        expect(&all, |s| s.steps == 5)
    );
    let failed = q(&["--status", "error"]);
    assert_eq!(
        run_ids(&failed),
        expect(&all, |s| s.status == Status::Error)
    );
    assert!(!failed.is_empty());
    let research = q(&["--name", "research-agent"]);
    assert_eq!(
        run_ids(&research),
        expect(&all, |s| s.name.as_deref() == Some("research-agent"))
    );
    assert!(!research.is_empty());
    assert_eq!(
        run_ids(&q(&["--limit", "5", "--offset", "3"])),
        run_ids(&all[3..8])
    );
    assert_eq!(
        run_ids(&q(&[
            "--name",
            "support-bot",
            "--meta",
            "env=prod",
            "--max-steps",
            "6",
            "--limit",
            "4"
        ])),
        expect(&all, |s| s.name.as_deref() == Some("support-bot")
            && s.metadata["env"] == "prod"
            && s.steps <= 6)
        .into_iter()
        .take(4)
        .collect::<Vec<_>>()
    );
    // The suggestion `demo` prints runs and finds something.
    let suggested = q(&[
        "--name",
        "research-agent",
        "--meta",
        "env=prod",
        "--since",
        "14d",
    ]);
    assert!(!suggested.is_empty());

    let table = sandbox.ok(&["--store", &url, "query", "--status", "error"]);
    assert!(table.starts_with("CREATED (UTC)"), "{table}");
    assert!(
        table
            .trim_end()
            .ends_with(&format!("{} traces", failed.len())),
        "{table}"
    );
    assert_eq!(
        sandbox.ok(&["--store", &url, "query", "--name", "nobody"]),
        "no trace matched\n"
    );

    // stats: the same totals as the summaries, by status and by model.
    let stats: TraceStats = sandbox.json(&["--store", &url, "stats"]);
    assert_eq!(stats.count, all.len() as u64);
    assert_eq!(
        stats.input_tokens,
        all.iter().map(|s| s.input_tokens).sum::<u64>()
    );
    assert_eq!(
        stats.cost_nano_usd,
        all.iter().map(|s| s.cost_nano_usd).sum::<i64>()
    );
    assert_eq!(stats.by_status[&Status::Error], failed.len() as u64);
    assert!(stats.by_model.len() >= 4);
    let filtered: TraceStats = sandbox.json(&["--store", &url, "stats", "--status", "error"]);
    assert_eq!(filtered.count, failed.len() as u64);
    let text = sandbox.ok(&["--store", &url, "stats"]);
    let dollars = format!("{:.6}", stats.cost_nano_usd as f64 / 1e9);
    assert!(text.contains(&format!("traces  {}", all.len())), "{text}");
    assert!(text.contains(dollars.trim_end_matches('0')), "{text}");
    assert!(
        text.contains("by model") && text.contains("gpt-4o-mini"),
        "{text}"
    );

    // demo again replaces the same run_ids instead of adding more.
    sandbox.ok(&["--store", &url, "demo"]);
    assert_eq!(sandbox.query(&url, &[]).len(), all.len());
}

#[test]
fn export_then_import_into_a_second_store_loads_identically() {
    let sandbox = Sandbox::new();
    let source = sandbox.url("sqlite", "source.db");
    demo(&sandbox, &source);
    let file = sandbox.path("export.jsonl");
    let file_arg = file.to_str().unwrap();
    let said = sandbox.ok(&["--store", &source, "export", "-o", file_arg]);
    let original = load_all(&source);
    assert_eq!(
        said,
        format!("exported {} traces to {file_arg}\n", original.len())
    );
    // Without -o the same lines go to standard output.
    assert_eq!(
        sandbox.ok(&["--store", &source, "export"]),
        std::fs::read_to_string(&file).unwrap()
    );

    for target in [
        sandbox.url("sqlite", "copy.db"),
        sandbox.url("jsonl", "copy.jsonl"),
    ] {
        let report: Value = sandbox.json(&["--store", &target, "import", file_arg]);
        assert_eq!(report["saved"], original.len());
        assert_eq!(report["skipped"], 0);
        assert_eq!(report["files"][0]["format"], "native");
        assert_eq!(load_all(&target), original, "{target}");
    }

    // Filtered export, through standard input for the import.
    let errors = sandbox.path("errors.jsonl");
    sandbox.ok(&[
        "--store",
        &source,
        "export",
        "--status",
        "error",
        "-o",
        errors.to_str().unwrap(),
    ]);
    let target = sandbox.url("jsonl", "errors-only.jsonl");
    let out = sandbox.run_with(&["--store", &target, "import", "-"], &[], Some(&errors));
    assert_eq!(out.code, 0, "{out:?}");
    let imported = load_all(&target);
    assert!(!imported.is_empty());
    assert!(imported.iter().all(|t| t.status == Status::Error));
    assert_eq!(
        imported.len(),
        sandbox.query(&source, &["--status", "error"]).len()
    );
}

#[test]
fn copy_from_sqlite_to_jsonl_and_back() {
    let sandbox = Sandbox::new();
    let sqlite = sandbox.url("sqlite", "a.db");
    demo(&sandbox, &sqlite);
    let jsonl = sandbox.url("jsonl", "b.jsonl");
    let back = sandbox.url("sqlite", "c.db");
    let original = load_all(&sqlite);

    let said = sandbox.ok(&["--store", &sqlite, "copy", "--to", &jsonl]);
    assert_eq!(
        said,
        format!(
            "copied {} traces from {sqlite} to {jsonl}\n",
            original.len()
        )
    );
    let report: Value = sandbox.json(&["--store", &jsonl, "copy", "--to", &back]);
    assert_eq!(report["copied"], original.len());
    assert_eq!(load_all(&jsonl), original);
    assert_eq!(load_all(&back), original);

    // A filtered copy takes only what matches.
    let research = sandbox.url("jsonl", "research.jsonl");
    sandbox.ok(&[
        "--store",
        &sqlite,
        "copy",
        "--to",
        &research,
        "--name",
        "research-agent",
    ]);
    let copied = load_all(&research);
    assert_eq!(
        copied.len(),
        sandbox.query(&sqlite, &["--name", "research-agent"]).len()
    );
    assert!(
        copied
            .iter()
            .all(|t| t.name.as_deref() == Some("research-agent"))
    );

    let message = sandbox.fails(&["--store", &sqlite, "copy", "--to", &sqlite], 2);
    assert!(
        message.contains("is the store being copied from"),
        "{message}"
    );
}

#[test]
fn import_of_the_selectools_sample_matches_the_input() {
    let sandbox = Sandbox::new();
    let url = sandbox.url("sqlite", "selectools.db");
    let report: Value = sandbox.json(&["--store", &url, "import", SELECTOOLS_SAMPLE]);
    assert_eq!(report["saved"], 200);
    assert_eq!(report["skipped"], 0);
    assert_eq!(report["files"][0]["format"], "selectools");

    let summaries: HashMap<String, TraceSummary> = sandbox
        .query(&url, &[])
        .into_iter()
        .map(|s| (s.run_id.clone(), s))
        .collect();
    assert_eq!(summaries.len(), 200);
    let (mut tokens, mut cost) = (0u64, 0i64);
    for line in std::fs::read_to_string(SELECTOOLS_SAMPLE).unwrap().lines() {
        let line: Value = serde_json::from_str(line).unwrap();
        let trace = &line["trace"];
        let steps = trace["steps"].as_array().unwrap();
        let summary = &summaries[trace["run_id"].as_str().unwrap()];
        let sum = |field: &str| steps.iter().filter_map(|s| s[field].as_u64()).sum::<u64>();
        let dollars: i64 = steps
            .iter()
            .filter_map(|s| s["cost_usd"].as_f64())
            .map(|usd| (usd * 1e9).round() as i64)
            .sum();
        assert_eq!(summary.steps, steps.len());
        assert_eq!(summary.steps as u64, trace["step_count"].as_u64().unwrap());
        assert_eq!(summary.input_tokens, sum("prompt_tokens"));
        assert_eq!(summary.output_tokens, sum("completion_tokens"));
        assert_eq!(summary.cost_nano_usd, dollars);
        let stated_ms = trace["total_duration_ms"].as_f64().unwrap();
        assert!((summary.total_ms - stated_ms).abs() < 0.001 * steps.len() as f64);
        assert_eq!(summary.metadata["user_id"], trace["metadata"]["user_id"]);
        tokens += summary.input_tokens + summary.output_tokens;
        cost += summary.cost_nano_usd;
    }
    let stats: TraceStats = sandbox.json(&["--store", &url, "stats"]);
    assert_eq!(
        (stats.count, stats.input_tokens + stats.output_tokens),
        (200, tokens)
    );
    assert_eq!(stats.cost_nano_usd, cost);

    // The selectools shapes work with show, and the user's metadata with query.
    let first = summaries.keys().next().unwrap().clone();
    let shown = sandbox.ok(&["--store", &url, "show", &first]);
    assert!(
        shown.starts_with(&format!("run_id    {first}\n")),
        "{shown}"
    );
    let user = summaries[&first].metadata["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mine = sandbox.query(&url, &["--meta", &format!("user_id={user}")]);
    assert!(run_ids(&mine).contains(&first.as_str()));
}

#[test]
fn import_skips_and_counts_bad_lines_or_stops_with_strict() {
    let sandbox = Sandbox::new();
    let good = |id: &str| {
        format!(
            r#"{{"run_id": "{id}", "start_time": 1767249377.0, "steps": [{{"type": "llm_call", "prompt_tokens": 5}}]}}"#
        )
    };
    let file = sandbox.path("mixed.jsonl");
    std::fs::write(
        &file,
        format!(
            "{}\n{{oops\n{}\n{{\"run_id\": \"\", \"start_time\": 1}}\n{}\n",
            good("a"),
            good("b"),
            good("c")
        ),
    )
    .unwrap();
    let path = file.to_str().unwrap();

    let url = sandbox.url("sqlite", "skip.db");
    let out = sandbox.ok(&["--store", &url, "import", path]);
    assert!(out.contains("imported 3 traces (selectools)"), "{out}");
    assert!(out.contains("skipped line 2: not a JSON value"), "{out}");
    assert!(out.contains("skipped line 4: run_id is empty"), "{out}");
    assert!(out.contains("skipped 2 unreadable lines"), "{out}");
    assert_eq!(load_all(&url).len(), 3);

    let strict = sandbox.url("sqlite", "strict.db");
    let message = sandbox.fails(&["--store", &strict, "import", "--strict", path], 2);
    assert!(
        message.contains("mixed.jsonl: line 2: not a JSON value"),
        "{message}"
    );
    assert!(
        !sandbox.path("strict.db").exists(),
        "strict import wrote nothing"
    );

    // Forcing the wrong format reads nothing: an input error.
    let message = sandbox.fails(&["--store", &url, "import", "--format", "native", path], 2);
    assert!(message.contains("no trace could be read"), "{message}");
}

#[test]
fn delete_show_and_compact_on_jsonl() {
    let sandbox = Sandbox::new();
    let url = sandbox.url("jsonl", "traces.jsonl");
    let all = demo(&sandbox, &url);
    let victims: Vec<&str> = all.iter().take(3).map(|s| s.run_id.as_str()).collect();

    let mut args = vec!["--store", url.as_str(), "delete"];
    args.extend(&victims);
    let out = sandbox.ok(&args);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.starts_with(&format!("deleted {}\n", victims[0])));
    let message = sandbox.fails(&["--store", &url, "show", victims[0]], 1);
    assert!(
        message.contains(victims[0]) && message.contains("no trace"),
        "{message}"
    );
    let out = sandbox.run(&[
        "--store",
        &url,
        "delete",
        victims[1],
        all[5].run_id.as_str(),
    ]);
    assert_eq!(out.code, 1, "one of the two was already gone");
    assert!(out.stdout.contains(&format!("deleted {}", all[5].run_id)));
    common::assert_one_line_error(&out.stderr);

    let before = std::fs::metadata(sandbox.path("traces.jsonl"))
        .unwrap()
        .len();
    let said = sandbox.ok(&["--store", &url, "compact"]);
    let after = std::fs::metadata(sandbox.path("traces.jsonl"))
        .unwrap()
        .len();
    assert!(after < before, "{before} -> {after}");
    assert!(said.starts_with("compacted "), "{said}");
    let remaining = sandbox.query(&url, &[]);
    assert_eq!(remaining.len(), all.len() - 4);
    assert!(!run_ids(&remaining).contains(&victims[2]));
}

#[test]
fn bad_input_gives_exit_codes_and_one_line_messages() {
    let sandbox = Sandbox::new();
    let url = sandbox.url("sqlite", "t.db");
    demo(&sandbox, &url);
    let missing_db = sandbox.url("sqlite", "missing.db");
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["--store", "mysql://db/x", "list"],
            2,
            "unknown store scheme \"mysql\"",
        ),
        (&["--store", "traces.db", "list"], 2, "\"traces.db\""),
        (&["--store", &missing_db, "list"], 2, "does not exist"),
        (
            &["--store", &url, "import", "no-such-file.jsonl"],
            2,
            "cannot read no-such-file.jsonl",
        ),
        (
            &["--store", &url, "query", "--meta", "user_id"],
            2,
            "--meta",
        ),
        (&["--store", &url, "query", "--meta", "=x"], 2, "--meta"),
        (
            &["--store", &url, "query", "--since", "yesterday"],
            2,
            "--since",
        ),
        (
            &["--store", &url, "query", "--until", "2026-13-01"],
            2,
            "--until",
        ),
        (
            &[
                "--store",
                &url,
                "query",
                "--since",
                "2026-02-01",
                "--until",
                "2026-01-01",
            ],
            2,
            "later than",
        ),
        (
            &[
                "--store",
                &url,
                "query",
                "--min-steps",
                "5",
                "--max-steps",
                "2",
            ],
            2,
            "greater than",
        ),
        (
            &["--store", &url, "query", "--min-steps", "many"],
            2,
            "--min-steps",
        ),
        (
            &["--store", &url, "query", "--status", "failed"],
            2,
            "unknown status",
        ),
        (
            &["--store", &url, "show", "no-such-run"],
            1,
            "no trace with run_id \"no-such-run\"",
        ),
        (
            &["--store", &url, "delete", "no-such-run"],
            1,
            "no-such-run",
        ),
        (&["--store", &url, "compact"], 2, "jsonl://"),
        (&["--store", &url, "frobnicate"], 2, "frobnicate"),
        (&["--store", &url, "list", "--colour"], 2, "--colour"),
        (
            &["--store", &url, "import", "--format", "csv", "x"],
            2,
            "csv",
        ),
    ];
    for (args, code, expected) in cases {
        let message = sandbox.fails(args, *code);
        assert!(message.contains(expected), "{args:?}: {message}");
    }
    assert!(
        !sandbox.path("missing.db").exists(),
        "reading never creates a store"
    );

    let message = sandbox.fails(&["--store", &url], 2);
    assert!(message.contains("requires a subcommand"), "{message}");
    // Help and version are not errors.
    assert!(sandbox.ok(&["--help"]).contains("Exit codes"));
    assert!(sandbox.ok(&["--version"]).starts_with("trace-store "));
}

#[test]
fn store_url_comes_from_the_environment_and_memory_works_for_one_command() {
    let sandbox = Sandbox::new();
    let url = sandbox.url("jsonl", "env.jsonl");
    let out = sandbox.run_with(&["demo", "--runs", "3"], &[("TRACE_STORE_URL", &url)], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(load_all(&url).len(), 3);
    assert!(out.stdout.contains("show demo-0003"), "{}", out.stdout);

    let out = sandbox.ok(&["--store", "memory://", "demo", "--runs", "2"]);
    assert!(out.contains("memory:// keeps nothing"), "{out}");
    let stats: TraceStats = sandbox.json(&["--store", "memory://", "stats"]);
    assert_eq!(stats.count, 0);

    // The default store is ./traces.db.
    sandbox.ok(&["demo", "--runs", "1"]);
    assert!(sandbox.path("traces.db").exists());
}
