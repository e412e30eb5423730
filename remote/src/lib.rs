//! dpfs's remote gateway (DPFS's RVFS, done again): the DPU forwards each virtio-fs request,
//! undecoded past its in-header, to `dpfs gateway` on another host, which runs the backend.
//!
//! # Map
//! - [`forwarder`]: the DPU side, a core [`Handler`](dpfs_core::Handler): `link.rs` keeps a
//!   device's requests in flight by sequence number and writes replies straight into the
//!   guest's writable segments; `conn.rs` connects, authenticates, resends after a
//!   reconnect and enforces the deadline.
//! - [`gateway`]: the server: `session.rs` (one core `Device` per forwarded device, with
//!   the reply cache that makes resent requests run once), `conn.rs` (one task per
//!   connection), `mod.rs` (listener and worker threads, each a tokio runtime).
//! - `handshake.rs`: both sides of the authenticated handshake; `io.rs`: frames over TCP.
//! - The wire format itself is the `dpfs-remote-wire` crate.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

pub mod forwarder;
pub mod gateway;
mod handshake;
mod io;

pub use dpfs_remote_wire::{Key, KeyError};
pub use forwarder::{probe, Forwarder, ForwarderConfig};
pub use gateway::{Factory, Gateway, GatewayConfig, GatewayHandle, GatewayStats};

use dpfs_remote_wire::{RefuseReason, WireError};

/// Errors of the remote link (logged; the forwarder reconnects after any of them).
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// Network I/O failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer sent bytes that are not a valid message.
    #[error("bad message from peer: {0}")]
    Wire(#[from] WireError),
    /// The peer sent a valid message at the wrong time.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// The gateway refused us.
    #[error("gateway refused the connection ({reason:?}): {text}")]
    Refused {
        /// Why.
        reason: RefuseReason,
        /// The gateway's words.
        text: String,
    },
    /// The gateway's proof did not match our key.
    #[error("the gateway failed authentication (it has another key)")]
    GatewayAuth,
    /// The forwarder's proof did not match our key.
    #[error("the forwarder failed authentication (it has another key)")]
    PeerAuth,
    /// The peers speak different protocol versions.
    #[error("protocol version {0} is not ours ({v})", v = dpfs_remote_wire::VERSION)]
    Version(u16),
    /// A step took longer than its deadline.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// The peer closed the connection.
    #[error("connection closed by peer")]
    Closed,
    /// No randomness for a nonce.
    #[error("{0}")]
    Key(#[from] KeyError),
}

impl RemoteError {
    /// Whether this is an authentication or version failure (retrying will not help).
    pub fn is_refusal(&self) -> bool {
        matches!(self, RemoteError::Refused { .. } | RemoteError::GatewayAuth | RemoteError::Version(_))
    }
}
