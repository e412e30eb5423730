//! Instruction counts (callgrind, through gungraun) of the request path, one case per
//! operation and layer: what `ci/perf-gate.sh` compares with the committed baselines.
//!
//! Each case is set up and warmed up outside the measured function; the measured function
//! returns what it used so that dropping it is not counted either.
//!
//! `cargo bench -p dpfs-benches --bench instructions` (needs `gungraun-runner` 0.20.0 and
//! valgrind; `ci/perf-gate.sh` installs and runs it).

use dpfs_benches::{case, Backend, Case, Op, Ring};
use dpfs_core::abi::{self, ROOT_ID};
use dpfs_core::operation::Operation;
use dpfs_sim::Request;
use gungraun::{library_benchmark, library_benchmark_group, main};
use std::hint::black_box;
use std::sync::Arc;

const K4: u32 = 4 << 10;
const K128: u32 = 128 << 10;

/// Fails the bench (outside the measurement) if the request did not succeed.
fn succeeded(c: Case) {
    assert_eq!(c.req.last_error(), 0, "the measured request failed");
}

// decode → dispatch → backend → encode → completion, on a core `Device`.
#[library_benchmark(teardown = succeeded)]
#[bench::getattr(case(Backend::Null, Op::Getattr, "null"))]
#[bench::lookup(case(Backend::Null, Op::Lookup, "null"))]
#[bench::read_4k(case(Backend::Null, Op::Read(K4), "null"))]
#[bench::read_128k(case(Backend::Null, Op::Read(K128), "null"))]
#[bench::write_4k(case(Backend::Null, Op::Write(K4), "null"))]
#[bench::write_128k(case(Backend::Null, Op::Write(K128), "null"))]
#[bench::readdirplus(case(Backend::Null, Op::Readdirplus, "null"))]
#[bench::create(case(Backend::Null, Op::Create, "null"))]
fn null(mut c: Case) -> Case {
    black_box(c.run());
    c
}

#[library_benchmark(teardown = succeeded)]
#[bench::getattr(case(Backend::Mem, Op::Getattr, "mem"))]
#[bench::lookup(case(Backend::Mem, Op::Lookup, "mem"))]
#[bench::read_4k(case(Backend::Mem, Op::Read(K4), "mem"))]
#[bench::read_128k(case(Backend::Mem, Op::Read(K128), "mem"))]
#[bench::write_4k(case(Backend::Mem, Op::Write(K4), "mem"))]
#[bench::write_128k(case(Backend::Mem, Op::Write(K128), "mem"))]
#[bench::readdirplus(case(Backend::Mem, Op::Readdirplus, "mem"))]
#[bench::create(case(Backend::Mem, Op::Create, "mem"))]
fn mem(mut c: Case) -> Case {
    black_box(c.run());
    c
}

// Passthrough (sync engine) on tmpfs: the user-space instructions only (callgrind does not
// see the kernel's share of each system call).
#[library_benchmark(teardown = succeeded)]
#[bench::getattr(case(Backend::Passthrough, Op::Getattr, "getattr"))]
#[bench::lookup(case(Backend::Passthrough, Op::Lookup, "lookup"))]
#[bench::read_4k(case(Backend::Passthrough, Op::Read(K4), "read_4k"))]
#[bench::write_4k(case(Backend::Passthrough, Op::Write(K4), "write_4k"))]
#[bench::readdirplus(case(Backend::Passthrough, Op::Readdirplus, "readdirplus"))]
#[bench::create(case(Backend::Passthrough, Op::Create, "create"))]
fn passthrough(mut c: Case) -> Case {
    black_box(c.run());
    c
}

fn getattr() -> Request<'static> {
    Request::new(dpfs_backend_null::FILE_ID, Operation::Getattr(Default::default()))
}

fn read_4k() -> Request<'static> {
    Request::new(dpfs_backend_null::FILE_ID, Operation::Read(abi::ReadIn { size: K4, ..Default::default() }))
}

fn lookup() -> Request<'static> {
    Request::new(ROOT_ID, Operation::Lookup { name: b"some-file-name.txt" })
}

/// A ring over null, warmed up by one round trip of `req`.
fn warm_ring(req: fn() -> Request<'static>) -> Ring {
    let mut ring = Ring::new(Arc::new(dpfs_backend_null::NullFs::new()));
    ring.round_trip(&req()).ok().expect("warm-up round trip");
    ring
}

/// A warm ring with `req` submitted, for the device side to process.
fn submitted(req: fn() -> Request<'static>) -> Ring {
    let mut ring = warm_ring(req);
    ring.submit(&req());
    ring
}

/// A warm ring with `req` submitted and processed, for the driver to collect.
fn processed(req: fn() -> Request<'static>) -> Ring {
    let ring = submitted(req);
    ring.process();
    ring
}

fn replied(mut ring: Ring) {
    ring.complete().ok().expect("the measured request failed");
}

// The vhost-user HAL's poller work for one kick: pop the chain, map its descriptors, hand
// the request to core (null backend), put the chain on the used ring.
#[library_benchmark(teardown = replied)]
#[bench::getattr(submitted(getattr))]
#[bench::lookup(submitted(lookup))]
#[bench::read_4k(submitted(read_4k))]
fn hal(ring: Ring) -> Ring {
    ring.process();
    ring
}

fn returned(r: (Ring, dpfs_sim::Reply)) {
    r.1.ok().expect("the measured request failed");
}

// sim's driver: lay a request out in guest memory and make it available.
#[library_benchmark(teardown = replied_after_submit)]
#[bench::getattr(warm_ring(getattr), getattr)]
#[bench::read_4k(warm_ring(read_4k), read_4k)]
fn sim_submit(mut ring: Ring, req: fn() -> Request<'static>) -> Ring {
    ring.submit(&req());
    ring
}

fn replied_after_submit(ring: Ring) {
    ring.process();
    replied(ring);
}

// sim's driver: collect the used ring entry and copy the reply out.
#[library_benchmark(teardown = returned)]
#[bench::getattr(processed(getattr))]
#[bench::read_4k(processed(read_4k))]
fn sim_complete(mut ring: Ring) -> (Ring, dpfs_sim::Reply) {
    let reply = ring.complete();
    (ring, reply)
}

library_benchmark_group!(name = core_null, benchmarks = [null]);
library_benchmark_group!(name = core_mem, benchmarks = [mem]);
library_benchmark_group!(name = backend_passthrough, benchmarks = [passthrough]);
library_benchmark_group!(name = hal_vhost_user, benchmarks = [hal]);
library_benchmark_group!(name = sim_driver, benchmarks = [sim_submit, sim_complete]);

main!(library_benchmark_groups = core_null, core_mem, backend_passthrough, hal_vhost_user, sim_driver);
