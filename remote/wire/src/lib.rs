//! The wire format between dpfs's DPU-side forwarder and `dpfs gateway`: versioned,
//! length-prefixed frames with explicit (little-endian) byte order, every length checked
//! against a limit before anything is allocated, and a handshake that carries the protocol
//! version, the forwarded device's identity and a mutual pre-shared-key proof.
//!
//! No I/O and no runtime here, so the decoders are fuzzed on their own.
//!
//! # Map
//! - [`frame`]: the frame envelope (`u32` length, `u8` kind) and [`frame::split`], which
//!   finds the next whole frame in a byte stream.
//! - [`message`]: every message, [`message::Message::decode_from_dpu`] (what the gateway
//!   accepts) and [`message::Message::decode_from_gateway`] (what the forwarder accepts),
//!   and the encoders.
//! - [`auth`]: the key file, nonces and the HMAC-SHA256 proofs of the handshake.
//! - [`corpus`]: seed streams for the fuzz targets.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

pub mod auth;
pub mod corpus;
pub mod frame;
pub mod message;

pub use auth::{Key, KeyError, Nonce};
pub use frame::{split, FRAME_HEADER, MAX_FRAME};
pub use message::{Message, RefuseReason};

/// Protocol version spoken by this build; a peer with another version is refused.
pub const VERSION: u16 = 1;

/// Magic at the start of a Hello, so a stray client (HTTP, a port scan) is told apart from
/// an old dpfs.
pub const MAGIC: [u8; 4] = *b"DPRV";

/// Largest readable part of a forwarded FUSE request: a 1 MiB WRITE (or a 1 MiB argument
/// area) plus headers and extensions.
pub const MAX_REQUEST: usize = (1 << 20) + (64 << 10);

/// Largest writable capacity a request may announce (a 1 MiB READ or READDIR plus the
/// out-header, with room to spare).
pub const MAX_REPLY: usize = (1 << 20) + (64 << 10);

/// Longest device identity in a Hello.
pub const MAX_IDENTITY: usize = 256;

/// Longest text in a Refused.
pub const MAX_TEXT: usize = 512;

/// Most requests a forwarder may have unacknowledged (its sequence window); the gateway's
/// reply cache never holds more entries than this per session.
pub const WINDOW: u64 = 1 << 16;

/// Why bytes from the peer were rejected. The connection is dropped on any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A frame announced more bytes than the limit.
    #[error("frame of {0} bytes exceeds the limit")]
    TooLong(usize),
    /// A frame with no kind byte.
    #[error("empty frame")]
    Empty,
    /// A kind this side does not accept.
    #[error("unexpected message kind {0}")]
    Kind(u8),
    /// The message ended early or had bytes left over.
    #[error("malformed {0} message")]
    Malformed(&'static str),
    /// A field exceeded its limit.
    #[error("{0} too long ({1} bytes)")]
    Field(&'static str, usize),
    /// A Hello without the magic.
    #[error("not a dpfs forwarder (bad magic)")]
    Magic,
}
