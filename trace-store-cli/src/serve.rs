//! `trace-store serve`: the OTLP/HTTP collector, JSON API and web viewer over a store.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use trace_store_server::{DEFAULT_LISTEN, DEFAULT_MAX_BODY, Server, ServerOptions};

use crate::error::{CliError, CliResult};
use crate::store::{Need, display, open};

/// Options of `serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on. Anything but loopback needs --token or --insecure-no-auth.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Require `Authorization: Bearer TOKEN` on every route but /healthz.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TRACE_STORE_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Allow a non-loopback --listen without a token (anyone who can reach it can read
    /// and delete traces).
    #[arg(long, conflicts_with = "token")]
    insecure_no_auth: bool,
    /// Largest request body in bytes, before and after gzip decompression.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BODY)]
    max_body: usize,
    /// Longest a request may take before it is answered 503 [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    request_timeout: Option<Duration>,
    /// Longest a client may take to send a request body before it is answered 408
    /// [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    body_timeout: Option<Duration>,
    /// If the store holds no traces yet, fill it with the sample runs of `demo` first,
    /// so there is something to look at.
    #[arg(long)]
    demo: bool,
}

/// Serves until SIGINT or SIGTERM, then finishes the requests in flight and exits.
pub(crate) fn run(url: &str, args: &ServeArgs) -> CliResult {
    let mut options = ServerOptions::new()
        .with_listen(args.listen)
        .with_insecure_no_auth(args.insecure_no_auth)
        .with_max_body(args.max_body)
        .with_store_label(display(url));
    if let Some(token) = &args.token {
        options = options.with_token(token.clone());
    }
    if let Some(timeout) = args.request_timeout {
        options = options.with_request_timeout(timeout);
    }
    if let Some(timeout) = args.body_timeout {
        options = options.with_body_timeout(timeout);
    }
    // Refuse an unsafe address before touching the store.
    options.validate()?;
    let store: Arc<dyn trace_store::TraceStore> = Arc::from(open(url, Need::Create)?);
    if args.demo && store.count(&trace_store::TraceFilter::new().with_limit(1))? == 0 {
        let traces =
            crate::demo::generate(crate::demo::DEFAULT_RUNS, trace_store::Timestamp::now());
        store.save_many(&traces)?;
        println!(
            "trace-store serve: saved {} sample agent runs to {}",
            traces.len(),
            display(url)
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::usage(format!("cannot start the async runtime: {error}")))?;
    runtime.block_on(async {
        let server = Server::bind(store, options).await?;
        let page = page_url(server.local_addr(), args.token.as_deref());
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "trace-store serve: {} on {page} (OTLP: OTEL_EXPORTER_OTLP_ENDPOINT=http://{})",
            display(url),
            shown_addr(server.local_addr())
        )?;
        stdout.flush()?;
        drop(stdout);
        server
            .run_until(trace_store_server::shutdown_signal())
            .await?;
        eprintln!("trace-store serve: stopped");
        Ok(())
    })
}

/// A timeout such as `30s`, `2m` or `500ms`, longer than zero.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        _ => Err(format!(
            "expected a timeout longer than zero such as 30s, 2m or 500ms, not {text:?}"
        )),
    }
}

/// The address a browser on this machine can open: a wildcard bind is reached on
/// loopback.
fn shown_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// `http://ADDR/`, with `#token=...` when a token is set: the fragment never leaves
/// the browser, and the page moves it into session storage.
fn page_url(addr: SocketAddr, token: Option<&str>) -> String {
    let base = format!("http://{}/", shown_addr(addr));
    match token {
        Some(token) => format!("{base}#token={}", fragment_encode(token)),
        None => base,
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn fragment_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_durations_longer_than_zero() {
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout(" 500ms "), Ok(Duration::from_millis(500)));
        for bad in ["0s", "soon", "", "-1s"] {
            assert!(parse_timeout(bad).unwrap_err().contains("timeout"), "{bad}");
        }
    }
}
