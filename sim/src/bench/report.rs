//! The benchmark report: throughput, latency percentiles, per-queue request counts.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::fmt;

/// Latency summary in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Fastest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
}

impl Latency {
    /// Summarises a histogram of nanoseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> Latency {
        let us = |ns: u64| ns as f64 / 1000.0;
        Latency {
            min: us(h.min()),
            mean: h.mean() / 1000.0,
            p50: us(h.value_at_quantile(0.50)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        }
    }
}

/// One class of operations (reads, writes, or metadata operations).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassReport {
    /// Completed operations.
    pub ops: u64,
    /// Operations per second.
    pub iops: f64,
    /// Data moved, MiB per second.
    pub mib_s: f64,
    /// Operation latency (submit of the first request to completion of the last).
    pub lat_us: Latency,
}

/// One request queue's share of the work.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueReport {
    /// Virtqueue index (1.. for request queues).
    pub index: usize,
    /// Requests completed during the run.
    pub requests: u64,
    /// Kick eventfd writes.
    pub kicks: u64,
    /// Kicks the device suppressed (EVENT_IDX / NO_NOTIFY).
    pub kicks_suppressed: u64,
    /// Times the driver slept on the call eventfd.
    pub sleeps: u64,
}

/// What was negotiated with the device.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceReport {
    /// Config-space tag, if exposed.
    pub tag: Option<String>,
    /// Queues the device supports (hiprio included).
    pub device_queues: u64,
    /// Request queues in use.
    pub request_queues: usize,
    /// EVENT_IDX in use.
    pub event_idx: bool,
    /// Indirect descriptors in use.
    pub indirect: bool,
    /// FUSE protocol version the device answered with.
    pub fuse: String,
    /// Largest WRITE.
    pub max_write: u32,
}

/// The result of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Workload name.
    pub workload: String,
    /// Block size (data workloads).
    pub bs: u64,
    /// Operations in flight per job.
    pub iodepth: usize,
    /// Jobs (threads).
    pub jobs: usize,
    /// The device.
    pub device: DeviceReport,
    /// Measured seconds.
    pub runtime_s: f64,
    /// Completed operations.
    pub ops: u64,
    /// Operations per second.
    pub iops: f64,
    /// Data MiB per second.
    pub mib_s: f64,
    /// Latency of all operations.
    pub lat_us: Latency,
    /// Reads, if any.
    pub read: Option<ClassReport>,
    /// Writes, if any.
    pub write: Option<ClassReport>,
    /// Metadata operations, if any.
    pub meta: Option<ClassReport>,
    /// Operations the device failed.
    pub errors: u64,
    /// The first error, for diagnosis.
    pub first_error: Option<String>,
    /// Per request queue.
    pub queues: Vec<QueueReport>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.device;
        writeln!(
            f,
            "{}: bs={} iodepth={} jobs={} queues={}/{} event_idx={} indirect={} fuse={} max_write={}",
            self.workload,
            self.bs,
            self.iodepth,
            self.jobs,
            d.request_queues,
            d.device_queues.saturating_sub(1),
            d.event_idx,
            d.indirect,
            d.fuse,
            d.max_write
        )?;
        writeln!(
            f,
            "  ops={} in {:.2}s: {:.0} IOPS, {:.1} MiB/s, errors={}",
            self.ops, self.runtime_s, self.iops, self.mib_s, self.errors
        )?;
        for (name, c) in [("read", &self.read), ("write", &self.write), ("meta", &self.meta)] {
            if let Some(c) = c {
                let l = &c.lat_us;
                writeln!(
                    f,
                    "  {name:5}: {:>9.0} IOPS {:>8.1} MiB/s  lat us: min {:.1} mean {:.1} p50 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}",
                    c.iops, c.mib_s, l.min, l.mean, l.p50, l.p99, l.p999, l.max
                )?;
            }
        }
        for q in &self.queues {
            writeln!(
                f,
                "  queue {}: {} requests, {} kicks ({} suppressed), {} sleeps",
                q.index, q.requests, q.kicks, q.kicks_suppressed, q.sleeps
            )?;
        }
        if let Some(e) = &self.first_error {
            writeln!(f, "  first error: {e}")?;
        }
        Ok(())
    }
}
