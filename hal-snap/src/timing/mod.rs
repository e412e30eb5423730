//! A deterministic timing model of the DPU path on a virtual clock.
//!
//! - [`profile`]: the hardware and software costs (PCIe DMA latency and bandwidth, the DMA
//!   engine's per-operation cost, doorbell and interrupt, the poll loop, the SNAP state
//!   machine, host-side costs, the Arm factor applied to the backend's instructions); the
//!   built-in `bf2` (calibrated) and `bf3` (derived, no published figures) profiles, or a
//!   TOML file;
//! - [`cost`]: the backend's instructions per operation, from the committed
//!   instruction-count baseline;
//! - [`workload`]: what runs (fio-like jobs, queue depth, block size, tenants, DPU
//!   threads) and the [`Report`];
//! - `des`: the discrete-event simulation itself (servers in FIFO order, pure delays,
//!   a seeded generator for service-time variation: the same inputs give the same figures);
//! - [`published`]: DPFS-null's published figures and the comparison the calibration test
//!   asserts.

pub mod cost;
mod des;
pub mod profile;
pub mod published;
pub mod workload;

pub use cost::BackendCost;
pub use profile::Profile;
pub use workload::{Report, Rw, Workload};

/// Runs `workload` on `profile` with the backend costs `backend` and reports the figures.
pub fn simulate(profile: &Profile, backend: &BackendCost, workload: &Workload) -> Report {
    des::run(profile, backend, workload)
}
