//! File data on kv: chunked files of any size against a byte model, holes, truncation,
//! fallocate and punch-hole, statfs counters.

use crate::common::*;
use dpfs_backend_kv::Store;

const CHUNK: u64 = 64 << 10;

/// A deterministic pseudo-random sequence (no timing, no seeds from the clock).
fn lcg(state: &mut u64) -> u64 {
    *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *state >> 33
}

pub fn writes_across_chunks_match_a_model<S: Store>(g: Env<S>) {
    let (f, fh) = g.mkfile(ROOT, "f").unwrap();
    let mut model: Vec<u8> = Vec::new();
    let mut s = 7u64;
    for round in 0..60 {
        let off = lcg(&mut s) % (5 * CHUNK);
        let len = 1 + lcg(&mut s) % (CHUNK + 5000);
        let byte = (round % 250 + 1) as u8;
        let buf = vec![byte; len as usize];
        assert_eq!(g.write(f, fh, off, &buf).unwrap() as u64, len);
        let end = (off + len) as usize;
        if model.len() < end {
            model.resize(end, 0);
        }
        model[off as usize..end].fill(byte);
        if round % 10 == 9 {
            // Truncate somewhere, sometimes down, sometimes up.
            let size = lcg(&mut s) % (6 * CHUNK);
            g.truncate(f, size).unwrap();
            model.resize(size as usize, 0);
        }
    }
    assert_eq!(g.getattr(f).unwrap().size, model.len() as u64);
    let mut got = Vec::new();
    let mut off = 0u64;
    while off < model.len() as u64 {
        let part = g.read(f, fh, off, 128 << 10).unwrap();
        assert!(!part.is_empty());
        off += part.len() as u64;
        got.extend(part);
    }
    assert!(got == model, "file content differs from the model");
}

pub fn small_files_inline_then_grow<S: Store>(g: Env<S>) {
    let (f, fh) = g.mkfile(ROOT, "f").unwrap();
    g.write(f, fh, 0, &[1u8; 4096]).unwrap();
    assert_eq!(g.getattr(f).unwrap().blocks, 8);
    // One byte more moves it to chunks; the old bytes stay.
    g.write(f, fh, 4096, b"z").unwrap();
    let v = g.read(f, fh, 0, 8192).unwrap();
    assert_eq!(v.len(), 4097);
    assert!(v[..4096].iter().all(|&b| b == 1));
    assert_eq!(v[4096], b'z');
    assert_eq!(g.getattr(f).unwrap().blocks, CHUNK / 512);
    // Sparse growth costs nothing and reads zeros.
    g.truncate(f, 1 << 40).unwrap();
    assert_eq!(g.getattr(f).unwrap().blocks, CHUNK / 512);
    assert_eq!(g.read(f, fh, (1 << 40) - 3, 10).unwrap(), vec![0; 3]);
    assert_eq!(g.truncate(f, u64::MAX).err(), Some(libc::EFBIG));
    assert_eq!(g.write(f, fh, u64::MAX - 2, b"abcd").err(), Some(libc::EINVAL));
}

pub fn fallocate_and_punch_hole<S: Store>(g: Env<S>) {
    let (f, fh) = g.mkfile(ROOT, "f").unwrap();
    g.write(f, fh, 0, &vec![1u8; 3 * CHUNK as usize]).unwrap();
    let keep = libc::FALLOC_FL_KEEP_SIZE as u32;
    let punch = libc::FALLOC_FL_PUNCH_HOLE as u32 | keep;
    // A whole chunk and a piece of the next.
    g.fallocate(f, fh, CHUNK, CHUNK + 100, punch).unwrap();
    let v = g.read(f, fh, 0, 3 * CHUNK as u32).unwrap();
    assert_eq!(v.len(), 3 * CHUNK as usize);
    assert!(v[..CHUNK as usize].iter().all(|&b| b == 1));
    assert!(v[CHUNK as usize..2 * CHUNK as usize + 100].iter().all(|&b| b == 0));
    assert!(v[2 * CHUNK as usize + 100..].iter().all(|&b| b == 1));
    assert_eq!(g.getattr(f).unwrap().blocks, 2 * CHUNK / 512);
    // Allocation: KEEP_SIZE keeps the size, mode 0 extends it.
    let size = 3 * CHUNK;
    g.fallocate(f, fh, size, 8192, keep).unwrap();
    assert_eq!(g.getattr(f).unwrap().size, size);
    assert_eq!(g.getattr(f).unwrap().blocks, 3 * CHUNK / 512);
    g.fallocate(f, fh, size, 10, 0).unwrap();
    assert_eq!(g.getattr(f).unwrap().size, size + 10);
    assert_eq!(g.read(f, fh, size, 100).unwrap(), vec![0; 10]);
    assert_eq!(g.fallocate(f, fh, 0, 1, libc::FALLOC_FL_PUNCH_HOLE as u32).err(), Some(libc::EOPNOTSUPP));
    assert_eq!(g.fallocate(f, fh, 0, 0, 0).err(), Some(libc::EINVAL));
    // Truncating below preallocated chunks drops them.
    g.truncate(f, 10).unwrap();
    assert_eq!(g.getattr(f).unwrap().blocks, CHUNK / 512);
    assert_eq!(g.read(f, fh, 0, 100).unwrap(), vec![1; 10]);
}

pub fn statfs_counts_inodes_and_bytes<S: Store>(g: Env<S>) {
    let st = g.statfs().unwrap();
    assert_eq!(st.files - st.ffree, 1, "just the root");
    assert_eq!(st.blocks, st.bfree);
    let (f, fh) = g.mkfile(ROOT, "f").unwrap();
    g.write(f, fh, 0, &vec![5u8; 2 * CHUNK as usize]).unwrap();
    let st = g.statfs().unwrap();
    assert_eq!(st.files - st.ffree, 2);
    assert_eq!((st.blocks - st.bfree) * st.bsize as u64, 2 * CHUNK);
    g.release(f, fh).unwrap();
    g.unlink(ROOT, "f").unwrap();
    let st = g.statfs().unwrap();
    assert_eq!((st.files - st.ffree, st.blocks - st.bfree), (1, 0));
}

crate::suite!(redb, crate::common::redb;
    writes_across_chunks_match_a_model, small_files_inline_then_grow, fallocate_and_punch_hole,
    statfs_counts_inodes_and_bytes);

crate::suite!(redis, crate::common::redis;
    writes_across_chunks_match_a_model, small_files_inline_then_grow, fallocate_and_punch_hole,
    statfs_counts_inodes_and_bytes);

crate::suite!(cluster, crate::common::cluster;
    writes_across_chunks_match_a_model, small_files_inline_then_grow, fallocate_and_punch_hole,
    statfs_counts_inodes_and_bytes);
