//! What the browser tests share: a real headless Chromium driven through chromedriver
//! (started here on a free loopback port), the server on a loopback port, and waits.

#![allow(dead_code, unreachable_pub)]

pub mod fixtures;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::error::{CmdError, ErrorStatus};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use trace_store_core::TraceStore;
use trace_store_server::{Server, ServerOptions};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a wait for the page may take before the test fails (a generous bound for a
/// loaded 2-core CI machine, not a speed check).
pub const WAIT: Duration = Duration::from_secs(20);

/// Chromium and chromedriver, or `None` (and a message) when they are missing outside
/// CI. Under `CI=true` a missing browser fails the test.
pub fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium =
        std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from(CHROMIUM), PathBuf::from);
    let driver =
        std::env::var_os("CHROMEDRIVER").map_or_else(|| PathBuf::from(CHROMEDRIVER), PathBuf::from);
    if chromium.exists() && driver.exists() {
        return Some((chromium, driver));
    }
    let message = format!(
        "browser tests need {} and {} (apt-get install -y chromium chromium-driver)",
        chromium.display(),
        driver.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{message}");
    }
    eprintln!("skipping: {message}");
    None
}

/// The server over `store` on a free loopback port, run by this test's runtime.
pub async fn serve(store: Arc<dyn TraceStore>) -> SocketAddr {
    let options = ServerOptions::new()
        .with_listen("127.0.0.1:0".parse().expect("loopback address"))
        .with_store_label("sqlite://viewer-test.db");
    let server = Server::bind(store, options).await.expect("bind the server");
    let addr = server.local_addr();
    tokio::spawn(server.run_until(std::future::pending()));
    addr
}

/// A headless Chromium session; chromedriver is killed on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium window of `width` x `height`.
    pub async fn start(chromium: &Path, driver: &Path, width: u32, height: u32) -> Browser {
        let port = free_port();
        let mut child = Command::new(driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("chromedriver did not listen on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({
            "goog:chromeOptions": {"binary": chromium.display().to_string(), "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("start a Chromium session");
        Browser {
            client,
            driver: child,
            _profile: profile,
        }
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `condition` (a JS expression) is truthy; panics with `what` after WAIT.
    pub async fn wait_for(&self, what: &str, condition: &str) {
        let script = format!("return Boolean({condition});");
        let deadline = Instant::now() + WAIT;
        loop {
            if self.js(&script).await == Value::Bool(true) {
                return;
            }
            if Instant::now() > deadline {
                let errors = self.console_errors().await;
                panic!("timed out waiting for {what} ({condition}); console errors: {errors:?}");
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }

    /// Text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .text()
            .await
            .expect("element text")
    }

    /// Clicks the first element matching `css` as a user would. The viewer re-renders
    /// lists as answers arrive, so an element found just before a re-render is stale:
    /// then it is found again, as a user would look again.
    pub async fn click(&self, css: &str) {
        for attempt in 1.. {
            match self.try_click(css).await {
                Ok(()) => return,
                Err(e) if attempt < 5 && is_stale(&e) => {
                    tokio::time::sleep(Duration::from_millis(40)).await;
                }
                Err(e) => panic!("click {css}: {e}"),
            }
        }
    }

    async fn try_click(&self, css: &str) -> Result<(), CmdError> {
        let element = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"));
        // Centred, so the sticky top bar never covers what is clicked.
        let arg = serde_json::to_value(&element).expect("element reference");
        self.client
            .execute("arguments[0].scrollIntoView({block: 'center'})", vec![arg])
            .await?;
        element.click().await
    }

    /// Types `keys` into the element matching `css`.
    pub async fn type_into(&self, css: &str, keys: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .send_keys(keys)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Opens `url` and waits until the viewer has started.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
        self.wait_for(
            "the viewer to start",
            "document.documentElement.dataset.ready === 'true'",
        )
        .await;
    }

    /// Browser console messages at level SEVERE (errors, CSP violations, failed loads).
    pub async fn console_errors(&self) -> Vec<String> {
        let log = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("read the browser log");
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Fails the test if the console recorded any error since the last call.
    pub async fn assert_no_console_errors(&self, when: &str) {
        let errors = self.console_errors().await;
        assert!(errors.is_empty(), "console errors {when}: {errors:#?}");
    }

    /// Saves a PNG screenshot as target/screenshots/<name>.png.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
        std::fs::create_dir_all(&dir).expect("create target/screenshots");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }
}

impl Browser {
    /// Makes the page see `prefers-color-scheme: dark` (through the DevTools protocol).
    pub async fn prefer_dark(&self) {
        self.client
            .issue_cmd(Devtools {
                cmd: "Emulation.setEmulatedMedia",
                params: json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
            })
            .await
            .expect("emulate a dark color scheme");
    }
}

/// chromedriver's endpoint for DevTools protocol commands.
#[derive(Debug)]
struct Devtools {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Devtools {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"cmd": self.cmd, "params": self.params});
        (http::Method::POST, Some(body.to_string()))
    }
}

/// chromedriver's log endpoint, which the W3C protocol (and so fantoccini) lacks.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

/// The element was replaced in the page after it was found.
fn is_stale(error: &CmdError) -> bool {
    matches!(error, CmdError::Standard(w) if w.error == ErrorStatus::StaleElementReference)
}
