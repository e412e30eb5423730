//! Walks a large tree with a low `RLIMIT_NOFILE`: the inode table must not keep a descriptor
//! per inode. Its own test binary, so the limit does not affect other tests.
//! `DPFS_WALK_FILES` sets the file count (20k by default; try 200000 by hand).

#[path = "fs/common.rs"]
mod common;

use common::*;

#[test]
fn walk_large_tree_under_low_fd_limit() {
    let files: usize = std::env::var("DPFS_WALK_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `rl` is a valid out-pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
    rl.rlim_cur = 256;
    // SAFETY: lowering this process's own soft limit; the only test in this binary.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) }, 0, "{}", std::io::Error::last_os_error());
    let g = Guest::default_fs();
    assert!(g.fs.stats().file_handles, "ext4/tmpfs /tmp supports file handles");
    let per_dir = 1000;
    for d in 0..files.div_ceil(per_dir) {
        let dir = g.host(&format!("d{d}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..per_dir.min(files - d * per_dir) {
            std::fs::write(dir.join(format!("f{f}")), f.to_string()).unwrap();
        }
    }
    // Walk everything with READDIRPLUS, keeping every lookup reference (as a guest's dcache would).
    let mut nodes = Vec::new();
    let top = g.readdirplus_all(ROOT).unwrap();
    for (dname, dino) in top {
        for (fname, ino) in g.readdirplus_all(dino).unwrap() {
            nodes.push((format!("{dname}/{fname}"), ino));
        }
        nodes.push((dname, dino));
    }
    assert_eq!(nodes.iter().filter(|(n, _)| n.contains('/')).count(), files);
    let st = g.fs.stats();
    assert_eq!(st.inodes, files + files.div_ceil(per_dir) + 1);
    assert!(st.cached_fds <= 64, "fd cache bounded: {st:?}");
    // Every node is still reachable (reopened through its file handle), and reads work.
    for (i, (name, ino)) in nodes.iter().enumerate() {
        let a = g.getattr(*ino).unwrap();
        if name.contains('/') && i % 97 == 0 {
            let fh = g.open(*ino, libc::O_RDONLY as u32).unwrap();
            let want = name.rsplit('f').next().unwrap().to_string();
            assert_eq!(g.read(*ino, fh, 0, 64).unwrap(), want.as_bytes());
            g.release(*ino, fh).unwrap();
            assert_eq!(a.size as usize, want.len());
        }
    }
    for (_, ino) in &nodes {
        g.forget(*ino, 1);
    }
    assert_eq!(g.fs.stats().inodes, 1);
}
