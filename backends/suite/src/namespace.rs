//! Names and directories: Linux's errors for bad names, `renameat2`'s flags and rules, and
//! readdir cookies that stay valid while the directory changes.

use crate::{inodes, EXCHANGE, NOREPLACE, RW, WHITEOUT};
use dpfs_core::guest::{Guest, ROOT};
use dpfs_core::FileSystem;

/// ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY, ENAMETOOLONG and EINVAL where Linux answers them.
pub fn namespace_errors_match_linux<F: FileSystem>(g: &Guest<F>) {
    let d = g.mkdir(ROOT, "d", 0o755).unwrap().nodeid;
    let (f, _) = g.mkfile(ROOT, "f").unwrap();
    assert_eq!(g.mkdir(ROOT, "d", 0o755).err(), Some(libc::EEXIST));
    assert_eq!(g.mkfile(ROOT, "d").err(), Some(libc::EISDIR));
    assert_eq!(g.create(ROOT, "f", 0o644, RW | libc::O_EXCL as u32).err(), Some(libc::EEXIST));
    assert_eq!(g.lookup(ROOT, "nope").err(), Some(libc::ENOENT));
    assert_eq!(g.lookup(f, "x").err(), Some(libc::ENOTDIR));
    assert_eq!(g.mkdir(f, "x", 0o755).err(), Some(libc::ENOTDIR));
    let long = "n".repeat(256);
    assert_eq!(g.lookup(ROOT, &long).err(), Some(libc::ENAMETOOLONG));
    assert_eq!(g.mkdir(ROOT, &long, 0o755).err(), Some(libc::ENAMETOOLONG));
    assert!(g.mkdir(ROOT, &"n".repeat(255), 0o755).is_ok());
    g.mkfile(d, "inner").unwrap();
    assert_eq!(g.rmdir(ROOT, "d").err(), Some(libc::ENOTEMPTY));
    assert_eq!(g.rmdir(ROOT, "f").err(), Some(libc::ENOTDIR));
    assert_eq!(g.unlink(ROOT, "d").err(), Some(libc::EISDIR));
    assert_eq!(g.unlink(ROOT, "nope").err(), Some(libc::ENOENT));
    assert_eq!(g.link(d, ROOT, "dl").err(), Some(libc::EPERM));
    assert_eq!(g.link(f, ROOT, "d").err(), Some(libc::EEXIST));
    assert_eq!(g.rmdir(d, ".").err(), Some(libc::EINVAL));
    assert_eq!(g.rmdir(d, "..").err(), Some(libc::ENOTEMPTY));
    assert_eq!(g.getattr(999_999).err(), Some(libc::ENOENT));
    assert_eq!(g.lookup(d, "..").unwrap().nodeid, ROOT);
    assert_eq!(g.lookup(d, ".").unwrap().nodeid, d);
}

/// `renameat2`: NOREPLACE, EXCHANGE (across directories, link counts following), refused
/// WHITEOUT and flag pairs, type and emptiness rules, no move into its own subtree, a
/// replaced empty directory freed, renames between hard links of one inode doing nothing.
pub fn rename_flags<F: FileSystem>(g: &Guest<F>) {
    let (a, _) = g.mkfile(ROOT, "a").unwrap();
    let (b, _) = g.mkfile(ROOT, "b").unwrap();
    let d = g.mkdir(ROOT, "d", 0o755).unwrap().nodeid;
    let e = g.mkdir(d, "e", 0o755).unwrap().nodeid;
    assert_eq!(g.rename(ROOT, "a", ROOT, "b", NOREPLACE).err(), Some(libc::EEXIST));
    assert_eq!(g.rename(ROOT, "a", ROOT, "b", WHITEOUT).err(), Some(libc::EINVAL));
    assert_eq!(g.rename(ROOT, "a", ROOT, "b", NOREPLACE | EXCHANGE).err(), Some(libc::EINVAL));
    assert_eq!(g.rename(ROOT, "a", ROOT, "zz", EXCHANGE).err(), Some(libc::ENOENT));
    assert_eq!(g.rename(ROOT, "zz", ROOT, "a", 0).err(), Some(libc::ENOENT));
    g.rename(ROOT, "a", ROOT, "b", EXCHANGE).unwrap();
    assert_eq!(g.lookup(ROOT, "a").unwrap().nodeid, b);
    assert_eq!(g.lookup(ROOT, "b").unwrap().nodeid, a);
    // Exchange a directory with a file across directories: link counts follow.
    g.rename(ROOT, "a", d, "e", EXCHANGE).unwrap();
    assert_eq!(g.lookup(ROOT, "a").unwrap().nodeid, e);
    assert_eq!(g.lookup(d, "e").unwrap().nodeid, b);
    assert_eq!(g.getattr(d).unwrap().nlink, 2);
    assert_eq!(g.getattr(ROOT).unwrap().nlink, 4);
    assert_eq!(g.readdir(e, 0, 4096).unwrap()[1].ino, ROOT);
    // Type and emptiness rules.
    assert_eq!(g.rename(ROOT, "a", ROOT, "b", 0).err(), Some(libc::ENOTDIR));
    assert_eq!(g.rename(ROOT, "b", ROOT, "a", 0).err(), Some(libc::EISDIR));
    g.mkfile(d, "x").unwrap();
    assert_eq!(g.rename(ROOT, "a", ROOT, "d", 0).err(), Some(libc::ENOTEMPTY));
    assert_eq!(g.rename(ROOT, "d", e, "sub", 0).ok(), Some(()));
    // A directory never moves into its own subtree.
    assert_eq!(g.rename(ROOT, "a", d, "inside", 0).err(), Some(libc::EINVAL));
    assert_eq!(g.rename(ROOT, "a", ROOT, "a", 0).ok(), Some(()));
    // Replacing an empty directory frees it.
    let empty = g.mkdir(ROOT, "empty", 0o755).unwrap().nodeid;
    g.forget(empty, 1);
    let before = inodes(g);
    g.rename(ROOT, "a", ROOT, "empty", 0).unwrap();
    assert_eq!(inodes(g), before - 1);
    assert_eq!(g.list(ROOT).unwrap(), vec!["b", "empty"]);
    // Hard links to the same inode: rename is a no-op.
    g.link(a, ROOT, "a2").unwrap();
    g.rename(ROOT, "b", ROOT, "a2", 0).unwrap();
    assert_eq!(g.list(ROOT).unwrap(), vec!["a2", "b", "empty"]);
}

/// A listing read in batches while entries are removed and added between them: every entry
/// never removed is returned once, and READDIRPLUS lists the same names.
pub fn readdir_cookies_survive_concurrent_changes<F: FileSystem>(g: &Guest<F>) {
    let d = g.mkdir(ROOT, "d", 0o755).unwrap().nodeid;
    for i in 0..60 {
        g.mkfile(d, &format!("f{i:02}")).unwrap();
    }
    let mut seen: Vec<String> = Vec::new();
    let mut off = 0;
    let mut round = 0;
    loop {
        let batch = g.readdir(d, off, 200).unwrap();
        let Some(last) = batch.last() else { break };
        off = last.off;
        seen.extend(batch.iter().map(|e| String::from_utf8_lossy(&e.name).into_owned()));
        // Between batches: remove one entry already seen and one not yet seen, add new ones.
        round += 1;
        let _ = g.unlink(d, &format!("f{:02}", round));
        let _ = g.unlink(d, &format!("f{:02}", 59 - round));
        if round < 8 {
            g.mkfile(d, &format!("new{round}")).unwrap();
        }
    }
    let mut uniq = seen.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), seen.len(), "an entry was returned twice");
    assert_eq!(&seen[..2], &[".", ".."]);
    // Every original entry that was never removed was returned.
    for i in 0..60 {
        let n = format!("f{i:02}");
        if g.lookup(d, &n).is_ok() {
            assert!(seen.contains(&n), "{n} skipped");
        }
    }
    assert!(round > 3);
    // Entries added behind the cursor are seen too (each was added after the position read).
    assert!(seen.contains(&"new7".to_string()));
    // READDIRPLUS lists the same names with attributes.
    let plus = g.readdirplus_all(d).unwrap();
    assert_eq!(plus.len(), g.list(d).unwrap().len());
}
