//! Options, and the store URL: this crate's own parameters are taken out, the rest goes
//! to the redis crate.

use std::time::Duration;

use trace_store_core::{Error, Result};
use url::Url;

/// How a [`RedisStore`](crate::RedisStore) uses its server.
///
/// Every option can also be given as a URL parameter, which takes precedence:
/// `redis://host:6379/0?prefix=myapp&ttl=86400&connect_timeout=2&read_timeout=5&pool_size=8`
/// (durations in seconds, fractions allowed).
///
/// ```
/// use std::time::Duration;
/// use trace_store_redis::RedisOptions;
///
/// let options = RedisOptions::default()
///     .with_prefix("myapp")
///     .with_ttl(Duration::from_secs(7 * 24 * 3600))
///     .with_read_timeout(Duration::from_secs(2))
///     .with_pool_size(16);
/// assert_eq!(options.prefix, "myapp");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisOptions {
    /// The namespace: every key of the store starts with `{prefix}`, its Redis Cluster
    /// hash tag. Any non-empty string works; stores with different prefixes on one
    /// server never see each other's traces. Default `trace-store`.
    pub prefix: String,
    /// How long each save keeps the trace (at least 1 ms, millisecond precision); a
    /// re-save restarts the clock, and expired traces disappear from every answer.
    /// Default `None`: kept until deleted.
    pub ttl: Option<Duration>,
    /// Longest wait to open a connection, or for a free one when all are busy.
    /// Default 2 s.
    pub connect_timeout: Duration,
    /// Longest wait for the server to take a command or answer it. Default 5 s.
    pub read_timeout: Duration,
    /// Most connections open at once; callers beyond it wait for a free one. Default 8.
    pub pool_size: usize,
}

impl Default for RedisOptions {
    /// Prefix `trace-store`, no TTL, 2 s to connect, 5 s for an answer, 8 connections.
    fn default() -> Self {
        RedisOptions {
            prefix: "trace-store".to_owned(),
            ttl: None,
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(5),
            pool_size: 8,
        }
    }
}

impl RedisOptions {
    /// The namespace: every key of the store starts with `{prefix}`, its Redis Cluster
    /// hash tag. Any non-empty string works; stores with different prefixes on one
    /// server never see each other's traces.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Each save keeps the trace for this long (at least 1 ms, millisecond precision);
    /// a re-save restarts the clock. Expired traces disappear from every answer.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Traces are kept until deleted (the default).
    #[must_use]
    pub fn without_ttl(mut self) -> Self {
        self.ttl = None;
        self
    }

    /// Longest wait to open a connection, or for a free one when all are busy.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Longest wait for the server to take a command or answer it.
    #[must_use]
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Most connections open at once; callers beyond it wait for a free one.
    #[must_use]
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let positive = |name: &str, d: Duration| {
            if d.is_zero() {
                Err(Error::invalid(format!(
                    "Redis {name} must be more than zero"
                )))
            } else {
                Ok(())
            }
        };
        if self.prefix.is_empty() {
            return Err(Error::invalid(
                "the Redis key prefix is empty; it becomes the hash tag of every key, so give it at least one character",
            ));
        }
        positive("connect_timeout", self.connect_timeout)?;
        positive("read_timeout", self.read_timeout)?;
        if let Some(ttl) = self.ttl {
            if ttl < Duration::from_millis(1) {
                return Err(Error::invalid(format!(
                    "Redis ttl {ttl:?} is below the 1 ms Redis can keep"
                )));
            }
            if ttl > MAX_TTL {
                return Err(Error::invalid(format!(
                    "Redis ttl {ttl:?} is over 100 years; leave the TTL unset to keep traces until deleted"
                )));
            }
        }
        if self.pool_size == 0 {
            return Err(Error::invalid("Redis pool_size must be at least 1"));
        }
        Ok(())
    }
}

/// Longest TTL: expiry times stay far inside what the scripts compute exactly.
const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Parameters the redis crate reads from the URL itself.
const PASSED_THROUGH: [&str; 4] = ["db", "protocol", "user", "pass"];

/// A store URL taken apart: what to hand the redis crate, and what to show people.
pub(crate) struct ParsedUrl {
    pub(crate) connect: String,
    pub(crate) redacted: String,
    pub(crate) address: String,
    /// For `redis+cluster://`: the connection URL of every seed node given (the URL's
    /// own host first, then each `node` parameter); empty for a single server.
    pub(crate) cluster_seeds: Vec<String>,
}

/// The URL schemes of the Redis store: a server over TCP (`redis://`), over TLS
/// (`rediss://`), over a Unix socket (`redis+unix://` or `unix://`), or a Redis Cluster
/// (`redis+cluster://`).
pub const SCHEMES: [&str; 5] = ["redis", "rediss", "redis+unix", "unix", CLUSTER_SCHEME];

/// The scheme that selects the Redis Cluster client.
const CLUSTER_SCHEME: &str = "redis+cluster";

pub(crate) fn parse_url(text: &str, options: &mut RedisOptions) -> Result<ParsedUrl> {
    let mut url = Url::parse(text).map_err(|e| {
        Error::invalid(format!(
            "Redis URL {:?} cannot be parsed: {e}",
            redact_text(text)
        ))
    })?;
    if !SCHEMES.contains(&url.scheme()) {
        return Err(Error::invalid(format!(
            "{:?} is not a Redis URL; expected one of {}",
            redact(&url),
            SCHEMES.map(|scheme| format!("{scheme}://")).join(", ")
        )));
    }
    let cluster = url.scheme() == CLUSTER_SCHEME;
    let mut extra_nodes = Vec::new();
    let mut kept = Vec::new();
    for (key, value) in url.query_pairs() {
        let seconds = || -> Result<Duration> {
            value
                .parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "Redis URL parameter {key}={value:?} is not a number of seconds"
                    ))
                })
        };
        match &*key {
            "prefix" => options.prefix = value.clone().into_owned(),
            "ttl" => options.ttl = Some(seconds()?),
            "connect_timeout" => options.connect_timeout = seconds()?,
            "read_timeout" => options.read_timeout = seconds()?,
            "pool_size" => {
                options.pool_size = value.parse().map_err(|_| {
                    Error::invalid(format!(
                        "Redis URL parameter pool_size={value:?} is not a whole number"
                    ))
                })?
            }
            "node" if cluster => extra_nodes.push(value.into_owned()),
            known if PASSED_THROUGH.contains(&known) => {
                kept.push((key.clone().into_owned(), value.into_owned()))
            }
            unknown => {
                return Err(Error::invalid(format!(
                    "Redis URL {:?} has the unknown parameter {unknown:?}; known: prefix, ttl, connect_timeout, read_timeout, pool_size, db, protocol, user, pass (and node, with redis+cluster://)",
                    redact(&url)
                )));
            }
        }
    }
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    let mut address = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) if !host.is_empty() => format!("{host}:{port}"),
        (Some(host), None) if !host.is_empty() => format!("{host}:6379"),
        _ => url.path().to_owned(),
    };
    let redacted = redact(&url);
    let cluster_seeds = if cluster {
        let seeds = cluster_seeds(&url, &extra_nodes, &redacted)?;
        address = format!("the Redis Cluster of {address}");
        seeds
    } else {
        Vec::new()
    };
    Ok(ParsedUrl {
        connect: url.to_string(),
        redacted,
        address,
        cluster_seeds,
    })
}

/// The seed nodes of a `redis+cluster://host:port[?node=host:port...]` URL, as
/// `redis://` URLs with the same user and password. A cluster has only database 0.
fn cluster_seeds(url: &Url, extra_nodes: &[String], redacted: &str) -> Result<Vec<String>> {
    let invalid = |why: String| Error::invalid(format!("Redis Cluster URL {redacted}: {why}"));
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("names no host".to_owned()));
    }
    if !matches!(url.path(), "" | "/" | "/0")
        || url
            .query_pairs()
            .any(|(key, value)| key == "db" && value != "0")
    {
        return Err(invalid(
            "a Redis Cluster has only database 0; separate stores by prefix instead".to_owned(),
        ));
    }
    let mut seed = url.clone();
    seed.set_scheme("redis")
        .map_err(|()| invalid("cannot be turned into a node URL".to_owned()))?;
    seed.set_path("");
    seed.set_query(None);
    let mut seeds = vec![seed.to_string()];
    for node in extra_nodes {
        let (host, port) = node
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
            .filter(|(host, _)| !host.is_empty())
            .ok_or_else(|| invalid(format!("node={node:?} is not host:port")))?;
        let mut other = seed.clone();
        other
            .set_host(Some(host))
            .map_err(|e| invalid(format!("node={node:?}: {e}")))?;
        let _ = other.set_port(Some(port));
        seeds.push(other.to_string());
    }
    Ok(seeds)
}

/// The URL with its password (in the user info or a `pass` parameter) replaced.
fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    if shown.query_pairs().any(|(key, _)| key == "pass") {
        let pairs: Vec<(String, String)> = shown
            .query_pairs()
            .map(|(key, value)| {
                let value = if key == "pass" { "***".into() } else { value };
                (key.into_owned(), value.into_owned())
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

/// For text that is not even a URL: cut everything between `://` and the last `@`, and
/// mask the value of a `pass` parameter (the redis crate reads one, so a URL that fails
/// to parse for another reason, such as a bad port, may still carry a password there).
fn redact_text(text: &str) -> String {
    let shown = match (text.find("://"), text.rfind('@')) {
        (Some(start), Some(at)) if at > start => {
            format!("{}://***{}", &text[..start], &text[at..])
        }
        _ => text.to_owned(),
    };
    let Some((head, query)) = shown.split_once('?') else {
        return shown;
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _))
                if percent_encoding::percent_decode_str(key).decode_utf8_lossy() == "pass" =>
            {
                format!("{key}=***")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{head}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_parameters_are_taken_out_and_the_rest_passed_on() {
        let mut options = RedisOptions::default();
        let parsed = parse_url(
            "redis://:s3cret@example.org:7000/2?prefix=my%3Aapp&ttl=1.5&db=2&pool_size=3",
            &mut options,
        )
        .unwrap();
        assert_eq!(options.prefix, "my:app");
        assert_eq!(options.ttl, Some(Duration::from_millis(1500)));
        assert_eq!(options.pool_size, 3);
        assert_eq!(parsed.connect, "redis://:s3cret@example.org:7000/2?db=2");
        assert_eq!(parsed.address, "example.org:7000");
        assert!(!parsed.redacted.contains("s3cret"), "{}", parsed.redacted);
    }

    #[test]
    fn cluster_urls_give_every_seed_with_the_credentials() {
        let mut options = RedisOptions::default();
        let parsed = parse_url(
            "redis+cluster://u:s3cret@10.0.0.1:7000?prefix=a&node=10.0.0.2:7001&node=h3:7002",
            &mut options,
        )
        .unwrap();
        assert_eq!(options.prefix, "a");
        assert_eq!(
            parsed.cluster_seeds,
            [
                "redis://u:s3cret@10.0.0.1:7000",
                "redis://u:s3cret@10.0.0.2:7001",
                "redis://u:s3cret@h3:7002"
            ]
        );
        assert_eq!(parsed.address, "the Redis Cluster of 10.0.0.1:7000");
        assert!(!parsed.redacted.contains("s3cret"), "{}", parsed.redacted);
        let single = parse_url("redis://h:1/0", &mut options).unwrap();
        assert!(single.cluster_seeds.is_empty());
        for bad in [
            "redis+cluster://h:1/2",
            "redis+cluster://h:1?db=1",
            "redis+cluster://h:1?node=nohost",
            "redis+cluster://h:1?node=:80",
            "redis+cluster:///path",
            "redis://h:1?node=h:2",
        ] {
            let error = parse_url(bad, &mut RedisOptions::default())
                .err()
                .unwrap_or_else(|| panic!("{bad} was accepted"));
            assert!(
                matches!(error, Error::InvalidInput { .. }),
                "{bad}: {error}"
            );
            assert!(!error.to_string().contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn bad_parameters_are_invalid_input() {
        for bad in [
            "redis://h/0?prefx=a",
            "redis://h/0?ttl=soon",
            "redis://h/0?pool_size=-1",
            "redis://h/0?read_timeout=-2",
            "redis://h/0?ttl=0",
            "redis://h/0?ttl=1e12",
            "redis://h/0?pool_size=0",
            "redis://h/0?prefix=",
            "not a url",
            "postgres://u:hunter2@h/0",
            "http://h:6379/0",
        ] {
            let mut options = RedisOptions::default();
            let error = parse_url(bad, &mut options)
                .and_then(|_| options.validate())
                .err()
                .unwrap_or_else(|| panic!("{bad} was accepted"));
            assert!(
                matches!(error, Error::InvalidInput { .. }),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn passwords_never_show() {
        let mut options = RedisOptions::default();
        let unix = parse_url(
            "redis+unix:///run/redis.sock?pass=hunter2&db=1",
            &mut options,
        )
        .unwrap();
        assert!(!unix.redacted.contains("hunter2"), "{}", unix.redacted);
        assert_eq!(unix.address, "/run/redis.sock");
        let error = parse_url("redis://u:hunter2@h/0?bogus=1", &mut options)
            .err()
            .unwrap();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(!redact_text("redis://u:hunter2@ho st").contains("hunter2"));
    }

    #[test]
    fn unparsable_urls_never_show_a_password() {
        for bad in [
            "redis://h:notaport/0?pass=hunter2",
            "redis://h:notaport/0?db=1&pass=hunter2&x=1",
            "redis://[::1/0?pass=hunter2",
            "redis://:hunter2@h:99999/0",
            "redis://u:hunter2@h:99999/0?pass=hunter2",
        ] {
            let mut options = RedisOptions::default();
            let error = parse_url(bad, &mut options)
                .err()
                .unwrap_or_else(|| panic!("{bad} was accepted"));
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("hunter2"), "{bad}: {shown}");
            assert!(
                matches!(error, Error::InvalidInput { .. }),
                "{bad}: {error}"
            );
        }
    }
}
