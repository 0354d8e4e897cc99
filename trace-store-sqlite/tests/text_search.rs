//! Text search (C13) on SQLite: the FTS5 trigram index narrows, core's predicate
//! decides, and paging comes after both. Answers are compared with the memory store.

use serde_json::json;
use trace_store_core::{Status, Step, Timestamp, Trace, TraceFilter, TraceStore};
use trace_store_memory::MemoryStore;
use trace_store_sqlite::SqliteStore;

/// Words of several scripts and the characters FTS5 and JSON treat specially.
const WORDS: &[&str] = &[
    "alpha",
    "Bravo",
    "charlie",
    "ÉCOLE",
    "café",
    "naïve",
    "Straße",
    "ΣΊΣΥΦΟΣ",
    "İstanbul",
    "你好",
    "世界",
    "日本語テキスト",
    "검색",
    "😀",
    "🚀🔥",
    "emoji😀mix",
    "quote\"d",
    "back\\slash",
    "tab\tbed",
    "a*b",
    "(paren)",
    "NEAR",
    "AND",
    "x:y",
    "^caret",
    "-dash",
    "under_score",
    "100%",
    "zürich",
    "ǅemal",
];

/// A small deterministic generator (xorshift), so a failure replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn word(&mut self) -> &'static str {
        WORDS[self.below(WORDS.len())]
    }
    fn words(&mut self, n: usize) -> String {
        (0..n).map(|_| self.word()).collect::<Vec<_>>().join(" ")
    }
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_micros(1_767_225_600_000_000 + seconds * 1_000_000).expect("timestamp")
}

fn generate(rng: &mut Rng, count: usize) -> Vec<Trace> {
    (0..count)
        .map(|i| {
            let mut trace = Trace::new(format!("run-{i:05}"))
                // Few distinct times: many ties, which run_id must break.
                .with_created_at(at(rng.below(count / 8) as i64))
                .with_status(if rng.below(5) == 0 {
                    Status::Error
                } else {
                    Status::Ok
                })
                .with_metadata("note", rng.words(1));
            if rng.below(2) == 0 {
                trace = trace.with_name(rng.words(1));
            }
            for _ in 0..rng.below(4) {
                let len = 1 + rng.below(5);
                trace = trace.with_step(
                    Step::llm_call("m")
                        .with_input(json!([{"role": "user", "content": rng.words(len)}]))
                        .with_output(json!({"text": rng.words(2)})),
                );
            }
            trace
        })
        .collect()
}

/// A query: a piece of one word or of two adjacent words, sometimes upper-cased,
/// sometimes absent from every trace.
fn query(rng: &mut Rng) -> String {
    let source = if rng.below(3) == 0 {
        format!("{} {}", rng.word(), rng.word())
    } else {
        rng.word().to_owned()
    };
    let chars: Vec<char> = source.chars().collect();
    let start = rng.below(chars.len());
    let len = 1 + rng.below((chars.len() - start).min(7));
    let piece: String = chars[start..start + len].iter().collect();
    match rng.below(6) {
        0 => piece.to_uppercase(),
        1 => format!("{piece}§none"),
        _ => piece,
    }
}

#[test]
fn answers_equal_the_memory_stores_on_mixed_scripts() {
    let seed = 0x7E57_5EED_u64;
    println!("seed {seed:#x}");
    let mut rng = Rng(seed);
    let traces = generate(&mut rng, 3000);
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = SqliteStore::open(dir.path().join("traces.db")).expect("open");
    let memory = MemoryStore::unbounded();
    sqlite.save_many(&traces).expect("save_many");
    memory.save_many(&traces).expect("save_many");
    let mut long_queries_with_hits = 0;
    for round in 0..150 {
        let text = query(&mut rng);
        let base = TraceFilter::new().with_text(text.clone());
        let filters = [
            base.clone(),
            base.clone().with_limit(3).with_offset(rng.below(4)),
            base.clone().with_status(Status::Error).with_limit(5),
            base.clone().with_until(at(200)).with_since(at(20)),
        ];
        for filter in &filters {
            let want = memory.query(filter).expect("memory query");
            let got = sqlite.query(filter).expect("sqlite query");
            let ids = |s: &[trace_store_core::TraceSummary]| {
                s.iter().map(|s| s.run_id.clone()).collect::<Vec<_>>()
            };
            assert_eq!(
                ids(&got),
                ids(&want),
                "round {round}, seed {seed:#x}, filter {filter:?}"
            );
            assert_eq!(
                sqlite.count(filter).expect("count"),
                want.len() as u64,
                "count, round {round}, {filter:?}"
            );
        }
        if text.chars().count() >= 3 && !memory.query(&base).expect("query").is_empty() {
            long_queries_with_hits += 1;
        }
    }
    // The comparison exercised the index path, not only scans.
    assert!(long_queries_with_hits > 20, "{long_queries_with_hits}");
}

fn uses_index(store: &SqliteStore, filter: &TraceFilter) -> (bool, Vec<String>) {
    let plan = store.query_plan(filter).expect("plan");
    (
        plan.iter()
            .any(|line| line.starts_with("SCAN trace_trigrams VIRTUAL TABLE INDEX 0:M")),
        plan,
    )
}

/// Candidates that hold every trigram of the query but not the query itself are
/// dropped before the limit, whether the index narrows or the list order is walked:
/// a LIMIT taken before the recheck would return nothing.
#[test]
fn false_candidates_are_dropped_before_the_limit() {
    let store = SqliteStore::in_memory().expect("in_memory");
    for i in 0..5 {
        // "abc" and "bcd" apart: every trigram of "abcd", newer than the real match.
        let decoy = Trace::new(format!("decoy-{i}"))
            .with_created_at(at(1000 + i))
            .with_name("abc and bcd");
        store.save(&decoy).expect("save");
    }
    store
        .save(
            &Trace::new("match")
                .with_created_at(at(1))
                .with_name("xABCDx"),
        )
        .expect("save");
    let filter = TraceFilter::new().with_text("abcd").with_limit(1);
    let check = |store: &SqliteStore| {
        let page = store.query(&filter).expect("query");
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].run_id, "match");
        assert_eq!(store.count(&filter).expect("count"), 1);
    };
    // Six traces, all candidates: walking the list order costs less.
    store.index_text().expect("index_text");
    assert!(!uses_index(&store, &filter).0);
    check(&store);
    // Among many traces without those trigrams, the index narrows.
    let fillers: Vec<Trace> = (0..300)
        .map(|i| {
            Trace::new(format!("filler-{i}"))
                .with_created_at(at(500))
                .with_name("zzz")
        })
        .collect();
    store.save_many(&fillers).expect("save_many");
    store.index_text().expect("index_text");
    let (used, plan) = uses_index(&store, &filter);
    assert!(used, "{plan:#?}");
    check(&store);
    // Traces saved since the last batch are candidates too, all 40 of them: walking
    // costs less again.
    for i in 0..40 {
        let late = Trace::new(format!("late-{i}"))
            .with_created_at(at(600))
            .with_name("zzz");
        store.save(&late).expect("save");
    }
    assert!(!uses_index(&store, &filter).0);
    check(&store);
    assert_eq!(store.delete_where(&filter).expect("delete_where"), 1);
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), 345);
}

/// `EXPLAIN QUERY PLAN`: a query of 3 or more characters in few traces looks up the
/// FTS index (`VIRTUAL TABLE INDEX 0:M`, a MATCH); a shorter one cannot, and a common
/// one with a small page walks the list order, rechecking each trace.
#[test]
fn long_queries_use_the_trigram_index() {
    let store = SqliteStore::in_memory().expect("in_memory");
    let mut traces = generate(&mut Rng(7), 400);
    for (i, rare) in [
        "zyzzogeton café",
        "日本語の珍しい単語",
        "say \"quoted\" words",
    ]
    .iter()
    .enumerate()
    {
        traces[i * 100] = traces[i * 100].clone().with_metadata("rare", *rare);
    }
    store.save_many(&traces).expect("save_many");
    store.index_text().expect("index_text");
    for filter in [
        TraceFilter::new().with_text("ZYZZOGETON"),
        TraceFilter::new().with_text("珍しい").with_limit(10),
        TraceFilter::new()
            .with_text("\"quoted\"")
            .with_status(Status::Ok),
        TraceFilter::new()
            .with_text("zyzzog")
            .with_metadata("rare", "zyzzogeton café"),
        TraceFilter::new().with_text("charlie"),
    ] {
        let (used, plan) = uses_index(&store, &filter);
        assert!(used, "{filter:?} should use the FTS index: {plan:#?}");
        assert!(
            !store.query(&filter).expect("query").is_empty(),
            "{filter:?} finds its trace"
        );
    }
    let (used, plan) = uses_index(&store, &TraceFilter::new().with_text("你好"));
    assert!(!used, "two characters have no trigram: {plan:#?}");
    // Without a metadata criterion the index drives: rowid lookups, not a scan.
    let (_, plan) = uses_index(
        &store,
        &TraceFilter::new().with_text("zyzzogeton").with_limit(10),
    );
    assert!(
        plan.iter()
            .any(|l| l == "SEARCH t USING INTEGER PRIMARY KEY (rowid=?)"),
        "{plan:#?}"
    );
    // A word in most traces, first page only: walking the list order is cheaper.
    let common = TraceFilter::new().with_text("charlie").with_limit(5);
    let (used, plan) = uses_index(&store, &common);
    assert!(!used, "{plan:#?}");
    assert!(
        plan.iter().any(|l| l.contains("traces_by_created_at")),
        "{plan:#?}"
    );
    assert_eq!(store.query(&common).expect("query").len(), 5);
}

/// Whether the text is still waiting for the index or already in it (an upsert or
/// merge then leaves the index an entry for the old text until the next batch), a
/// query sees exactly the current text.
#[test]
fn search_text_follows_saves_merges_and_deletes() {
    for indexed in [false, true] {
        let store = SqliteStore::in_memory().expect("in_memory");
        let index = || {
            if indexed {
                store.index_text().expect("index_text");
            }
        };
        store
            .save(&Trace::new("r").with_name("first version"))
            .expect("save");
        index();
        let find = |text: &str| {
            store
                .count(&TraceFilter::new().with_text(text))
                .expect("count")
        };
        assert_eq!(find("first"), 1);
        store
            .save(&Trace::new("r").with_name("second version"))
            .expect("save");
        assert_eq!(
            (find("first"), find("second")),
            (0, 1),
            "indexed: {indexed}"
        );
        index();
        assert_eq!(
            (find("first"), find("second")),
            (0, 1),
            "indexed: {indexed}"
        );
        store
            .merge(&Trace::new("r").with_step(Step::tool_call("web_search")))
            .expect("merge");
        assert_eq!((find("second"), find("web_sea")), (1, 1));
        index();
        // A trace whose text is empty has no FTS row and never matches.
        store.save(&Trace::new("empty")).expect("save");
        assert_eq!(find("r"), 1);
        assert!(store.delete("r").expect("delete"));
        assert_eq!((find("second"), find("web")), (0, 0));
        store.index_text().expect("index_text");
        assert_eq!((find("second"), find("web")), (0, 0));
    }
}

/// A delete leaves its trigram entries for the next batch; a trace saved meanwhile
/// under the same rowid (SQLite reuses the largest) is found by its own text only,
/// before and after the batch, and the index stays consistent.
#[test]
fn a_deleted_traces_index_entry_never_answers_for_its_successor() {
    let store = SqliteStore::in_memory().expect("in_memory");
    let find = |text: &str| -> Vec<String> {
        store
            .query(&TraceFilter::new().with_text(text))
            .expect("query")
            .into_iter()
            .map(|s| s.run_id)
            .collect()
    };
    store
        .save(&Trace::new("keep").with_name("kept words"))
        .expect("save");
    store
        .save(&Trace::new("old").with_name("quokka habitat"))
        .expect("save");
    store.index_text().expect("index_text");
    assert_eq!(find("quokka"), ["old"]);
    assert!(store.delete("old").expect("delete"));
    assert!(find("quokka").is_empty());
    // The largest rowid is free again: the next trace takes it.
    store
        .save(&Trace::new("new").with_name("wombat burrow"))
        .expect("save");
    for round in ["before the batch", "after the batch"] {
        assert!(find("quokka").is_empty(), "{round}");
        assert_eq!(find("wombat"), ["new"], "{round}");
        assert_eq!(find("words"), ["keep"], "{round}");
        store.index_text().expect("index_text");
    }
    // Deleting it again, and a trace never indexed, leaves nothing behind.
    assert!(store.delete("new").expect("delete"));
    store
        .save(&Trace::new("fresh").with_name("platypus"))
        .expect("save");
    assert!(store.delete("fresh").expect("delete"));
    store.index_text().expect("index_text");
    assert!(find("wombat").is_empty() && find("platypus").is_empty());
    assert_eq!(find("words"), ["keep"]);
}
