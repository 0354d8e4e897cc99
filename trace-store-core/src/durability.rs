//! How hard a durable backend works to keep an acknowledged save.

/// What a successful `save` promises about crashes, for the backends that write to disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Durability {
    /// The write reached the operating system before `save` returned: it survives a
    /// crash or SIGKILL of the process, not a power loss. The default.
    #[default]
    Flush,
    /// The write reached the disk (fsync) before `save` returned: it survives power loss.
    Sync,
}

impl std::str::FromStr for Durability {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Durability> {
        match s {
            "flush" => Ok(Durability::Flush),
            "sync" => Ok(Durability::Sync),
            other => Err(crate::Error::invalid(format!(
                "unknown durability {other:?} (expected flush or sync)"
            ))),
        }
    }
}
