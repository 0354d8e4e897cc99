//! The web viewer: static assets embedded in the binary, served at `/`.
//!
//! The page is hand-written HTML, CSS and ES modules compiled into the binary with
//! `include_bytes!`, so `trace-store serve` needs no npm, no CDN and no network. Every
//! page route (`/`, `/trace/...`, `/session/...`, `/sessions`, `/stats`) answers with the
//! same shell; the page routes itself in the browser. Assets live under
//! `/assets/<version>/`, where the version is a hash of every asset, so they can be cached
//! forever while the shell is revalidated on each load.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Scripts and styles only from this origin, no inline code, no plugins, no framing:
/// even a rendering bug cannot run injected markup.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../assets/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/app.js", JS),
    asset!("js/api.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/format.js", JS),
    asset!("js/list.js", JS),
    asset!("js/detail.js", JS),
    asset!("js/tree.js", JS),
    asset!("js/panel.js", JS),
    asset!("js/messages.js", JS),
    asset!("js/sessions.js", JS),
    asset!("js/stats.js", JS),
    asset!("js/dialogs.js", JS),
    asset!("js/filters.js", JS),
];

const INDEX_TEMPLATE: &str = include_str!("../assets/index.html");

/// The asset version (a hash of every asset) and the shell with it filled in.
static VERSIONED: LazyLock<(String, String)> = LazyLock::new(|| {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for asset in ASSETS {
        for byte in asset.name.bytes().chain(asset.body.iter().copied()) {
            // FNV-1a: a change to any asset changes the URL of every asset.
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    let version = format!("{hash:016x}");
    let index = INDEX_TEMPLATE.replace("{{version}}", &version);
    (version, index)
});

/// Routes of the viewer's pages and assets.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    axum::Router::new()
        .route("/", get(shell))
        .route("/stats", get(shell))
        .route("/sessions", get(shell))
        .route("/trace/{*run_id}", get(shell))
        .route("/session/{*session_id}", get(shell))
        .route("/assets/{version}/{*path}", get(asset))
        .route("/favicon.ico", get(favicon))
}

fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

async fn shell(request: HeaderMap) -> Response {
    let (version, index) = &*VERSIONED;
    let etag = format!("\"{version}\"");
    // Revalidation of an unchanged shell costs a 304 and no body.
    let unchanged = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        index.clone().into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The shell names the current asset version, so it must be revalidated every time.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    security_headers(headers);
    response
}

async fn asset(Path((version, path)): Path<(String, String)>) -> Response {
    let current = &VERSIONED.0;
    let Some(found) = ASSETS.iter().find(|a| a.name == path) else {
        return not_found();
    };
    // A stale version is served (a page loaded before an upgrade still works) but
    // not cached, so the immutable cache entry always matches its URL.
    let cache = if &version == current {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = found.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(found.content_type),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    security_headers(headers);
    response
}

async fn favicon() -> Response {
    let (version, _) = &*VERSIONED;
    asset(Path((version.clone(), "favicon.svg".to_owned()))).await
}

fn not_found() -> Response {
    let mut response = (StatusCode::NOT_FOUND, "no such asset").into_response();
    security_headers(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_named_once_and_the_shell_links_the_version() {
        let mut names: Vec<_> = ASSETS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ASSETS.len(), "duplicate asset names");
        let (version, index) = &*VERSIONED;
        assert!(index.contains(&format!("/assets/{version}/js/app.js")));
        assert!(!index.contains("{{version}}"));
    }

    #[test]
    fn the_shell_preloads_every_module() {
        let (version, index) = &*VERSIONED;
        for asset in ASSETS.iter().filter(|a| a.name.starts_with("js/")) {
            let url = format!("/assets/{version}/{}", asset.name);
            assert!(
                index.contains(&url),
                "{url} is neither loaded nor preloaded"
            );
        }
    }

    #[test]
    fn no_asset_uses_inner_html_or_inline_handlers() {
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(asset.body).expect("utf-8 asset");
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!text.contains(banned), "{} uses {banned}", asset.name);
            }
        }
        assert!(
            !INDEX_TEMPLATE.contains("<script>"),
            "inline script in the shell"
        );
        let inline_handler = INDEX_TEMPLATE.match_indices(" on").any(|(at, _)| {
            let rest = &INDEX_TEMPLATE[at + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        });
        assert!(!inline_handler, "inline event handler in the shell");
    }
}
