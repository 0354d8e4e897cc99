//! Store URLs: which backend, where, and with which options.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use trace_store_core::{Durability, Error, Result, TraceStore};

/// A parsed store URL.
///
/// | URL | store |
/// |---|---|
/// | `memory://` | unbounded [`MemoryStore`](crate::MemoryStore) |
/// | `memory://?capacity=1000` | LRU-bounded memory store |
/// | `sqlite://traces.db`, `sqlite:///abs/path.db` | SQLite file (relative or absolute path) |
/// | `sqlite::memory:` | private in-memory SQLite database |
/// | `jsonl://traces.jsonl` | JSON Lines file |
/// | `redis://127.0.0.1:6379/0?prefix=myapp` | Redis server (also `rediss://`, `redis+unix://`) |
///
/// File backends take `?durability=sync` (fsync every save) or `flush` (the default).
/// Parsing works whatever features are enabled; opening a backend whose feature is off
/// is [`Error::InvalidInput`] naming the feature.
///
/// ```
/// use trace_store::StoreUrl;
///
/// let url: StoreUrl = "sqlite://data/traces.db?durability=sync".parse()?;
/// assert!(matches!(url, StoreUrl::Sqlite { path: Some(_), .. }));
/// assert!("mysql://x".parse::<StoreUrl>().is_err());
/// # Ok::<(), trace_store::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreUrl {
    /// `memory://[?capacity=N]`
    Memory {
        /// The LRU bound; `None` for unbounded.
        capacity: Option<usize>,
    },
    /// `sqlite://PATH[?durability=..]` or `sqlite::memory:`
    Sqlite {
        /// The database file; `None` for an in-memory database.
        path: Option<PathBuf>,
        /// Durability of each save.
        durability: Durability,
    },
    /// `jsonl://PATH[?durability=..]`
    Jsonl {
        /// The file.
        path: PathBuf,
        /// Durability of each save.
        durability: Durability,
    },
    /// `redis://..`, `rediss://..`, `redis+unix://..`, passed whole to the Redis backend.
    Redis {
        /// The URL as given.
        url: String,
    },
}

const SCHEMES: &str =
    "memory://, sqlite://PATH, sqlite::memory:, jsonl://PATH, redis://HOST:PORT/DB";

impl FromStr for StoreUrl {
    type Err = Error;

    fn from_str(url: &str) -> Result<StoreUrl> {
        if url == "sqlite::memory:" {
            return Ok(StoreUrl::Sqlite {
                path: None,
                durability: Durability::Flush,
            });
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(Error::invalid(format!(
                "store URL {url:?} has no scheme; expected one of {SCHEMES}"
            )));
        };
        match scheme {
            "redis" | "rediss" | "redis+unix" | "unix" => Ok(StoreUrl::Redis {
                url: url.to_owned(),
            }),
            "memory" => {
                let (location, mut params) = split_params(url, rest)?;
                if !location.is_empty() {
                    return Err(Error::invalid(format!(
                        "store URL {url:?}: memory:// takes no path"
                    )));
                }
                let capacity = params
                    .remove("capacity")
                    .map(|c| {
                        c.parse::<usize>().map_err(|_| {
                            Error::invalid(format!(
                                "store URL {url:?}: capacity {c:?} is not a number"
                            ))
                        })
                    })
                    .transpose()?;
                reject_unknown(url, params)?;
                Ok(StoreUrl::Memory { capacity })
            }
            "sqlite" | "jsonl" => {
                let (location, mut params) = split_params(url, rest)?;
                if location.is_empty() {
                    return Err(Error::invalid(format!(
                        "store URL {url:?} has no file path, as in {scheme}://traces.{}",
                        if scheme == "sqlite" { "db" } else { "jsonl" }
                    )));
                }
                let durability = params
                    .remove("durability")
                    .map(|d| d.parse::<Durability>())
                    .transpose()?
                    .unwrap_or_default();
                reject_unknown(url, params)?;
                let path = PathBuf::from(location);
                Ok(if scheme == "sqlite" {
                    StoreUrl::Sqlite {
                        path: Some(path),
                        durability,
                    }
                } else {
                    StoreUrl::Jsonl { path, durability }
                })
            }
            other => Err(Error::invalid(format!(
                "unknown store scheme {other:?} in {url:?}; expected one of {SCHEMES}"
            ))),
        }
    }
}

fn split_params<'a>(url: &str, rest: &'a str) -> Result<(&'a str, BTreeMap<&'a str, &'a str>)> {
    let Some((location, query)) = rest.rsplit_once('?') else {
        return Ok((rest, BTreeMap::new()));
    };
    let mut params = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(Error::invalid(format!(
                "store URL {url:?}: parameter {pair:?} has no value"
            )));
        };
        params.insert(key, value);
    }
    Ok((location, params))
}

fn reject_unknown(url: &str, params: BTreeMap<&str, &str>) -> Result<()> {
    match params.keys().next() {
        Some(key) => Err(Error::invalid(format!(
            "store URL {url:?}: unknown parameter {key:?}"
        ))),
        None => Ok(()),
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let durability = |d: &Durability| match d {
            Durability::Sync => "?durability=sync",
            _ => "",
        };
        match self {
            StoreUrl::Memory { capacity: None } => f.write_str("memory://"),
            StoreUrl::Memory { capacity: Some(c) } => write!(f, "memory://?capacity={c}"),
            StoreUrl::Sqlite { path: None, .. } => f.write_str("sqlite::memory:"),
            StoreUrl::Sqlite {
                path: Some(p),
                durability: d,
            } => {
                write!(f, "sqlite://{}{}", p.display(), durability(d))
            }
            StoreUrl::Jsonl {
                path,
                durability: d,
            } => {
                write!(f, "jsonl://{}{}", path.display(), durability(d))
            }
            StoreUrl::Redis { url } => f.write_str(&redact_password(url)),
        }
    }
}

/// The URL with any password replaced, for messages and logs.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(not(all(
    feature = "memory",
    feature = "sqlite",
    feature = "jsonl",
    feature = "redis"
)))]
fn feature_off(feature: &str, url: &StoreUrl) -> Error {
    Error::invalid(format!(
        "store URL {url} needs the `{feature}` feature of the trace-store crate; enable it in Cargo.toml"
    ))
}

impl StoreUrl {
    /// Opens the store this URL names.
    pub fn open(&self) -> Result<Box<dyn TraceStore>> {
        match self {
            #[cfg(feature = "memory")]
            StoreUrl::Memory { capacity } => Ok(match capacity {
                Some(capacity) => Box::new(crate::MemoryStore::new(*capacity)?),
                None => Box::new(crate::MemoryStore::unbounded()),
            }),
            #[cfg(feature = "sqlite")]
            StoreUrl::Sqlite { path, durability } => Ok(match path {
                None => Box::new(crate::SqliteStore::in_memory()?),
                Some(path) => Box::new(crate::SqliteStore::open_with(
                    path,
                    crate::sqlite::SqliteOptions::default().with_durability(*durability),
                )?),
            }),
            #[cfg(feature = "jsonl")]
            StoreUrl::Jsonl { path, durability } => Ok(Box::new(crate::JsonlStore::open_with(
                path,
                crate::jsonl::JsonlOptions::default().with_durability(*durability),
            )?)),
            #[cfg(feature = "redis")]
            StoreUrl::Redis { url } => Ok(Box::new(crate::RedisStore::open(url)?)),
            #[cfg(not(all(
                feature = "memory",
                feature = "sqlite",
                feature = "jsonl",
                feature = "redis"
            )))]
            other => Err(feature_off(other.feature(), other)),
        }
    }

    /// The Cargo feature of the trace-store crate that this URL's backend needs.
    pub fn feature(&self) -> &'static str {
        match self {
            StoreUrl::Memory { .. } => "memory",
            StoreUrl::Sqlite { .. } => "sqlite",
            StoreUrl::Jsonl { .. } => "jsonl",
            StoreUrl::Redis { .. } => "redis",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        let cases = [
            ("memory://", StoreUrl::Memory { capacity: None }),
            (
                "memory://?capacity=5",
                StoreUrl::Memory { capacity: Some(5) },
            ),
            (
                "sqlite::memory:",
                StoreUrl::Sqlite {
                    path: None,
                    durability: Durability::Flush,
                },
            ),
            (
                "sqlite:///abs/t.db?durability=sync",
                StoreUrl::Sqlite {
                    path: Some("/abs/t.db".into()),
                    durability: Durability::Sync,
                },
            ),
            (
                "jsonl://rel dir/t.jsonl",
                StoreUrl::Jsonl {
                    path: "rel dir/t.jsonl".into(),
                    durability: Durability::Flush,
                },
            ),
            (
                "redis://:pw@h:1/2?prefix=a",
                StoreUrl::Redis {
                    url: "redis://:pw@h:1/2?prefix=a".into(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<StoreUrl>().unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn rejects_bad_urls_with_reasons() {
        for bad in [
            "traces.db",
            "mysql://x",
            "sqlite://",
            "memory://x",
            "memory://?capacity=many",
            "jsonl://t.jsonl?durability=always",
            "jsonl://t.jsonl?colour=blue",
            "sqlite://t.db?durability",
        ] {
            let error = bad.parse::<StoreUrl>().unwrap_err();
            assert!(
                matches!(error, Error::InvalidInput { .. }),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn display_hides_passwords() {
        let url: StoreUrl = "redis://user:secret@host:6379/0".parse().unwrap();
        assert_eq!(url.to_string(), "redis://user:***@host:6379/0");
        assert!(!format!("{url}").contains("secret"));
    }
}
