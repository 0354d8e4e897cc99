//! Safe defaults: a token guards every route but /healthz, and a non-loopback
//! address without a token refuses to start.

mod common;

use std::sync::Arc;

use common::{TestServer, error_kind};
use trace_store_core::{Error, Trace, TraceStore};
use trace_store_server::{Server, ServerOptions};

const TOKEN: &str = "correct horse battery staple";

/// Every data route, with a method it takes.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/traces"),
    ("GET", "/api/count"),
    ("GET", "/api/traces/run-1"),
    ("DELETE", "/api/traces/run-1"),
    ("POST", "/api/traces/run-1/scores"),
    ("GET", "/api/stats?group=model"),
    ("GET", "/api/sessions"),
    ("GET", "/api/sessions/s"),
    ("POST", "/api/delete?confirm=true"),
    ("POST", "/api/purge"),
    ("GET", "/api/config"),
    ("GET", "/api/unknown"),
    ("POST", "/v1/traces"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_route_but_healthz_needs_it() {
    let server = TestServer::start_with(ServerOptions::new().with_token(TOKEN)).await;
    server.store.save(&Trace::new("run-1")).unwrap();
    for (method, path) in ROUTES {
        let method: reqwest::Method = method.parse().unwrap();
        for header in [
            None,
            Some("Bearer wrong"),
            Some("Basic Y29ycmVjdA=="),
            Some(TOKEN),
        ] {
            let mut request = server.client.request(method.clone(), server.url(path));
            if let Some(header) = header {
                request = request.header("authorization", header);
            }
            let (status, body) = common::read(request.send().await.unwrap()).await;
            assert_eq!(status, 401, "{method} {path} with {header:?}: {body}");
            assert_eq!(error_kind(&body).0, "unauthorized");
            assert!(!body.to_string().contains(TOKEN));
        }
    }
    assert!(
        server.store.load("run-1").is_ok(),
        "no unauthorised request deleted anything"
    );
    for (method, path) in ROUTES {
        let method: reqwest::Method = method.parse().unwrap();
        let response = server
            .client
            .request(method.clone(), server.url(path))
            .header("authorization", format!("Bearer {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_ne!(response.status(), 401, "{method} {path} with the token");
    }
    let (status, body) = server.get("/healthz").await;
    assert_eq!((status, body["ok"].as_bool()), (200, Some(true)));
    let response = server
        .client
        .get(server.url("/api/traces"))
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the scheme is case-insensitive");
}

fn store() -> Arc<dyn TraceStore> {
    Arc::new(trace_store_sqlite::SqliteStore::in_memory().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_loopback_without_token_refuses_to_start() {
    let everywhere = "0.0.0.0:0".parse().unwrap();
    let error = Server::bind(store(), ServerOptions::new().with_listen(everywhere))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidInput { .. }), "{error}");
    assert!(error.to_string().contains("--token"), "{error}");

    let v6_everywhere = "[::]:0".parse().unwrap();
    assert!(
        Server::bind(store(), ServerOptions::new().with_listen(v6_everywhere))
            .await
            .is_err()
    );
    let empty_token = ServerOptions::new().with_token("");
    assert!(Server::bind(store(), empty_token).await.is_err());

    // With a token, or explicitly without auth, it starts.
    let with_token = ServerOptions::new()
        .with_listen(everywhere)
        .with_token(TOKEN);
    let server = Server::bind(store(), with_token).await.unwrap();
    assert!(server.local_addr().ip().is_unspecified());
    drop(server);
    let insecure = ServerOptions::new()
        .with_listen(everywhere)
        .with_insecure_no_auth(true);
    assert!(Server::bind(store(), insecure).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_never_show_the_token() {
    let options = ServerOptions::new()
        .with_token(TOKEN)
        .with_store_label("redis://:hunter2@127.0.0.1:6379/0");
    let shown = format!("{options:?}");
    assert!(
        !shown.contains(TOKEN) && !shown.contains("hunter2"),
        "{shown}"
    );
}
