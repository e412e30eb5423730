//! The software model of the DPU's virtio-fs function, in one process.
//!
//! - `bar`: the registers host and device share (status, queue addresses, interrupts);
//! - `device`: the DPU side, a [`Controller`](crate::Controller): fetches chains from the
//!   host's rings, hands them to a handler (put a [`DpuFlow`](crate::DpuFlow) in front of
//!   core to model SNAP or DOCA data movement), returns completions from any thread through
//!   a completion ring drained by the poller, and resets on the host's request;
//! - `host`: the host side: sim's split-virtqueue driver and FUSE queues over a memory
//!   region that stands for host RAM;
//! - [`exercise`]: real requests through all of it, for `dpfs bench --dpu-model`.

mod bar;
mod device;
pub mod exercise;
mod host;

pub use bar::Bar;
pub use device::{DeviceCounters, DeviceProbe, ModelDevice};
pub use host::{HostOptions, ModelHost};
