//! File data and attributes: writes and reads through OPEN/READ/WRITE/COMMIT/CLOSE,
//! checked against the export's files on the host.

use crate::{Case, ROOT};
use dpfs_core::abi;
use std::os::unix::fs::MetadataExt;

const RW: u32 = libc::O_RDWR as u32;

pub fn file_write_read_and_attrs(c: &Case) {
    let g = &c.g;
    let (ino, fh) = g.mkfile(ROOT, "f").unwrap();
    assert_eq!(g.write(ino, fh, 0, b"hello world").unwrap(), 11);
    assert_eq!(g.read(ino, fh, 6, 100).unwrap(), b"world");
    assert_eq!(g.read(ino, fh, 100, 10).unwrap(), b"");
    let a = g.getattr(ino).unwrap();
    assert_eq!((a.size, a.nlink, a.mode), (11, 1, libc::S_IFREG | 0o644));
    let host = std::fs::metadata(c.dir.join("f")).unwrap();
    assert_eq!(a.ino, host.ino());
    g.fsync(ino, fh, false).unwrap();
    assert_eq!(std::fs::read(c.dir.join("f")).unwrap(), b"hello world");
    // A hole reads as zeros.
    g.write(ino, fh, 10_000, b"x").unwrap();
    let v = g.read(ino, fh, 0, 20_000).unwrap();
    assert_eq!(v.len(), 10_001);
    assert!(v[11..10_000].iter().all(|&b| b == 0));
    g.release(ino, fh).unwrap();
    assert_eq!(g.read(ino, fh, 0, 1), Err(libc::EBADF));
    // Released: the data is on the server.
    assert_eq!(std::fs::read(c.dir.join("f")).unwrap().len(), 10_001);
    // Host-side changes are seen.
    std::fs::write(c.dir.join("f"), b"from the host").unwrap();
    let fh = g.open(ino, libc::O_RDONLY as u32).unwrap();
    assert_eq!(g.read(ino, fh, 0, 100).unwrap(), b"from the host");
    // A read-only open cannot write (NFS4ERR_OPENMODE).
    assert_eq!(g.write(ino, fh, 0, b"no"), Err(libc::EBADF));
    g.release(ino, fh).unwrap();
    // open(O_TRUNC) (atomic: the kernel leaves it to open) empties the file.
    let fh = g.open(ino, (libc::O_WRONLY | libc::O_TRUNC) as u32).unwrap();
    assert_eq!(g.getattr(ino).unwrap().size, 0);
    assert_eq!(std::fs::metadata(c.dir.join("f")).unwrap().len(), 0);
    g.release(ino, fh).unwrap();
}

pub fn large_io_in_several_rpcs(c: &Case) {
    let g = &c.g;
    let max = g.fs.max_io() as usize;
    let (ino, fh) = g.mkfile(ROOT, "big").unwrap();
    assert_eq!(max, 64 << 10);
    let data: Vec<u8> = (0..3 * max + 12345).map(|i| (i * 7 % 251) as u8).collect();
    let mut off = 0;
    for chunk in data.chunks(max) {
        assert_eq!(g.write(ino, fh, off as u64, chunk).unwrap() as usize, chunk.len());
        off += chunk.len();
    }
    g.fsync(ino, fh, false).unwrap();
    assert_eq!(std::fs::read(c.dir.join("big")).unwrap(), data);
    // A read larger than one NFS READ is served by several.
    let back = g.read(ino, fh, 5, (max + 100) as u32).unwrap();
    assert_eq!(back, data[5..5 + max + 100]);
    g.release(ino, fh).unwrap();
}

pub fn setattr_size_mode_times(c: &Case) {
    let g = &c.g;
    let (ino, fh) = g.mkfile(ROOT, "s").unwrap();
    g.write(ino, fh, 0, &[1; 100]).unwrap();
    assert_eq!(g.truncate(ino, 10).unwrap().size, 10);
    assert_eq!(std::fs::metadata(c.dir.join("s")).unwrap().len(), 10);
    assert_eq!(g.chmod(ino, 0o600).unwrap().mode, libc::S_IFREG | 0o600);
    let set = abi::SetattrIn {
        valid: abi::fattr::ATIME | abi::fattr::MTIME,
        atime: 1_000_000,
        atimensec: 5,
        mtime: 2_000_000,
        mtimensec: 7,
        ..Default::default()
    };
    let a = g.setattr(ino, set).unwrap();
    assert_eq!((a.atime, a.atimensec, a.mtime, a.mtimensec), (1_000_000, 5, 2_000_000, 7));
    let host = std::fs::metadata(c.dir.join("s")).unwrap();
    assert_eq!((host.mtime(), host.mtime_nsec(), host.mode() & 0o7777), (2_000_000, 7, 0o600));
    let now = abi::SetattrIn { valid: abi::fattr::MTIME | abi::fattr::MTIME_NOW, ..Default::default() };
    let a = g.setattr(ino, now).unwrap();
    assert!(a.mtime > 1_700_000_000, "mtime set to the server's time: {}", a.mtime);
    g.release(ino, fh).unwrap();
}

pub fn open_existing_and_share_state(c: &Case) {
    let g = &c.g;
    let (ino, fh1) = g.mkfile(ROOT, "o").unwrap();
    let fh2 = g.open(ino, RW).unwrap();
    g.write(ino, fh1, 0, b"one").unwrap();
    // Closing one open leaves the other usable.
    g.release(ino, fh1).unwrap();
    g.write(ino, fh2, 3, b"two").unwrap();
    assert_eq!(g.read(ino, fh2, 0, 10).unwrap(), b"onetwo");
    g.release(ino, fh2).unwrap();
    // O_EXCL on an existing name, O_TRUNC on create.
    assert_eq!(g.create(ROOT, "o", 0o644, RW | libc::O_EXCL as u32).err(), Some(libc::EEXIST));
    let (e, fh) = g.create(ROOT, "o", 0o644, RW | libc::O_TRUNC as u32).unwrap();
    assert_eq!(e.attr.size, 0);
    g.release(e.nodeid, fh).unwrap();
}
