//! Schemes that backends outside this crate add to [`open`](crate::open).

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, RwLock};

use trace_store_core::{Error, Result, TraceStore};

/// Opens a store from the whole URL it was registered for.
type Opener = dyn Fn(&str) -> Result<Box<dyn TraceStore>> + Send + Sync;

static REGISTRY: LazyLock<RwLock<BTreeMap<String, Arc<Opener>>>> =
    LazyLock::new(|| RwLock::new(BTreeMap::new()));

/// Makes [`open`](crate::open) (and every tool built on it) open `scheme://...` URLs
/// with `opener`, which receives the whole URL and parses it itself.
///
/// Schemes are case-insensitive, as in RFC 3986: a letter, then letters, digits, `+`,
/// `-` or `.`. A built-in scheme (`sqlite`, `redis`, ...) or one registered already is
/// [`Error::InvalidInput`]: the first registration stands.
///
/// ```
/// use trace_store::{MemoryStore, TraceStore};
///
/// // A backend crate of yours registers its scheme once, at start-up.
/// trace_store::register("scratch", |_url| Ok(Box::new(MemoryStore::unbounded())))?;
///
/// let store = trace_store::open("scratch://anything")?;
/// store.save(&trace_store::Trace::new("run-1"))?;
/// assert!(trace_store::register("sqlite", |_| unreachable!()).is_err());
/// # Ok::<(), trace_store::Error>(())
/// ```
pub fn register<F>(scheme: &str, opener: F) -> Result<()>
where
    F: Fn(&str) -> Result<Box<dyn TraceStore>> + Send + Sync + 'static,
{
    let valid = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid {
        return Err(Error::invalid(format!(
            "{scheme:?} is not a URL scheme (a letter, then letters, digits, '+', '-' or '.')"
        )));
    }
    let scheme = scheme.to_ascii_lowercase();
    if crate::store_url::BUILT_IN
        .iter()
        .any(|(built_in, _)| *built_in == scheme)
    {
        return Err(Error::invalid(format!(
            "scheme {scheme:?} is built into trace-store and cannot be registered"
        )));
    }
    let mut registry = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    if registry.contains_key(&scheme) {
        return Err(Error::invalid(format!(
            "scheme {scheme:?} is registered already"
        )));
    }
    registry.insert(scheme, Arc::new(opener));
    Ok(())
}

/// The opener registered for `url`'s scheme, if any.
pub(crate) fn opener_for(url: &str) -> Option<Arc<Opener>> {
    let (scheme, _) = url.split_once("://")?;
    let registry = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    registry.get(&scheme.to_ascii_lowercase()).cloned()
}
