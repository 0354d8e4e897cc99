//! Store URLs: which backend, where, and with which options.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
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
/// | `postgres://user@db.internal/traces?schema=team_a` | PostgreSQL (also `postgresql://`) |
///
/// File backends take `?durability=sync` (fsync every save) or `flush` (the default),
/// and `mode=ro` to open an existing file read-only (nothing is created or written;
/// every write is an error) or `mode=rw` (the default).
/// A path is everything between `://` and the parameters, taken as written (Windows
/// paths such as `sqlite://C:\data\t.db` included) except that `%XX` escapes are
/// decoded: write a `?` in a file name as `%3F` and a literal `%XX` as `%25XX`.
/// Displaying a `StoreUrl` escapes the same way, so the text parses back to the same
/// value, and never shows a Redis password (`Debug` neither).
///
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
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreUrl {
    /// `memory://[?capacity=N]`
    Memory {
        /// The LRU bound; `None` for unbounded.
        capacity: Option<usize>,
    },
    /// `sqlite://PATH[?durability=..][&mode=ro]` or `sqlite::memory:`
    Sqlite {
        /// The database file; `None` for an in-memory database.
        path: Option<PathBuf>,
        /// Durability of each save.
        durability: Durability,
        /// `mode=ro`: open the existing file without writing anything.
        read_only: bool,
    },
    /// `jsonl://PATH[?durability=..][&mode=ro]`
    Jsonl {
        /// The file.
        path: PathBuf,
        /// Durability of each save.
        durability: Durability,
        /// `mode=ro`: open the existing file without writing anything.
        read_only: bool,
    },
    /// `redis://..`, `rediss://..`, `redis+unix://..`, `redis+cluster://..`, passed whole
    /// to the Redis backend.
    Redis {
        /// The URL as given, password included: print the `StoreUrl`, not this field.
        url: String,
    },
    /// `postgres://..` or `postgresql://..`, passed whole to the PostgreSQL backend.
    Postgres {
        /// The URL as given, password included: print the `StoreUrl`, not this field.
        url: String,
    },
}

const SCHEMES: &str = "memory://, sqlite://PATH, sqlite::memory:, jsonl://PATH, redis://HOST:PORT/DB, postgres://USER@HOST/DB";

impl FromStr for StoreUrl {
    type Err = Error;

    fn from_str(url: &str) -> Result<StoreUrl> {
        if url == "sqlite::memory:" {
            return Ok(StoreUrl::Sqlite {
                path: None,
                durability: Durability::Flush,
                read_only: false,
            });
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(Error::invalid(format!(
                "store URL {url:?} is not of the form SCHEME://...; expected one of {SCHEMES}"
            )));
        };
        // Schemes are case-insensitive (RFC 3986); paths are not.
        let scheme = scheme.to_ascii_lowercase();
        match scheme.as_str() {
            "redis" | "rediss" | "redis+unix" | "unix" | "redis+cluster" => Ok(StoreUrl::Redis {
                url: url.to_owned(),
            }),
            "postgres" | "postgresql" => Ok(StoreUrl::Postgres {
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
                reject_unknown(url, params, "capacity")?;
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
                let read_only = match params.remove("mode").as_deref() {
                    None | Some("rw") => false,
                    Some("ro") => true,
                    Some(other) => {
                        return Err(Error::invalid(format!(
                            "store URL {url:?}: mode {other:?} is neither ro (read-only) nor rw"
                        )));
                    }
                };
                reject_unknown(url, params, "durability, mode")?;
                let path = PathBuf::from(location);
                Ok(if scheme == "sqlite" {
                    StoreUrl::Sqlite {
                        path: Some(path),
                        durability,
                        read_only,
                    }
                } else {
                    StoreUrl::Jsonl {
                        path,
                        durability,
                        read_only,
                    }
                })
            }
            other => Err(Error::invalid(format!(
                "unknown store scheme {other:?} in {url:?}; expected one of {SCHEMES}"
            ))),
        }
    }
}

/// Splits `PATH?k=v&..` at its first `?` (a `?` in a file name is written `%3F`) and
/// decodes `%XX` escapes in the path and the parameters.
fn split_params(url: &str, rest: &str) -> Result<(String, BTreeMap<String, String>)> {
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut params = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(Error::invalid(format!(
                "store URL {url:?}: parameter {pair:?} has no value"
            )));
        };
        let key = decode(url, key)?;
        if params.insert(key.clone(), decode(url, value)?).is_some() {
            return Err(Error::invalid(format!(
                "store URL {url:?}: parameter {key:?} is given more than once"
            )));
        }
    }
    Ok((decode(url, location)?, params))
}

fn decode(url: &str, text: &str) -> Result<String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| {
            Error::invalid(format!(
                "store URL {url:?}: {text:?} decodes to bytes that are not UTF-8"
            ))
        })
}

fn reject_unknown(url: &str, params: BTreeMap<String, String>, known: &str) -> Result<()> {
    match params.keys().next() {
        Some(key) => Err(Error::invalid(format!(
            "store URL {url:?}: unknown parameter {key:?} (known: {known}; write a `?` in a path as %3F)"
        ))),
        None => Ok(()),
    }
}

/// What [`split_params`] decodes: `%` and `?` must be escaped in a displayed path.
const PATH_ESCAPES: &AsciiSet = &CONTROLS.add(b'%').add(b'?');

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params = |d: &Durability, read_only: bool| match (d, read_only) {
            (Durability::Sync, true) => "?durability=sync&mode=ro",
            (Durability::Sync, false) => "?durability=sync",
            (_, true) => "?mode=ro",
            _ => "",
        };
        let path = |p: &std::path::Path| {
            utf8_percent_encode(&p.to_string_lossy(), PATH_ESCAPES).to_string()
        };
        match self {
            StoreUrl::Memory { capacity: None } => f.write_str("memory://"),
            StoreUrl::Memory { capacity: Some(c) } => write!(f, "memory://?capacity={c}"),
            StoreUrl::Sqlite { path: None, .. } => f.write_str("sqlite::memory:"),
            StoreUrl::Sqlite {
                path: Some(p),
                durability: d,
                read_only,
            } => write!(f, "sqlite://{}{}", path(p), params(d, *read_only)),
            StoreUrl::Jsonl {
                path: p,
                durability: d,
                read_only,
            } => write!(f, "jsonl://{}{}", path(p), params(d, *read_only)),
            StoreUrl::Redis { url } | StoreUrl::Postgres { url } => {
                f.write_str(&trace_store_core::redact_url(url))
            }
        }
    }
}

/// Like the derived `Debug`, with the Redis password hidden.
impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Memory { capacity } => f
                .debug_struct("Memory")
                .field("capacity", capacity)
                .finish(),
            StoreUrl::Sqlite {
                path,
                durability,
                read_only,
            } => f
                .debug_struct("Sqlite")
                .field("path", path)
                .field("durability", durability)
                .field("read_only", read_only)
                .finish(),
            StoreUrl::Jsonl {
                path,
                durability,
                read_only,
            } => f
                .debug_struct("Jsonl")
                .field("path", path)
                .field("durability", durability)
                .field("read_only", read_only)
                .finish(),
            StoreUrl::Redis { url } => f
                .debug_struct("Redis")
                .field("url", &trace_store_core::redact_url(url))
                .finish(),
            StoreUrl::Postgres { url } => f
                .debug_struct("Postgres")
                .field("url", &trace_store_core::redact_url(url))
                .finish(),
        }
    }
}

#[cfg(not(all(
    feature = "memory",
    feature = "sqlite",
    feature = "jsonl",
    feature = "redis",
    feature = "postgres"
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
            StoreUrl::Sqlite {
                path,
                durability,
                read_only,
            } => Ok(match path {
                None => Box::new(crate::SqliteStore::in_memory()?),
                Some(path) => Box::new(crate::SqliteStore::open_with(
                    path,
                    crate::sqlite::SqliteOptions::default()
                        .with_durability(*durability)
                        .with_read_only(*read_only),
                )?),
            }),
            #[cfg(feature = "jsonl")]
            StoreUrl::Jsonl {
                path,
                durability,
                read_only,
            } => Ok(Box::new(crate::JsonlStore::open_with(
                path,
                crate::jsonl::JsonlOptions::default()
                    .with_durability(*durability)
                    .with_read_only(*read_only),
            )?)),
            #[cfg(feature = "redis")]
            StoreUrl::Redis { url } => Ok(Box::new(crate::RedisStore::open(url)?)),
            #[cfg(feature = "postgres")]
            StoreUrl::Postgres { url } => Ok(Box::new(crate::PostgresStore::open(url)?)),
            #[cfg(not(all(
                feature = "memory",
                feature = "sqlite",
                feature = "jsonl",
                feature = "redis",
                feature = "postgres"
            )))]
            other => Err(feature_off(other.feature(), other)),
        }
    }

    /// The same store opened read-only, where the backend has such a mode (SQLite and
    /// JSON Lines files); other URLs are returned as they are.
    #[must_use]
    pub fn into_read_only(self) -> StoreUrl {
        match self {
            StoreUrl::Sqlite {
                path: Some(path),
                durability,
                ..
            } => StoreUrl::Sqlite {
                path: Some(path),
                durability,
                read_only: true,
            },
            StoreUrl::Jsonl {
                path, durability, ..
            } => StoreUrl::Jsonl {
                path,
                durability,
                read_only: true,
            },
            other => other,
        }
    }

    /// The Cargo feature of the trace-store crate that this URL's backend needs.
    pub fn feature(&self) -> &'static str {
        match self {
            StoreUrl::Memory { .. } => "memory",
            StoreUrl::Sqlite { .. } => "sqlite",
            StoreUrl::Jsonl { .. } => "jsonl",
            StoreUrl::Redis { .. } => "redis",
            StoreUrl::Postgres { .. } => "postgres",
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
                    read_only: false,
                },
            ),
            (
                "SQLite:///abs/t.db?durability=sync",
                StoreUrl::Sqlite {
                    path: Some("/abs/t.db".into()),
                    durability: Durability::Sync,
                    read_only: false,
                },
            ),
            (
                "jsonl://rel dir/t.jsonl",
                StoreUrl::Jsonl {
                    path: "rel dir/t.jsonl".into(),
                    durability: Durability::Flush,
                    read_only: false,
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
    fn mode_ro_opens_read_only_and_round_trips() {
        for (text, durability) in [
            ("sqlite://t.db?mode=ro", Durability::Flush),
            ("sqlite://t.db?durability=sync&mode=ro", Durability::Sync),
        ] {
            let url: StoreUrl = text.parse().unwrap();
            assert_eq!(
                url,
                StoreUrl::Sqlite {
                    path: Some("t.db".into()),
                    durability,
                    read_only: true,
                },
                "{text}"
            );
            assert_eq!(url.to_string(), text);
        }
        let url: StoreUrl = "jsonl://t.jsonl?mode=rw".parse().unwrap();
        assert_eq!(url.to_string(), "jsonl://t.jsonl");
        assert_eq!(
            url.clone().into_read_only().to_string(),
            "jsonl://t.jsonl?mode=ro"
        );
        let memory: StoreUrl = "memory://".parse().unwrap();
        assert_eq!(memory.clone().into_read_only(), memory);
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
            "sqlite://t.db?mode=rwc",
            "jsonl://t.jsonl?mode=ro&mode=ro",
        ] {
            let error = bad.parse::<StoreUrl>().unwrap_err();
            assert!(
                matches!(error, Error::InvalidInput { .. }),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn display_and_debug_hide_passwords() {
        let url: StoreUrl = "redis://user:secret@host:6379/0".parse().unwrap();
        assert_eq!(url.to_string(), "redis://user:***@host:6379/0");
        for text in [
            "redis://user:secret@host:6379/0",
            "redis://:secret@host",
            "rediss://user:sec/ret@host:6380/0?prefix=a",
            "redis://user:sec?ret@host",
            "redis://user:sec@ret@host/0",
            "redis+unix:///run/redis.sock?db=1&pass=secret",
            "unix:///run/redis.sock?pass=secret&db=1",
            "redis://h/0?p%61ss=secret",
            "postgres://h/db?password=secret&sslmode=require",
            "postgresql://me:secret@db:5432/x?schema=a",
        ] {
            let url: StoreUrl = text.parse().unwrap();
            for shown in [url.to_string(), format!("{url:?}")] {
                assert!(!shown.contains("secret"), "{text} shown as {shown}");
                assert!(!shown.contains("sec"), "{text} shown as {shown}");
            }
        }
        let error = crate::open("redis://u:secret@127.0.0.1:1/0?colour=blue")
            .map(drop)
            .unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[test]
    fn paths_are_percent_decoded_and_display_round_trips() {
        let url: StoreUrl = "jsonl://dir%3Fx/a%25b%20c.jsonl?durability=sync"
            .parse()
            .unwrap();
        assert_eq!(
            url,
            StoreUrl::Jsonl {
                path: "dir?x/a%b c.jsonl".into(),
                durability: Durability::Sync,
                read_only: false,
            }
        );
        assert_eq!(url.to_string().parse::<StoreUrl>().unwrap(), url);
        // A `%` not followed by two hex digits is kept as it is.
        let url: StoreUrl = "sqlite://100%.db".parse().unwrap();
        assert_eq!(
            url,
            StoreUrl::Sqlite {
                path: Some("100%.db".into()),
                durability: Durability::Flush,
                read_only: false,
            }
        );
        for path in [
            "a?b.db",
            "50%.db",
            "%41.db",
            "/abs/with space/t.db",
            ":memory:",
            "C:\\data\\t.db",
            "C:/data/t.db",
            "ünï/çødé.db",
            "q?durability=sync",
        ] {
            for url in [
                StoreUrl::Sqlite {
                    path: Some(path.into()),
                    durability: Durability::Flush,
                    read_only: false,
                },
                StoreUrl::Jsonl {
                    path: path.into(),
                    durability: Durability::Sync,
                    read_only: false,
                },
            ] {
                let text = url.to_string();
                assert_eq!(text.parse::<StoreUrl>().unwrap(), url, "{path} as {text}");
            }
        }
        assert!(matches!(
            "sqlite://%FF.db".parse::<StoreUrl>(),
            Err(Error::InvalidInput { .. })
        ));
    }

    #[test]
    fn windows_and_relative_paths_are_taken_verbatim() {
        for (text, path) in [
            ("sqlite://C:\\data\\t.db", "C:\\data\\t.db"),
            ("sqlite://C:/data/t.db", "C:/data/t.db"),
            ("sqlite://./t.db", "./t.db"),
            ("sqlite://../up/t.db", "../up/t.db"),
            ("sqlite://t.db", "t.db"),
            ("sqlite:///abs/t.db", "/abs/t.db"),
        ] {
            let url: StoreUrl = text.parse().unwrap();
            assert_eq!(
                url,
                StoreUrl::Sqlite {
                    path: Some(path.into()),
                    durability: Durability::Flush,
                    read_only: false,
                },
                "{text}"
            );
        }
    }

    #[test]
    fn repeated_parameters_are_rejected() {
        for bad in [
            "memory://?capacity=1&capacity=2",
            "jsonl://t.jsonl?durability=sync&durability=flush",
        ] {
            let error = bad.parse::<StoreUrl>().unwrap_err();
            assert!(
                error.to_string().contains("more than once"),
                "{bad}: {error}"
            );
        }
    }
}
