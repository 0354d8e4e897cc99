//! A real server on a random loopback port over a real SQLite file, and a client.

#![allow(dead_code, unreachable_pub)]

pub mod otlp;

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::oneshot;
use trace_store_core::TraceStore;
use trace_store_server::{Server, ServerOptions};
use trace_store_sqlite::SqliteStore;

pub struct TestServer {
    pub base: String,
    pub store: Arc<dyn TraceStore>,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<trace_store_core::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with default options on 127.0.0.1:0 over a fresh SQLite file.
    pub async fn start() -> TestServer {
        TestServer::start_with(ServerOptions::new()).await
    }

    pub async fn start_with(options: ServerOptions) -> TestServer {
        TestServer::start_over(options, |store| store).await
    }

    /// A server over `wrap(the SQLite store)`; `self.store` is the wrapped store.
    pub async fn start_over(
        options: ServerOptions,
        wrap: impl FnOnce(Arc<dyn TraceStore>) -> Arc<dyn TraceStore>,
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("traces.db");
        let store: Arc<dyn TraceStore> = wrap(Arc::new(SqliteStore::open(&path).expect("sqlite")));
        let options = options
            .with_listen("127.0.0.1:0".parse().unwrap())
            .with_store_label(format!("sqlite://{}", path.display()));
        let server = Server::bind(Arc::clone(&store), options)
            .await
            .expect("bind");
        let base = format!("http://{}", server.local_addr());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async {
            let _ = rx.await;
        }));
        TestServer {
            base,
            store,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET, returning status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.expect("GET");
        read(response).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST");
        read(response).await
    }

    pub async fn post_empty(&self, path: &str) -> (u16, Value) {
        let response = self.client.post(self.url(path)).send().await.expect("POST");
        read(response).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .delete(self.url(path))
            .send()
            .await
            .expect("DELETE");
        read(response).await
    }

    /// Stops accepting, waits for requests in flight, and returns run_until's result.
    /// The store stays readable until `self` is dropped.
    pub async fn stop(&mut self) -> trace_store_core::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task
            .take()
            .expect("stopped once")
            .await
            .expect("server task")
    }
}

pub async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        panic!(
            "status {status}: body is not JSON: {:?}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, json)
}

/// Asserts a typed error body of this kind and returns its message.
pub fn error_kind(body: &Value) -> (&str, &str) {
    (
        body["error"]["kind"]
            .as_str()
            .unwrap_or_else(|| panic!("no error kind in {body}")),
        body["error"]["message"].as_str().unwrap_or(""),
    )
}

/// Percent-encodes a path segment (every byte outside the unreserved set).
pub fn segment(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The tree: agent -> (chat -> tool), chat; models and tokens per model.
pub fn check_agent_trace(body: &Value) {
    let steps = body["trace"]["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 4, "{body}");
    let by_name = |name: &str| {
        steps
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no step {name}: {body}"))
    };
    let agent = by_name("invoke_agent researcher");
    let chat = by_name("chat gpt-4o");
    let tool = by_name("execute_tool web_search");
    let mini = by_name("chat gpt-4o-mini");
    assert_eq!(agent["kind"], "agent");
    assert_eq!(chat["kind"], "llm_call");
    assert_eq!(tool["kind"], "tool_call");
    assert_eq!(tool["tool"]["name"], "web_search");
    assert!(agent["parent_id"].is_null(), "{agent}");
    assert_eq!(chat["parent_id"], agent["id"]);
    assert_eq!(mini["parent_id"], agent["id"]);
    assert_eq!(tool["parent_id"], chat["id"]);
    assert_eq!(chat["model"], "gpt-4o");
    assert_eq!(chat["usage"]["input_tokens"], 120);
    let summary = &body["summary"];
    assert_eq!(summary["input_tokens"], 200);
    assert_eq!(summary["output_tokens"], 42);
    assert_eq!(summary["models"]["gpt-4o"]["input_tokens"], 120);
    assert_eq!(summary["models"]["gpt-4o-mini"]["output_tokens"], 12);
    assert_eq!(summary["session_id"], "conv-7");
}
