//! dpfs HAL over `/dev/fuse`: the same core session serves a host mount, so every backend
//! can be mounted on the host and conformance suites run at native speed.
//!
//! - [`dev`]: the `/dev/fuse` descriptor, its per-thread clones, raw reads and replies.
//! - [`mount`]: `mount(2)` of a `fuse.dpfs` file system on that descriptor, and unmounting.
//! - `completion`: request and reply buffers owned by each request until it completes,
//!   recycled through a bounded pool.
//! - [`server`]: the reader threads and an orderly stop ([`FuseMount`]).
//!
//! The kernel is the "guest" here: one read returns exactly one FUSE request, one write
//! carries exactly one reply. Requests become [`dpfs_core::Request`]s with one readable
//! segment (the bytes read) and one writable segment (the reply buffer).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod completion;
pub mod dev;
pub mod mount;
pub mod server;

pub use mount::MountOptions;
pub use server::{FuseMount, PreparedMount, Unmounter};

use std::path::PathBuf;

/// Errors of the `/dev/fuse` HAL.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `/dev/fuse` could not be opened (no FUSE in the kernel, or no permission).
    #[error("cannot open /dev/fuse: {0}")]
    OpenDevice(std::io::Error),
    /// Cloning the descriptor for another reader thread failed.
    #[error("cannot clone the /dev/fuse descriptor: {0}")]
    Clone(std::io::Error),
    /// `mount(2)` failed.
    #[error("cannot mount on {path}: {source}")]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The mount point is unusable (not a directory, or not representable as a C string).
    #[error("bad mount point {0}: {1}")]
    MountPoint(PathBuf, String),
    /// The core refused the device.
    #[error("cannot register the device: {0}")]
    Register(#[from] dpfs_core::HandlerError),
    /// A reader thread could not be started.
    #[error("cannot start a reader thread: {0}")]
    Thread(std::io::Error),
    /// The reader threads did not stop in time, even after the connection was aborted.
    #[error("reader threads did not stop within {0:?}")]
    StopTimeout(std::time::Duration),
}
