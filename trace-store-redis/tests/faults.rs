//! A server that dies, hangs or comes back: typed errors within the timeouts, never a
//! panic or a hang, and the store recovers by itself.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use trace_store_core::{Error, Timestamp, Trace, TraceFilter, TraceStore};
use trace_store_redis::{RedisOptions, RedisStore};

const TIMEOUT: Duration = Duration::from_millis(500);
/// What an operation may take at most with TIMEOUT for connecting and reading: a
/// checkout, a connect, a command and one retry, plus scheduling slack.
const BOUND: Duration = Duration::from_secs(3);

fn options() -> RedisOptions {
    RedisOptions::default()
        .with_prefix(support::unique_prefix("faults"))
        .with_connect_timeout(TIMEOUT)
        .with_read_timeout(TIMEOUT)
        .with_pool_size(4)
}

fn trace(i: i64) -> Trace {
    Trace::new(format!("run-{i:04}"))
        .with_created_at(Timestamp::from_micros(1_767_225_600_000_000 + i).expect("valid"))
        .with_metadata("user", i % 3)
}

type Operation<'a> = Box<dyn Fn() -> Result<(), Error> + 'a>;

/// Runs every operation once; each must fail as `Error::Backend` naming `address`,
/// within BOUND.
fn assert_every_operation_fails(store: &RedisStore, address: &str) {
    let filter = TraceFilter::new().with_metadata("user", 1);
    let operations: [(&str, Operation<'_>); 8] = [
        ("save", Box::new(|| store.save(&trace(9_000)).map(drop))),
        (
            "save_many",
            Box::new(|| store.save_many(&[trace(9_001)]).map(drop)),
        ),
        ("load", Box::new(|| store.load("run-0001").map(drop))),
        ("list", Box::new(|| store.list(10, 0).map(drop))),
        ("query", Box::new(|| store.query(&filter).map(drop))),
        ("count", Box::new(|| store.count(&filter).map(drop))),
        ("stats", Box::new(|| store.stats(&filter).map(drop))),
        ("delete", Box::new(|| store.delete("run-0001").map(drop))),
    ];
    for (name, operation) in operations {
        let started = Instant::now();
        let result = operation();
        let took = started.elapsed();
        match result {
            Err(error @ Error::Backend { .. }) => {
                assert!(
                    error.is_retryable(),
                    "{name} with the server down is retryable: {error}"
                );
                let Error::Backend { backend, source } = error else {
                    unreachable!()
                };
                assert_eq!(backend, "redis");
                let message = source.to_string();
                assert!(message.contains(address), "{name}: {message}");
            }
            other => panic!("{name} with the server down gave {other:?}"),
        }
        assert!(took < BOUND, "{name} took {took:?} with the server down");
    }
}

#[test]
fn server_killed_then_restarted() {
    let Some(mut server) = support::own_server() else {
        return;
    };
    let address = format!("127.0.0.1:{}", server.port());
    let store = RedisStore::open_with(&server.url(), options()).expect("open");
    store
        .save_many(&(0..20).map(trace).collect::<Vec<_>>())
        .expect("save");
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), 20);

    server.stop();
    assert_every_operation_fails(&store, &address);

    server.restart().expect("restart on the same port");
    // The restarted server is empty (no persistence); the store just works again,
    // from the first call on, with its stale pooled connections replaced. A delete
    // (which is never run twice) finds its dead connection by a PING first.
    assert!(!store.delete("run-0002").expect("delete after restart"));
    assert_eq!(
        store
            .count(&TraceFilter::new())
            .expect("count after restart"),
        0
    );
    store.save(&trace(1)).expect("save after restart");
    assert_eq!(store.load("run-0001").expect("load"), trace(1));
    assert_eq!(store.list(10, 0).expect("list").len(), 1);
}

#[test]
fn killed_mid_run_under_concurrent_load() {
    let Some(mut server) = support::own_server() else {
        return;
    };
    let store = Arc::new(RedisStore::open_with(&server.url(), options()).expect("open"));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let store = Arc::clone(&store);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0u64, 0u64);
                let mut i = w * 100_000;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let result = match i % 3 {
                        0 => store.save(&trace(i)).map(drop),
                        1 => store.list(20, 0).map(drop),
                        _ => store
                            .query(&TraceFilter::new().with_metadata("user", 2).with_limit(5))
                            .map(drop),
                    };
                    assert!(started.elapsed() < BOUND, "an operation hung");
                    match result {
                        Ok(()) => ok += 1,
                        Err(Error::Backend { .. }) => failed += 1,
                        Err(other) => panic!("untyped failure: {other:?}"),
                    }
                    i += 1;
                }
                (ok, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    server.stop();
    std::thread::sleep(Duration::from_millis(500));
    server.restart().expect("restart");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut failed) = (0, 0);
    for worker in workers {
        let (o, f) = worker.join().expect("a worker panicked");
        ok += o;
        failed += f;
    }
    assert!(failed > 0, "no operation saw the server down");
    assert!(ok > 0);
    // Work goes on after the restart on every pooled connection.
    for i in 0..8 {
        store.save(&trace(i)).expect("save after restart");
    }
    assert!(store.count(&TraceFilter::new()).expect("count") >= 8);
}

#[test]
fn hung_server_times_out_and_recovers() {
    let Some(server) = support::own_server() else {
        return;
    };
    let address = format!("127.0.0.1:{}", server.port());
    let store = RedisStore::open_with(&server.url(), options()).expect("open");
    store.save(&trace(1)).expect("save");
    let mut con = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("raw connection");
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(&mut con)
        .expect("INFO");
    let pid = info
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .expect("process_id")
        .trim()
        .to_owned();
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    };
    signal("-STOP");
    // First on the pooled connection, then (that one being dropped) on a new one,
    // whose handshake meets the stopped server.
    let results: Vec<_> = (0..2)
        .map(|_| {
            let started = Instant::now();
            (store.load("run-0001"), started.elapsed())
        })
        .collect();
    signal("-CONT");
    for ((result, took), timeout) in results.into_iter().zip(["read_timeout", "connect_timeout"]) {
        match result {
            Err(error @ Error::Backend { .. }) => {
                assert!(error.is_retryable(), "a timeout is retryable: {error}");
                let message = error.to_string();
                assert!(message.contains(&address), "{message}");
                assert!(message.contains(timeout), "{message}");
            }
            other => panic!("a stopped server gave {other:?}"),
        }
        assert!(took >= TIMEOUT && took < BOUND, "took {took:?}");
    }
    // The timed-out connection is never reused (its late answer would be read as the
    // reply to the next command).
    assert_eq!(store.load("run-0001").expect("load after CONT"), trace(1));
    assert!(store.list(5, 0).expect("list").len() == 1);
}

#[test]
fn open_fails_fast_and_names_the_address() {
    // A port nobody listens on: bind one, then release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let started = Instant::now();
    let error = RedisStore::open_with(&format!("redis://127.0.0.1:{port}/0"), options())
        .expect_err("nothing listens there");
    assert!(started.elapsed() < BOUND);
    let message = error.to_string();
    assert!(matches!(error, Error::Backend { .. }), "{error:?}");
    assert!(
        error.is_retryable(),
        "a refused connection is retryable: {error}"
    );
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.contains("is redis-server running"), "{message}");
}

#[test]
fn passwords_stay_out_of_debug_and_errors() {
    let Some(server) = support::own_server() else {
        return;
    };
    let mut con = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("raw connection");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("hunter2-secret")
        .query(&mut con)
        .expect("CONFIG SET");
    let url = format!(
        "redis://:hunter2-secret@127.0.0.1:{}/0?prefix=pw",
        server.port()
    );
    let store = RedisStore::open(&url).expect("open with the password");
    store.save(&trace(1)).expect("save");
    let shown = format!("{store:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("127.0.0.1"), "{shown}");
    let wrong = url.replace("hunter2-secret", "wrong-guess");
    let error = RedisStore::open(&wrong).expect_err("wrong password");
    assert!(matches!(error, Error::Backend { .. }), "{error:?}");
    assert!(
        !error.is_retryable(),
        "a wrong password fails the same way every time: {error}"
    );
    let message = format!("{error} {error:?}");
    assert!(!message.contains("wrong-guess"), "{message}");
    let error = RedisStore::open(&format!("{url}&colour=blue")).expect_err("bad parameter");
    assert!(matches!(error, Error::InvalidInput { .. }));
    assert!(!error.to_string().contains("hunter2"), "{error}");
}
