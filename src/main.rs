//! The `dpfs` command: `dpfs serve` runs virtio-fs devices over vhost-user sockets; `dpfs
//! mount` mounts a backend on the host through /dev/fuse; `dpfs bench` drives a device with
//! the simulated guest of `dpfs-sim` (sweeps, repetitions, `--baseline` gates, `--plot`);
//! `dpfs bench-plot` draws saved sweeps of several daemons into one figure.
#![deny(unsafe_op_in_unsafe_fn)]

mod backends;
mod bench;
mod cli;
mod config;
mod gateway;
mod kv;
mod mount;
mod nfs;
mod plot;
mod remote;
mod sandbox;
mod serve;
#[cfg(feature = "ffi-snap")]
mod serve_snap;
mod signals;

use clap::Parser;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn init_logging(level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
}

/// `dpfs list-emulation-managers`: exits 0 when there is simply nothing to list.
fn list_emulation_managers(args: &cli::ListEmulationManagersArgs) -> anyhow::Result<()> {
    let found = dpfs_hal_snap::discover::verbs::discover_here();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        print!("{found}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Serve(args) => {
            init_logging(&args.log_level);
            serve::run(args)
        }
        cli::Command::Mount(args) => {
            init_logging(&args.log_level);
            mount::run(args)
        }
        cli::Command::Bench(args) => {
            // The load generator reports its own warnings on stderr (unless --quiet).
            init_logging("error");
            bench::run(&args)
        }
        cli::Command::ListEmulationManagers(args) => {
            init_logging("warn");
            list_emulation_managers(&args)
        }
        cli::Command::BenchPlot(args) => {
            init_logging("warn");
            plot::run(&args)
        }
        cli::Command::Fsck(args) => {
            init_logging("warn");
            kv::fsck(&args)
        }
        cli::Command::Gateway(args) => {
            init_logging(&args.log_level);
            gateway::run(args)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dpfs: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
