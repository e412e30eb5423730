//! dpfs-hal-snap: the BlueField virtio-fs device, and a software model of it that runs
//! (and is tested) on any Linux machine.
//!
//! - [`config`]: DPFS's `[dpfs]`/`[snap_hal]` keys, the devices to create.
//! - [`contract`]: the [`Controller`] a DPU device offers the pollers (DPFS's HAL contract).
//! - [`poller`]: framework-owned poller loops, backend-owned `poll_io`/`poll_mgmt`,
//!   devices partitioned over threads, suspend-and-wait on shutdown.
//! - [`dma`]: the model's DMA engine (copies, counters, injected failures).
//! - [`flow`]: how a chain reaches core on SNAP (everything copied first) and on DOCA
//!   DevEmu (headers delivered, payload moved by DMA tasks); usable in front of any HAL.
//! - [`model`]: the in-process device: host-side driver (sim) over host memory, the
//!   device's virtqueues, host resets.
//! - [`timing`]: the deterministic virtual-clock timing model, its profiles and the
//!   published figures it is calibrated against.
//! - [`discover`]: `dpfs list-emulation-managers` over rdma-core loaded at run time.
//! - `ffi` (features `ffi-snap`, `ffi-doca`): declarations of the vendor APIs and their
//!   adapters onto [`Controller`].
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod config;
pub mod contract;
pub mod discover;
pub mod dma;
#[cfg(any(feature = "ffi-snap", feature = "ffi-doca"))]
pub mod ffi;
pub mod flow;
pub mod model;
pub mod poller;
pub mod timing;

pub use config::{DeviceSpec, SnapHalConfig};
pub use contract::{CompletionStatus, Controller};
pub use dma::{Dma, DmaError};
pub use flow::{DpuFlow, Flow};
pub use poller::{PollConfig, Running, SnapHal};

use dpfs_core::DeviceId;

/// Errors of the DPU HAL.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is wrong; the message names the key.
    #[error("invalid DPU HAL configuration: {0}")]
    Config(String),
    /// No device with this id.
    #[error("no device {0}")]
    NoDevice(DeviceId),
    /// The host side of the model failed.
    #[error("model host: {0}")]
    Host(#[from] dpfs_sim::Error),
    /// Core refused a device.
    #[error(transparent)]
    Register(#[from] dpfs_core::HandlerError),
    /// A request through the device model was not answered as expected.
    #[error("device model: {0}")]
    Model(String),
    /// The vendor library failed.
    #[error("{0}")]
    Vendor(String),
}
