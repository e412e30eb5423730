//! The load generator against virtiofsd: every workload runs briefly and cleans up after itself
//! (skipped, with a message, if virtiofsd is not installed).

mod common;

use clap::Parser;
use common::Daemon;
use dpfs_sim::bench::{run, BenchArgs, SweepArgs, Workload};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: SweepArgs,
}

fn args(socket: &std::path::Path, rw: &str) -> BenchArgs {
    let argv = [
        "bench",
        "--socket-path",
        socket.to_str().unwrap(),
        "--rw",
        rw,
        "--bs",
        "8k",
        "--size",
        "256k",
        "--iodepth",
        "4",
        "--runtime",
        "2",
        "--number-ios",
        "300",
        "--files",
        "40",
        "--quiet",
    ];
    Cli::parse_from(argv).args.points().remove(0)
}

#[test]
fn every_workload_runs_and_cleans_up() {
    for rw in ["read", "write", "randread", "randwrite", "randrw", "stat", "create-unlink", "readdir", "open-close"] {
        let Some(d) = Daemon::virtiofsd() else { return };
        let a = args(&d.socket, rw);
        let r = run(&a).unwrap_or_else(|e| panic!("{rw}: {e}"));
        assert_eq!(r.ops, 300, "{rw}: {r}");
        assert_eq!(r.errors, 0, "{rw}: {r}");
        assert_eq!(r.queues.len(), 1);
        assert!(r.queues[0].requests >= 300, "{rw}: {r}");
        if a.rw == Workload::Readdir {
            assert!(r.meta.as_ref().is_some_and(|m| m.lat_us.p50 > 0.0));
        }
        if a.rw.is_io() {
            assert!(r.mib_s > 0.0, "{rw}: {r}");
        }
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"p999\""));
        let left: Vec<_> = std::fs::read_dir(&d.shared).unwrap().collect();
        assert!(left.is_empty(), "{rw} left {left:?}");
    }
}

#[test]
fn jobs_beyond_the_device_queues_are_refused() {
    let Some(d) = Daemon::virtiofsd() else { return };
    let mut a = args(&d.socket, "stat");
    a.jobs = 2;
    a.queues = 2;
    let e = run(&a).unwrap_err();
    assert!(e.to_string().contains("request queue"), "{e}");
}
