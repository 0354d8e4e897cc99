//! The Redis backend on a three-master Redis Cluster: the whole conformance suite, and
//! a node restarted mid-run.

mod support;

use std::path::Path;
use std::time::Duration;

use trace_store_core::{Error, Trace, TraceFilter, TraceStore};
use trace_store_redis::{RedisOptions, RedisStore};

fn open(dir: &Path) -> RedisStore {
    support::open_location(dir, support::shared_cluster_url)
}

trace_store_conformance::conformance_tests!(durable, open);

/// The index of the node that serves the store's slot: the one that answers a plain
/// (non-cluster) `EXISTS` of one of its keys instead of redirecting it.
fn node_of(cluster: &trace_store_test_support::RedisCluster, prefix: &str) -> usize {
    let key = format!("{}created", support::key_base(prefix));
    let owners: Vec<usize> = (0..cluster.nodes().len())
        .filter(|&index| {
            let client = redis::Client::open(cluster.nodes()[index].url()).expect("client");
            let mut connection = client.get_connection().expect("connect");
            redis::cmd("EXISTS")
                .arg(&key)
                .query::<u64>(&mut connection)
                .is_ok()
        })
        .collect();
    assert_eq!(owners.len(), 1, "one node serves {key}: {owners:?}");
    owners[0]
}

#[test]
fn a_node_restarted_mid_run_gives_typed_errors_then_the_store_recovers() {
    let Some(mut cluster) = support::own_cluster() else {
        return;
    };
    let prefix = support::unique_prefix("cluster-restart");
    let timeout = Duration::from_millis(500);
    let store = RedisStore::open_with(
        &support::cluster_url(&cluster),
        RedisOptions::default()
            .with_prefix(prefix.clone())
            .with_connect_timeout(timeout)
            .with_read_timeout(timeout),
    )
    .expect("open");
    store.save(&Trace::new("before")).expect("save");
    assert_eq!(store.count(&TraceFilter::new()).expect("count"), 1);
    let owner = node_of(&cluster, &prefix);
    let address = format!("127.0.0.1:{}", cluster.nodes()[owner].port());

    cluster.node_mut(owner).stop();
    for (name, result) in [
        ("save", store.save(&Trace::new("during")).map(drop)),
        ("load", store.load("before").map(drop)),
        ("list", store.list(10, 0).map(drop)),
        ("delete", store.delete("before").map(drop)),
    ] {
        match result {
            Err(error @ Error::Backend { .. }) => {
                assert!(
                    error.is_retryable(),
                    "{name} with the slot's node down is retryable: {error}"
                );
                let Error::Backend { backend, source } = error else {
                    unreachable!()
                };
                assert_eq!(backend, "redis", "{name}");
                let message = source.to_string();
                assert!(message.contains("Redis Cluster"), "{name}: {message}");
            }
            other => panic!("{name} with the slot's node down gave {other:?} (node {address})"),
        }
    }

    cluster.node_mut(owner).restart().expect("restart the node");
    cluster.wait_until_ok().expect("the cluster heals");
    // The node came back empty (no persistence); the same store works again.
    assert!(matches!(store.load("before"), Err(Error::NotFound { .. })));
    store
        .save(&Trace::new("after"))
        .expect("save after the restart");
    let listed: Vec<String> = store
        .list(10, 0)
        .expect("list")
        .into_iter()
        .map(|summary| summary.run_id)
        .collect();
    assert_eq!(listed, ["after"]);
    assert!(store.delete("after").expect("delete"));
}
