//! With a TTL, expired traces never show in load, list, query, count or stats, and
//! their index entries go away.

mod support;

use std::time::Duration;

use trace_store_core::{Error, Timestamp, Trace, TraceFilter, TraceStore};
use trace_store_redis::{RedisOptions, RedisStore};

const TTL: Duration = Duration::from_millis(400);

/// Long enough that 2,500 traces are all saved before the first expire, on a debug
/// build sharing two cores with the other test binaries.
const MASS_TTL: Duration = Duration::from_secs(2);

fn trace(id: &str, micros: i64, user: &str) -> Trace {
    Trace::new(id)
        .with_created_at(Timestamp::from_micros(1_767_225_600_000_000 + micros).expect("valid"))
        .with_metadata("user", user)
}

fn ids(store: &RedisStore, filter: &TraceFilter) -> Vec<String> {
    store
        .query(filter)
        .expect("query")
        .into_iter()
        .map(|s| s.run_id)
        .collect()
}

/// Members of a store's sorted set, read around the store.
fn zcard(url: &str, store: &RedisStore, suffix: &str) -> i64 {
    let mut con = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("raw connection");
    let base = support::key_base(&store.options().prefix);
    redis::cmd("ZCARD")
        .arg(format!("{base}{suffix}"))
        .query(&mut con)
        .expect("ZCARD")
}

#[test]
fn expired_traces_disappear_everywhere() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let prefix = support::unique_prefix("ttl");
    let expiring = RedisStore::open_with(
        &url,
        RedisOptions::default().with_prefix(&prefix).with_ttl(TTL),
    )
    .expect("open");
    let lasting =
        RedisStore::open_with(&url, RedisOptions::default().with_prefix(&prefix)).expect("open");
    expiring
        .save_many(&[trace("a", 3, "u"), trace("b", 2, "u")])
        .expect("save");
    lasting.save(&trace("c", 1, "u")).expect("save");
    // "d" first expires, then is saved again through the store without TTL: it lasts.
    expiring.save(&trace("d", 4, "v")).expect("save");
    lasting.save(&trace("d", 4, "v")).expect("re-save");
    let by_user = TraceFilter::new().with_metadata("user", "u");
    assert_eq!(ids(&lasting, &by_user), ["a", "b", "c"]);

    std::thread::sleep(TTL + Duration::from_millis(200));
    for store in [&expiring, &lasting] {
        assert_eq!(ids(store, &by_user), ["c"]);
        let listed: Vec<_> = store.list(10, 0).expect("list");
        assert_eq!(
            listed.iter().map(|s| s.run_id.as_str()).collect::<Vec<_>>(),
            ["d", "c"]
        );
        assert_eq!(store.count(&TraceFilter::new()).expect("count"), 2);
        assert_eq!(store.count(&by_user).expect("count"), 1);
        assert_eq!(store.stats(&TraceFilter::new()).expect("stats").count, 2);
        assert!(matches!(store.load("a"), Err(Error::NotFound { .. })));
        assert!(!store.delete("b").expect("delete"));
    }
    // The expired traces' index entries are gone, not just hidden.
    assert_eq!(zcard(&url, &lasting, "created"), 2);
    assert_eq!(zcard(&url, &lasting, "m:user:%22u%22"), 1);
    assert_eq!(zcard(&url, &lasting, "exp"), 0);
    lasting.clear().expect("clear");
}

#[test]
fn a_mass_expiry_is_purged_in_bounded_steps() {
    let Some(url) = support::shared_url() else {
        return;
    };
    let prefix = support::unique_prefix("ttl-mass");
    let store = RedisStore::open_with(
        &url,
        RedisOptions::default()
            .with_prefix(&prefix)
            .with_ttl(MASS_TTL),
    )
    .expect("open");
    // More than one purge batch (1000), so reads must also skip what is not purged yet.
    let batch: Vec<Trace> = (0..2_500)
        .map(|i| {
            trace(
                &format!("r{i:05}"),
                i,
                if i % 2 == 0 { "even" } else { "odd" },
            )
        })
        .collect();
    store.save_many(&batch).expect("save_many");
    let lasting =
        RedisStore::open_with(&url, RedisOptions::default().with_prefix(&prefix)).expect("open");
    lasting.save(&trace("keep", 0, "even")).expect("save");
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), 2_501);
    std::thread::sleep(MASS_TTL + Duration::from_millis(200));
    // Each call purges one batch; the first ones must skip the rest by their expiry.
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), 1);
    let even = TraceFilter::new().with_metadata("user", "even");
    assert_eq!(store.count(&even).expect("count"), 1);
    assert_eq!(ids(&store, &even), ["keep"]);
    assert_eq!(
        store
            .count(&TraceFilter::new().with_min_steps(0))
            .expect("count"),
        1
    );
    assert_eq!(store.list(5, 0).expect("list").len(), 1);
    for _ in 0..3 {
        store.count(&TraceFilter::new()).expect("count");
    }
    assert_eq!(zcard(&url, &store, "created"), 1);
    assert_eq!(zcard(&url, &store, "exp"), 0);
    store.clear().expect("clear");
}
