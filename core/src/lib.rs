//! dpfs core: the FUSE protocol engine between a HAL and a backend.
//!
//! A HAL hands over [`Request`]s (segments of guest memory plus a [`Completion`]); the
//! [`Dispatcher`] finds the device's [`Device`], whose session parses and gates the request
//! and calls the backend's [`FileSystem`] method with a typed reply token; the token encodes
//! the reply into the request's writable segments and completes it.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
// Guest input must never panic the daemon: no unwrap/expect/panic outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod abi;
mod answer;
pub mod corpus;
mod device;
mod errno;
pub mod fs;
pub mod guest;
mod handler;
pub mod hold;
pub mod local;
pub mod metrics;
pub mod operation;
pub mod parse;
pub mod posix;
pub mod reply;
mod request;
pub mod script;
pub mod segments;
mod session;
pub mod thread_role;
pub mod xattr;

pub use device::Device;
pub use errno::Errno;
pub use fs::FileSystem;
pub use handler::{Dispatcher, Handler, HandlerError};
pub use request::{owned_request, Completion, DeviceId, OwnedReply, Request};
pub use session::{Session, SessionConfig, DEFAULT_WANT};
pub use thread_role::ThreadRole;
