//! Several threads creating, writing, renaming and removing in one directory at once;
//! afterwards the tree, the link counts and the inode accounting must agree.

use crate::common::*;
use std::collections::HashSet;

#[test]
fn parallel_namespace_and_data_churn_stays_consistent() {
    let g = Guest::default_fs();
    let shared = g.mkdir(ROOT, "shared", 0o777).unwrap().nodeid;
    let other = g.mkdir(ROOT, "other", 0o777).unwrap().nodeid;
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let g = g.clone();
            std::thread::spawn(move || {
                let mut refs = Vec::new();
                for i in 0..150u32 {
                    let name = format!("t{t}_{i}");
                    let (ino, fh) = g.mkfile(shared, &name).unwrap();
                    refs.push(ino);
                    let body = name.repeat(1 + (i as usize % 50));
                    assert_eq!(g.write(ino, fh, 0, body.as_bytes()).unwrap() as usize, body.len());
                    g.release(ino, fh).unwrap();
                    // Contended names: replace whatever is there.
                    let dir = if i % 2 == 0 { shared } else { other };
                    g.rename(shared, &name, dir, &format!("s{}", i % 7), 0).unwrap();
                    if i % 3 == 0 {
                        let _ = g.unlink(other, &format!("s{}", (i + 1) % 7));
                    }
                    // Directories moving between the two parents.
                    let dname = format!("d{t}");
                    if let Ok(e) = g.mkdir(shared, &dname, 0o755) {
                        refs.push(e.nodeid);
                    }
                    let _ = g.rename(shared, &dname, other, &dname, 0);
                    let _ = g.rename(other, &dname, shared, &dname, dpfs_core::posix::RENAME_EXCHANGE);
                    if i % 5 == 0 {
                        let _ = g.rmdir(other, &dname);
                        let _ = g.rmdir(shared, &dname);
                    }
                }
                refs
            })
        })
        .collect();
    let mut refs = Vec::new();
    for t in threads {
        refs.extend(t.join().unwrap());
    }
    for ino in refs {
        g.forget(ino, 1);
    }
    // Walk the tree: every name resolves, file contents are intact, link counts agree.
    let mut seen = HashSet::new();
    let mut subdirs_total = 0;
    for dir in [shared, other] {
        let names = g.list(dir).unwrap();
        let mut subdirs = 0;
        for n in names {
            let e = g.lookup(dir, &n).unwrap();
            seen.insert(e.nodeid);
            if e.attr.mode & libc::S_IFMT == libc::S_IFDIR {
                subdirs += 1;
                assert_eq!(e.attr.nlink, 2);
            } else {
                let fh = g.open(e.nodeid, libc::O_RDONLY as u32).unwrap();
                let data = g.read(e.nodeid, fh, 0, 1 << 16).unwrap();
                g.release(e.nodeid, fh).unwrap();
                let s = String::from_utf8(data).unwrap();
                let unit = s.split_inclusive(|c: char| c.is_ascii_digit()).next().unwrap_or("");
                assert!(s.starts_with('t') && !s.is_empty(), "corrupt content {s:?}");
                assert!(!unit.is_empty());
                assert_eq!(e.attr.nlink, 1);
            }
            g.forget(e.nodeid, 1);
        }
        assert_eq!(g.getattr(dir).unwrap().nlink, 2 + subdirs);
        subdirs_total += subdirs;
    }
    assert_eq!(g.getattr(ROOT).unwrap().nlink, 4);
    // Root, the two directories and what is reachable: nothing leaked.
    assert_eq!(g.fs.inode_count(), 3 + seen.len() as u64, "{subdirs_total} subdirs");
    assert_eq!(g.fs.table_len() as u64, g.fs.inode_count());
    assert_eq!(g.fs.handle_count(), 0);
}
