//! Round trips and multi-queue load through `dpfs serve` (skipped, with a message, if the
//! dpfs binary has not been built).

mod common;

use common::Daemon;
use dpfs_core::abi::ROOT_ID;
use dpfs_sim::bench::{run, BenchArgs, SegmentationArg, Workload};
use dpfs_sim::{Client, ClientOptions, DeviceOptions};

#[test]
fn mem_backend_round_trip_on_four_queues() {
    let Some(d) = Daemon::dpfs("mem", 4) else { return };
    let device = DeviceOptions { request_queues: 4, ..Default::default() };
    let c = Client::connect(&d.socket, &ClientOptions { device, ..Default::default() }).unwrap();
    assert_eq!(c.request_queues(), 4);
    assert_eq!(c.negotiated().tag.as_deref(), Some("dpfs"));
    assert_eq!(c.negotiated().config_request_queues, Some(4));
    assert_eq!(c.init_out().minor, 45);
    let (e, o) = c.create(ROOT_ID, b"f", libc::O_RDWR as u32, 0o644).unwrap();
    // Consecutive calls go round robin over the four queues.
    for i in 0..8u64 {
        assert_eq!(c.write(e.nodeid, o.fh, i * 5, b"hello").unwrap(), 5);
    }
    assert_eq!(c.read(e.nodeid, o.fh, 35, 100).unwrap(), b"hello");
    for i in 0..4 {
        assert!(c.queue(i).completed() >= 2, "queue {i} served nothing");
    }
    assert!(c.list_dir(ROOT_ID).unwrap().iter().any(|d| d.name == b"f"));
    c.release(e.nodeid, o.fh, 0).unwrap();
    c.unlink(ROOT_ID, b"f").unwrap();
    c.forget(e.nodeid, 1).unwrap();
}

#[test]
fn bench_two_jobs_over_four_queues() {
    let Some(d) = Daemon::dpfs("mem", 4) else { return };
    let args = BenchArgs {
        socket_path: d.socket.clone(),
        rw: Workload::Randrw,
        bs: 4096,
        iodepth: 8,
        queues: 4,
        jobs: 2,
        size: 1 << 20,
        runtime: 2.0,
        number_ios: Some(2000),
        rwmixread: 50,
        files: 10,
        queue_size: 256,
        segmentation: SegmentationArg::Linux,
        no_event_idx: false,
        no_indirect: false,
        busy_poll: false,
        json: false,
        quiet: true,
        keep: false,
    };
    let r = run(&args).unwrap();
    assert_eq!((r.ops, r.errors), (4000, 0), "{r}");
    assert_eq!(r.queues.len(), 4, "{r}");
    assert!(r.queues.iter().all(|q| q.requests > 0), "{r}");
    assert!(r.read.is_some() && r.write.is_some(), "{r}");
}
