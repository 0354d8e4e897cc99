//! The test-server helper itself: a server dies, and its directory goes, with the
//! process that started it, even when that process is killed with SIGKILL.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use trace_store_test_support::RedisServer;

const CHILD_ENV: &str = "TRACE_STORE_REDIS_SERVER_CHILD";
const MARK: &str = "SERVER ";

fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// A server of the test's own, or `None` (after saying why) when redis-server is
/// missing outside CI; under `CI=true` a missing server fails the test.
fn own_server() -> Option<RedisServer> {
    match RedisServer::start() {
        Ok(server) => Some(server),
        Err(why) if std::env::var("CI").as_deref() != Ok("true") => {
            let _ = writeln!(std::io::stderr(), "SKIPPED (no redis-server): {why}");
            None
        }
        Err(why) => panic!("a Redis server is required under CI=true: {why}"),
    }
}

#[test]
fn server_dies_with_the_process_that_started_it() {
    if std::env::var_os(CHILD_ENV).is_some() {
        // The child: start a server, say where it is, and wait to be killed.
        let server = RedisServer::start().expect("start");
        println!("{MARK}{} {}", server.port(), server.dir().display());
        std::io::stdout().flush().expect("flush");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    if own_server().is_none() {
        return;
    }
    let mut child = Command::new(std::env::current_exe().expect("current_exe"))
        .args([
            "server_dies_with_the_process_that_started_it",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    // The harness prints "test NAME ... " without a newline first; look inside lines.
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.split_once(MARK).map(|(_, rest)| rest.to_owned()))
        .expect("the child reports its server");
    let (port, dir) = line.split_once(' ').expect("port and dir");
    let (port, dir): (u16, PathBuf) = (port.parse().expect("port"), dir.into());
    assert!(answers(port), "the child's server does not answer");
    assert!(dir.exists());

    child.kill().expect("SIGKILL the child");
    child.wait().expect("wait");
    let deadline = Instant::now() + Duration::from_secs(5);
    while (answers(port) || dir.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!answers(port), "the server outlived the killed process");
    assert!(
        !dir.exists(),
        "the server's directory outlived the killed process"
    );
}

#[test]
fn stop_and_restart_keep_the_port() {
    let Some(mut server) = own_server() else {
        return;
    };
    let port = server.port();
    assert_eq!(server.url(), format!("redis://127.0.0.1:{port}/0"));
    assert!(answers(port));
    server.stop();
    assert!(!server.is_running());
    assert!(!answers(port));
    server.restart().expect("restart");
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    assert!(answers(port));
    assert!(
        server.log().contains("Ready to accept connections"),
        "{}",
        server.log()
    );
}

#[test]
fn cluster_of_three_masters_serves_every_slot_and_heals_after_a_restart() {
    let mut cluster = match trace_store_test_support::RedisCluster::start() {
        Ok(cluster) => cluster,
        Err(why) if std::env::var("CI").as_deref() != Ok("true") => {
            let _ = writeln!(std::io::stderr(), "SKIPPED (no redis-server): {why}");
            return;
        }
        Err(why) => panic!("a Redis Cluster is required under CI=true: {why}"),
    };
    assert_eq!(cluster.addresses().len(), 3);
    let cluster_info = |port: u16| {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.write_all(b"CLUSTER INFO\r\n").expect("send");
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut reply = vec![0u8; 4096];
        let n = stream.read(&mut reply).expect("read");
        String::from_utf8_lossy(&reply[..n]).into_owned()
    };
    for node in cluster.nodes() {
        let info = cluster_info(node.port());
        assert!(info.contains("cluster_state:ok"), "{info}");
        assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
        assert!(info.contains("cluster_known_nodes:3"), "{info}");
    }
    let port = cluster.nodes()[1].port();
    cluster.node_mut(1).restart().expect("restart a node");
    assert_eq!(cluster.nodes()[1].port(), port);
    cluster.wait_until_ok().expect("the cluster heals");
    let info = cluster_info(port);
    assert!(info.contains("cluster_known_nodes:3"), "{info}");
    assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
}
