//! Golden output of `show` for a fixed trace. Regenerate with `UPDATE_GOLDEN=1` after an
//! intended change, and read the diff.

mod common;

use common::Sandbox;
use trace_store::Trace;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/show-trace.json");
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/show.golden");

/// A store holding the fixture, imported from its pretty-printed JSON.
fn store_with_fixture(sandbox: &Sandbox) -> String {
    let url = sandbox.url("sqlite", "golden.db");
    let out = sandbox.ok(&["--store", &url, "import", FIXTURE]);
    assert_eq!(out, format!("{FIXTURE}: imported 1 traces (native)\n"));
    url
}

/// The text with ANSI escape sequences (`ESC [ ... m`) removed.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn show_matches_the_golden_output_without_colour() {
    let sandbox = Sandbox::new();
    let url = store_with_fixture(&sandbox);
    let shown = sandbox.ok(&["--store", &url, "show", "golden-run"]);
    assert!(
        !shown.contains('\u{1b}'),
        "no colour when stdout is not a terminal"
    );
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(GOLDEN, &shown).unwrap();
    }
    let golden = std::fs::read_to_string(GOLDEN).expect("tests/data/show.golden");
    assert_eq!(
        shown, golden,
        "\n--- got ---\n{shown}\n--- want ---\n{golden}"
    );
}

#[test]
fn show_colours_errors_red_when_colour_is_forced() {
    let sandbox = Sandbox::new();
    let url = store_with_fixture(&sandbox);
    let out = sandbox.run_with(
        &["--store", &url, "show", "golden-run"],
        &[("CLICOLOR_FORCE", "1")],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    let red = "\u{1b}[31m";
    let failed_line = out
        .stdout
        .lines()
        .find(|line| line.contains("RateLimitError"))
        .expect("the failed tool call's error line");
    assert!(failed_line.contains(red), "{failed_line:?}");
    let golden = std::fs::read_to_string(GOLDEN).expect("tests/data/show.golden");
    assert_eq!(strip_ansi(&out.stdout), golden);
}

#[test]
fn show_json_is_the_trace_and_reimports() {
    let sandbox = Sandbox::new();
    let url = store_with_fixture(&sandbox);
    let json = sandbox.ok(&["--store", &url, "show", "golden-run", "--json"]);
    let fixture = Trace::from_json_slice(&std::fs::read(FIXTURE).unwrap()).unwrap();
    assert_eq!(Trace::from_json_str(&json).unwrap(), fixture);

    // What `show --json` prints is a file `import` reads.
    let file = sandbox.path("shown.json");
    std::fs::write(&file, json).unwrap();
    let copy = sandbox.url("jsonl", "copy.jsonl");
    sandbox.ok(&["--store", &copy, "import", file.to_str().unwrap()]);
    assert_eq!(common::load_all(&copy), vec![fixture]);
}
