//! The data path through each engine gives the same bytes.

use crate::common::*;
use dpfs_backend_passthrough::{EngineKind, UringEngine};
use std::thread;

fn roundtrip(g: &Guest, name: &str, len: usize) {
    let (ino, fh) = g.mkfile(ROOT, name).unwrap();
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
    let mut off = 0;
    for chunk in data.chunks(65536) {
        assert_eq!(g.write(ino, fh, off as u64, chunk).unwrap() as usize, chunk.len());
        off += chunk.len();
    }
    let mut back = Vec::new();
    loop {
        let b = g.read(ino, fh, back.len() as u64, 131072).unwrap();
        if b.is_empty() {
            break;
        }
        back.extend(b);
    }
    assert_eq!(back, data);
    // A read crossing end of file is short, one past it is empty.
    assert_eq!(g.read(ino, fh, len as u64 - 10, 100).unwrap().len(), 10);
    assert!(g.read(ino, fh, len as u64 + 1, 100).unwrap().is_empty());
    assert_eq!(std::fs::read(g.host(name)).unwrap(), data);
    g.release(ino, fh).unwrap();
}

/// Round trips on one thread, then on four at once, then an error through the engine.
fn exercise(g: &Guest) {
    roundtrip(g, "a", 1_000_003);
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let g = g.clone();
            thread::spawn(move || {
                for i in 0..20 {
                    roundtrip(&g, &format!("t{t}-{i}"), 70_000 + i * 13);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    // Errors come back through the completion path too.
    let (ino, fh) = g.mkfile(ROOT, "ro").unwrap();
    g.release(ino, fh).unwrap();
    let fh = g.open(ino, libc::O_RDONLY as u32).unwrap();
    assert_eq!(g.write(ino, fh, 0, b"x").unwrap_err(), libc::EBADF);
}

#[test]
fn io_uring_engine_roundtrips() {
    let g = Guest::with(|c| c.engine = EngineKind::IoUring { entries: 64 });
    assert_eq!(g.fs.engine_name(), "io_uring");
    exercise(&g);
}

#[test]
fn io_uring_ring_path_without_the_page_cache_fast_path() {
    let g = Guest::with_engine(Box::new(UringEngine::new(64).unwrap().with_inline_hits(false)));
    exercise(&g);
}

#[test]
fn io_uring_late_completions_are_answered_by_the_completion_threads() {
    // IOSQE_ASYNC: every I/O completes on an io_uring worker after submission returned.
    let g = Guest::with_engine(Box::new(UringEngine::new(64).unwrap().with_forced_async(true)));
    exercise(&g);
}

#[test]
fn io_uring_polled_completions_roundtrip() {
    let g = Guest::with(|c| {
        c.engine = EngineKind::IoUring { entries: 64 };
        c.uring_cq_polling = true;
    });
    exercise(&g);
    let late =
        Guest::with_engine(Box::new(UringEngine::new(64).unwrap().with_cq_polling(true).with_forced_async(true)));
    exercise(&late);
}

#[test]
fn aio_engine_roundtrips() {
    let g = Guest::with(|c| c.engine = EngineKind::Aio { nr_events: 64 });
    assert_eq!(g.fs.engine_name(), "aio");
    exercise(&g);
}

#[test]
fn engines_drop_cleanly_with_their_threads() {
    // Dropping the file system joins every completion thread; a hang fails the test run.
    for kind in [EngineKind::IoUring { entries: 8 }, EngineKind::Aio { nr_events: 8 }] {
        for _ in 0..20 {
            let g = Guest::with(|c| c.engine = kind);
            roundtrip(&g, "x", 10_000);
        }
    }
}

#[test]
fn sync_engine_roundtrips() {
    let g = Guest::default_fs();
    assert_eq!(g.fs.engine_name(), "sync");
    roundtrip(&g, "a", 1_000_003);
}
