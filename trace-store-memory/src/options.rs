//! The memory store's options and its URL, `memory://[?capacity=N]`.

use trace_store_core::Result;
use trace_store_core::url::split_url;

use crate::MemoryStore;

/// The URL scheme of the memory store: `memory://` (unbounded) or
/// `memory://?capacity=N` (at most N traces, least recently used evicted).
pub const SCHEME: &str = "memory";

/// How a [`MemoryStore`] is made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryOptions {
    /// The LRU bound; `None` for an unbounded store.
    pub capacity: Option<usize>,
}

impl MemoryOptions {
    /// At most `capacity` traces (0 is refused when the store is made).
    #[must_use]
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// The options a `memory://` URL names.
    ///
    /// ```
    /// use trace_store_memory::MemoryOptions;
    ///
    /// assert_eq!(MemoryOptions::from_url("memory://?capacity=5")?.capacity, Some(5));
    /// assert_eq!(MemoryOptions::from_url("memory://")?.capacity, None);
    /// assert!(MemoryOptions::from_url("memory://somewhere").is_err());
    /// # Ok::<(), trace_store_core::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<MemoryOptions> {
        let (location, mut params) = split_url(url, SCHEME)?;
        if !location.is_empty() {
            return Err(trace_store_core::Error::invalid(format!(
                "store URL {:?}: memory:// takes no path",
                trace_store_core::redact_url(url)
            )));
        }
        let capacity = params.take_parsed("capacity", "a whole number")?;
        params.finish()?;
        Ok(MemoryOptions { capacity })
    }
}

impl MemoryStore {
    /// A store made as `options` say.
    pub fn with_options(options: &MemoryOptions) -> Result<MemoryStore> {
        match options.capacity {
            Some(capacity) => MemoryStore::new(capacity),
            None => Ok(MemoryStore::unbounded()),
        }
    }

    /// The store a `memory://` URL names (see [`MemoryOptions::from_url`]).
    pub fn open_url(url: &str) -> Result<MemoryStore> {
        MemoryStore::with_options(&MemoryOptions::from_url(url)?)
    }
}
