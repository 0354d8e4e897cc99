//! A private `redis-server` for tests and benchmarks.
//!
//! [`RedisServer::start`] runs the `redis-server` found on `PATH` on a free loopback
//! port, with its files in a temporary directory, no persistence (`--save ""`,
//! `--appendonly no`), and its log in that directory; it returns once the server
//! answers `PING`. Dropping the value kills the server and removes the directory. The
//! server also dies when the process that started it dies, however it dies (even by
//! SIGKILL), and takes its directory with it, so a test binary never leaves servers or
//! files behind, even from a server kept in a `static`.
//!
//! ```no_run
//! let server = trace_store_test_support::RedisServer::start()?;
//! println!("{}", server.url()); // redis://127.0.0.1:PORT/0
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a starting server gets to answer `PING`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs redis-server in the background and, as soon as standard input closes (when
/// [`RedisServer`] is stopped or dropped, or when the process holding the other end of
/// the pipe dies, even by SIGKILL), kills it and removes its directory. The shell exits
/// when the server does, so its exit means the server has gone.
const WATCHDOG: &str = r#"exec 3<&0
redis-server "$@" </dev/null 3<&- &
server=$!
{ cat <&3 >/dev/null; kill -9 "$server"; rm -rf "$SERVER_DIR"; } >/dev/null 2>&1 &
exec 3<&-
wait "$server"
"#;

/// A `redis-server` process on `127.0.0.1` that lives as long as this value.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    /// Arguments beyond the standard ones (a cluster node's, for instance).
    extra_args: Vec<String>,
    process: Option<Running>,
}

#[derive(Debug)]
struct Running {
    shell: Child,
    lifeline: ChildStdin,
}

impl RedisServer {
    /// Starts `redis-server` from `PATH` on a free loopback port and waits until it
    /// answers. A missing `redis-server` is an [`io::ErrorKind::NotFound`] error saying
    /// how to install it.
    pub fn start() -> io::Result<RedisServer> {
        Self::start_with_args(Vec::new())
    }

    /// [`RedisServer::start`] with more `redis-server` arguments; each restart passes
    /// them again.
    pub(crate) fn start_with_args(extra_args: Vec<String>) -> io::Result<RedisServer> {
        let mut server = RedisServer {
            port: 0,
            dir: tempfile::Builder::new()
                .prefix("trace-store-redis-")
                .tempdir()?,
            extra_args,
            process: None,
        };
        // Another process may take the port between choosing and binding it; try again.
        let mut attempts = 0;
        loop {
            server.port = free_port()?;
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(error) if error.kind() == io::ErrorKind::NotFound || attempts == 4 => {
                    return Err(error);
                }
                Err(_) => attempts += 1,
            }
        }
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The port the server listens on (kept across [`RedisServer::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the server's files and its log (removed when the server
    /// stops).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far (empty if there is none yet).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// True while the server process runs.
    pub fn is_running(&mut self) -> bool {
        match &mut self.process {
            Some(running) => matches!(running.shell.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the server with SIGKILL and waits until it has gone, as a crash would.
    /// Its data is lost (there is no persistence).
    pub fn stop(&mut self) {
        if let Some(Running {
            mut shell,
            lifeline,
        }) = self.process.take()
        {
            drop(lifeline);
            let _ = shell.wait();
            // The watchdog removes the directory right after the kill; wait for that,
            // so a restart does not create it again only to see it removed.
            let deadline = Instant::now() + Duration::from_secs(2);
            while self.dir.path().exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Starts a new, empty server on the same port (stopping the current one first).
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        // The port was just released; a few attempts cover a slow release.
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.launch() {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() > deadline => return Err(error),
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(error),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn launch(&mut self) -> io::Result<()> {
        // A stop removed the directory; a restart needs it again.
        std::fs::create_dir_all(self.dir.path())?;
        let port = self.port.to_string();
        let dir = self.dir.path().to_string_lossy().into_owned();
        let log = self.log_path().to_string_lossy().into_owned();
        let args = [
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir,
            "--logfile",
            &log,
            "--daemonize",
            "no",
        ];
        if which("redis-server").is_none() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "redis-server is not on PATH; install it (Debian/Ubuntu: apt-get install redis-server)",
            ));
        }
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("redis-server")
            .args(args)
            .args(&self.extra_args)
            .env("SERVER_DIR", self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let lifeline = shell
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("no pipe to the redis-server watchdog"))?;
        self.process = Some(Running { shell, lifeline });
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if ping(self.port) {
                return Ok(());
            }
            if !self.is_running() || Instant::now() > deadline {
                let log = self.log();
                self.stop();
                return Err(io::Error::other(format!(
                    "redis-server on port {} did not become ready; its log:\n{log}",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The URL tests should use: `TRACE_STORE_REDIS_URL` if set, else a server of this
/// process, started on first use ([`shared_redis`]).
pub fn redis_url() -> io::Result<String> {
    if let Ok(url) = std::env::var(REDIS_URL_ENV) {
        return Ok(url);
    }
    Ok(shared_redis()?.url())
}

/// The environment variable that names an existing server for [`redis_url`].
pub const REDIS_URL_ENV: &str = "TRACE_STORE_REDIS_URL";

/// One server for the whole test process, started on first use and killed when the
/// process exits (the watchdog sees its pipe close).
pub fn shared_redis() -> io::Result<&'static RedisServer> {
    static SERVER: OnceLock<Result<RedisServer, (io::ErrorKind, String)>> = OnceLock::new();
    SERVER
        .get_or_init(|| RedisServer::start().map_err(|error| (error.kind(), error.to_string())))
        .as_ref()
        .map_err(|(kind, message)| io::Error::new(*kind, message.clone()))
}

pub(crate) fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

pub(crate) fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// True if a server on `port` answers `PING` with `+PONG`.
pub(crate) fn ping(port: u16) -> bool {
    let attempt = || -> io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(
            &(Ipv4Addr::LOCALHOST, port).into(),
            Duration::from_millis(200),
        )?;
        stream.set_read_timeout(Some(Duration::from_millis(500)))?;
        stream.write_all(b"PING\r\n")?;
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply)?;
        Ok(&reply == b"+PONG\r\n")
    };
    attempt().unwrap_or(false)
}
