//! C13: text search over each trace's searchable text, case-insensitively, as typed.

use serde_json::json;
use trace_store_core::{
    ErrorInfo, GroupBy, SEARCH_TEXT_MAX_BYTES, Status, Step, Trace, TraceFilter, TraceStore,
};

use crate::fixtures::{
    assert_answer, assert_invalid, assert_not_found, at, ok, query_ids, trace, trace_cost,
    trace_input_tokens,
};

/// The run_ids a text query returns (count checked against it).
#[track_caller]
fn found(store: &dyn TraceStore, text: &str) -> Vec<String> {
    query_ids(store, &TraceFilter::new().with_text(text))
}

#[track_caller]
fn assert_found(store: &dyn TraceStore, rule: &str, text: &str, expected: &[&str]) {
    assert_answer(
        &format!("{rule}, query {text:?}"),
        expected.to_vec(),
        found(store, text),
    );
}

/// ASCII text in every searchable place, matched case-insensitively; run_ids, object
/// keys and numbers are not text.
pub fn c13_text_ascii_and_case(store: &dyn TraceStore) {
    let traces = [
        Trace::new("a")
            .with_created_at(at(4))
            .with_name("Support-Bot")
            .with_step(
                Step::llm_call("gpt-x").with_input(json!({"prompt": "Find the WEATHER in Paris"})),
            ),
        Trace::new("b")
            .with_created_at(at(3))
            .with_session_id("Session-Nine")
            .with_metadata("user", "Alice")
            .with_metadata("n", 12345)
            .with_step(Step::tool_call("search").with_output(json!(["weather report"]))),
        Trace::new("c").with_created_at(at(2)).with_name("other"),
        Trace::new("d")
            .with_created_at(at(1))
            .with_error(ErrorInfo::new("Run crashed").with_type("FatalError"))
            .with_step(
                Step::llm_call("gpt-x")
                    .with_name("Planner")
                    .with_attribute("note", json!({"deep": ["Needle In Attributes"]}))
                    .with_error(ErrorInfo::new("Rate LIMIT exceeded").with_type("HTTP429")),
            ),
    ];
    ok(store.save_many(&traces), "save_many");
    let rule = "C13 ASCII text, case-insensitive";
    assert_found(store, rule, "weather", &["a", "b"]);
    assert_found(store, rule, "WEATHER", &["a", "b"]);
    assert_found(store, rule, "wEaThEr RePoRt", &["b"]);
    assert_found(store, rule, "support-bot", &["a"]);
    assert_found(store, rule, "session-nine", &["b"]);
    assert_found(store, rule, "ALICE", &["b"]);
    assert_found(store, rule, "search", &["b"]);
    assert_found(store, rule, "rate limit", &["d"]);
    assert_found(store, rule, "http429", &["d"]);
    assert_found(store, rule, "fatalerror", &["d"]);
    assert_found(store, rule, "run crashed", &["d"]);
    assert_found(store, rule, "planner", &["d"]);
    assert_found(store, rule, "needle in attributes", &["d"]);
    assert_found(store, rule, "gpt-x", &["a", "d"]);
    assert_found(store, "C13 object keys are not text", "prompt", &[]);
    assert_found(store, "C13 numbers are not text", "12345", &[]);
    assert_found(store, "C13 a one-letter query", "a", &["a", "b", "d"]);
    assert_found(store, "C13 no match", "nowhere", &[]);
}

/// CJK, emoji and non-ASCII case, as `str::to_lowercase` folds it on both sides.
pub fn c13_text_unicode(store: &dyn TraceStore) {
    let traces = [
        Trace::new("cjk")
            .with_created_at(at(3))
            .with_step(Step::tool_call("t").with_output(json!("今日は天気が良い 你好世界"))),
        Trace::new("emoji")
            .with_created_at(at(2))
            .with_step(Step::tool_call("t").with_input(json!({"msg": "ship it 🚀🦀 now"}))),
        Trace::new("accents")
            .with_created_at(at(1))
            .with_name("ÜBER Straße ΣΟΦΙΑ ΟΔΟΣ"),
    ];
    ok(store.save_many(&traces), "save_many");
    let rule = "C13 unicode text";
    assert_found(store, rule, "你好", &["cjk"]);
    assert_found(store, rule, "天気が", &["cjk"]);
    assert_found(store, rule, "世界", &["cjk"]);
    assert_found(store, rule, "🦀", &["emoji"]);
    assert_found(store, rule, "🚀🦀 NOW", &["emoji"]);
    assert_found(store, rule, "über", &["accents"]);
    assert_found(store, rule, "straße", &["accents"]);
    assert_found(store, rule, "σοφια", &["accents"]);
    assert_found(store, rule, "ΣΟΦΙΑ", &["accents"]);
    assert_found(
        store,
        "C13 only str::to_lowercase folds case (ß is not ss)",
        "strasse",
        &[],
    );
    assert_found(
        store,
        "C13 a word-final Σ matches as typed (str::to_lowercase on both sides)",
        "ΟΔΟΣ",
        &["accents"],
    );
    assert_found(store, rule, "🦊", &[]);
}

/// JSON strings are searched decoded: quotes, backslashes and CJK match as typed, and
/// their JSON escapes (`\"`, `\\`, `\u4f60`) match nothing.
pub fn c13_text_escaped_json(store: &dyn TraceStore) {
    let escaped = Trace::new("escaped")
        .with_created_at(at(2))
        .with_metadata("title", "say \"quoted\" and 你好")
        .with_step(
            Step::tool_call("t")
                .with_input(json!({"q": "path C:\\temp\\x", "tab": "a\tb"}))
                .with_output(json!({"reply": "\u{4f60}\u{597d}, \"friend\""})),
        );
    ok(store.save(&escaped), "save");
    ok(store.save(&trace("plain", 1, 1)), "save");
    let rule = "C13 escaped JSON is searched as typed";
    assert_found(store, rule, "\"quoted\"", &["escaped"]);
    assert_found(store, rule, "say \"quoted\" and 你好", &["escaped"]);
    assert_found(store, rule, "你好, \"friend\"", &["escaped"]);
    assert_found(store, rule, "c:\\temp\\x", &["escaped"]);
    assert_found(store, rule, "a\tb", &["escaped"]);
    let never = "C13 JSON escapes are not text";
    assert_found(store, never, "\\\"", &[]);
    assert_found(store, never, "\\\"quoted\\\"", &[]);
    assert_found(store, never, "\\u4f60", &[]);
    assert_found(store, never, "c:\\\\temp", &[]);
    assert_found(store, never, "a\\tb", &[]);
    assert_found(store, never, "\"q\":", &[]);
}

/// Text past [`SEARCH_TEXT_MAX_BYTES`] is not found; text before it is.
pub fn c13_text_past_the_cap(store: &dyn TraceStore) {
    let filler = format!(
        "early-needle {} tail-needle",
        "x".repeat(SEARCH_TEXT_MAX_BYTES)
    );
    let long = Trace::new("long")
        .with_created_at(at(2))
        .with_name("first-piece")
        .with_step(Step::tool_call("t").with_output(json!(filler)))
        .with_step(Step::tool_call("late-needle"));
    let short = Trace::new("short")
        .with_created_at(at(1))
        .with_step(Step::tool_call("late-needle"));
    ok(store.save_many(&[long, short]), "save_many");
    let rule = "C13 text before the cap is found";
    assert_found(store, rule, "first-piece", &["long"]);
    assert_found(store, rule, "early-needle", &["long"]);
    assert_found(store, rule, "xxxxxxxxxx", &["long"]);
    let past = "C13 text past SEARCH_TEXT_MAX_BYTES is not found";
    assert_found(store, past, "tail-needle", &[]);
    assert_found(store, past, "late-needle", &["short"]);
}

/// Queries of one and two characters work like any other (no trigram minimum).
pub fn c13_text_short_queries(store: &dyn TraceStore) {
    let traces = [
        Trace::new("ra").with_created_at(at(3)).with_name("xa"),
        Trace::new("rb").with_created_at(at(2)).with_name("日本語"),
        Trace::new("rc").with_created_at(at(1)).with_name("Q!"),
    ];
    ok(store.save_many(&traces), "save_many");
    let rule = "C13 queries shorter than 3 characters";
    assert_found(store, rule, "a", &["ra"]);
    assert_found(store, rule, "A", &["ra"]);
    assert_found(store, rule, "xa", &["ra"]);
    assert_found(store, rule, "日", &["rb"]);
    assert_found(store, rule, "本語", &["rb"]);
    assert_found(store, rule, "q", &["rc"]);
    assert_found(store, rule, "!", &["rc"]);
    assert_found(store, rule, "z", &[]);
    assert_found(store, "C13 run_ids are not text", "r", &[]);
}

/// A deleted or replaced trace's text is found no more.
pub fn c13_no_hit_after_delete(store: &dyn TraceStore) {
    let with_text = |run_id: &str, micros, text: &str| {
        Trace::new(run_id)
            .with_created_at(at(micros))
            .with_step(Step::tool_call("t").with_output(json!(text)))
    };
    ok(
        store.save_many(&[
            with_text("a", 3, "needle one"),
            with_text("b", 2, "needle two"),
            with_text("c", 1, "needle three"),
        ]),
        "save_many",
    );
    assert!(ok(store.delete("a"), "delete"));
    assert_found(store, "C13 no hit after delete", "needle", &["b", "c"]);
    let gone = ok(
        store.delete_where(&TraceFilter::new().with_text("TWO")),
        "delete_where",
    );
    assert_answer("C15 delete_where by text deletes the match", 1, gone);
    assert_found(store, "C13 no hit after delete_where", "needle", &["c"]);
    ok(store.save(&with_text("c", 1, "haystack")), "upsert");
    assert_found(store, "C13 no hit for replaced text", "needle", &[]);
    assert_found(
        store,
        "C13 an upsert's new text is found",
        "haystack",
        &["c"],
    );
    ok(store.save(&with_text("a", 5, "needle again")), "save again");
    assert_found(
        store,
        "C13 a trace saved after delete is found",
        "needle",
        &["a"],
    );
    assert_not_found(store.load("b"), "b");
}

/// Two stores from the same factory are separate namespaces: neither finds the other's
/// text, lists its traces, nor deletes them.
pub fn c13_no_hit_across_namespaces(first: &dyn TraceStore, second: &dyn TraceStore) {
    let mine = Trace::new("same-id")
        .with_created_at(at(1))
        .with_name("first-namespace-needle");
    let theirs = Trace::new("same-id")
        .with_created_at(at(1))
        .with_name("second-namespace-needle");
    ok(first.save(&mine), "save in the first store");
    ok(second.save(&theirs), "save in the second store");
    for (store, own, other) in [
        (first, "first-namespace-needle", "second-namespace-needle"),
        (second, "second-namespace-needle", "first-namespace-needle"),
    ] {
        assert_found(store, "C13 own namespace", own, &["same-id"]);
        assert_found(store, "C13 no hit across namespaces", other, &[]);
        assert_found(
            store,
            "C13 no hit across namespaces",
            "namespace-needle",
            &["same-id"],
        );
    }
    ok(
        first.delete_where(&TraceFilter::new().with_text("needle")),
        "delete_where",
    );
    assert_found(
        first,
        "C15 delete_where empties its own namespace",
        "needle",
        &[],
    );
    assert_answer(
        "C15 delete_where never reaches another namespace",
        &theirs,
        &ok(second.load("same-id"), "load"),
    );
}

/// Text AND-ed with every other criterion, then ordered and paged; count, stats and
/// grouped stats over a text query.
pub fn c13_text_with_filters_and_paging(store: &dyn TraceStore) {
    // Trace i: created at i % 5 (ties), name even/odd, user u{i % 3}, i % 4 steps, and
    // "needle" in its output when i is even.
    let build = |i: i64| {
        let steps = (i % 4) as usize;
        let mut t = trace(&format!("r{i:02}"), i % 5, steps)
            .with_name(if i % 2 == 0 { "even" } else { "odd" })
            .with_status(if i % 3 == 0 {
                Status::Error
            } else {
                Status::Ok
            })
            .with_metadata("user", format!("u{}", i % 3));
        let word = if i % 2 == 0 { "a Needle here" } else { "hay" };
        t.steps.push(Step::tool_call("t").with_output(json!(word)));
        t
    };
    let traces: Vec<Trace> = (0..30).map(build).collect();
    ok(store.save_many(&traces), "save_many");
    // Plainly: even i with user u1, newest first, ties by run_id descending.
    let mut expected: Vec<(i64, String)> = (0..30)
        .filter(|i| i % 2 == 0 && i % 3 == 1)
        .map(|i| (i % 5, format!("r{i:02}")))
        .collect();
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
    assert_answer(
        "C13 fixture: text and user select r04, r28, r22, r16, r10",
        vec!["r04", "r28", "r22", "r16", "r10"],
        expected.clone(),
    );
    let filter = TraceFilter::new()
        .with_text("NEEDLE")
        .with_metadata("user", "u1");
    assert_answer(
        "C13 text AND metadata, newest first",
        expected.clone(),
        query_ids(store, &filter),
    );
    assert_answer(
        "C13 text AND name AND status",
        vec!["r24", "r18", "r12", "r06", "r00"],
        query_ids(
            store,
            &filter
                .clone()
                .with_metadata("user", "u0")
                .with_name("even")
                .with_status(Status::Error),
        ),
    );
    assert_answer(
        "C13 text then offset 1, limit 2",
        expected[1..3].to_vec(),
        query_ids(store, &filter.clone().with_offset(1).with_limit(2)),
    );
    let first_page = ok(store.query(&filter.clone().with_limit(2)), "query");
    let after = filter.clone().with_after(first_page[1].cursor());
    assert_answer(
        "C13 text after a cursor",
        expected[2..].to_vec(),
        query_ids(store, &after),
    );
    assert_answer(
        "C13 text after a cursor with offset 1 and limit 1",
        expected[3..4].to_vec(),
        query_ids(store, &after.clone().with_offset(1).with_limit(1)),
    );
    // r04, r28, r22, r16, r10 have 0, 0, 2, 0, 2 model steps and one tool step each.
    let stats = ok(store.stats(&filter), "stats");
    assert_answer(
        "C13 stats over a text query (count, steps, input tokens, cost)",
        (5, 9, 2 * trace_input_tokens(2), 2 * trace_cost(2)),
        (
            stats.count,
            stats.steps,
            stats.input_tokens,
            stats.cost_nano_usd,
        ),
    );
    let paged = ok(store.stats(&filter.clone().with_limit(3)), "stats");
    assert_answer(
        "C13 stats over a paged text query (count, steps)",
        (3, 5),
        (paged.count, paged.steps),
    );
    let groups = ok(store.stats_by(&filter, GroupBy::Name), "stats_by");
    let got: Vec<_> = groups
        .iter()
        .map(|(k, s)| (k.to_string(), s.count))
        .collect();
    assert_answer(
        "C14 grouped stats over a text query",
        vec![("even".to_owned(), 5)],
        got,
    );
}

/// An empty text query is `InvalidInput` for every reading method.
pub fn c13_empty_query_is_invalid(store: &dyn TraceStore) {
    ok(store.save(&trace("r", 1, 1).with_name("anything")), "save");
    let filter = TraceFilter::new().with_text("");
    assert_invalid(store.query(&filter), "C13 query with an empty text");
    assert_invalid(store.count(&filter), "C13 count with an empty text");
    assert_invalid(store.stats(&filter), "C13 stats with an empty text");
    assert_invalid(
        store.stats_by(&filter, GroupBy::Status),
        "C13 stats_by with an empty text",
    );
    assert_found(store, "C13 a one-space query is not empty", " ", &[]);
}
