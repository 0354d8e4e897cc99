//! Prefixes isolate stores on one server, whatever the prefixes, run_ids and metadata
//! contain; every key of a store carries the store's hash tag.

mod support;

use serde_json::json;
use trace_store_core::{Error, Timestamp, Trace, TraceFilter, TraceStore};
use trace_store_redis::{RedisOptions, RedisStore};

const PREFIXES: [&str; 8] = ["a", "a:", "a}", "{a}", "a*", "*", "a}:t:x", "%61"];

const RUN_IDS: [&str; 10] = [
    "x", "t:x", "{a}", "*", "a:b", "ix", "created", "}:t:", "%2A", "a b é",
];

fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(1_767_225_600_000_000 + micros).expect("valid")
}

fn open(url: &str, prefix: &str) -> RedisStore {
    RedisStore::open_with(url, RedisOptions::default().with_prefix(prefix)).expect("open")
}

fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .expect("raw connection")
}

#[test]
fn adversarial_prefixes_and_run_ids_never_meet() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let unique = support::unique_prefix("ns");
    let stores: Vec<(String, RedisStore)> = PREFIXES
        .iter()
        .map(|p| {
            let prefix = format!("{unique}{p}");
            let store = open(&url, &prefix);
            (prefix, store)
        })
        .collect();
    // Every store saves the same run_ids, with contents that say whose they are.
    for (s, (prefix, store)) in stores.iter().enumerate() {
        let traces: Vec<Trace> = RUN_IDS
            .iter()
            .enumerate()
            .map(|(i, id)| {
                Trace::new(*id)
                    .with_created_at(at(i as i64))
                    .with_name(prefix.as_str())
                    .with_metadata("owner", s)
                    .with_metadata("id", *id)
            })
            .collect();
        store.save_many(&traces).expect("save_many");
    }
    for (s, (prefix, store)) in stores.iter().enumerate() {
        let listed = store.list(100, 0).expect("list");
        assert_eq!(listed.len(), RUN_IDS.len(), "store {prefix:?} sees others");
        assert!(listed.iter().all(|t| t.name.as_deref() == Some(prefix)));
        for id in RUN_IDS {
            assert_eq!(store.load(id).expect("load").metadata["owner"], json!(s));
        }
        assert_eq!(store.count(&TraceFilter::new()).expect("count"), 10);
        assert_eq!(
            store
                .count(&TraceFilter::new().with_metadata("owner", s))
                .expect("count"),
            10
        );
        for other in (0..PREFIXES.len()).filter(|o| *o != s) {
            let filter = TraceFilter::new().with_metadata("owner", other);
            assert!(store.query(&filter).expect("query").is_empty());
        }
        assert_eq!(store.stats(&TraceFilter::new()).expect("stats").count, 10);
    }
    // Deleting and clearing in one store leaves every other store whole.
    let (_, first) = &stores[0];
    for id in RUN_IDS {
        assert!(first.delete(id).expect("delete"));
    }
    let (_, second) = &stores[1];
    assert_eq!(second.clear().expect("clear"), 10);
    for (s, (_, store)) in stores.iter().enumerate().skip(2) {
        assert_eq!(store.list(100, 0).expect("list").len(), 10, "store {s}");
    }
    for (_, store) in &stores[..2] {
        assert!(store.list(100, 0).expect("list").is_empty());
        assert!(matches!(store.load("x"), Err(Error::NotFound { .. })));
    }
    for (_, store) in &stores {
        store.clear().expect("clear");
    }
}

#[test]
fn every_key_carries_the_store_hash_tag() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let prefix = support::unique_prefix("tag}{");
    let store = open(&url, &prefix);
    let trace = Trace::new("}{weird:*")
        .with_created_at(at(1))
        .with_name("n")
        .with_metadata("k{}", json!({"nested": [1, "}"]}));
    store.save(&trace).expect("save");
    let mut con = raw(&url);
    let all: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(&mut con).expect("KEYS");
    let mut tags = std::collections::BTreeSet::new();
    let mut mine = 0;
    for key in &all {
        let key = String::from_utf8_lossy(key);
        // Redis Cluster hashes what lies between the first `{` and the next `}`.
        let Some(open) = key.find('{') else { continue };
        let Some(close) = key[open + 1..].find('}') else {
            continue;
        };
        let tag = &key[open + 1..open + 1 + close];
        if tag.starts_with("tag%7D%7B") {
            assert_eq!(open, 0, "{key}");
            tags.insert(tag.to_owned());
            mine += 1;
        }
    }
    assert_eq!(tags.len(), 1, "{tags:?}");
    // Body, summaries, ix, created, steps, status, name, one metadata index, the
    // searchable texts and the versions.
    assert_eq!(mine, 10);
    store.clear().expect("clear");
}

#[test]
fn metadata_keys_and_values_cannot_collide() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let store = open(&url, &support::unique_prefix("meta"));
    let one = Trace::new("one")
        .with_created_at(at(1))
        .with_metadata("a:b", "c");
    let two = Trace::new("two")
        .with_created_at(at(2))
        .with_metadata("a", "b:c");
    let three = Trace::new("three")
        .with_created_at(at(3))
        .with_metadata("a", json!(["b", "c"]));
    store.save_many(&[one, two, three]).expect("save");
    let ids = |filter: TraceFilter| -> Vec<String> {
        store
            .query(&filter)
            .expect("query")
            .into_iter()
            .map(|s| s.run_id)
            .collect()
    };
    assert_eq!(ids(TraceFilter::new().with_metadata("a:b", "c")), ["one"]);
    assert_eq!(ids(TraceFilter::new().with_metadata("a", "b:c")), ["two"]);
    assert_eq!(
        ids(TraceFilter::new().with_metadata("a", json!(["b", "c"]))),
        ["three"]
    );
    assert!(ids(TraceFilter::new().with_metadata("a", "b")).is_empty());
    store.clear().expect("clear");
}

#[test]
fn upsert_leaves_no_old_index_entry_behind() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let store = open(&url, &support::unique_prefix("upsert"));
    let before = Trace::new("r")
        .with_created_at(at(1))
        .with_name("old-name")
        .with_metadata("v", 1);
    store.save(&before).expect("save");
    let after = Trace::new("r")
        .with_created_at(at(2))
        .with_name("new-name")
        .with_metadata("w", 2);
    store.save(&after).expect("upsert");
    let mut con = raw(&url);
    let base = support::key_base(&store.options().prefix);
    let exists = |con: &mut redis::Connection, suffix: &str| -> bool {
        redis::cmd("EXISTS")
            .arg(format!("{base}{suffix}"))
            .query::<i64>(con)
            .expect("EXISTS")
            == 1
    };
    assert!(!exists(&mut con, "m:v:1"), "old metadata index left behind");
    assert!(
        !exists(&mut con, "nm:old-name"),
        "old name index left behind"
    );
    assert!(exists(&mut con, "m:w:2"));
    assert!(exists(&mut con, "nm:new-name"));
    let created: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{base}created"))
        .arg(0)
        .arg(-1)
        .query(&mut con)
        .expect("ZRANGE");
    assert_eq!(created.len(), 1, "{created:?}");
    assert!(store.delete("r").expect("delete"));
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{base}*"))
        .query(&mut con)
        .expect("KEYS");
    assert!(left.is_empty(), "delete left keys behind: {left:?}");
}

#[test]
fn every_script_call_declares_the_store_slot() {
    // A Redis Cluster client routes a script by the keys it declares, and a cluster
    // node refuses a script that touches keys of a slot it does not own; every call
    // must declare a key in the store's slot. Watched with MONITOR on a private server.
    let Some(server) = support::own_server() else {
        return;
    };
    let store = open(&server.url(), "slot");
    let mut monitor = raw(&server.url());
    let _: () = redis::cmd("MONITOR").query(&mut monitor).expect("MONITOR");
    monitor
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .expect("timeout");
    store
        .save_many(&[Trace::new("a"), Trace::new("b")])
        .expect("save_many");
    store
        .save(&Trace::new("c").with_metadata("k", 1))
        .expect("save");
    store.list(10, 0).expect("list");
    store
        .count(&TraceFilter::new().with_metadata("k", 1))
        .expect("count");
    assert!(store.delete("a").expect("delete"));
    store.clear().expect("clear");
    let _: String = redis::cmd("ECHO")
        .arg("end-of-test")
        .query(&mut raw(&server.url()))
        .expect("ECHO");
    let mut scripts = 0;
    loop {
        let line: String = match monitor.recv_response() {
            Ok(value) => redis::from_redis_value(value).expect("a MONITOR line"),
            Err(error) => panic!("MONITOR: {error}"),
        };
        let line = line.to_ascii_lowercase();
        if line.contains("\"end-of-test\"") {
            break;
        }
        if let Some((_, args)) = line.split_once("\"evalsha\" ") {
            // "<sha>" "<numkeys>" "<key>" ...
            let args: Vec<&str> = args.split("\" \"").collect();
            assert_eq!(args.get(1), Some(&"1"), "{line}");
            assert_eq!(args.get(2), Some(&"{slot}:"), "{line}");
            scripts += 1;
        }
    }
    // save_many, save, list, count, delete and the two batches of clear.
    assert!(scripts >= 7, "saw {scripts} script calls");
}
