//! The data path through each engine gives the same bytes.

use crate::common::*;
use dpfs_backend_passthrough::EngineKind;
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

#[test]
fn io_uring_engine_roundtrips() {
    let g = Guest::with(|c| c.engine = EngineKind::IoUring { entries: 64 });
    eprintln!("engine: {}", g.fs.engine_name());
    roundtrip(&g, "a", 1_000_003);
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
fn sync_engine_roundtrips() {
    let g = Guest::default_fs();
    assert_eq!(g.fs.engine_name(), "sync");
    roundtrip(&g, "a", 1_000_003);
}
