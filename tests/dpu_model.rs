//! `dpfs bench --dpu-model` as a user runs it: the same arguments print the same figures,
//! the model's prediction for dpfs's backends orders as their costs do, bad profiles are
//! refused with a message naming the problem.

use std::process::{Command, Output};

const DPFS: &str = env!("CARGO_BIN_EXE_dpfs");

fn dpfs(args: &[&str]) -> Output {
    Command::new(DPFS).args(args).output().expect("run dpfs")
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = dpfs(args);
    assert!(out.status.success(), "dpfs {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("a JSON document")
}

const RUN: [&str; 9] = ["bench", "--dpu-model", "bf2", "--rw", "randread", "--bs", "4k,64k", "--iodepth", "1,32"];

#[test]
fn two_runs_print_identical_figures() {
    let a = dpfs(&RUN);
    let b = dpfs(&RUN);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(a.stdout, b.stdout);
    let text = String::from_utf8(a.stdout).unwrap();
    assert!(
        text.contains("4k: 32 real requests through the device model took 2.0 DMA reads + 2.0 DMA writes each"),
        "{text}"
    );
    assert!(
        text.contains("64k: 32 real requests through the device model took 2.0 DMA reads + 17.0 DMA writes each"),
        "{text}"
    );
    let rows = text.lines().filter(|l| l.split_whitespace().count() == 7 && !l.contains("bs"));
    assert_eq!(rows.count(), 4, "one row per (bs, iodepth): {text}");
}

fn iops(doc: &serde_json::Value, i: usize) -> f64 {
    doc["points"][i]["report"]["iops"].as_f64().expect("iops")
}

#[test]
fn backends_and_profiles_order_as_their_costs() {
    let args = |model: &'static str, backend: &'static str| {
        [
            "bench",
            "--dpu-model",
            model,
            "--dpu-backend",
            backend,
            "--rw",
            "randwrite",
            "--bs",
            "4k",
            "--iodepth",
            "1,128",
            "--json",
        ]
    };
    let null = json(&args("bf2", "null"));
    let mem = json(&args("bf2", "mem"));
    let pt = json(&args("bf2", "passthrough"));
    let bf3 = json(&args("bf3", "null"));
    assert_eq!(null["flow"], "snap");
    assert_eq!(bf3["flow"], "doca");
    // Every request really went through the model: a 4 KiB WRITE moves its payload.
    assert!(mem["checks"][0]["dma_bytes_per_request"].as_f64().unwrap() >= 4096.0);
    // DOCA delivers the headers in one DMA: fewer operations than SNAP's one per descriptor.
    let reads = |d: &serde_json::Value| d["checks"][0]["dma_reads_per_request"].as_f64().unwrap();
    assert!(reads(&bf3) < reads(&null), "{} vs {}", reads(&bf3), reads(&null));
    // QD1 latency grows with the backend's cost; bf3 is faster than bf2.
    let clat = |d: &serde_json::Value| d["points"][0]["report"]["clat_mean_us"].as_f64().unwrap();
    assert!(clat(&null) < clat(&mem) && clat(&mem) < clat(&pt), "{} {} {}", clat(&null), clat(&mem), clat(&pt));
    assert!(clat(&bf3) < clat(&null));
    assert!(iops(&null, 1) > iops(&null, 0) * 2.0, "QD128 pipelines");
}

#[test]
fn a_profile_file_is_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let bf2 = include_str!("../hal-snap/profiles/bf2.toml");
    let slow = dir.path().join("slow.toml");
    std::fs::write(&slow, bf2.replace("fixed_read_ns = 4100", "fixed_read_ns = 104100")).unwrap();
    let p = slow.to_str().unwrap();
    let fast = json(&["bench", "--dpu-model", "bf2", "--rw", "randread", "--json"]);
    let slow_doc = json(&["bench", "--dpu-model", p, "--rw", "randread", "--json"]);
    let clat = |d: &serde_json::Value| d["points"][0]["report"]["clat_mean_us"].as_f64().unwrap();
    assert!((clat(&slow_doc) - clat(&fast) - 100.0).abs() < 5.0, "{} vs {}", clat(&slow_doc), clat(&fast));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, bf2.replace("link_in_gbs = 16.1", "link_in_gbs = -1.0")).unwrap();
    let out = dpfs(&["bench", "--dpu-model", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("link_in_gbs"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = dpfs(&["bench", "--dpu-model", "bf9"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not bf2, bf3 or a readable file"));
}

#[test]
fn calibration_table_lists_every_published_point() {
    let out = dpfs(&["bench", "--dpu-model", "bf2", "--calibration"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("read 4k QD1 clat") && text.contains("T4/MT8 read 4k QD128"), "{text}");
    assert_eq!(text.lines().count(), 1 + 86);
}

/// Without RDMA (this machine, CI): one line, exit 0; `--json` says why in a document.
#[test]
fn list_emulation_managers_without_rdma_says_so_in_one_line() {
    let out = dpfs(&["list-emulation-managers"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    if std::path::Path::new("/sys/class/infiniband").exists() {
        return; // a machine with RDMA devices lists them instead
    }
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("no RDMA"), "{text}");
    let doc = json(&["list-emulation-managers", "--json"]);
    assert!(doc["no_rdma"]["kind"].is_string(), "{doc}");
    assert_eq!(doc["devices"].as_array().map(Vec::len), Some(0));
}
