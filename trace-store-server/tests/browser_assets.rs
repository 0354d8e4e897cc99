//! The viewer's HTTP side: every page route serves the shell, assets carry their
//! content types, a strict CSP and cache headers, and nothing is fetched from elsewhere.

mod support_browser;

use std::sync::Arc;

use support_browser::serve;
use trace_store_sqlite::SqliteStore;

const PAGES: [&str; 6] = [
    "/",
    "/stats",
    "/sessions",
    "/trace/a%2Fb%20c",
    "/session/s-1",
    "/trace/x?text=a",
];

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("{} has no {name} header", response.url()))
        .to_str()
        .expect("ASCII header")
}

/// The `/assets/<version>/...` URLs the shell links to.
fn linked_assets(shell: &str) -> Vec<String> {
    shell
        .split('"')
        .filter(|part| part.starts_with("/assets/"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_and_assets_are_served_with_strict_headers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("assets.db")).expect("open sqlite");
    let base = format!("http://{}", serve(Arc::new(store)).await);

    let mut shell = String::new();
    for page in PAGES {
        let response = get(&format!("{base}{page}")).await;
        assert_eq!(response.status(), 200, "{page}");
        assert_eq!(
            header(&response, "content-type"),
            "text/html; charset=utf-8"
        );
        assert_eq!(header(&response, "cache-control"), "no-cache");
        let csp = header(&response, "content-security-policy");
        assert!(
            csp.contains("default-src 'self'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        shell = response.text().await.expect("shell body");
    }
    assert!(
        !shell.contains("http://") && !shell.contains("https://"),
        "the shell loads nothing from elsewhere"
    );
    // Revalidating an unchanged shell is a 304 without a body.
    let first = get(&format!("{base}/")).await;
    let etag = header(&first, "etag").to_owned();
    let again = reqwest::Client::new()
        .get(format!("{base}/"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("revalidate");
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.expect("empty body").is_empty());

    let assets = linked_assets(&shell);
    assert!(assets.len() >= 3, "{assets:?}");
    let app = assets
        .iter()
        .find(|a| a.ends_with("/js/app.js"))
        .expect("app.js linked");
    let version_dir = app.trim_end_matches("js/app.js");
    let mut checked = 0;
    for (path, content_type) in [
        ("js/app.js", "text/javascript; charset=utf-8"),
        ("js/detail.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let response = get(&format!("{base}{version_dir}{path}")).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "content-type"), content_type, "{path}");
        assert_eq!(
            header(&response, "cache-control"),
            "public, max-age=31536000, immutable",
            "{path}"
        );
        let body = response.text().await.expect("asset body");
        assert!(
            !body.contains("https://") || path == "favicon.svg",
            "{path} references another origin"
        );
        checked += 1;
    }
    assert_eq!(checked, 4);

    // A stale version still works but is not cached forever; unknown files are 404.
    let stale = get(&format!("{base}/assets/0000000000000000/js/app.js")).await;
    assert_eq!(stale.status(), 200);
    assert_eq!(header(&stale, "cache-control"), "no-cache");
    for missing in [
        "js/nope.js",
        "../Cargo.toml",
        "..%2FCargo.toml",
        "%2e%2e/src/lib.rs",
    ] {
        let response = get(&format!("{base}{version_dir}{missing}")).await;
        assert_eq!(response.status(), 404, "{missing}");
    }
}
