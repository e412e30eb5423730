//! Runs the dpfs-sim load generator against a vhost-user-fs socket, e.g.
//! `dpfs-sim-bench --socket-path /tmp/vfs.sock --rw randread --bs 4k --iodepth 16 --runtime 5`.

use clap::Parser;
use dpfs_sim::bench::{run, SweepArgs};

/// Benchmark a vhost-user-fs device (dpfs serve, virtiofsd…) with a simulated guest.
#[derive(Parser)]
#[command(name = "dpfs-sim-bench", version)]
struct Cli {
    #[command(flatten)]
    args: SweepArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One report per point, in order (`dpfs bench` makes a sweep one document and a table).
    for point in cli.args.points() {
        let report = run(&point)?;
        if point.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{report}");
        }
    }
    Ok(())
}
