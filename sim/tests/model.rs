//! Model-based property tests: random sequences of namespace, data and xattr operations run
//! through the sim client against `dpfs serve --backend mem` and through a small reference
//! model (a tree of nodes), compared op by op (errno equality for failures), then a walk of
//! the whole tree is compared. One daemon per test; every case works in a fresh directory.
//!
//! `PROPTEST_CASES` overrides the case counts; failures shrink to a minimal sequence, which
//! is printed, and their seeds are kept in `tests/model.proptest-regressions`.
//!
//! - `model/ops.rs`: operations, strategies, outcomes;
//! - `model/reference.rs`: the reference model;
//! - `model/sim.rs`: the same operations through the sim client;
//! - `model/linux.rs`: the same operations on a real directory.

mod common;
#[path = "model/linux.rs"]
mod linux;
#[path = "model/ops.rs"]
mod ops;
#[path = "model/reference.rs"]
mod reference;
#[path = "model/sim.rs"]
mod sim;

use common::Daemon;
use dpfs_core::abi::ROOT_ID;
use dpfs_sim::{Client, ClientOptions, DeviceOptions};
use linux::Kernel;
use ops::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestError, TestRunner};
use reference::Model;
use sim::Sim;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Cases per test: `PROPTEST_CASES`, else `default`.
fn config(default: u32) -> Config {
    let mut c = Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        source_file: Some(file!()),
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = default;
    }
    c
}

fn client(socket: &std::path::Path, queues: usize) -> Client {
    let device = DeviceOptions { request_queues: queues, queue_size: 128, ..Default::default() };
    let opts = ClientOptions { device, depth: 4, timeout: Duration::from_secs(5), ..Default::default() };
    Client::connect(socket, &opts).unwrap()
}

static CASE: AtomicU64 = AtomicU64::new(0);

/// A fresh directory for one case below `parent`, with its own reference forgotten.
fn fresh_dir(c: &Client, parent: u64, prefix: &str) -> u64 {
    let name = format!("{prefix}-{}", CASE.fetch_add(1, Ordering::Relaxed));
    c.mkdir(parent, name.as_bytes(), 0o755, 0).unwrap().nodeid
}

/// Every case starts from this tree, so most paths exist: `d0/`, `d0/d1/`, `a` (open in
/// slot 0, with data), `d0/b` (open in slot 1) and `d0/d1/a` (a symlink).
fn seed() -> Vec<Op> {
    vec![
        Op::Mkdir { p: P(0, 2) },
        Op::Mkdir { p: P(1, 3) },
        Op::Create { p: P(0, 0), slot: 0 },
        Op::Write { slot: 0, off: 0, len: 5000, byte: 0xaa },
        Op::Create { p: P(1, 1), slot: 1 },
        Op::Symlink { p: P(2, 0), target: 1 },
    ]
}

/// Runs the seed and `ops` through the sim and the model, op by op.
fn run_case(sim: &mut Sim<'_>, ops: &[Op]) -> Result<Model, TestCaseError> {
    let mut model = Model::new();
    let seed = seed();
    for (i, op) in seed.iter().chain(ops).enumerate() {
        let i = i as isize - seed.len() as isize;
        let want = model.apply(op);
        let got = sim.apply(op).map_err(|e| TestCaseError::fail(format!("op {i} {op:?}: transport: {e}")))?;
        if got != want {
            return Err(TestCaseError::fail(format!("op {i} {op:?}: model {want:?}, dpfs {got:?}")));
        }
        count(op, &got);
    }
    sim.close_all().map_err(TestCaseError::fail)?;
    Ok(model)
}

fn compare_trees(sim: &Sim<'_>, dir: u64, model: &BTreeMap<String, Outcome>) -> Result<(), TestCaseError> {
    let mut got = BTreeMap::new();
    sim.dump(dir, "", &mut got).map_err(TestCaseError::fail)?;
    if &got != model {
        let mut diff = String::new();
        for k in got.keys().chain(model.keys()).collect::<std::collections::BTreeSet<_>>() {
            if got.get(k) != model.get(k) {
                diff += &format!("\n  {k}: model {:?}, dpfs {:?}", model.get(k), got.get(k));
            }
        }
        return Err(TestCaseError::fail(format!("final tree differs:{diff}")));
    }
    Ok(())
}

/// How often each operation ended each way (printed with `--nocapture`, to see what the
/// random sequences reached).
static COVERAGE: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

fn count(op: &Op, o: &Outcome) {
    let name = format!("{op:?}");
    let name = name.split([' ', '{']).next().unwrap_or_default();
    let how = match o {
        Outcome::Err(e) => format!("{}", std::io::Error::from_raw_os_error(*e)),
        Outcome::Skipped => "skipped".into(),
        _ => "ok".into(),
    };
    *COVERAGE.lock().unwrap().entry(format!("{name}: {how}")).or_default() += 1;
}

fn report<T: std::fmt::Debug>(r: Result<(), TestError<T>>) {
    for (k, n) in COVERAGE.lock().unwrap().iter() {
        eprintln!("{n:6}  {k}");
    }
    match r {
        Ok(()) => {}
        Err(TestError::Fail(why, minimal)) => {
            panic!("model test failed: {why}\nminimal failing sequence:\n{minimal:#?}")
        }
        Err(TestError::Abort(why)) => panic!("model test aborted: {why}"),
    }
}

#[test]
fn mem_backend_matches_the_model() {
    let Some(d) = Daemon::dpfs("mem", 1) else { return };
    let c = client(&d.socket, 1);
    let mut runner = TestRunner::new(config(32));
    let r = runner.run(&ops(40), |ops| {
        let base = fresh_dir(&c, ROOT_ID, "case");
        let mut sim = Sim::new(&c, 0, base);
        let model = run_case(&mut sim, &ops)?;
        let mut want = BTreeMap::new();
        model.dump(0, "", &mut want);
        compare_trees(&sim, base, &want)?;
        c.forget(base, 1).map_err(|e| TestCaseError::fail(e.to_string()))?;
        Ok(())
    });
    report(r);
}

#[test]
fn model_matches_linux() {
    // Keeps the model honest: the same sequences on a real directory (no daemon needed).
    let mut runner = TestRunner::new(config(64));
    let r = runner.run(&ops(40), |ops| {
        let mut model = Model::new();
        let mut kernel = Kernel::new();
        for (i, op) in seed().iter().chain(&ops).enumerate() {
            let got = kernel.apply(op, &model);
            let want = model.apply(op);
            if got.as_ref().is_some_and(|g| *g != want) {
                return Err(TestCaseError::fail(format!("op {i} {op:?}: model {want:?}, Linux {got:?}")));
            }
        }
        Ok(())
    });
    report(r);
}

#[test]
fn concurrent_clients_on_two_queues_match_their_models() {
    let Some(d) = Daemon::dpfs("mem", 2) else { return };
    let c = client(&d.socket, 2);
    let mut runner = TestRunner::new(config(16));
    let r = runner.run(&(ops(30), ops(30)), |(a, b)| {
        let case = fresh_dir(&c, ROOT_ID, "pair");
        let dirs = [c.mkdir(case, b"t0", 0o755, 0).unwrap().nodeid, c.mkdir(case, b"t1", 0o755, 0).unwrap().nodeid];
        let results: Vec<Result<Model, TestCaseError>> = std::thread::scope(|s| {
            let handles: Vec<_> = [&a, &b]
                .into_iter()
                .enumerate()
                .map(|(q, ops)| {
                    let c = &c;
                    let base = dirs[q];
                    s.spawn(move || {
                        let mut sim = Sim::new(c, q, base);
                        run_case(&mut sim, ops).map_err(|e| TestCaseError::fail(format!("thread {q}: {e}")))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut want = BTreeMap::new();
        for (q, r) in results.into_iter().enumerate() {
            let model = r?;
            let t = format!("/t{q}");
            want.insert(t.clone(), Outcome::Attr { kind: Kind::Dir, size: 0, nlink: model.nlink(0), target: None });
            model.dump(0, &t, &mut want);
        }
        // The whole tree, through the other queue's ordering.
        compare_trees(&Sim::new(&c, 1, case), case, &want)?;
        for n in [case, dirs[0], dirs[1]] {
            c.forget(n, 1).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        Ok(())
    });
    report(r);
}
