//! ns per request through decode → dispatch → null backend → encode → completion.
//!
//! `cargo bench -p dpfs-benches --bench request_path`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dpfs_backend_null::{NullFs, FILE_ID};
use dpfs_benches::{device, Prepared};
use dpfs_core::abi::{self, ROOT_ID};
use dpfs_core::operation::Operation;
use std::sync::Arc;

fn bench(c: &mut Criterion) {
    let dev = device(Arc::new(NullFs::new()));
    let data = vec![0xabu8; 4096];
    let mut cases = [
        ("getattr", Prepared::new(FILE_ID, &Operation::Getattr(Default::default()), &[], 104)),
        ("lookup", Prepared::new(ROOT_ID, &Operation::Lookup { name: b"some-file-name.txt" }, &[], 128)),
        (
            "read_4k",
            Prepared::new(FILE_ID, &Operation::Read(abi::ReadIn { size: 4096, ..Default::default() }), &[], 4096),
        ),
        (
            "write_4k",
            Prepared::new(FILE_ID, &Operation::Write(abi::WriteIn { size: 4096, ..Default::default() }), &data, 8),
        ),
    ];
    let mut g = c.benchmark_group("null_backend");
    g.throughput(Throughput::Elements(1));
    for (name, req) in cases.iter_mut() {
        req.fire(&dev);
        assert_eq!(req.last_error(), 0, "{name} failed");
        g.bench_function(*name, |b| b.iter(|| req.fire(&dev)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
