//! `dpfs bench --dpu-model bf2|bf3|PROFILE.toml`: the workload on the DPU timing model, in
//! this process and on a virtual clock, so the same command always prints the same figures.
//! Before the figures, a few real requests go through the whole device model (host driver,
//! SNAP or DOCA flow, core, the chosen backend) to check that the configuration works.

use crate::cli::{BackendKind, BenchCmd};
use anyhow::Context;
use clap::Args;
use dpfs_hal_snap::model::exercise::{exercise, Exercise};
use dpfs_hal_snap::timing::published::compare;
use dpfs_hal_snap::timing::{cost, simulate, BackendCost, Profile, Report, Rw, Workload};
use dpfs_hal_snap::Flow;
use dpfs_sim::bench::Workload as SimWorkload;
use serde::Serialize;
use std::sync::Arc;

/// Arguments of the DPU model.
#[derive(Debug, Args)]
pub struct DpuArgs {
    /// Predict the workload on a DPU instead of measuring a socket: bf2 (calibrated to
    /// DPFS-null), bf3 (derived) or a profile TOML file.
    #[arg(long = "dpu-model", value_name = "bf2|bf3|PROFILE.toml")]
    pub dpu_model: Option<String>,
    /// Backend whose request path the DPU runs (its instruction counts are charged); default
    /// null. `--calibration` uses DPFS's own null backend, as published.
    #[arg(long = "dpu-backend", value_enum, requires = "dpu_model")]
    pub backend: Option<BackendKind>,
    /// Devices (tenants), one fio job set each.
    #[arg(long, default_value_t = 1, requires = "dpu_model")]
    pub tenants: usize,
    /// DPU poller threads (devices split over them in contiguous blocks).
    #[arg(long = "dpu-threads", default_value_t = 1, requires = "dpu_model")]
    pub dpu_threads: usize,
    /// Print every published DPFS-null figure next to the model's.
    #[arg(long, requires = "dpu_model")]
    pub calibration: bool,
}

#[derive(Serialize)]
struct Point {
    rw: Rw,
    bs: u64,
    iodepth: usize,
    report: Report,
}

#[derive(Serialize)]
struct CheckOut<'a> {
    bs: u64,
    #[serde(flatten)]
    check: &'a Exercise,
}

#[derive(Serialize)]
struct Doc<'a> {
    profile: &'a str,
    note: &'a str,
    backend: &'a BackendCost,
    flow: Flow,
    tenants: usize,
    jobs_per_tenant: usize,
    dpu_threads: usize,
    checks: Vec<CheckOut<'a>>,
    points: Vec<Point>,
}

/// Runs the model over every point of the sweep.
pub fn run(cmd: &BenchCmd, model: &str) -> anyhow::Result<()> {
    let profile = Profile::load(model)?;
    let args = &cmd.sweep.run;
    if args.json && cmd.dpu.calibration {
        let rows = compare(&profile);
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if cmd.dpu.calibration {
        println!("{:<14} {:<26} {:>12} {:>12} {:>8}", "table", "point", "published", "model", "error");
        for c in compare(&profile) {
            println!(
                "{:<14} {:<26} {:>12.1} {:>12.1} {:>+7.1}%",
                c.point.table, c.point.label, c.point.published, c.model, c.error_pct
            );
        }
        return Ok(());
    }
    let rw = match args.rw {
        SimWorkload::Read | SimWorkload::Randread => Rw::Read,
        SimWorkload::Write | SimWorkload::Randwrite => Rw::Write,
        other => anyhow::bail!("the DPU model runs read and write workloads, not {other:?}"),
    };
    let kind = cmd.dpu.backend.unwrap_or(BackendKind::Null);
    let name = match kind {
        BackendKind::Null => "null",
        BackendKind::Mem => "mem",
        BackendKind::Passthrough => "passthrough",
        // Network backends' cost is mostly the network's, which the model does not know.
        other => anyhow::bail!("the DPU model knows the costs of null, mem and passthrough, not {other:?}"),
    };
    let backend = cost::dpfs_backend(name).context("no instruction counts for this backend")?;
    let flow = if profile.name == "bf3" { Flow::Doca } else { Flow::Snap };
    let mut points = Vec::new();
    let mut checks = Vec::new();
    for &bs in &cmd.sweep.bs {
        // Real requests through the device model: they must work, and the DMA operations
        // they took are what the timing model charges.
        let c = check(kind, flow, rw == Rw::Write, bs as usize)?;
        let dma_ops = Some((c.dma_reads_per_request, c.dma_writes_per_request));
        checks.push((bs, c));
        for &iodepth in &cmd.sweep.iodepth {
            let w = Workload {
                rw,
                bs,
                iodepth,
                jobs_per_tenant: args.jobs.max(1),
                tenants: cmd.dpu.tenants.max(1),
                dpu_threads: cmd.dpu.dpu_threads.max(1),
                shared_host_core: cmd.dpu.tenants <= 1,
                dma_ops,
                ..Workload::paper(rw, bs, iodepth, 1)
            };
            points.push(Point { rw, bs, iodepth, report: simulate(&profile, &backend, &w) });
        }
    }
    if args.json {
        let doc = Doc {
            profile: &profile.name,
            note: &profile.note,
            backend: &backend,
            flow,
            tenants: cmd.dpu.tenants,
            jobs_per_tenant: args.jobs,
            dpu_threads: cmd.dpu.dpu_threads,
            checks: checks.iter().map(|(bs, check)| CheckOut { bs: *bs, check }).collect(),
            points,
        };
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!(
        "DPU model {} ({}), backend {}, {flow:?} flow, {} tenant(s) x {} job(s), {} DPU thread(s)",
        profile.name, profile.note, backend.name, cmd.dpu.tenants, args.jobs, cmd.dpu.dpu_threads
    );
    for (bs, c) in &checks {
        println!(
            "  {}: {} real requests through the device model took {:.1} DMA reads + {:.1} DMA writes each",
            super::size_label(*bs),
            c.requests,
            c.dma_reads_per_request,
            c.dma_writes_per_request
        );
    }
    println!(
        "{:>6} {:>8} {:>12} {:>10} {:>10} {:>10} {:>10}",
        "bs", "iodepth", "IOPS", "MiB/s", "clat µs", "p50 µs", "p99 µs"
    );
    for p in &points {
        let r = &p.report;
        println!(
            "{:>6} {:>8} {:>12.0} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            super::size_label(p.bs),
            p.iodepth,
            r.iops,
            r.mib_s,
            r.clat_mean_us,
            r.clat_p50_us,
            r.clat_p99_us
        );
    }
    println!("  (virtual clock: the same arguments always give these figures)");
    Ok(())
}

/// Real requests through the device model with the chosen backend.
fn check(kind: BackendKind, flow: Flow, write: bool, bs: usize) -> anyhow::Result<Exercise> {
    let dir = std::env::temp_dir().join(format!("dpfs-dpu-model-{}", std::process::id()));
    let fs: Arc<dyn dpfs_core::FileSystem> = match kind {
        BackendKind::Null => Arc::new(dpfs_backend_null::NullFs::new()),
        BackendKind::Mem => Arc::new(dpfs_backend_mem::MemFs::new(Default::default())),
        BackendKind::Passthrough => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let cfg = dpfs_backend_passthrough::PassthroughConfig::new(&dir);
            Arc::new(dpfs_backend_passthrough::PassthroughFs::new(cfg).map_err(|e| anyhow::anyhow!("{e}"))?)
        }
        other => anyhow::bail!("the DPU model runs null, mem and passthrough, not {other:?}"),
    };
    let r = exercise(flow, fs, write, bs, 32).context("requests through the DPU model");
    if kind == BackendKind::Passthrough {
        let _ = std::fs::remove_dir_all(&dir);
    }
    r
}
