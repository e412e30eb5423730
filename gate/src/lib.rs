//! Performance gates: measured figures compared with a baseline, case by case, under a
//! regression limit in percent that may differ per case.
//!
//! - [`compare`]: the comparison itself ([`compare()`], [`Comparison`], [`Verdict`]) and its
//!   table for people.
//! - [`baseline`]: the committed baseline file of the instruction-count gate (TOML:
//!   `[limits]` kept by hand, `[cases]` rewritten by `--update`).
//!
//! The instruction-count gate (`ci/perf-gate.sh`) and `dpfs bench --baseline` both use it, so
//! a regression reads the same wherever it is found.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod baseline;
pub mod compare;

pub use baseline::Baseline;
pub use compare::{compare, Better, Comparison, Limits, Row, Verdict};

/// Errors of the gate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The baseline file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The baseline file is not valid.
    #[error("{path}: {msg}")]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, naming the key where possible.
        msg: String,
    },
}
