//! A command that ran on the server but whose reply was lost (the connection broke
//! at just that moment) must not be run a second time in a way that changes the
//! answer: `delete` of a trace that existed never reports `false`.

mod support;

use std::time::Duration;

use support::proxy::Proxy;
use trace_store_core::{Error, Trace, TraceFilter, TraceStore};
use trace_store_redis::{RedisOptions, RedisStore};

fn store(proxy: &Proxy) -> RedisStore {
    RedisStore::open_with(
        &proxy.url(),
        RedisOptions::default()
            .with_prefix(support::unique_prefix("retries"))
            .with_connect_timeout(Duration::from_secs(1))
            .with_read_timeout(Duration::from_secs(1))
            .with_pool_size(1),
    )
    .expect("open through the proxy")
}

fn proxy() -> Option<Proxy> {
    Some(Proxy::start(&support::shared_url()?))
}

#[test]
fn a_delete_whose_reply_is_lost_never_reports_false() {
    let Some(proxy) = proxy() else { return };
    let store = store(&proxy);
    store.save(&Trace::new("a")).expect("save");
    // The server must know the script already, or the lost reply is only NOSCRIPT.
    assert!(!store.delete("missing").expect("delete"));
    proxy.lose_reply_to(b"EVALSHA");
    let result = store.delete("a");
    assert!(proxy.fired(), "the delete never went through the proxy");
    match result {
        // Either the store knew it ran (true), or it says it cannot tell.
        Ok(true) | Err(Error::Backend { .. }) => {}
        other => panic!("a delete of an existing trace gave {other:?}"),
    }
    // It did run on the server.
    assert!(matches!(store.load("a"), Err(Error::NotFound { .. })));
    assert!(!store.delete("a").expect("delete again"));
}

#[test]
fn a_clear_whose_reply_is_lost_never_undercounts() {
    let Some(proxy) = proxy() else { return };
    let store = store(&proxy);
    let traces: Vec<Trace> = (0..5).map(|i| Trace::new(format!("r{i}"))).collect();
    let other = RedisStore::open_with(
        &proxy.url(),
        RedisOptions::default().with_prefix(support::unique_prefix("retries")),
    )
    .expect("open");
    assert_eq!(other.clear().expect("load the script"), 0);
    store.save_many(&traces).expect("save_many");
    proxy.lose_reply_to(b"EVALSHA");
    let result = store.clear();
    assert!(proxy.fired());
    match result {
        Ok(5) | Err(Error::Backend { .. }) => {}
        other => panic!("clear of five traces gave {other:?}"),
    }
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), 0);
}

#[test]
fn a_save_whose_reply_is_lost_is_safely_repeated() {
    let Some(proxy) = proxy() else { return };
    let store = store(&proxy);
    store.save(&Trace::new("warm-up")).expect("save");
    let trace = Trace::new("b").with_metadata("v", 2);
    proxy.lose_reply_to(b"EVALSHA");
    // Saving twice leaves what saving once does, so the store repeats it on a new
    // connection and succeeds.
    assert_eq!(store.save(&trace).expect("save"), "b");
    assert!(proxy.fired());
    assert_eq!(store.load("b").expect("load"), trace);
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), 2);
}
