//! The error type of the simulated guest.

use dpfs_core::Errno;
use std::io;

/// Everything that can go wrong in the simulated guest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed (memfd, eventfd, poll, …).
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// Guest memory could not be set up or accessed.
    #[error("guest memory: {0}")]
    Memory(String),
    /// A vhost-user request failed or the device refused it.
    #[error("vhost-user {step}: {source}")]
    Vhost {
        /// The protocol step that failed (e.g. "SET_MEM_TABLE").
        step: &'static str,
        /// The error reported by the `vhost` crate.
        source: vhost::Error,
    },
    /// The device does not offer something the guest needs.
    #[error("device lacks {0}")]
    Unsupported(&'static str),
    /// No free request slot or descriptors: too many requests in flight on this queue.
    #[error("queue full")]
    QueueFull,
    /// A request does not fit in the slot's buffers (name, payload or reply too large).
    #[error("request too large: {what} needs {need} bytes, room for {room}")]
    TooLarge {
        /// Which buffer overflowed.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        room: usize,
    },
    /// The device broke the virtio or FUSE protocol (bad used length, wrong unique, short reply…).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The device answered the FUSE request with an error.
    #[error("FUSE error: {0:?}")]
    Errno(Errno),
    /// No completion arrived in time.
    #[error("timed out waiting for the device")]
    Timeout,
    /// A token that is not in flight or not complete was used.
    #[error("invalid token {0}")]
    BadToken(u32),
    /// The bench was given inconsistent arguments.
    #[error("invalid bench arguments: {0}")]
    BadArgs(String),
}

impl Error {
    /// The FUSE errno if this is an error reply from the device.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Errno(e) => Some(*e),
            _ => None,
        }
    }

    pub(crate) fn vhost(step: &'static str) -> impl FnOnce(vhost::Error) -> Error {
        move |source| Error::Vhost { step, source }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
