//! Store URLs: which backend, where, and with which options.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use trace_store_core::url::FileUrl;
use trace_store_core::{Durability, Error, Result, TraceStore, redact_url};

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
/// Each backend owns its scheme and parses its own URL into its options
/// (`MemoryOptions::from_url`, `SqliteOptions::from_url`, `JsonlOptions::from_url`, and
/// the Redis and PostgreSQL stores' `open`); this type only dispatches on the scheme and
/// keeps what the tools built on it need to know (the file, read-only or not).
///
/// File backends take `?durability=sync` (fsync every save) or `flush` (the default),
/// and `mode=ro` to open an existing file read-only (nothing is created or written;
/// every write is an error) or `mode=rw` (the default).
/// A path is everything between `://` and the parameters, taken as written (Windows
/// paths such as `sqlite://C:\data\t.db` included) except that `%XX` escapes are
/// decoded: write a `?` in a file name as `%3F` and a literal `%XX` as `%25XX`
/// (core's [`url`](trace_store_core::url) module has the grammar).
/// Displaying a `StoreUrl` escapes the same way, so the text parses back to the same
/// value, and never shows a password (`Debug` neither).
///
/// A memory, SQLite or JSON Lines URL parses only when its backend's feature is enabled
/// (its backend parses it); Redis and PostgreSQL URLs are kept whole and parsed by
/// their backend when opened. Either way, a backend whose feature is off is
/// [`Error::InvalidInput`] naming the feature.
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

const EXPECTED: &str = "memory://, sqlite://PATH, sqlite::memory:, jsonl://PATH, redis://HOST:PORT/DB, postgres://USER@HOST/DB";

/// Every built-in scheme and the Cargo feature of this crate whose backend owns it. The
/// backends export the same names (`trace_store_sqlite::SCHEME`, ...; a test checks
/// they agree); the table is here so a scheme whose feature is off is still named.
pub(crate) const BUILT_IN: [(&str, &str); 10] = [
    ("memory", "memory"),
    ("sqlite", "sqlite"),
    ("jsonl", "jsonl"),
    ("redis", "redis"),
    ("rediss", "redis"),
    ("redis+unix", "redis"),
    ("unix", "redis"),
    ("redis+cluster", "redis"),
    ("postgres", "postgres"),
    ("postgresql", "postgres"),
];

/// The feature whose backend owns `url`'s scheme (case-insensitive, RFC 3986).
fn feature_for(url: &str) -> Result<&'static str> {
    if url == "sqlite::memory:" {
        return Ok("sqlite");
    }
    let Some((scheme, _)) = url.split_once("://") else {
        return Err(Error::invalid(format!(
            "store URL {:?} is not of the form SCHEME://...; expected one of {EXPECTED}",
            redact_url(url)
        )));
    };
    BUILT_IN
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(scheme))
        .map(|&(_, feature)| feature)
        .ok_or_else(|| {
            Error::invalid(format!(
                "unknown store scheme {:?} in {:?}; expected one of {EXPECTED}",
                scheme.to_ascii_lowercase(),
                redact_url(url)
            ))
        })
}

/// Opens a built-in URL with the backend that owns its scheme, which parses it.
pub(crate) fn open_built_in(url: &str) -> Result<Box<dyn TraceStore>> {
    match feature_for(url)? {
        #[cfg(feature = "memory")]
        "memory" => Ok(Box::new(crate::MemoryStore::open_url(url)?)),
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Box::new(crate::SqliteStore::open_url(url)?)),
        #[cfg(feature = "jsonl")]
        "jsonl" => Ok(Box::new(crate::JsonlStore::open_url(url)?)),
        #[cfg(feature = "redis")]
        "redis" => Ok(Box::new(crate::RedisStore::open(url)?)),
        #[cfg(feature = "postgres")]
        "postgres" => Ok(Box::new(crate::PostgresStore::open(url)?)),
        feature => Err(feature_off(feature, url)),
    }
}

fn feature_off(feature: &str, url: &str) -> Error {
    Error::invalid(format!(
        "store URL {} needs the `{feature}` feature of the trace-store crate; enable it in Cargo.toml",
        redact_url(url)
    ))
}

impl FromStr for StoreUrl {
    type Err = Error;

    fn from_str(url: &str) -> Result<StoreUrl> {
        match feature_for(url)? {
            #[cfg(feature = "memory")]
            "memory" => Ok(StoreUrl::Memory {
                capacity: crate::memory::MemoryOptions::from_url(url)?.capacity,
            }),
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                let (path, options) = crate::sqlite::SqliteOptions::from_url(url)?;
                Ok(StoreUrl::Sqlite {
                    path,
                    durability: options.durability,
                    read_only: options.read_only,
                })
            }
            #[cfg(feature = "jsonl")]
            "jsonl" => {
                let (path, options) = crate::jsonl::JsonlOptions::from_url(url)?;
                Ok(StoreUrl::Jsonl {
                    path,
                    durability: options.durability,
                    read_only: options.read_only,
                })
            }
            "redis" => Ok(StoreUrl::Redis {
                url: url.to_owned(),
            }),
            "postgres" => Ok(StoreUrl::Postgres {
                url: url.to_owned(),
            }),
            feature => Err(feature_off(feature, url)),
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = |path: &PathBuf, durability: &Durability, read_only: &bool| FileUrl {
            path: path.clone(),
            durability: *durability,
            read_only: *read_only,
        };
        match self {
            StoreUrl::Memory { capacity: None } => f.write_str("memory://"),
            StoreUrl::Memory { capacity: Some(c) } => write!(f, "memory://?capacity={c}"),
            StoreUrl::Sqlite { path: None, .. } => f.write_str("sqlite::memory:"),
            StoreUrl::Sqlite {
                path: Some(path),
                durability,
                read_only,
            } => f.write_str(&file(path, durability, read_only).to_url("sqlite")),
            StoreUrl::Jsonl {
                path,
                durability,
                read_only,
            } => f.write_str(&file(path, durability, read_only).to_url("jsonl")),
            StoreUrl::Redis { url } | StoreUrl::Postgres { url } => f.write_str(&redact_url(url)),
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
                .field("url", &redact_url(url))
                .finish(),
            StoreUrl::Postgres { url } => f
                .debug_struct("Postgres")
                .field("url", &redact_url(url))
                .finish(),
        }
    }
}

impl StoreUrl {
    /// Opens the store this URL names, with the backend that owns its scheme.
    pub fn open(&self) -> Result<Box<dyn TraceStore>> {
        match self {
            StoreUrl::Redis { url } | StoreUrl::Postgres { url } => open_built_in(url),
            // The path is used as it is, not through its text, which a path that is not
            // UTF-8 would not survive.
            #[cfg(feature = "sqlite")]
            StoreUrl::Sqlite {
                path: Some(path),
                durability,
                read_only,
            } => Ok(Box::new(crate::SqliteStore::open_with(
                path,
                crate::sqlite::SqliteOptions::default()
                    .with_durability(*durability)
                    .with_read_only(*read_only),
            )?)),
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
            // Memory and in-memory SQLite: the text is the whole of it.
            other => open_built_in(&other.to_string()),
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

#[cfg(all(test, feature = "memory", feature = "sqlite", feature = "jsonl"))]
mod tests {
    use super::*;

    #[cfg(all(feature = "redis", feature = "postgres"))]
    #[test]
    fn the_table_names_the_schemes_the_backends_own() {
        let mut owned = vec![
            (crate::memory::SCHEME, "memory"),
            (crate::sqlite::SCHEME, "sqlite"),
            (crate::jsonl::SCHEME, "jsonl"),
        ];
        owned.extend(crate::redis::SCHEMES.map(|scheme| (scheme, "redis")));
        owned.extend(crate::postgres::SCHEMES.map(|scheme| (scheme, "postgres")));
        owned.sort_unstable();
        let mut table = BUILT_IN.to_vec();
        table.sort_unstable();
        assert_eq!(table, owned);
    }

    #[test]
    fn backends_refuse_their_own_bad_parameters() {
        // Each message comes from the backend that owns the scheme, naming what it knows.
        for (bad, named) in [
            ("memory://?capacity=1&durability=sync", "known: capacity"),
            ("sqlite://t.db?capacity=1", "known: durability, mode"),
            ("jsonl://t.jsonl?busy=1", "known: durability, mode"),
        ] {
            let error = bad.parse::<StoreUrl>().unwrap_err();
            assert!(error.to_string().contains(named), "{bad}: {error}");
            let error = crate::open(bad).map(drop).unwrap_err();
            assert!(error.to_string().contains(named), "{bad}: {error}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_path_that_is_not_utf8_opens_as_it_is() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(std::ffi::OsStr::from_bytes(b"t\xff.jsonl"));
        let url = StoreUrl::Jsonl {
            path: path.clone(),
            durability: Durability::Flush,
            read_only: false,
        };
        url.open().unwrap().save(&crate::Trace::new("r")).unwrap();
        assert!(path.exists(), "{url} did not open its own path");
    }

    #[test]
    fn open_goes_to_the_backend_that_owns_the_scheme() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a?b.db");
        let url = StoreUrl::Sqlite {
            path: Some(path.clone()),
            durability: Durability::Sync,
            read_only: false,
        };
        url.open().unwrap().save(&crate::Trace::new("r")).unwrap();
        assert!(path.exists(), "{url} did not open {}", path.display());
        let read_only = url.into_read_only().open().unwrap();
        assert_eq!(read_only.load("r").unwrap().run_id, "r");
        assert!(read_only.save(&crate::Trace::new("s")).is_err());
    }

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
