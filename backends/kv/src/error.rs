//! The crate's errors: what a store can fail with, and how an operation ends early.

use dpfs_core::Errno;

/// A store failed (not a file-system error: those are [`Errno`]s).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store URL is malformed or names an unknown scheme.
    #[error("bad kv url {url:?}: {why}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The redb file could not be opened or used.
    #[error("redb: {0}")]
    Redb(String),
    /// The Redis server could not be reached or refused a command.
    #[error("redis: {0}")]
    Redis(String),
    /// A store call did not finish within its deadline.
    #[error("kv store did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// A stored record does not decode (a corrupt or foreign volume).
    #[error("corrupt record under key {key:?}: {why}")]
    Corrupt {
        /// The key (escaped bytes).
        key: String,
        /// What did not decode.
        why: String,
    },
}

/// Why one attempt of an operation stopped.
#[derive(Debug)]
pub(crate) enum Fail {
    /// The file-system answer (ENOENT, EACCES, …).
    Errno(Errno),
    /// Another writer changed a key this attempt read: run it again.
    Conflict,
    /// The store failed: the guest gets EIO.
    Store(StoreError),
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Fail {
        Fail::Errno(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail::Store(e)
    }
}
