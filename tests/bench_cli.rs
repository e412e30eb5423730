//! `dpfs bench` as a gate and a plotter, run as a user would: the built `dpfs` binary
//! against `dpfs serve --backend null` on a temporary socket.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const DPFS: &str = env!("CARGO_BIN_EXE_dpfs");

/// `dpfs serve --backend null`, killed on drop.
struct Null {
    child: Child,
    socket: PathBuf,
}

impl Null {
    fn start(dir: &Path) -> Null {
        let socket = dir.join("null.sock");
        let child = Command::new(DPFS)
            .arg("serve")
            .arg("--socket-path")
            .arg(&socket)
            .args(["--backend", "null", "--log-level", "error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start dpfs serve");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "dpfs serve did not create {}", socket.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        Null { child, socket }
    }

    /// `dpfs bench` against this daemon: a short, op-bounded 4 KiB randread plus `extra`.
    fn bench(&self, extra: &[&str]) -> Output {
        Command::new(DPFS)
            .arg("bench")
            .arg("--socket-path")
            .arg(&self.socket)
            .args(["--rw", "randread", "--size", "1m", "--runtime", "5", "--number-ios", "300", "--quiet"])
            .args(extra)
            .output()
            .expect("run dpfs bench")
    }
}

impl Drop for Null {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_doctored_baseline_fails_the_gate_and_the_run_itself_passes() {
    let dir = tempfile::tempdir().unwrap();
    let d = Null::start(dir.path());
    let saved = d.bench(&["--iodepth", "4", "--json"]);
    assert!(saved.status.success(), "{}", text(&saved));
    let base = dir.path().join("base.json");
    std::fs::write(&base, &saved.stdout).unwrap();

    // The same report as its own baseline passes under a limit no wall-clock noise reaches.
    let same = d.bench(&["--iodepth", "4", "--baseline", base.to_str().unwrap(), "--max-regression", "100000"]);
    assert!(same.status.success(), "{}", text(&same));
    assert!(String::from_utf8_lossy(&same.stdout).contains("read.iops"), "{}", text(&same));

    // A baseline whose reads were ten times faster: read.iops regressed, exit status 1.
    let mut doc: serde_json::Value = serde_json::from_slice(&saved.stdout).unwrap();
    let iops = doc["read"]["iops"].as_f64().unwrap();
    doc["read"]["iops"] = (iops * 10.0).into();
    let doctored = dir.path().join("doctored.json");
    std::fs::write(&doctored, doc.to_string()).unwrap();
    let run = d.bench(&["--iodepth", "4", "--baseline", doctored.to_str().unwrap(), "--max-regression", "15"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let out = String::from_utf8_lossy(&run.stdout);
    let row = out.lines().find(|l| l.starts_with("read.iops")).unwrap_or_else(|| panic!("{}", text(&run)));
    assert!(row.contains("REGRESSED"), "{}", text(&run));
    assert!(String::from_utf8_lossy(&run.stderr).contains("read.iops"), "{}", text(&run));
}

#[test]
fn a_baseline_of_another_workload_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = Null::start(dir.path());
    let saved = d.bench(&["--iodepth", "2", "--json"]);
    assert!(saved.status.success(), "{}", text(&saved));
    let base = dir.path().join("qd2.json");
    std::fs::write(&base, &saved.stdout).unwrap();
    let run = d.bench(&["--iodepth", "8", "--baseline", base.to_str().unwrap()]);
    assert!(!run.status.success(), "{}", text(&run));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("--iodepth 2 (baseline) vs 8 (this run)"), "{}", text(&run));
}

#[test]
fn a_sweep_is_one_document_a_table_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let d = Null::start(dir.path());
    let svg = dir.path().join("sweep.svg");
    let sweep = d.bench(&["--iodepth", "1,2", "--bs", "4k,8k", "--json", "--plot", svg.to_str().unwrap()]);
    assert!(sweep.status.success(), "{}", text(&sweep));
    let doc: serde_json::Value = serde_json::from_slice(&sweep.stdout).unwrap();
    let points = doc["points"].as_array().unwrap();
    let shape: Vec<(u64, u64)> =
        points.iter().map(|p| (p["bs"].as_u64().unwrap(), p["iodepth"].as_u64().unwrap())).collect();
    assert_eq!(shape, [(4096, 1), (4096, 2), (8192, 1), (8192, 2)]);
    assert_eq!(doc["repetitions"], 1);
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.starts_with("<svg") && plot.contains("bs=4k") && plot.contains("bs=8k"), "{plot}");

    let table = d.bench(&["--iodepth", "1,2", "--repeat", "2"]);
    assert!(table.status.success(), "{}", text(&table));
    let out = String::from_utf8_lossy(&table.stdout);
    assert_eq!(out.lines().filter(|l| l.trim_start().starts_with("4k")).count(), 2, "{out}");

    let saved = dir.path().join("sweep.json");
    std::fs::write(&saved, &sweep.stdout).unwrap();
    let (both, page) = (dir.path().join("both.svg"), dir.path().join("index.html"));
    let s = saved.to_str().unwrap();
    let plot = Command::new(DPFS)
        .args(["bench-plot", "--out", both.to_str().unwrap(), "--html", page.to_str().unwrap()])
        .args([format!("alpha={s}"), format!("beta={s}")])
        .output()
        .unwrap();
    assert!(plot.status.success(), "{}", text(&plot));
    let svg = std::fs::read_to_string(&both).unwrap();
    assert!(svg.contains("alpha bs=4k") && svg.contains("beta bs=8k"), "{svg}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("src=\"both.svg\"") && html.matches("<tr><td>alpha</td>").count() == 4, "{html}");
}
