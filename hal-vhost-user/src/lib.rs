//! dpfs HAL over vhost-user: each socket is one virtio-fs device that QEMU (or any
//! vhost-user frontend) connects to.
//!
//! - [`config`]: what a device looks like (tag, queues, threads, polling).
//! - [`config_space`]: the virtio-fs configuration space the frontend may read.
//! - [`chain`]: a descriptor chain becomes readable and writable segments, or a
//!   [`ChainError`] that is answered without trusting the chain.
//! - `completion`: puts a finished chain on the used ring from any thread, batched.
//! - [`backend`]: the `VhostUserBackend` of a virtio-fs device (queue layout, features,
//!   event handling).
//! - [`server`]: listening sockets, one accept loop per device that outlives its frontend,
//!   orderly shutdown.
//! - [`stats`]: per-queue request counters.
//!
//! Queue layout: queue 0 is hiprio, queues 1..=N carry requests (as Linux expects).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod backend;
pub mod chain;
mod completion;
pub mod config;
pub mod config_space;
pub mod server;
pub mod stats;

pub use backend::FsBackend;
pub use chain::{ChainError, ParsedChain};
pub use config::{DeviceConfig, PollMode, BUSY_IDLE, MAX_REQUEST_QUEUES};
pub use server::{bind_socket, Server, ShutdownTrigger, SocketSpec};
pub use stats::{DeviceStats, QueueSnapshot};

use std::path::PathBuf;

/// Errors of the vhost-user HAL.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A device configuration value is out of range.
    #[error("invalid device configuration: {0}")]
    Config(String),
    /// Another daemon is serving the socket.
    #[error("socket {0} is in use: another daemon accepts connections on it")]
    SocketInUse(PathBuf),
    /// The socket path names something that is not a socket.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// Binding or preparing the listening socket failed.
    #[error("cannot listen on {path}: {source}")]
    Listen {
        /// The socket path (or `fd N`).
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The vhost-user daemon could not be set up.
    #[error("vhost-user daemon for {device}: {msg}")]
    Daemon {
        /// Device id.
        device: dpfs_core::DeviceId,
        /// What failed.
        msg: String,
    },
    /// The core refused the device.
    #[error(transparent)]
    Register(#[from] dpfs_core::HandlerError),
    /// Other I/O errors.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
