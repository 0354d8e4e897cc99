//! The Lua scripts: every write, and every read that needs more than one key, runs as
//! one script, so the server applies it atomically. They are sent as EVALSHA; on a
//! server that does not know them yet (first use, restart, SCRIPT FLUSH) the redis
//! crate loads them and retries (NOSCRIPT means nothing ran, so that retry is safe).
//! Each call passes the namespace base `{P}:` as its one key, `KEYS[1]`.

use std::sync::LazyLock;

use redis::Script;

pub(crate) struct Scripts {
    pub(crate) save: Script,
    pub(crate) delete: Script,
    pub(crate) query: Script,
    pub(crate) clear: Script,
    pub(crate) read: Script,
    pub(crate) merge: Script,
    pub(crate) delete_many: Script,
    pub(crate) sweep: Script,
}

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/common.lua"),
            include_str!(concat!("lua/", $file))
        ))
    };
}

pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    save: script!("save.lua"),
    delete: script!("delete.lua"),
    query: script!("query.lua"),
    clear: script!("clear.lua"),
    read: script!("read.lua"),
    merge: script!("merge.lua"),
    delete_many: script!("delete_many.lua"),
    sweep: script!("sweep.lua"),
});
