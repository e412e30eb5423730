//! `perf-gate`: compares the instruction counts printed by the gungraun benches with the
//! committed baseline, case by case, and fails on a regression; `--update` rewrites the
//! baseline. `ci/perf-gate.sh` builds the benches, runs them and calls this.
//!
//! Exit status: 0 the gate passed (or the baseline was updated), 1 the gate failed (a case
//! regressed past its limit, has no baseline, or was not measured), 2 the inputs were bad.

use anyhow::Context;
use clap::Parser;
use dpfs_benches::gungraun_output::instruction_counts;
use dpfs_gate::{compare, Baseline, Better, Verdict};
use std::path::PathBuf;
use std::process::ExitCode;

const HEADER: &str = "Instruction counts (callgrind Ir) of the cases in benches/benches/instructions.rs.
[cases] is written by `ci/perf-gate.sh --update`; [limits] is kept by hand.
Counts depend on the toolchain (rust-toolchain.toml), Cargo.lock and valgrind ([meta]):
update them together, in a commit that says why.";

#[derive(Debug, Parser)]
#[command(about = "Instruction-count gate: gungraun results against the committed baseline")]
struct Args {
    /// gungraun's output (`cargo bench --bench instructions -- --output-format=json`).
    #[arg(long, value_name = "FILE")]
    results: PathBuf,
    /// The baseline file.
    #[arg(long, value_name = "FILE", default_value = "benches/baselines/instructions.toml")]
    baseline: PathBuf,
    /// Rewrite the baseline's counts with these results (its limits are kept).
    #[arg(long)]
    update: bool,
    /// The results are a filtered run: baseline cases that were not measured are left out
    /// instead of failing as missing.
    #[arg(long)]
    partial: bool,
    /// What the counts depend on, as KEY=VALUE (e.g. rustc=1.95.0): recorded by --update,
    /// and a difference from the baseline's is pointed out.
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    meta: Vec<(String, String)>,
}

fn parse_meta(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("perf-gate: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(&args.results).with_context(|| format!("{}", args.results.display()))?;
    let counts = instruction_counts(&text).with_context(|| format!("{}", args.results.display()))?;
    let mut baseline =
        if args.update && !args.baseline.exists() { Baseline::default() } else { Baseline::load(&args.baseline)? };
    for (k, v) in &args.meta {
        match baseline.meta.get(k) {
            Some(old) if old != v => {
                println!(
                    "note: {k} is {v}, the baseline was measured with {old}: counts may differ for that reason alone"
                )
            }
            _ => {}
        }
    }
    let mut cases = baseline.cases.clone();
    if args.partial {
        cases.retain(|k, _| counts.contains_key(k));
    }
    let comparison = compare(&cases, &counts, |_| Better::Lower, &baseline.limits());
    println!("{comparison}");
    if args.update {
        if args.partial {
            baseline.cases.extend(counts);
        } else {
            baseline.cases = counts;
        }
        baseline.meta.extend(args.meta.iter().cloned());
        baseline.update_file(&args.baseline, HEADER)?;
        println!("baseline {} updated ({} cases)", args.baseline.display(), baseline.cases.len());
        return Ok(true);
    }
    for row in comparison.with(Verdict::Regressed) {
        println!(
            "REGRESSION {}: {} -> {} instructions ({:+.2}%, limit {}%)",
            row.name,
            row.old.unwrap_or_default(),
            row.new.unwrap_or_default(),
            row.change_pct.unwrap_or_default(),
            row.limit_pct
        );
    }
    if comparison.with(Verdict::Improved).next().is_some() {
        println!("some cases improved past their limit: tighten the baseline with `ci/perf-gate.sh --update`");
    }
    if comparison.with(Verdict::New).next().is_some() || comparison.with(Verdict::Missing).next().is_some() {
        println!("the measured cases and the baseline's differ: run `ci/perf-gate.sh --update` and commit the result");
    }
    let passed = comparison.passed();
    println!("perf gate: {}", if passed { "PASSED" } else { "FAILED" });
    Ok(passed)
}
