//! The crate's error type (construction and configuration; operations answer `Errno`).

use std::path::PathBuf;

/// Why a passthrough file system could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The shared directory could not be opened.
    #[error("cannot open shared directory {path}: {source}")]
    Root {
        /// The configured root.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `/proc/self/fd` is needed to reopen files with the caller's credentials.
    #[error("cannot open /proc/self/fd: {0}")]
    Proc(std::io::Error),
    /// A configuration value is out of range.
    #[error("invalid configuration value for `{key}`: {msg}")]
    Config {
        /// The offending key.
        key: &'static str,
        /// What is wrong with it.
        msg: String,
    },
}
