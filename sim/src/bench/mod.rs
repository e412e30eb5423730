//! A fio-like load generator over the [`Client`]: data workloads (read, write, randread,
//! randwrite, randrw) and metadata workloads (stat, create-unlink, readdir, open-close), with
//! IOPS, MiB/s, latency percentiles and per-queue request counts.

mod args;
mod job;
mod op;
mod report;
mod setup;

pub use args::{parse_size, BenchArgs, SegmentationArg, SweepArgs, Workload};
pub use report::{ClassReport, DeviceReport, Latency, QueueReport, Report};

use crate::client::{Client, ClientOptions};
use crate::error::{Error, Result};
use crate::frontend::DeviceOptions;
use crate::layout::Segmentation;
use hdrhistogram::Histogram;
use job::{run_job, JobPlan, JobStats};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Connects to the device, prepares each job's files, runs the workload and reports.
pub fn run(args: &BenchArgs) -> Result<Report> {
    check(args)?;
    let max_payload = if args.rw.needs_data() { (args.bs as usize).max(setup::FILL_CHUNK) } else { args.bs as usize };
    let opts = ClientOptions {
        device: DeviceOptions {
            request_queues: args.queues.max(args.jobs),
            queue_size: args.queue_size,
            event_idx: !args.no_event_idx,
            indirect: !args.no_indirect,
        },
        depth: args.iodepth,
        max_payload,
        max_reply: (args.bs as usize).max(4096),
        segmentation: match args.segmentation {
            SegmentationArg::Linux => Segmentation::Linux,
            SegmentationArg::Contiguous => Segmentation::Contiguous,
        },
        ..ClientOptions::default()
    };
    let client = Client::connect(&args.socket_path, &opts)?;
    let nq = client.request_queues();
    if args.jobs > nq {
        return Err(Error::BadArgs(format!(
            "{} jobs but the device gave {nq} request queue(s); each job needs its own",
            args.jobs
        )));
    }
    if args.rw.is_io() && args.bs as usize > client.max_write() {
        return Err(Error::BadArgs(format!("bs {} exceeds the device's max_write {}", args.bs, client.max_write())));
    }
    if args.busy_poll {
        for i in 0..nq {
            client.queue(i).set_busy_poll(true)?;
        }
    }
    let targets = (0..args.jobs).map(|j| setup::prepare(&client, args, j)).collect::<Result<Vec<_>>>()?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.runtime.max(0.0));
    let plans: Vec<JobPlan> = (0..args.jobs)
        .map(|j| JobPlan {
            workload: args.rw,
            iodepth: args.iodepth.max(1),
            queues: (0..nq).filter(|q| q % args.jobs == j).collect(),
            deadline,
            max_ops: args.number_ios.unwrap_or(u64::MAX),
            blocks: (args.size / args.bs.max(1)).max(1),
            bs: args.bs,
            rwmixread: args.rwmixread.min(100),
            seed: 0x9e37_79b9_7f4a_7c15 ^ (j as u64 + 1).wrapping_mul(0x2545_f491),
        })
        .collect();
    let progress: Vec<AtomicU64> = (0..args.jobs).map(|_| AtomicU64::new(0)).collect();
    let finished = AtomicUsize::new(0);
    let results: Vec<Result<JobStats>> = std::thread::scope(|s| {
        let handles: Vec<_> = plans
            .iter()
            .zip(&targets)
            .zip(&progress)
            .map(|((plan, target), prog)| {
                let (client, finished) = (&client, &finished);
                s.spawn(move || {
                    let r = run_job(client, plan, target, prog);
                    finished.fetch_add(1, Ordering::Release);
                    r
                })
            })
            .collect();
        if !args.quiet {
            report_progress(args, &progress, &finished, start);
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::Protocol("bench job panicked".into()))))
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let stats = results.into_iter().collect::<Result<Vec<_>>>()?;
    for (j, t) in targets.iter().enumerate() {
        // Best effort: a device that cannot release or unlink (the null backend) still
        // gets its report.
        if let Err(e) = setup::cleanup(&client, args, j, t) {
            tracing::warn!("cleanup of job {j} failed: {e}");
            if !args.quiet {
                eprintln!("warning: cleanup of job {j}: {e}");
            }
        }
    }
    summarize(args, &client, &stats, elapsed)
}

fn check(args: &BenchArgs) -> Result<()> {
    let bad = |m: String| Err(Error::BadArgs(m));
    if args.jobs == 0 || args.iodepth == 0 || args.queues == 0 {
        return bad("jobs, iodepth and queues must be at least 1".into());
    }
    if args.rw.is_io() && (args.bs == 0 || args.size < args.bs) {
        return bad(format!("need 0 < bs ({}) ≤ size ({})", args.bs, args.size));
    }
    if args.iodepth > args.queue_size as usize {
        return bad(format!("iodepth {} exceeds queue size {}", args.iodepth, args.queue_size));
    }
    Ok(())
}

fn report_progress(args: &BenchArgs, progress: &[AtomicU64], finished: &AtomicUsize, start: Instant) {
    let mut last = 0u64;
    let mut tick = start;
    while finished.load(Ordering::Acquire) < progress.len() {
        std::thread::sleep(Duration::from_millis(50));
        if tick.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let dt = tick.elapsed().as_secs_f64();
        tick = Instant::now();
        let total: u64 = progress.iter().map(|p| p.load(Ordering::Relaxed)).sum();
        let iops = (total - last) as f64 / dt;
        last = total;
        let mib =
            if args.rw.is_io() { format!(", {:.1} MiB/s", iops * args.bs as f64 / 1048576.0) } else { String::new() };
        eprintln!("[{:>4.0}s] {:>9.0} IOPS{mib}", start.elapsed().as_secs_f64(), iops);
    }
}

fn summarize(args: &BenchArgs, client: &Client, stats: &[JobStats], elapsed: f64) -> Result<Report> {
    let new = || Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| Error::BadArgs(e.to_string()));
    let mut classes = [new()?, new()?, new()?];
    let mut all = new()?;
    let mut bytes = [0u64; 3];
    for s in stats {
        for (i, h) in s.hist.iter().enumerate() {
            classes[i].add(h).map_err(|e| Error::BadArgs(e.to_string()))?;
            all.add(h).map_err(|e| Error::BadArgs(e.to_string()))?;
            bytes[i] += s.bytes[i];
        }
    }
    let mib = |b: u64| b as f64 / 1048576.0 / elapsed.max(1e-9);
    let class = |i: usize| {
        let h: &Histogram<u64> = &classes[i];
        (!h.is_empty()).then(|| ClassReport {
            ops: h.len(),
            iops: h.len() as f64 / elapsed.max(1e-9),
            mib_s: mib(bytes[i]),
            lat_us: Latency::from_histogram(h),
        })
    };
    let mut queues: Vec<QueueReport> = stats
        .iter()
        .flat_map(|s| s.queues.iter())
        .map(|&(index, requests, c)| QueueReport {
            index,
            requests,
            kicks: c.kicks,
            kicks_suppressed: c.kicks_suppressed,
            sleeps: c.sleeps,
        })
        .collect();
    queues.sort_by_key(|q| q.index);
    let n = client.negotiated();
    let init = client.init_out();
    Ok(Report {
        workload: format!("{:?}", args.rw).to_lowercase(),
        bs: args.bs,
        iodepth: args.iodepth,
        jobs: args.jobs,
        device: DeviceReport {
            tag: n.tag.clone(),
            device_queues: n.device_queues,
            request_queues: n.request_queues,
            event_idx: n.ring.event_idx,
            indirect: n.ring.indirect,
            fuse: format!("{}.{}", init.major, init.minor),
            max_write: init.max_write,
        },
        runtime_s: elapsed,
        ops: all.len(),
        iops: all.len() as f64 / elapsed.max(1e-9),
        mib_s: mib(bytes.iter().sum()),
        lat_us: if !all.is_empty() { Latency::from_histogram(&all) } else { Latency::default() },
        read: class(0),
        write: class(1),
        meta: class(2),
        errors: stats.iter().map(|s| s.errors).sum(),
        first_error: stats.iter().find_map(|s| s.first_error.clone()),
        queues,
    })
}
