//! Pushing traces to an OTLP/HTTP endpoint (Phoenix, Langfuse, MLflow, a collector).

use std::time::Duration;

use prost::Message as _;
use trace_store_core::{Error, Result, Trace};

use crate::Encoding;
use crate::export::encode_batches;

/// How [`push_http`] sends.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PushOptions {
    /// Most spans in one request.
    pub batch_spans: usize,
    /// Retries of one request after a 429, 502, 503, 504 or a connection failure.
    pub max_retries: u32,
    /// Wait before the first retry; doubled after each, up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest wait between retries, also the cap on a server's `Retry-After`.
    pub max_backoff: Duration,
    /// Timeout of one request, connecting included.
    pub timeout: Duration,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            batch_spans: 512,
            max_retries: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
        }
    }
}

impl PushOptions {
    /// Sets the most spans per request.
    #[must_use]
    pub fn with_batch_spans(mut self, batch_spans: usize) -> Self {
        self.batch_spans = batch_spans.max(1);
        self
    }

    /// Sets how often one request is retried.
    #[must_use]
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Sets the first and the longest wait between retries.
    #[must_use]
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Sets the timeout of one request.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// What [`push_http`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PushReport {
    /// Traces sent.
    pub traces: u64,
    /// Spans sent (run spans included).
    pub spans: u64,
    /// Requests that succeeded.
    pub requests: u64,
    /// Retries made.
    pub retries: u64,
    /// Spans the endpoint said it rejected (`partial_success`).
    pub rejected_spans: u64,
    /// The endpoint's messages about rejected spans.
    pub error_messages: Vec<String>,
}

/// Sends `traces` to an OTLP/HTTP traces endpoint (such as
/// `http://127.0.0.1:6006/v1/traces`) as protobuf, in requests of at most
/// `options.batch_spans` spans, with `headers` (such as `Authorization`) on each.
///
/// A 429, 502, 503 or 504 answer, or a failed connection, is retried up to
/// `options.max_retries` times with exponential backoff, waiting what a `Retry-After`
/// header asks (capped at `options.max_backoff`). Any other non-2xx answer stops the push
/// with an error; the requests sent before it stay sent. Errors never show header values
/// nor the password or query of the URL.
pub fn push_http(
    endpoint: &str,
    traces: &[Trace],
    headers: &[(String, String)],
    options: &PushOptions,
) -> Result<PushReport> {
    let shown = redact_url(endpoint);
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(Error::invalid(format!(
            "OTLP endpoint {shown} is not an http:// or https:// URL"
        )));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(options.timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let mut report = PushReport {
        traces: traces.len() as u64,
        ..PushReport::default()
    };
    for batch in encode_batches(traces, options.batch_spans)? {
        let spans: usize = batch
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum();
        let body = batch.encode_to_vec();
        let answer = send_with_retries(
            &agent,
            endpoint,
            &shown,
            &body,
            headers,
            options,
            &mut report,
        )?;
        let (rejected, message) =
            crate::decode_response(&answer, Encoding::Protobuf).unwrap_or_default();
        report.rejected_spans += rejected;
        if !message.is_empty() {
            report.error_messages.push(message);
        }
        report.spans += spans as u64;
        report.requests += 1;
    }
    Ok(report)
}

fn send_with_retries(
    agent: &ureq::Agent,
    endpoint: &str,
    shown: &str,
    body: &[u8],
    headers: &[(String, String)],
    options: &PushOptions,
    report: &mut PushReport,
) -> Result<Vec<u8>> {
    let mut backoff = options.initial_backoff;
    let mut attempt = 0u32;
    loop {
        let mut request = agent
            .post(endpoint)
            .header("Content-Type", Encoding::Protobuf.content_type());
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let (retryable, wait, failure) = match request.send(body) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let answer = response
                    .body_mut()
                    .with_config()
                    .limit(1 << 20)
                    .read_to_vec()
                    .unwrap_or_default();
                if (200..300).contains(&status) {
                    return Ok(answer);
                }
                let text = String::from_utf8_lossy(&answer[..answer.len().min(300)]).into_owned();
                let failure = format!("{shown} answered HTTP {status}: {}", text.trim());
                (
                    matches!(status, 429 | 502 | 503 | 504),
                    retry_after,
                    failure,
                )
            }
            Err(error) => (
                true,
                None,
                format!(
                    "cannot send to {shown}: {}",
                    redact_error(&error.to_string(), endpoint, shown)
                ),
            ),
        };
        if !retryable || attempt >= options.max_retries {
            let tries = attempt + 1;
            return Err(Error::backend(
                "otlp-http",
                format!("{failure} (after {tries} attempt(s))"),
            ));
        }
        attempt += 1;
        report.retries += 1;
        std::thread::sleep(wait.unwrap_or(backoff).min(options.max_backoff));
        backoff = (backoff * 2).min(options.max_backoff);
    }
}

/// `url` without its password and with its query values hidden, for messages.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<an unparsable URL>".to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("REDACTED"));
    }
    if parsed.query().is_some() {
        let names: Vec<String> = parsed
            .query_pairs()
            .map(|(name, _)| format!("{name}=REDACTED"))
            .collect();
        parsed.set_query(Some(&names.join("&")));
    }
    parsed.to_string()
}

fn redact_error(message: &str, endpoint: &str, shown: &str) -> String {
    message.replace(endpoint, shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_urls_are_hidden() {
        let shown = redact_url("https://user:s3cret@cloud.example/v1/traces?api_key=abc&x=1");
        assert!(
            !shown.contains("s3cret") && !shown.contains("abc"),
            "{shown}"
        );
        assert!(
            shown.contains("api_key=REDACTED") && shown.contains("user:REDACTED@"),
            "{shown}"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:4318/v1/traces"),
            "http://127.0.0.1:4318/v1/traces"
        );
    }
}
