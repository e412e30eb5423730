//! dpfs-nfs4: dpfs's own asynchronous NFSv4.1 client on tokio, with no FUSE in it.
//!
//! Layers, bottom up: [`xdr`] (hostile-input-safe XDR), [`rpc`] (ONC RPC headers and
//! AUTH_SYS), [`record`] (TCP record marking), [`conn`] (one connection, many calls in flight,
//! replies routed by xid), [`ops`] and [`compound`] (NFSv4.1 operations and COMPOUND),
//! [`session`] (the slot table) and [`client`] (client id, session, root, GETATTR).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
// Server replies are hostile input: no panics and no indexing that can panic, outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

mod client;
pub mod compound;
pub mod conn;
pub mod corpus;
mod error;
mod establish;
pub mod ops;
pub mod record;
pub mod rpc;
pub mod session;
pub mod xdr;

pub use client::{Client, ClientConfig, MAX_NCONNECT};
pub use compound::CompoundReply;
pub use conn::{ConnConfig, Connection};
pub use error::{Error, Result};
pub use ops::{Attrs, FileHandle, FileType, Owner, Status};
pub use rpc::Creds;
