//! A private Redis Cluster: three masters (no replicas) on loopback ports.

use std::io;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::redis::{RedisServer, free_port, which};

/// Masters of the cluster; three is the fewest `redis-cli --cluster create` accepts.
const MASTERS: usize = 3;

/// How long a new or healed cluster gets to report `cluster_state:ok` on every node.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Short, so a restarted node is seen failed and then back again within seconds.
const NODE_TIMEOUT_MS: &str = "1000";

/// A three-master Redis Cluster on `127.0.0.1`, each node a [`RedisServer`] (killed,
/// with its directory, on drop or when the process dies) started with
/// `--cluster-enabled yes`; the 16384 slots are split between them by
/// `redis-cli --cluster create`.
///
/// Each node's cluster configuration file lives in a directory of the cluster's own,
/// outside the node's directory, so [`RedisServer::restart`] of a node brings back the
/// same node, owning the same slots (empty: there is no persistence).
///
/// ```no_run
/// let cluster = trace_store_test_support::RedisCluster::start()?;
/// println!("{:?}", cluster.addresses()); // ["127.0.0.1:PORT", ...]
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    /// The nodes' `nodes.conf` files; declared after `nodes` so it is removed last.
    configs: tempfile::TempDir,
    /// Removes `configs` when the process dies without dropping this value (a cluster
    /// in a `static` is never dropped).
    cleanup: Option<(Child, ChildStdin)>,
}

impl RedisCluster {
    /// Starts three nodes, joins them into one cluster and waits until every node says
    /// `cluster_state:ok`. Needs `redis-server` and `redis-cli` (Redis 7.0 or newer for
    /// `--cluster-port`) on `PATH`; a missing one is an [`io::ErrorKind::NotFound`]
    /// error.
    pub fn start() -> io::Result<RedisCluster> {
        if which("redis-cli").is_none() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "redis-cli is not on PATH; install it (Debian/Ubuntu: apt-get install redis-server)",
            ));
        }
        let configs = tempfile::Builder::new()
            .prefix("trace-store-redis-cluster-")
            .tempdir()?;
        let mut nodes = Vec::with_capacity(MASTERS);
        for index in 0..MASTERS {
            nodes.push(RedisServer::start_with_args(node_args(
                configs.path(),
                index,
            )?)?);
        }
        let cleanup = remove_when_orphaned(configs.path())?;
        let cluster = RedisCluster {
            nodes,
            configs,
            cleanup: Some(cleanup),
        };
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        create.args(cluster.addresses());
        create.args(["--cluster-replicas", "0", "--cluster-yes"]);
        let output = create.stdin(Stdio::null()).output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        cluster.wait_until_ok()?;
        Ok(cluster)
    }

    /// `host:port` of every node.
    pub fn addresses(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect()
    }

    /// The nodes, to look at one directly.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// One node, to stop or restart it; call [`RedisCluster::wait_until_ok`] after a
    /// restart to wait for the cluster to heal.
    pub fn node_mut(&mut self, index: usize) -> &mut RedisServer {
        &mut self.nodes[index]
    }

    /// Waits until every node reports `cluster_state:ok` (after a start or a restart
    /// of a node), or fails after 30 s with the last `CLUSTER INFO` seen.
    pub fn wait_until_ok(&self) -> io::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let mut last = String::new();
            let mut all_ok = true;
            for node in &self.nodes {
                let info = cluster_info(node.port())?;
                if !info.contains("cluster_state:ok") {
                    all_ok = false;
                    last = info;
                    break;
                }
            }
            if all_ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "the Redis Cluster did not reach cluster_state:ok; last CLUSTER INFO:\n{last}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
        if let Some((mut shell, lifeline)) = self.cleanup.take() {
            drop(lifeline);
            let _ = shell.wait();
        }
        // The shell removed it; this covers a shell that could not.
        let _ = std::fs::remove_dir_all(self.configs.path());
    }
}

/// A shell that removes `dir` once its standard input closes: when the returned pipe
/// is dropped, or when this process dies, however it dies.
fn remove_when_orphaned(dir: &Path) -> io::Result<(Child, ChildStdin)> {
    let mut shell = Command::new("sh")
        .arg("-c")
        .arg(r#"cat >/dev/null; rm -rf "$CONFIG_DIR""#)
        .env("CONFIG_DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let lifeline = shell
        .stdin
        .take()
        .ok_or_else(|| io::Error::other("no pipe to the clean-up shell"))?;
    Ok((shell, lifeline))
}

/// The cluster arguments of node `index`: its configuration file outside its own
/// directory, and an explicit bus port (the default, port + 10000, may not exist).
fn node_args(configs: &Path, index: usize) -> io::Result<Vec<String>> {
    let config = configs.join(format!("nodes-{index}.conf"));
    Ok(vec![
        "--cluster-enabled".into(),
        "yes".into(),
        "--cluster-config-file".into(),
        config.to_string_lossy().into_owned(),
        "--cluster-port".into(),
        free_port()?.to_string(),
        "--cluster-node-timeout".into(),
        NODE_TIMEOUT_MS.into(),
    ])
}

/// `CLUSTER INFO` of the node on `port`, or the empty string while it does not answer.
fn cluster_info(port: u16) -> io::Result<String> {
    let output = Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "cluster",
            "info",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// One cluster for the whole test process, started on first use; its nodes die with
/// the process.
pub fn shared_redis_cluster() -> io::Result<&'static RedisCluster> {
    static CLUSTER: OnceLock<Result<RedisCluster, (io::ErrorKind, String)>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| RedisCluster::start().map_err(|error| (error.kind(), error.to_string())))
        .as_ref()
        .map_err(|(kind, message)| io::Error::new(*kind, message.clone()))
}
