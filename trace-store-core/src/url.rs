//! The store-URL grammar the file backends share, parsed and printed in one place.
//!
//! Each backend owns its scheme and turns its URL into its own options
//! (`SqliteOptions::from_url`, `JsonlOptions::from_url`, ...); this module holds only
//! what they have in common, so `sqlite://` and `jsonl://` cannot drift apart:
//!
//! ```text
//! SCHEME://PATH[?key=value&...]
//! ```
//!
//! A path is everything between `://` and the first `?`, taken as written (Windows paths
//! such as `C:\data\t.db` included) except that `%XX` escapes are decoded: a `?` in a
//! file name is written `%3F`, a literal `%XX` as `%25XX`. Parameter names and values are
//! decoded the same way. A parameter given twice, a parameter without `=`, or one the
//! backend does not know is [`Error::InvalidInput`] naming it.
//!
//! ```
//! use trace_store_core::url::FileUrl;
//! use trace_store_core::Durability;
//!
//! let (file, params) = FileUrl::parse("jsonl://runs%3F.jsonl?durability=sync", "jsonl")?;
//! params.finish()?;
//! assert_eq!(file.path, std::path::Path::new("runs?.jsonl"));
//! assert_eq!(file.durability, Durability::Sync);
//! assert_eq!(file.to_url("jsonl"), "jsonl://runs%3F.jsonl?durability=sync");
//! # Ok::<(), trace_store_core::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use crate::{Durability, Error, Result, redact_url};

/// The parameters of a store URL, taken one by one by the backend that owns the URL;
/// [`finish`](UrlParams::finish) refuses whatever is left.
#[derive(Debug)]
pub struct UrlParams {
    /// The URL, redacted, for messages.
    url: String,
    params: BTreeMap<String, String>,
    /// The names taken so far, in order: the "known" list of an unknown-parameter error.
    known: Vec<&'static str>,
}

/// Splits `SCHEME://LOCATION?k=v&..` whose scheme (case-insensitive, RFC 3986) is
/// `scheme`, and decodes `%XX` escapes in the location and the parameters.
pub fn split_url(url: &str, scheme: &str) -> Result<(String, UrlParams)> {
    let shown = redact_url(url);
    let rest = url
        .split_once("://")
        .filter(|(given, _)| given.eq_ignore_ascii_case(scheme))
        .map(|(_, rest)| rest)
        .ok_or_else(|| Error::invalid(format!("store URL {shown:?} is not a {scheme}:// URL")))?;
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut params = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(Error::invalid(format!(
                "store URL {shown:?}: parameter {pair:?} has no value"
            )));
        };
        let key = decode(&shown, key)?;
        if params.insert(key.clone(), decode(&shown, value)?).is_some() {
            return Err(Error::invalid(format!(
                "store URL {shown:?}: parameter {key:?} is given more than once"
            )));
        }
    }
    let location = decode(&shown, location)?;
    Ok((
        location,
        UrlParams {
            url: shown,
            params,
            known: Vec::new(),
        },
    ))
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

impl UrlParams {
    /// The value of `key`, removed from the parameters still to be read.
    pub fn take(&mut self, key: &'static str) -> Option<String> {
        self.known.push(key);
        self.params.remove(key)
    }

    /// The value of `key` parsed as a `T`; `expected` says what a valid value is, for
    /// the error (`"a whole number"`).
    pub fn take_parsed<T: FromStr>(
        &mut self,
        key: &'static str,
        expected: &str,
    ) -> Result<Option<T>> {
        self.take(key)
            .map(|value| {
                value.parse::<T>().map_err(|_| {
                    Error::invalid(format!(
                        "store URL {:?}: {key} {value:?} is not {expected}",
                        self.url
                    ))
                })
            })
            .transpose()
    }

    /// `durability=flush|sync`.
    pub fn take_durability(&mut self) -> Result<Option<Durability>> {
        self.take_parsed("durability", "flush or sync")
    }

    /// `mode=ro` (true: open read-only) or `mode=rw` (false, the default).
    pub fn take_read_only(&mut self) -> Result<bool> {
        match self.take("mode").as_deref() {
            None | Some("rw") => Ok(false),
            Some("ro") => Ok(true),
            Some(other) => Err(Error::invalid(format!(
                "store URL {:?}: mode {other:?} is neither ro (read-only) nor rw",
                self.url
            ))),
        }
    }

    /// Ok if every parameter has been taken; otherwise an error naming the first one
    /// left and listing the ones the backend knows.
    pub fn finish(self) -> Result<()> {
        let Some(key) = self.params.keys().next() else {
            return Ok(());
        };
        let known = if self.known.is_empty() {
            "none".to_owned()
        } else {
            self.known.join(", ")
        };
        Err(Error::invalid(format!(
            "store URL {:?}: unknown parameter {key:?} (known: {known}; write a `?` in a path as %3F)",
            self.url
        )))
    }
}

/// What [`split_url`] decodes: `%` and `?` must be escaped in a printed path.
const PATH_ESCAPES: &AsciiSet = &CONTROLS.add(b'%').add(b'?');

/// A path as it is written in a store URL, so that it parses back to the same path.
pub fn encode_path(path: &Path) -> String {
    utf8_percent_encode(&path.to_string_lossy(), PATH_ESCAPES).to_string()
}

/// The part of a file backend's URL that every file backend shares: the file, how each
/// save is made durable (`durability=`), and whether it is opened read-only (`mode=`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileUrl {
    /// The file, relative to the working directory unless absolute.
    pub path: PathBuf,
    /// `durability=flush|sync`; flush when absent.
    pub durability: Durability,
    /// `mode=ro`.
    pub read_only: bool,
}

impl FileUrl {
    /// A file URL's shared part, with the remaining parameters for the backend to take
    /// (then [`finish`](UrlParams::finish)). An empty path is an error showing the
    /// expected form.
    pub fn parse(url: &str, scheme: &str) -> Result<(FileUrl, UrlParams)> {
        let (location, mut params) = split_url(url, scheme)?;
        if location.is_empty() {
            return Err(Error::invalid(format!(
                "store URL {:?} has no file path, as in {scheme}://traces.{}",
                params.url,
                if scheme == "jsonl" { "jsonl" } else { "db" }
            )));
        }
        let durability = params.take_durability()?.unwrap_or_default();
        let read_only = params.take_read_only()?;
        Ok((
            FileUrl {
                path: PathBuf::from(location),
                durability,
                read_only,
            },
            params,
        ))
    }

    /// The canonical text of this file URL: it parses back to the same [`FileUrl`],
    /// and leaves out what is the default.
    pub fn to_url(&self, scheme: &str) -> String {
        let params = match (self.durability, self.read_only) {
            (Durability::Sync, true) => "?durability=sync&mode=ro",
            (Durability::Sync, false) => "?durability=sync",
            (_, true) => "?mode=ro",
            _ => "",
        };
        format!("{scheme}://{}{params}", encode_path(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Result<FileUrl> {
        let (file, params) = FileUrl::parse(text, "jsonl")?;
        params.finish()?;
        Ok(file)
    }

    #[test]
    fn paths_are_decoded_and_print_back() {
        let parsed = file("JSONL://dir%3Fx/a%25b%20c.jsonl?durability=sync&mode=ro").unwrap();
        assert_eq!(parsed.path, Path::new("dir?x/a%b c.jsonl"));
        assert_eq!(parsed.durability, Durability::Sync);
        assert!(parsed.read_only);
        // A `%` not followed by two hex digits is kept as it is.
        assert_eq!(file("jsonl://100%.db").unwrap().path, Path::new("100%.db"));
        for path in [
            "a?b.db",
            "50%.db",
            "%41.db",
            "/abs/with space/t.db",
            "C:\\data\\t.db",
            "ünï/çødé.db",
            "q?durability=sync",
        ] {
            for (durability, read_only) in [(Durability::Flush, false), (Durability::Sync, true)] {
                let original = FileUrl {
                    path: path.into(),
                    durability,
                    read_only,
                };
                let text = original.to_url("jsonl");
                assert_eq!(file(&text).unwrap(), original, "{path} as {text}");
            }
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        for (bad, named) in [
            ("jsonl://", "no file path"),
            ("jsonl://t?durability=always", "always"),
            (
                "jsonl://t?colour=blue",
                "\"colour\" (known: durability, mode;",
            ),
            ("jsonl://t?durability", "has no value"),
            ("jsonl://t?mode=rwc", "neither ro"),
            ("jsonl://t?mode=ro&mode=ro", "more than once"),
            ("jsonl://%FF", "not UTF-8"),
            ("sqlite://t", "not a jsonl:// URL"),
        ] {
            let error = file(bad).unwrap_err();
            assert!(
                matches!(error, Error::InvalidInput { .. }),
                "{bad}: {error}"
            );
            assert!(error.to_string().contains(named), "{bad}: {error}");
        }
    }

    #[test]
    fn take_parsed_names_the_expected_form() {
        let (_, mut params) = split_url("memory://?capacity=many", "memory").unwrap();
        let error = params
            .take_parsed::<usize>("capacity", "a whole number")
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("capacity \"many\" is not a whole number"),
            "{error}"
        );
    }

    #[test]
    fn messages_never_show_a_password() {
        let error = split_url("x://u:secret@h/t?colour", "x").unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
    }
}
