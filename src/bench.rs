//! `dpfs bench`: runs the `dpfs-sim` load generator and prints its report (text or JSON).

use anyhow::Context;
use dpfs_sim::bench::BenchArgs;

/// Runs the benchmark described by `args` and prints the report on stdout.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let report = dpfs_sim::bench::run(args)
        .with_context(|| format!("benchmark against {} failed", args.socket_path.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
