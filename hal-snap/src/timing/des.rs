//! The discrete-event simulation: requests of closed-loop jobs pass host core → doorbell
//! and descriptor fetch → DMA in → DPU poller thread → DMA out → interrupt → host core.
//! Serial resources (host cores, poller threads, the DMA engine) serve in arrival order;
//! everything else is a pure delay. Time is integer picoseconds; ties are broken by
//! insertion order; service-time variation comes from a seeded generator. So one input
//! always gives one output.

use super::cost::BackendCost;
use super::profile::Profile;
use super::workload::{Report, Rw, Workload};
use crate::poller::partition;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

const PS: f64 = 1000.0; // picoseconds per ns

/// xorshift64*: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// `mean` varied with coefficient of variation `cv`: log-normal, so never negative and
    /// with exactly that mean and spread (Box-Muller for the normal deviate).
    fn vary(&mut self, mean: f64, cv: f64) -> f64 {
        if cv == 0.0 {
            return mean;
        }
        let z = (-2.0 * self.next().ln()).sqrt() * (std::f64::consts::TAU * self.next()).cos();
        let s2 = (1.0 + cv * cv).ln();
        mean * (s2.sqrt() * z - s2 / 2.0).exp()
    }
}

/// A serial resource: FIFO because arrivals are handled in time order.
#[derive(Default, Clone)]
struct Server {
    free_at: u64,
    busy: u64,
}

impl Server {
    fn serve(&mut self, at: u64, service: u64) -> u64 {
        let start = at.max(self.free_at);
        self.free_at = start + service;
        self.busy += service;
        self.free_at
    }
}

#[derive(Clone, Copy)]
enum Stage {
    Submit,
    DmaIn,
    Dpu,
    DmaOut,
    Complete,
}

#[derive(Clone, Copy)]
struct Ev {
    stage: Stage,
    job: usize,
    t0: u64,
}

struct Sim<'a> {
    p: &'a Profile,
    w: &'a Workload,
    rng: Rng,
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: Vec<Ev>,
    free_slots: Vec<usize>,
    seq: u64,
    cores: Vec<Server>,
    comp_until: Vec<u64>,
    threads: Vec<Server>,
    devs_on_thread: Vec<usize>,
    thread_of_dev: Vec<usize>,
    dma: Server,
    pages: f64,
    backend_ns: f64,
}

impl Sim<'_> {
    fn push(&mut self, at: u64, ev: Ev) {
        let slot = match self.free_slots.pop() {
            Some(i) => {
                if let Some(e) = self.events.get_mut(i) {
                    *e = ev;
                }
                i
            }
            None => {
                self.events.push(ev);
                self.events.len() - 1
            }
        };
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, slot)));
    }

    fn ps(ns: f64) -> u64 {
        (ns * PS).round().max(0.0) as u64
    }

    fn core_of(&self, job: usize) -> usize {
        if self.w.shared_host_core {
            0
        } else {
            job / self.w.jobs_per_tenant.max(1)
        }
    }

    fn thread_of(&self, job: usize) -> usize {
        let dev = job / self.w.jobs_per_tenant.max(1);
        self.thread_of_dev.get(dev).copied().unwrap_or(0)
    }

    /// Handles an arrival at `now`; returns a completion latency when a request finished.
    fn step(&mut self, now: u64, ev: Ev) -> Option<u64> {
        let (p, cv) = (self.p, self.p.service_cv);
        let write = self.w.rw == Rw::Write;
        let bytes = self.w.bs as f64;
        match ev.stage {
            Stage::Submit => {
                let c = self.core_of(ev.job);
                let mut s = p.host.submit_ns + p.host.submit_page_ns * self.pages;
                if write {
                    s += p.host.write_submit_ns + p.host.write_page_ns * self.pages;
                }
                let s = self.rng.vary(s, cv);
                let end = self.cores.get_mut(c).map_or(now, |core| core.serve(now, Self::ps(s)));
                let at = end + Self::ps(p.pcie.doorbell_fetch_ns);
                self.push(at, Ev { stage: Stage::DmaIn, job: ev.job, t0: end });
            }
            Stage::DmaIn => {
                // Header and arguments; a WRITE's payload, one DMA per page.
                let ops = self.w.dma_ops.map_or(if write { 2.0 + self.pages } else { 2.0 }, |(r, _)| r);
                let b = if write { bytes } else { 0.0 };
                let occupancy = ops * p.pcie.dma_read_op_ns + b / p.pcie.link_in_gbs;
                let end = self.dma.serve(now, Self::ps(self.rng.vary(occupancy, cv)));
                let delay =
                    ops * p.pcie.dma_read_latency_ns + (b / p.pcie.request_in_gbs - b / p.pcie.link_in_gbs).max(0.0);
                self.push(end + Self::ps(delay), Ev { stage: Stage::Dpu, ..ev });
            }
            Stage::Dpu => {
                let t = self.thread_of(ev.job);
                let ndev = self.devs_on_thread.get(t).copied().unwrap_or(1) as f64;
                let (base, page) =
                    if write { (p.dpu.write_ns, p.dpu.write_page_ns) } else { (p.dpu.read_ns, p.dpu.read_page_ns) };
                // The state machine advances one stage per pass over all of the thread's
                // devices (fetch, header, arguments, each page, status).
                let passes = (4.0 + self.pages) * ndev * p.dpu.poll_pass_ns;
                let service = self.rng.vary(base + page * self.pages + self.backend_ns + passes, cv);
                let thread = self.threads.get_mut(t)?;
                // An idle poller finds the request half a pass over its devices later.
                let at = if now >= thread.free_at { now + Self::ps(p.dpu.poll_pass_ns * ndev / 2.0) } else { now };
                let end = thread.serve(at, Self::ps(service));
                self.push(end, Ev { stage: Stage::DmaOut, ..ev });
            }
            Stage::DmaOut => {
                // One DMA per writable data descriptor (a READ's pages, a WRITE's write_out),
                // then the status and the completion.
                let ops = self.w.dma_ops.map_or(if write { 3.0 } else { 2.0 + self.pages }, |(_, w)| w + 1.0);
                let b = if write { 0.0 } else { bytes };
                let occupancy = ops * p.pcie.dma_write_op_ns + b / p.pcie.link_out_gbs;
                let end = self.dma.serve(now, Self::ps(self.rng.vary(occupancy, cv)));
                let fixed = if write { p.fixed_write_ns } else { p.fixed_read_ns };
                let delay = ops * p.pcie.dma_write_latency_ns
                    + (b / p.pcie.request_out_gbs - b / p.pcie.link_out_gbs).max(0.0)
                    + p.pcie.interrupt_ns
                    + fixed;
                self.push(end + Self::ps(delay), Ev { stage: Stage::Complete, ..ev });
            }
            Stage::Complete => {
                let c = self.core_of(ev.job);
                // Completions that arrive while one is pending are reaped by the same
                // interrupt and wake-up.
                let pending = self.comp_until.get(c).is_some_and(|&u| now < u);
                let wake = if pending { 0.0 } else { p.host.wakeup_ns };
                let s = self.rng.vary(p.host.complete_ns + p.host.complete_page_ns * self.pages + wake, cv);
                let end = self.cores.get_mut(c).map_or(now, |core| core.serve(now, Self::ps(s)));
                if let Some(u) = self.comp_until.get_mut(c) {
                    *u = end;
                }
                // The job reaps it and submits the next request.
                self.push(end, Ev { stage: Stage::Submit, job: ev.job, t0: 0 });
                return Some(end - ev.t0);
            }
        }
        None
    }
}

/// Runs the workload: a warm-up of `requests` completions, then `requests` measured.
pub fn run(p: &Profile, backend: &BackendCost, w: &Workload) -> Report {
    let tenants = w.tenants.max(1);
    let threads = w.dpu_threads.clamp(1, tenants);
    let parts = partition(tenants, threads);
    let mut thread_of_dev = vec![0; tenants];
    for (t, r) in parts.iter().enumerate() {
        for d in r.clone() {
            if let Some(x) = thread_of_dev.get_mut(d) {
                *x = t;
            }
        }
    }
    let cores = if w.shared_host_core { 1 } else { tenants };
    let write = w.rw == Rw::Write;
    let backend_ns =
        backend.instructions(write, w.bs) * p.dpu.ns_per_kinstr / 1000.0 + backend.kernel(w.bs) * p.dpu.kernel_factor;
    let mut sim = Sim {
        p,
        w,
        rng: Rng(w.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
        heap: BinaryHeap::new(),
        events: Vec::new(),
        free_slots: Vec::new(),
        seq: 0,
        cores: vec![Server::default(); cores],
        comp_until: vec![0; cores],
        threads: vec![Server::default(); threads],
        devs_on_thread: parts.iter().map(|r| r.len()).collect(),
        thread_of_dev,
        dma: Server::default(),
        pages: (w.bs as f64 / 4096.0).ceil().max(1.0),
        backend_ns,
    };
    let jobs = tenants * w.jobs_per_tenant.max(1);
    for _ in 0..w.iodepth.max(1) {
        for job in 0..jobs {
            sim.push(0, Ev { stage: Stage::Submit, job, t0: 0 });
        }
    }
    let (warmup, total) = (w.requests, 2 * w.requests);
    let mut done = 0u64;
    let mut lat = Vec::with_capacity(w.requests as usize);
    let (mut start, mut end) = (0u64, 0u64);
    let mut busy_at_start = (Vec::new(), 0u64, Vec::new());
    while let Some(Reverse((now, _, slot))) = sim.heap.pop() {
        let Some(ev) = sim.events.get(slot).copied() else { break };
        sim.free_slots.push(slot);
        if let Some(l) = sim.step(now, ev) {
            done += 1;
            if done == warmup {
                start = now;
                busy_at_start = (
                    sim.threads.iter().map(|t| t.busy).collect(),
                    sim.dma.busy,
                    sim.cores.iter().map(|c| c.busy).collect(),
                );
            } else if done > warmup {
                lat.push(l);
                end = now;
                if done >= total {
                    break;
                }
            }
        }
    }
    let span = end.saturating_sub(start).max(1) as f64;
    let util = |now: &[Server], then: &[u64]| {
        now.iter().zip(then).map(|(s, b)| (s.busy - b) as f64 / span).fold(0.0f64, f64::max)
    };
    lat.sort_unstable();
    let pct = |q: f64| {
        let i = ((lat.len() as f64 - 1.0) * q).round() as usize;
        lat.get(i).copied().unwrap_or(0) as f64 / PS / 1000.0
    };
    let iops = lat.len() as f64 / (span / PS / 1e9);
    Report {
        iops,
        mib_s: iops * w.bs as f64 / (1 << 20) as f64,
        clat_mean_us: lat.iter().map(|&l| l as f64).sum::<f64>() / lat.len().max(1) as f64 / PS / 1000.0,
        clat_p50_us: pct(0.5),
        clat_p99_us: pct(0.99),
        dpu_thread_util: util(&sim.threads, &busy_at_start.0),
        dma_util: (sim.dma.busy - busy_at_start.1) as f64 / span,
        host_core_util: util(&sim.cores, &busy_at_start.2),
    }
}
