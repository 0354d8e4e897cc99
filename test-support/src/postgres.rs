//! A private PostgreSQL server: `initdb` + `postgres` in a temporary directory.

use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a starting server gets to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The user PostgreSQL runs as when the tests run as root.
const SYSTEM_USER: &str = "postgres";

/// Runs the server in the background and, once standard input closes (the value is
/// dropped, or the process holding the pipe dies, even by SIGKILL), kills it and removes
/// its directory. `$@` is the command that runs the server in the foreground.
const WATCHDOG: &str = r#"exec 3<&0
"$@" </dev/null 3<&- &
server=$!
{ cat <&3 >/dev/null; kill -9 "$server"; rm -rf "$SERVER_DIR"; } >/dev/null 2>&1 &
exec 3<&-
wait "$server"
"#;

/// A PostgreSQL server on `127.0.0.1` that lives as long as this value.
#[derive(Debug)]
pub struct PostgresServer {
    port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    process: Option<Running>,
    /// `-c name=value` settings after the launcher's own, which they override.
    settings: Vec<(String, String)>,
}

#[derive(Debug)]
struct Running {
    shell: Child,
    lifeline: ChildStdin,
}

impl PostgresServer {
    /// Creates a cluster with `initdb` (trust authentication, superuser `postgres`) and
    /// starts it on a free loopback port. A missing PostgreSQL installation is an
    /// [`io::ErrorKind::NotFound`] error saying how to install it.
    pub fn start() -> io::Result<PostgresServer> {
        PostgresServer::start_with(&[])
    }

    /// [`PostgresServer::start`], or `None` when PostgreSQL cannot be started here and
    /// this is not CI (a developer without it runs `cargo test` by hand and sees why
    /// the test skipped); under `CI=true` a server that does not start fails the test.
    pub fn start_unless_missing() -> Option<PostgresServer> {
        match PostgresServer::start() {
            Ok(server) => Some(server),
            Err(error) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("skipped: {error}");
                None
            }
            Err(error) => panic!("PostgreSQL did not start: {error}"),
        }
    }

    /// [`PostgresServer::start`] with server settings that override the launcher's,
    /// e.g. `[("fsync", "on")]` for a server as durable as a production one (the
    /// launcher runs with `fsync=off`: tests kill clients, never the machine).
    pub fn start_with(settings: &[(&str, &str)]) -> io::Result<PostgresServer> {
        let bin = find_bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("trace-store-postgres-")
            .tempdir()?;
        let mut server = PostgresServer {
            port: 0,
            dir,
            bin,
            process: None,
            settings: settings
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        };
        server.init()?;
        let mut attempts = 0;
        loop {
            server.port = free_port()?;
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(error) if attempts == 4 => return Err(error),
                Err(_) => attempts += 1,
            }
        }
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port the server listens on (kept across [`PostgresServer::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("server.log")).unwrap_or_default()
    }

    /// Kills the server with SIGKILL, as a crash would; its data stays, so
    /// [`PostgresServer::restart`] brings it back with everything committed.
    pub fn stop(&mut self) {
        if let Some(Running {
            mut shell,
            lifeline,
        }) = self.process.take()
        {
            // Kill the server, not the watchdog's clean-up: the data must survive a stop.
            // The postmaster's children too: a backend outlives a killed postmaster
            // until it notices, and would go on answering its open connection. Stopped
            // first, the postmaster cannot fork a replacement in between.
            let _ = Command::new("sh")
                .arg("-c")
                .arg(
                    "for pm in $(pgrep -P \"$1\"); do kill -STOP \"$pm\"; pkill -9 -P \"$pm\"; \
                     kill -9 \"$pm\"; done >/dev/null 2>&1; true",
                )
                .arg("sh")
                .arg(shell.id().to_string())
                .status();
            let _ = shell.wait();
            // The port is free once the kernel has closed every socket of the server.
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            // The watchdog would remove the directory when the pipe closes; keep it by
            // holding nothing open: the watchdog already ended with its shell.
            drop(lifeline);
        }
    }

    /// Starts the server again on the same port with the same data.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.launch() {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() > deadline => return Err(error),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn init(&self) -> io::Result<()> {
        let data = self.data_dir();
        std::fs::create_dir_all(&data)?;
        if is_root() {
            chown_to_system_user(self.dir.path())?;
            chown_to_system_user(&data)?;
        }
        let output = self
            .as_server_user(&self.bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdin(Stdio::null())
            .output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(())
    }

    fn as_server_user(&self, program: &Path) -> Command {
        if is_root() {
            let mut command = Command::new("setpriv");
            command
                .args([
                    "--reuid",
                    SYSTEM_USER,
                    "--regid",
                    SYSTEM_USER,
                    "--init-groups",
                ])
                .arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn launch(&mut self) -> io::Result<()> {
        let data = self.data_dir();
        let postgres = self.bin.join("postgres");
        let port = self.port.to_string();
        let server = self.as_server_user(&postgres);
        let mut argv: Vec<std::ffi::OsString> = vec![server.get_program().to_owned()];
        argv.extend(server.get_args().map(ToOwned::to_owned));
        argv.extend([
            "-D".into(),
            data.clone().into_os_string(),
            "-p".into(),
            port.into(),
            "-c".into(),
            "listen_addresses=127.0.0.1".into(),
            "-c".into(),
            format!("unix_socket_directories={}", data.display()).into(),
            // The tests kill clients, never this server mid-write.
            "-c".into(),
            "fsync=off".into(),
            "-c".into(),
            "max_connections=200".into(),
            "-c".into(),
            format!("log_directory={}", data.display()).into(),
        ]);
        for (name, value) in &self.settings {
            argv.extend(["-c".into(), format!("{name}={value}").into()]);
        }
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("postgres-watchdog")
            .args(&argv)
            .env("SERVER_DIR", self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(self.dir.path().join("server.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()?;
        let lifeline = shell
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("no pipe to the postgres watchdog"))?;
        self.process = Some(Running { shell, lifeline });
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.accepts_connections() {
                return Ok(());
            }
            let exited = match &mut self.process {
                Some(running) => !matches!(running.shell.try_wait(), Ok(None)),
                None => true,
            };
            if exited || Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
                self.stop();
                return Err(io::Error::other(format!(
                    "postgres on port {} did not become ready; its log:\n{log}",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Listening and past start-up (recovery after a kill included): the log says so
    /// once per start, and the launch truncates the log.
    fn accepts_connections(&self) -> bool {
        TcpStream::connect_timeout(
            &(Ipv4Addr::LOCALHOST, self.port).into(),
            Duration::from_millis(200),
        )
        .is_ok()
            && std::fs::read_to_string(self.dir.path().join("server.log"))
                .is_ok_and(|log| log.contains("ready to accept connections"))
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if let Some(Running {
            mut shell,
            lifeline,
        }) = self.process.take()
        {
            drop(lifeline);
            let _ = shell.wait();
        }
    }
}

/// The URL tests should use: `TRACE_STORE_POSTGRES_URL` if set, else a server of this
/// process, started on first use ([`shared_postgres`]).
pub fn postgres_url() -> io::Result<String> {
    if let Ok(url) = std::env::var("TRACE_STORE_POSTGRES_URL") {
        return Ok(url);
    }
    Ok(shared_postgres()?.url())
}

/// One server for the whole test process, started on first use and killed when the
/// process exits (the watchdog sees its pipe close).
pub fn shared_postgres() -> io::Result<&'static PostgresServer> {
    static SERVER: OnceLock<Result<PostgresServer, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| PostgresServer::start().map_err(|error| error.to_string()))
        .as_ref()
        .map_err(|message| io::Error::other(message.clone()))
}

fn find_bin_dir() -> io::Result<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).find(|dir| dir.join("initdb").is_file()));
    if let Some(dir) = from_path {
        return Ok(dir);
    }
    // Debian keeps the server binaries out of PATH, one directory per major version.
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "PostgreSQL server binaries (initdb, postgres) not found; install them (Debian/Ubuntu: apt-get install postgresql postgresql-contrib)",
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn chown_to_system_user(path: &Path) -> io::Result<()> {
    let status = Command::new("chown")
        .arg(format!("{SYSTEM_USER}:{SYSTEM_USER}"))
        .arg(path)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "cannot give {} to the {SYSTEM_USER} user; PostgreSQL refuses to run as root",
            path.display()
        )))
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
