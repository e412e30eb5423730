//! One benchmark thread: keeps `iodepth` operations in flight over the request queues it
//! owns until the deadline or its operation budget, recording latencies.

use super::args::Workload;
use super::op::{Op, Outcome, Target};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::queue::{wait_any, FsQueue, Token};
use crate::virtq::QueueCounters;
use dpfs_core::abi::ForgetOne;
use dpfs_core::operation::{item_bytes, item_list, Operation};
use hdrhistogram::Histogram;
use parking_lot::MutexGuard;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a job waits for any completion before declaring the device stuck.
const STUCK: Duration = Duration::from_secs(30);

/// What a job is told to do.
pub(crate) struct JobPlan {
    pub workload: Workload,
    pub iodepth: usize,
    pub queues: Vec<usize>,
    pub deadline: Instant,
    pub max_ops: u64,
    pub blocks: u64,
    pub bs: u64,
    pub rwmixread: u32,
    pub seed: u64,
}

/// What a job measured.
pub(crate) struct JobStats {
    pub hist: [Histogram<u64>; 3],
    pub bytes: [u64; 3],
    pub errors: u64,
    pub first_error: Option<String>,
    /// Per owned queue: (virtqueue index, requests completed, counters delta).
    pub queues: Vec<(usize, u64, QueueCounters)>,
}

struct InFlight {
    op: Op,
    start: Instant,
}

/// Runs one job to completion; `progress` counts finished operations.
pub(crate) fn run_job(client: &Client, plan: &JobPlan, target: &Target, progress: &AtomicU64) -> Result<JobStats> {
    let mut guards: Vec<MutexGuard<'_, FsQueue>> = plan.queues.iter().map(|&i| client.queue(i)).collect();
    let before: Vec<(u64, QueueCounters)> = guards.iter().map(|q| (q.completed(), q.counters())).collect();
    let depth = guards.first().map(|q| q.slot_config().depth).unwrap_or(1);
    let mut slots: Vec<Vec<Option<InFlight>>> = guards.iter().map(|_| (0..depth).map(|_| None).collect()).collect();
    let new_hist = || Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| Error::BadArgs(e.to_string()));
    let mut stats = JobStats {
        hist: [new_hist()?, new_hist()?, new_hist()?],
        bytes: [0; 3],
        errors: 0,
        first_error: None,
        queues: Vec::new(),
    };
    let mut rng = XorShift(plan.seed | 1);
    let mut name = Vec::new();
    let mut forgets = Vec::new();
    let (mut started, mut in_flight, mut next_q, mut seq) = (0u64, 0usize, 0usize, 0u64);
    let mut done: Vec<(usize, Token)> = Vec::new();
    let mut scratch: Vec<Token> = Vec::new();
    loop {
        let now = Instant::now();
        while in_flight < plan.iodepth && started < plan.max_ops && now < plan.deadline {
            let op = new_op(plan, &mut rng, &mut seq);
            let qpos = next_q % guards.len();
            next_q += 1;
            let start = Instant::now();
            let tok = op.submit(target, &mut guards[qpos], &mut name)?;
            slots[qpos][tok.index()] = Some(InFlight { op, start });
            started += 1;
            in_flight += 1;
        }
        if in_flight == 0 {
            break;
        }
        done.clear();
        if guards.len() == 1 {
            scratch.clear();
            guards[0].wait(&mut scratch, Some(STUCK))?;
            done.extend(scratch.iter().map(|&t| (0, t)));
        } else {
            let mut refs: Vec<&mut FsQueue> = guards.iter_mut().map(|g| &mut **g).collect();
            wait_any(&mut refs, &mut done, Some(STUCK))?;
        }
        for &(qpos, tok) in &done {
            let mut f = slots[qpos][tok.index()]
                .take()
                .ok_or_else(|| Error::Protocol(format!("completion for idle slot {}", tok.index())))?;
            match f.op.complete(&mut guards[qpos], tok, &mut forgets)? {
                Outcome::Continue => {
                    let tok = f.op.submit(target, &mut guards[qpos], &mut name)?;
                    slots[qpos][tok.index()] = Some(f);
                }
                Outcome::Done { bytes } => {
                    let class = f.op.class() as usize;
                    let ns = f.start.elapsed().as_nanos().max(1) as u64;
                    let _ = stats.hist[class].record(ns.min(60_000_000_000));
                    stats.bytes[class] += bytes;
                    in_flight -= 1;
                    progress.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Failed(e) => {
                    stats.errors += 1;
                    stats.first_error.get_or_insert_with(|| format!("{:?} on {:?}", e, f.op));
                    in_flight -= 1;
                    progress.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if forgets.len() >= 256 {
            batch_forget(client, &mut forgets)?;
        }
    }
    batch_forget(client, &mut forgets)?;
    for (q, (completed, c0)) in guards.iter().zip(before) {
        let c = q.counters();
        let delta = QueueCounters {
            added: c.added - c0.added,
            used: c.used - c0.used,
            kicks: c.kicks - c0.kicks,
            kicks_suppressed: c.kicks_suppressed - c0.kicks_suppressed,
            sleeps: c.sleeps - c0.sleeps,
        };
        stats.queues.push((q.index(), q.completed() - completed, delta));
    }
    Ok(stats)
}

fn new_op(plan: &JobPlan, rng: &mut XorShift, seq: &mut u64) -> Op {
    let n = *seq;
    *seq += 1;
    let seq_off = (n % plan.blocks.max(1)) * plan.bs;
    let rand_off = rng.below(plan.blocks) * plan.bs;
    match plan.workload {
        Workload::Read => Op::Read { off: seq_off },
        Workload::Write => Op::Write { off: seq_off },
        Workload::Randread => Op::Read { off: rand_off },
        Workload::Randwrite => Op::Write { off: rand_off },
        Workload::Randrw => {
            if rng.below(100) < plan.rwmixread as u64 {
                Op::Read { off: rand_off }
            } else {
                Op::Write { off: rand_off }
            }
        }
        Workload::Stat => Op::Stat,
        Workload::CreateUnlink => Op::CreateUnlink { n, step: 0, nodeid: 0, fh: 0 },
        Workload::OpenClose => Op::OpenClose { step: 0, fh: 0 },
        Workload::Readdir => Op::Readdir { step: 0, fh: 0, off: 0, entries: 0 },
    }
}

/// Sends one BATCH_FORGET (hiprio) for `nodes`, one lookup each, and clears the list.
pub(crate) fn batch_forget(client: &Client, nodes: &mut Vec<u64>) -> Result<()> {
    if nodes.is_empty() {
        return Ok(());
    }
    let items: Vec<ForgetOne> = nodes.drain(..).map(|nodeid| ForgetOne { nodeid, nlookup: 1 }).collect();
    let bytes = item_bytes(&items);
    let op = Operation::BatchForget { items: item_list(&bytes) };
    client.call(&crate::request::Request::new(0, op)).map(drop)
}

/// A small, fast PRNG (xorshift64*); the benchmark needs spread, not quality.
pub(crate) struct XorShift(pub u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (0 if n is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}
