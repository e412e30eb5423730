//! What the timing model runs, and what it reports.

use serde::Serialize;

/// Direction of the data workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rw {
    /// Random reads (fio randread).
    Read,
    /// Random writes (fio randwrite).
    Write,
}

/// A fio-like load on the DPU: `tenants` devices, `jobs_per_tenant` jobs each with
/// `iodepth` requests in flight, `dpu_threads` pollers over the devices.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Workload {
    /// Read or write.
    pub rw: Rw,
    /// Block size in bytes.
    pub bs: u64,
    /// Requests in flight per job.
    pub iodepth: usize,
    /// Jobs per tenant (fio `numjobs`).
    pub jobs_per_tenant: usize,
    /// Devices (PFs), one tenant each.
    pub tenants: usize,
    /// DPU poller threads; devices are split over them as the HAL splits them.
    pub dpu_threads: usize,
    /// True: every job of every tenant shares one host core (DPFS's paper runs pin fio to
    /// one core); false: one host core per tenant (the thesis' multi-tenant runs).
    pub shared_host_core: bool,
    /// Requests measured (after a warm-up of as many).
    pub requests: u64,
    /// Seed of the service-time variation.
    pub seed: u64,
    /// DMA operations one request takes (host-to-DPU, DPU-to-host, the completion not
    /// counted), as measured by running requests through the device model's flow; `None`
    /// uses SNAP's structure (header and arguments, one per data descriptor, the status).
    pub dma_ops: Option<(f64, f64)>,
}

impl Workload {
    /// One tenant, one DPU thread, `jobs` jobs on one host core (DPFS's paper setup).
    pub fn paper(rw: Rw, bs: u64, iodepth: usize, jobs: usize) -> Workload {
        Workload {
            rw,
            bs,
            iodepth,
            jobs_per_tenant: jobs,
            tenants: 1,
            dpu_threads: 1,
            shared_host_core: true,
            requests: 20_000,
            seed: 1,
            dma_ops: None,
        }
    }

    /// `tenants` devices over `threads` DPU threads, one job and one host core per tenant
    /// (the thesis' multi-tenant setup).
    pub fn tenants(rw: Rw, bs: u64, iodepth: usize, tenants: usize, threads: usize) -> Workload {
        Workload { tenants, dpu_threads: threads, shared_host_core: false, ..Workload::paper(rw, bs, iodepth, 1) }
    }
}

/// Figures on the virtual clock.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Completed requests per second, all tenants together.
    pub iops: f64,
    /// MiB/s, all tenants together.
    pub mib_s: f64,
    /// Mean completion latency (submission done to completion reaped), µs.
    pub clat_mean_us: f64,
    /// Median completion latency, µs.
    pub clat_p50_us: f64,
    /// 99th percentile completion latency, µs.
    pub clat_p99_us: f64,
    /// Busy fraction of the busiest DPU poller thread.
    pub dpu_thread_util: f64,
    /// Busy fraction of the DMA engine.
    pub dma_util: f64,
    /// Busy fraction of the busiest host core.
    pub host_core_util: f64,
}
