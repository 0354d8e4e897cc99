//! Database files: what a new one looks like, what is refused and left byte for byte
//! unchanged, how failures name the file, and what closing leaves behind.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use trace_store_core::{Durability, Error, Step, Trace, TraceFilter, TraceStore};
use trace_store_sqlite::{SCHEMA_VERSION, SqliteOptions, SqliteStore};

fn trace(run_id: &str) -> Trace {
    Trace::new(run_id)
        .with_metadata("user_id", "u_1")
        .with_step(Step::llm_call("m").with_usage(3, 4))
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("traces.db")
}

fn wal(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    wal.into()
}

fn pragma<T: rusqlite::types::FromSql>(conn: &Connection, name: &str) -> T {
    conn.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
        .expect("pragma")
}

/// Opening `path` fails with an error that names it, and the file and its
/// write-ahead log, if it has one, keep their bytes.
fn assert_refused_unchanged(path: &Path) -> Error {
    let error = assert_unchanged_by_open(path);
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "the error names the file: {error}"
    );
    error
}

/// Opening `path` fails, and the file and its write-ahead log keep their bytes.
fn assert_unchanged_by_open(path: &Path) -> Error {
    let before = std::fs::read(path).expect("read before");
    let log_before = std::fs::read(wal(path)).ok();
    let error = SqliteStore::open(path).expect_err("the file must be refused");
    assert_eq!(
        std::fs::read(path).expect("read after"),
        before,
        "the file was modified"
    );
    assert_eq!(
        std::fs::read(wal(path)).ok(),
        log_before,
        "the write-ahead log was created, changed or removed"
    );
    error
}

/// A connection whose close leaves its write-ahead log as it is, as a process that
/// was killed (or another program) can leave it.
fn leave_log_behind(conn: Connection) {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .expect("no checkpoint on close");
}

#[test]
fn a_new_database_is_stamped_with_the_schema_version_and_uses_wal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(db(&dir)).expect("open");
    store.save(&trace("a")).expect("save");
    let conn = Connection::open(db(&dir)).expect("raw open");
    assert_eq!(pragma::<u32>(&conn, "user_version"), SCHEMA_VERSION);
    assert_ne!(pragma::<i32>(&conn, "application_id"), 0);
    assert_eq!(pragma::<String>(&conn, "journal_mode"), "wal");
    let created_at: rusqlite::types::Value = conn
        .query_row("SELECT created_at FROM traces", [], |row| row.get(0))
        .expect("created_at");
    assert!(
        matches!(created_at, rusqlite::types::Value::Integer(_)),
        "created_at is stored as integer microseconds, not text: {created_at:?}"
    );
}

#[test]
fn a_newer_schema_version_is_unsupported_and_left_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    SqliteStore::open(db(&dir))
        .expect("open")
        .close()
        .expect("close");
    let conn = Connection::open(db(&dir)).expect("raw open");
    conn.execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 7))
        .expect("bump version");
    drop(conn);
    let before = std::fs::read(db(&dir)).expect("read");
    match SqliteStore::open(db(&dir)) {
        Err(Error::UnsupportedVersion { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 7, SCHEMA_VERSION));
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    assert_eq!(std::fs::read(db(&dir)).expect("read"), before);
}

#[test]
fn another_applications_sqlite_database_is_refused_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.db");
    let conn = Connection::open(&path).expect("raw open");
    conn.execute_batch(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT);
         INSERT INTO notes (text) VALUES ('keep me');",
    )
    .expect("create");
    drop(conn);
    let error = assert_refused_unchanged(&path);
    assert!(
        matches!(&error, Error::InvalidInput { message } if message.contains("not a trace-store database") && message.contains("notes")),
        "{error}"
    );

    // Marked by another application, even without tables.
    let marked = dir.path().join("marked.db");
    let conn = Connection::open(&marked).expect("raw open");
    conn.execute_batch("PRAGMA application_id = 42; PRAGMA user_version = 1;")
        .expect("mark");
    drop(conn);
    assert!(matches!(
        assert_refused_unchanged(&marked),
        Error::InvalidInput { .. }
    ));

    // user_version is a signed 32-bit integer; any value is someone else's.
    let negative = dir.path().join("negative.db");
    let conn = Connection::open(&negative).expect("raw open");
    conn.execute_batch("PRAGMA user_version = -1; CREATE TABLE t (x);")
        .expect("mark");
    drop(conn);
    let error = assert_refused_unchanged(&negative);
    assert!(
        matches!(&error, Error::InvalidInput { message } if message.contains("not a trace-store database")),
        "{error}"
    );
}

/// A refused database whose last writes are still in its write-ahead log: closing
/// the connection that looked at it must not copy them into the file (SQLite does
/// that when the last connection closes).
#[test]
fn a_refused_database_keeps_its_write_ahead_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let foreign = dir.path().join("notes.db");
    let conn = Connection::open(&foreign).expect("raw open");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
         CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('keep me');",
    )
    .expect("create");
    leave_log_behind(conn);
    assert!(wal(&foreign).exists());
    assert!(matches!(
        assert_refused_unchanged(&foreign),
        Error::InvalidInput { .. }
    ));

    // A database of a newer trace-store, whose writer was killed.
    let newer = db(&dir);
    SqliteStore::open(&newer)
        .expect("open")
        .close()
        .expect("close");
    let conn = Connection::open(&newer).expect("raw open");
    conn.execute_batch(&format!(
        "PRAGMA wal_autocheckpoint = 0; PRAGMA user_version = {};",
        SCHEMA_VERSION + 1
    ))
    .expect("bump the version");
    leave_log_behind(conn);
    assert!(matches!(
        assert_unchanged_by_open(&newer),
        Error::UnsupportedVersion { .. }
    ));
}

/// Stores that create the same new file at the same moment (workers started
/// together) all open it: none takes the half-created database for someone else's,
/// and none gives up when SQLite refuses a lock without waiting. Threads stand in for
/// processes: each store has connections of its own.
#[test]
fn stores_created_on_one_new_file_at_once_all_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    for round in 0..100 {
        let path = dir.path().join(format!("new-{round}.db"));
        let start = std::sync::Arc::new(std::sync::Barrier::new(4));
        let openers: Vec<_> = (0..4)
            .map(|_| {
                let (path, start) = (path.clone(), std::sync::Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    SqliteStore::open(&path).map(|store| store.close())
                })
            })
            .collect();
        for opener in openers {
            match opener.join().expect("opener") {
                Ok(closed) => closed.expect("close"),
                Err(error) => panic!("round {round}: {error}"),
            }
        }
    }
}

#[test]
fn files_that_are_not_sqlite_are_refused_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut noise = Vec::with_capacity(8192);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..8192 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.push(x as u8);
    }
    let mut damaged = b"SQLite format 3\0".to_vec();
    damaged.extend_from_slice(&noise[..4096]);
    let cases: [(&str, Vec<u8>); 4] = [
        ("notes.txt", b"remember the milk\n".to_vec()),
        (
            "traces.jsonl",
            br#"{"run_id":"r1","created_at":"2026-01-01T00:00:00Z"}"#.repeat(100),
        ),
        ("noise.bin", noise),
        ("damaged.db", damaged),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).expect("write");
        let error = assert_refused_unchanged(&path);
        assert!(matches!(error, Error::Corrupt { .. }), "{name}: {error}");
        assert!(
            error.to_string().contains("not a SQLite database"),
            "{name}: {error}"
        );
    }
}

#[test]
fn an_empty_file_becomes_a_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(db(&dir), b"").expect("touch");
    let store = SqliteStore::open(db(&dir)).expect("an empty file is an empty database");
    store.save(&trace("a")).expect("save");
    assert_eq!(
        store.load("a").expect("load"),
        trace_with_same_time(&store, "a")
    );
}

fn trace_with_same_time(store: &SqliteStore, run_id: &str) -> Trace {
    let mut expected = trace(run_id);
    expected.created_at = store.load(run_id).expect("load").created_at;
    expected
}

/// An empty SQLite database is taken over whatever its `user_version` says: it gets
/// every table, not only those of the versions after it.
#[test]
fn an_empty_database_with_a_user_version_becomes_a_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = Connection::open(db(&dir)).expect("raw open");
    conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))
        .expect("set user_version");
    drop(conn);
    let store = SqliteStore::open(db(&dir)).expect("open");
    store.save(&trace("a")).expect("save");
    assert_eq!(store.list(10, 0).expect("list").len(), 1);
}

#[test]
fn an_unreachable_path_is_a_backend_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("file.txt");
    std::fs::write(&file, b"x").expect("write");
    for path in [
        dir.path().join("missing-dir").join("traces.db"),
        file.join("traces.db"),
    ] {
        let error = SqliteStore::open(&path).expect_err("cannot open");
        assert!(
            matches!(
                error,
                Error::Backend {
                    backend: "sqlite",
                    ..
                }
            ),
            "{error}"
        );
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains("directory exists"),
            "says how to fix it: {message}"
        );
    }
}

#[test]
fn a_database_deleted_while_open_fails_writes_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("store");
    std::fs::create_dir(&sub).expect("mkdir");
    let path = sub.join("traces.db");
    let store = SqliteStore::open(&path).expect("open");
    store.save(&trace("a")).expect("save");
    std::fs::remove_dir_all(&sub).expect("remove the database");
    let error = store
        .save(&trace("b"))
        .expect_err("saving into a deleted file");
    assert!(matches!(error, Error::Backend { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("deleted or moved"), "{message}");
}

/// Moved aside and replaced by another database (a restore, a rotation): writes fail
/// rather than go to the file that is no longer at the path, and the new file is
/// left alone.
#[test]
fn a_database_replaced_while_open_fails_writes_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(db(&dir)).expect("open");
    store.save(&trace("a")).expect("save");
    std::fs::rename(db(&dir), dir.path().join("old.db")).expect("move aside");
    SqliteStore::open(db(&dir))
        .expect("a new database at the path")
        .close()
        .expect("close");
    let error = store
        .save(&trace("b"))
        .expect_err("saving into a moved file");
    assert!(matches!(error, Error::Backend { .. }), "{error}");
    assert!(error.to_string().contains("deleted or moved"), "{error}");
    let replacement = SqliteStore::open(db(&dir)).expect("reopen the new file");
    assert_eq!(replacement.count(&TraceFilter::new()).expect("count"), 0);
}

/// The checkpoint thread keeps the log bounded while the store stays open: after a
/// batch that leaves more than 32 MiB in it, the next writes start the log over and
/// trim its file (a second store on the file, saving meanwhile, is held back for the
/// moment that takes, not refused).
#[test]
fn the_write_ahead_log_is_rewound_while_the_store_is_open() {
    const LIMIT: u64 = 32 << 20;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(db(&dir)).expect("open");
    let other = SqliteStore::open(db(&dir)).expect("open a second store");
    let payload = serde_json::Value::from("x".repeat(40_000));
    let big: Vec<Trace> = (0..1000)
        .map(|i| {
            trace(&format!("big-{i}")).with_step(Step::tool_call("t").with_input(payload.clone()))
        })
        .collect();
    store.save_many(&big).expect("save_many");
    let log_size = || std::fs::metadata(wal(&db(&dir))).map_or(0, |m| m.len());
    assert!(log_size() > LIMIT, "the batch did not fill the log");
    // Without the thread, the writer's own automatic checkpoint would rewind the log
    // after some 600 rounds, when it reaches 64 MiB.
    let mut i = 0;
    while log_size() > LIMIT {
        assert!(i < 300, "the log was not rewound: {} bytes", log_size());
        other.save(&trace(&format!("small-{i}"))).expect("save");
        store.save(&trace(&format!("small-{i}"))).expect("save");
        i += 1;
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(other.count(&TraceFilter::new()).expect("count"), 1000 + i);
}

#[test]
fn close_and_drop_fold_the_write_ahead_log_into_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(db(&dir)).expect("open");
    store
        .save_many(
            &(0..200)
                .map(|i| trace(&format!("r{i}")))
                .collect::<Vec<_>>(),
        )
        .expect("save_many");
    assert!(wal(&db(&dir)).exists());
    store.close().expect("close");
    assert!(
        !wal(&db(&dir)).exists(),
        "close leaves a write-ahead log behind"
    );

    let store = SqliteStore::open(db(&dir)).expect("reopen");
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), 200);
    store.delete("r0").expect("delete");
    drop(store);
    assert!(
        !wal(&db(&dir)).exists(),
        "drop leaves a write-ahead log behind"
    );
    let store = SqliteStore::open(db(&dir)).expect("reopen");
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), 199);
}

#[test]
fn sync_durability_opens_and_persists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions::default().with_durability(Durability::Sync);
    let store = SqliteStore::open_with(db(&dir), options.clone()).expect("open");
    assert_eq!(store.options(), &options);
    store.save(&trace("a")).expect("save");
    drop(store);
    let store = SqliteStore::open(db(&dir)).expect("reopen");
    assert_eq!(store.load("a").expect("load").run_id, "a");
}

/// A busy timeout past what SQLite can count is as good as forever, not a panic.
#[test]
fn a_huge_busy_timeout_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions::default().with_busy_timeout(std::time::Duration::MAX);
    let store = SqliteStore::open_with(db(&dir), options.clone()).expect("open");
    store.save(&trace("a")).expect("save");
    assert_eq!(store.options(), &options);
    let memory = SqliteStore::open_with(":memory:", options).expect("open :memory:");
    memory.save(&trace("a")).expect("save");
}

#[test]
fn memory_and_empty_paths() {
    let store = SqliteStore::open(":memory:").expect("open :memory:");
    assert!(store.path().is_none());
    store.save(&trace("a")).expect("save");
    assert_eq!(store.list(10, 0).expect("list").len(), 1);
    assert!(matches!(
        SqliteStore::open(""),
        Err(Error::InvalidInput { .. })
    ));
}

/// Traces hold prompts and user data: a new database, its log and its shared-memory
/// file are the owner's alone by default; an option widens that; an existing file
/// keeps its mode.
#[cfg(unix)]
#[test]
fn new_database_files_are_private_by_default() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db(&dir);
    let store = SqliteStore::open(&path).expect("open");
    store.save(&trace("a")).expect("save");
    let mut shm = path.as_os_str().to_owned();
    shm.push("-shm");
    for file in [path.clone(), wal(&path), PathBuf::from(shm)] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    drop(store);

    let shared = dir.path().join("shared.db");
    let store = SqliteStore::open_with(&shared, SqliteOptions::default().with_file_mode(0o640))
        .expect("open");
    store.save(&trace("a")).expect("save");
    assert_eq!(mode(&shared), 0o640);
    assert_eq!(mode(&wal(&shared)), 0o640);
    drop(store);

    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    SqliteStore::open(&shared)
        .expect("reopen")
        .close()
        .expect("close");
    assert_eq!(mode(&shared), 0o644, "an existing file keeps its mode");
}
