//! Names: links, rename, readdir(plus), special files (Linux's errors for bad names are the
//! shared suite's `namespace_errors_match_linux`).

use crate::{Case, ROOT};
use std::os::unix::fs::FileTypeExt;

pub fn links_rename_and_readdir(c: &Case) {
    let g = &c.g;
    let a = g.mkdir(ROOT, "a", 0o755).unwrap().nodeid;
    let (f, fh) = g.mkfile(a, "f").unwrap();
    g.release(f, fh).unwrap();
    let l = g.link(f, ROOT, "hard").unwrap();
    assert_eq!((l.nodeid, l.attr.nlink), (f, 2));
    g.rename(a, "f", ROOT, "moved", 0).unwrap();
    assert!(c.dir.join("moved").exists() && !c.dir.join("a/f").exists());
    assert_eq!(g.lookup(ROOT, "moved").unwrap().nodeid, f);
    // RENAME_NOREPLACE over an existing name; RENAME_EXCHANGE is not offered.
    assert_eq!(g.rename(ROOT, "moved", ROOT, "hard", 1).err(), Some(libc::EEXIST));
    assert_eq!(g.rename(ROOT, "moved", ROOT, "hard", 2).err(), Some(libc::EINVAL));
    g.rename(ROOT, "moved", ROOT, "hard", 0).unwrap(); // same file: a no-op
    let b = g.mkdir(ROOT, "b", 0o755).unwrap().nodeid;
    let (x, fh) = g.mkfile(b, "x").unwrap();
    g.release(x, fh).unwrap();
    assert_eq!(g.rename(ROOT, "a", ROOT, "b", 0).err(), Some(libc::ENOTEMPTY));

    // Many entries, read in small pages: every name once, cookies as offsets.
    for i in 0..150 {
        let (n, fh) = g.mkfile(a, &format!("entry-{i:03}")).unwrap();
        g.release(n, fh).unwrap();
        g.forget(n, 1);
    }
    let names = g.list(a).unwrap();
    assert_eq!(names.len(), 150);
    assert_eq!(names[0], "entry-000");
    assert_eq!(names[149], "entry-149");
    let dots = g.readdir(a, 0, 4096).unwrap();
    assert_eq!((dots[0].name.as_slice(), dots[1].name.as_slice()), (&b"."[..], &b".."[..]));
    let plus = g.readdirplus_all(a).unwrap();
    assert_eq!(plus.len(), 150);
    let looked = g.lookup(a, "entry-042").unwrap().nodeid;
    assert!(plus.iter().any(|(n, id)| n == "entry-042" && *id == looked));
}

pub fn special_files(c: &Case) {
    let g = &c.g;
    let s = g.symlink(ROOT, "sl", "../some/target").unwrap();
    assert_eq!(s.attr.mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(g.readlink(s.nodeid).unwrap(), b"../some/target");
    assert_eq!(std::fs::read_link(c.dir.join("sl")).unwrap().to_str(), Some("../some/target"));
    let p = g.mknod(ROOT, "pipe", libc::S_IFIFO | 0o640, 0).unwrap();
    assert_eq!(p.attr.mode, libc::S_IFIFO | 0o640);
    assert!(std::fs::symlink_metadata(c.dir.join("pipe")).unwrap().file_type().is_fifo());
    let so = g.mknod(ROOT, "sock", libc::S_IFSOCK | 0o600, 0).unwrap();
    assert_eq!(so.attr.mode & libc::S_IFMT, libc::S_IFSOCK);
    let r = g.mknod(ROOT, "reg", libc::S_IFREG | 0o600, 0).unwrap();
    assert_eq!(r.attr.mode, libc::S_IFREG | 0o600);
    assert_eq!(g.mknod(ROOT, "dev", libc::S_IFCHR | 0o600, 0x0103).err(), Some(libc::EPERM));
    assert_eq!(g.mknod(ROOT, "blk", libc::S_IFBLK | 0o600, 0x0801).err(), Some(libc::EPERM));
    assert!(!c.dir.join("dev").exists());
}

pub fn forget_frees_nodes(c: &Case) {
    let g = &c.g;
    let before = g.fs.nodes();
    let (f, fh) = g.mkfile(ROOT, "f").unwrap();
    g.release(f, fh).unwrap();
    assert_eq!(g.lookup(ROOT, "f").unwrap().nodeid, f);
    assert_eq!(g.fs.nodes(), before + 1);
    g.forget(f, 2);
    assert_eq!(g.fs.nodes(), before);
    assert_eq!(g.getattr(f).err(), Some(libc::ENOENT));
    assert_ne!(g.lookup(ROOT, "f").unwrap().nodeid, 0);
}
