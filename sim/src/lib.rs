//! dpfs-sim: a software guest for virtio-fs devices.
//!
//! It speaks the real vhost-user protocol and the real virtio-fs/FUSE protocol, so any
//! vhost-user-fs daemon (dpfs's or virtiofsd) is exercised and benchmarked with no VM and no
//! kernel. From the bottom up:
//!
//! - [`memory`]: guest memory in a memfd, shared with the device in `SET_MEM_TABLE`;
//! - [`virtq`]: the driver side of a split virtqueue (descriptors, rings, EVENT_IDX,
//!   indirect tables, kick/call eventfds);
//! - [`frontend`]: the vhost-user frontend that negotiates and starts the rings;
//! - [`layout`], [`request`], [`queue`]: FUSE requests laid out in descriptor chains,
//!   pipelined per queue with tokens;
//! - [`client`], [`ops`], [`reply`]: INIT and typed FUSE operations with decoded replies;
//! - [`bench`]: a fio-like load generator.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod bench;
pub mod client;
mod error;
pub mod frontend;
pub mod layout;
pub mod memory;
pub mod ops;
pub mod queue;
pub mod reply;
pub mod request;
pub mod virtq;

pub use client::{Client, ClientOptions};
pub use error::{Error, Result};
pub use frontend::{DeviceOptions, Negotiated, VhostUserDevice};
pub use layout::Segmentation;
pub use queue::{Caller, FsQueue, RawArea, RawCompletion, Status, Token};
pub use reply::Reply;
pub use request::Request;
pub use virtq::RawDesc;
