//! `dpfs bench`: runs the `dpfs-sim` load generator at each point of a sweep (comma lists in
//! `--bs` and `--iodepth`), `--repeat` times each (the median of every figure is reported),
//! prints a report or a table (or `--json`), plots (`--plot`) and compares with a saved
//! report (`--baseline`).

mod cases;
pub mod doc;
pub mod dpu;
mod median;
mod table;

pub use cases::size_label;

use crate::cli::BenchCmd;
use anyhow::Context;
use doc::{PointOut, Saved, SingleOut, SweepOut};
use dpfs_sim::bench::Report;

/// Runs the benchmark described by `cmd`; an error (so a non-zero exit) if a figure
/// regressed beyond `--max-regression` against `--baseline`.
pub fn run(cmd: &BenchCmd) -> anyhow::Result<()> {
    if let Some(model) = &cmd.dpu.dpu_model {
        return dpu::run(cmd, model);
    }
    let quiet = cmd.sweep.run.quiet;
    // A baseline that cannot be read or matched is refused before minutes of measuring.
    let baseline = cmd.baseline.as_deref().map(Saved::load).transpose()?;
    let params = doc::params(&cmd.sweep);
    if let (Some(b), Some(path)) = (&baseline, &cmd.baseline) {
        let diff = doc::mismatches(&b.params, &params);
        anyhow::ensure!(
            diff.is_empty(),
            "baseline {} was measured with different workload parameters: {}; refusing to compare",
            path.display(),
            diff.join(", ")
        );
    }
    let reports = measure(cmd)?;
    let json = document(cmd, &params, &reports)?;
    let saved = Saved::parse(&json).context("reading back this run's report")?;
    if cmd.sweep.run.json {
        println!("{json}");
    } else if cmd.sweep.is_sweep() {
        print!("{}", table::sweep_table(&saved.points));
    } else if let Some(r) = reports.first() {
        print!("{r}");
        if cmd.repeat > 1 {
            println!("  (every figure is the median of {} runs)", cmd.repeat);
        }
    }
    if let Some(path) = &cmd.plot {
        let title = format!("dpfs bench {} against {}", params["rw"], cmd.sweep.run.socket_path.display());
        crate::plot::svg::draw(path, &title, &crate::plot::series("", &saved))?;
        if !quiet {
            eprintln!("wrote {}", path.display());
        }
    }
    if let (Some(b), Some(path)) = (&baseline, &cmd.baseline) {
        let c = cases::compare_docs(b, &saved, cmd.max_regression)
            .map_err(|e| anyhow::anyhow!("cannot compare with baseline {}: {e}", path.display()))?;
        let text = format!("comparison with baseline {}:\n{c}", path.display());
        // Keep stdout a JSON document when one was asked for.
        if cmd.sweep.run.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
        if !c.passed() {
            let failed: Vec<&str> = c.rows.iter().filter(|r| r.verdict.fails()).map(|r| r.name.as_str()).collect();
            anyhow::bail!(
                "performance gate failed against {} (limit {}%): {}",
                path.display(),
                cmd.max_regression,
                failed.join(", ")
            );
        }
    }
    Ok(())
}

/// Runs every point `--repeat` times; one (median) report per point.
fn measure(cmd: &BenchCmd) -> anyhow::Result<Vec<Report>> {
    let points = cmd.sweep.points();
    let (quiet, many) = (cmd.sweep.run.quiet, cmd.sweep.is_sweep() || cmd.repeat > 1);
    let mut out = Vec::with_capacity(points.len());
    for (i, point) in points.iter().enumerate() {
        let mut point = point.clone();
        // Per-second progress only for a lone run; sweeps get one line per point.
        point.quiet |= many;
        let mut reps = Vec::new();
        for _ in 0..cmd.repeat {
            let r = dpfs_sim::bench::run(&point).with_context(|| {
                format!(
                    "benchmark against {} failed (bs {}, iodepth {})",
                    point.socket_path.display(),
                    size_label(point.bs),
                    point.iodepth
                )
            })?;
            reps.push(r);
        }
        let r = median::median_report(&reps).context("no repetitions")?;
        if many && !quiet {
            let runs = if cmd.repeat > 1 { format!(" (median of {})", cmd.repeat) } else { String::new() };
            eprintln!(
                "[{}/{}] {} bs={} qd={}: {:.0} IOPS, {:.1} MiB/s, p99 {:.1} us{runs}",
                i + 1,
                points.len(),
                r.workload,
                size_label(r.bs),
                r.iodepth,
                r.iops,
                r.mib_s,
                r.lat_us.p99
            );
        }
        out.push(r);
    }
    Ok(out)
}

/// The `--json` document: today's single-report shape for one point, a sweep otherwise.
fn document(cmd: &BenchCmd, params: &doc::Params, reports: &[Report]) -> anyhow::Result<String> {
    let point = |report| PointOut { report, repetitions: cmd.repeat };
    let text = if cmd.sweep.is_sweep() {
        let points = reports.iter().map(point).collect();
        serde_json::to_string_pretty(&SweepOut { params, repetitions: cmd.repeat, points })?
    } else {
        let r = reports.first().context("no report")?;
        serde_json::to_string_pretty(&SingleOut { point: point(r), params })?
    };
    Ok(text)
}
