//! What the dpfs benches share.
//!
//! - [`prepared`]: requests encoded once and fired many times at a core `Device`, so a bench
//!   measures decode → dispatch → backend → encode → completion and nothing else; warmed-up
//!   [`Case`]s for the instruction-count gate.
//! - [`fixture`]: the backends (null, mem, passthrough on tmpfs) with the same tree made
//!   through FUSE requests, and the request of each case.
//! - [`ring`]: the vhost-user HAL's chain → request → used-ring path on an in-memory queue,
//!   driven by sim's virtqueue driver, without threads or sockets.
//! - [`gungraun_output`] reads what the instruction-count benches print, for the gate
//!   (`perf-gate`, run by `ci/perf-gate.sh`).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod fixture;
pub mod gungraun_output;
pub mod prepared;
pub mod ring;

pub use fixture::{case, Backend, Op};
pub use prepared::{device, Case, Prepared, COMPLETED_BYTES};
pub use ring::Ring;
