//! Store paths the shell did not expand: `sqlite://~/x.db` is a directory named `~`.

mod common;

use common::Sandbox;

#[test]
fn a_tilde_is_not_expanded_and_says_so() {
    let sandbox = Sandbox::new();
    for url in ["sqlite://~/x.db", "jsonl://~/x.jsonl"] {
        let message = sandbox.fails(&["--store", url, "list"], 2);
        assert!(message.contains("`~` is not expanded"), "{message}");
        // Writing commands cannot create it either: there is no directory `~`.
        let message = sandbox.fails(&["--store", url, "demo", "--runs", "1"], 2);
        assert!(message.contains("`~` is not expanded"), "{message}");
    }
    assert!(!sandbox.path("~").exists());

    // With a directory of that name it works, and warns once on standard error.
    std::fs::create_dir(sandbox.path("~")).unwrap();
    let out = sandbox.run(&["--store", "sqlite://~/x.db", "demo", "--runs", "1"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].starts_with("trace-store: warning: "),
        "{}",
        out.stderr
    );
    assert!(lines[0].contains("`~` is not expanded"), "{}", out.stderr);
    assert!(sandbox.path("~/x.db").is_file());
}
