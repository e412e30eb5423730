//! NFSv4.2 (`--nfs-minor 2`): lseek SEEK_DATA/SEEK_HOLE through SEEK, fallocate through
//! ALLOCATE/DEALLOCATE, copy_file_range through COPY, each checked against the export's files
//! on the host; and with minor version 1 the answers that make the guest's kernel fall back.

use crate::{Case, ROOT};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::io::AsRawFd;

const KEEP_SIZE: u32 = libc::FALLOC_FL_KEEP_SIZE as u32;
const PUNCH: u32 = libc::FALLOC_FL_PUNCH_HOLE as u32 | KEEP_SIZE;

/// The host's own lseek(2) on the file behind the export.
fn host_lseek(path: &std::path::Path, offset: u64, whence: i32) -> Result<u64, i32> {
    let f = std::fs::File::open(path).unwrap();
    // SAFETY: a plain syscall on an open descriptor.
    let r = unsafe { libc::lseek(f.as_raw_fd(), offset as libc::off_t, whence) };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r as u64)
    }
}

pub fn seek_data_and_hole(c: &Case) {
    let g = &c.g;
    let (ino, fh) = g.mkfile(ROOT, "sparse").unwrap();
    g.write(ino, fh, 0, &[1; 4096]).unwrap();
    g.write(ino, fh, 1 << 20, &[2; 4096]).unwrap();
    g.fsync(ino, fh, false).unwrap();
    let host = c.dir.join("sparse");
    for (offset, whence) in [
        (0, libc::SEEK_DATA),
        (0, libc::SEEK_HOLE),
        (8192, libc::SEEK_DATA),
        (8192, libc::SEEK_HOLE),
        ((1 << 20) + 10, libc::SEEK_HOLE),
    ] {
        let want = host_lseek(&host, offset, whence);
        assert_eq!(g.lseek(ino, fh, offset, whence), want, "lseek({offset}, {whence})");
        assert!(want.is_ok());
    }
    // No data after the end: ENXIO, as on the host.
    assert_eq!(host_lseek(&host, 2 << 20, libc::SEEK_DATA), Err(libc::ENXIO));
    assert_eq!(g.lseek(ino, fh, 2 << 20, libc::SEEK_DATA), Err(libc::ENXIO));
    g.release(ino, fh).unwrap();
}

pub fn fallocate_allocate_and_punch(c: &Case) {
    let g = &c.g;
    let (ino, fh) = g.mkfile(ROOT, "f").unwrap();
    let host = c.dir.join("f");
    // Mode 0: reserved and the size grows.
    g.fallocate(ino, fh, 0, 64 << 10, 0).unwrap();
    assert_eq!(g.getattr(ino).unwrap().size, 64 << 10);
    let m = std::fs::metadata(&host).unwrap();
    assert_eq!(m.len(), 64 << 10);
    assert!(m.blocks() * 512 >= 64 << 10, "blocks {}", m.blocks());
    // Punch a hole: zeros there, the size kept, and the host sees a hole.
    g.write(ino, fh, 0, &[7; 64 << 10]).unwrap();
    g.fsync(ino, fh, false).unwrap();
    g.fallocate(ino, fh, 16 << 10, 16 << 10, PUNCH).unwrap();
    assert_eq!(g.getattr(ino).unwrap().size, 64 << 10);
    let data = std::fs::read(&host).unwrap();
    assert_eq!(data.len(), 64 << 10);
    assert!(data[..16 << 10].iter().all(|&b| b == 7));
    assert!(data[16 << 10..32 << 10].iter().all(|&b| b == 0));
    assert!(data[32 << 10..].iter().all(|&b| b == 7));
    assert_eq!(host_lseek(&host, 0, libc::SEEK_HOLE), Ok(16 << 10));
    assert_eq!(g.read(ino, fh, 16 << 10, 4).unwrap(), [0; 4]);
    // KEEP_SIZE inside the file: reserved, the size unchanged.
    g.fallocate(ino, fh, 16 << 10, 4096, KEEP_SIZE).unwrap();
    assert_eq!(std::fs::metadata(&host).unwrap().len(), 64 << 10);
    // KEEP_SIZE across and past the end: the size stays (the server's ALLOCATE would grow it).
    g.fallocate(ino, fh, 60 << 10, 16 << 10, KEEP_SIZE).unwrap();
    g.fallocate(ino, fh, 1 << 20, 4096, KEEP_SIZE).unwrap();
    assert_eq!(std::fs::metadata(&host).unwrap().len(), 64 << 10);
    assert_eq!(g.getattr(ino).unwrap().size, 64 << 10);
    // Other modes are not NFS operations.
    let zero_range = libc::FALLOC_FL_ZERO_RANGE as u32;
    assert_eq!(g.fallocate(ino, fh, 0, 10, zero_range), Err(libc::EOPNOTSUPP));
    assert_eq!(g.fallocate(ino, fh, 0, 10, libc::FALLOC_FL_PUNCH_HOLE as u32), Err(libc::EOPNOTSUPP));
    assert_eq!(g.fallocate(ino, fh, 0, 0, 0), Err(libc::EINVAL));
    g.release(ino, fh).unwrap();
}

pub fn copy_file_range_on_the_server(c: &Case) {
    let g = &c.g;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(c.dir.join("src"), &data).unwrap();
    let src = g.lookup(ROOT, "src").unwrap().nodeid;
    let sfh = g.open(src, libc::O_RDONLY as u32).unwrap();
    let (dst, dfh) = g.mkfile(ROOT, "dst").unwrap();
    g.write(dst, dfh, 0, b"head").unwrap();
    let copied = g.copy_range(src, sfh, 100, dst, dfh, 4, 200_000);
    if copied == Err(libc::ENOSYS) {
        // ganesha 4.3's FSAL_VFS answers COPY with NFS4ERR_NOTSUPP: ENOSYS, so that the
        // guest's kernel copies through reads and writes; nothing was written.
        eprintln!("the server has no COPY: ENOSYS");
        g.fsync(dst, dfh, false).unwrap();
        assert_eq!(std::fs::read(c.dir.join("dst")).unwrap(), b"head");
        for (ino, fh) in [(src, sfh), (dst, dfh)] {
            g.release(ino, fh).unwrap();
        }
        return;
    }
    assert_eq!(copied, Ok(200_000));
    assert_eq!(g.getattr(dst).unwrap().size, 200_004);
    g.fsync(dst, dfh, false).unwrap();
    let out = std::fs::read(c.dir.join("dst")).unwrap();
    assert_eq!(&out[..4], b"head");
    assert!(out[4..] == data[100..200_100], "copied bytes differ");
    // Past the source's end: a short copy, as copy_file_range(2) does.
    let f = std::fs::File::open(c.dir.join("dst")).unwrap();
    let mut tail = [0u8; 4];
    f.read_exact_at(&mut tail, 200_000).unwrap();
    assert_eq!(tail[..], data[200_096..200_100]);
    let n = g.copy_range(src, sfh, 299_000, dst, dfh, 0, 5000).unwrap();
    assert_eq!(n, 1000);
    // A destination opened read-only cannot be written.
    let ro = g.open(dst, libc::O_RDONLY as u32).unwrap();
    assert!(g.copy_range(src, sfh, 0, dst, ro, 0, 10).is_err());
    for (ino, fh) in [(src, sfh), (dst, dfh), (dst, ro)] {
        g.release(ino, fh).unwrap();
    }
}

/// Minor version 1: SEEK, ALLOCATE and COPY do not exist; the guest's kernel falls back
/// (lseek and copy_file_range on ENOSYS) or reports EOPNOTSUPP (fallocate).
pub fn v41_has_no_v42_ops(c: &Case) {
    let g = &c.g;
    let (ino, fh) = g.mkfile(ROOT, "f").unwrap();
    g.write(ino, fh, 0, b"data").unwrap();
    assert_eq!(g.lseek(ino, fh, 0, libc::SEEK_DATA), Err(libc::ENOSYS));
    assert_eq!(g.lseek(ino, fh, 0, libc::SEEK_HOLE), Err(libc::ENOSYS));
    assert_eq!(g.fallocate(ino, fh, 0, 4096, 0), Err(libc::EOPNOTSUPP));
    assert_eq!(g.fallocate(ino, fh, 0, 4096, PUNCH), Err(libc::EOPNOTSUPP));
    let (dst, dfh) = g.mkfile(ROOT, "g").unwrap();
    assert_eq!(g.copy_range(ino, fh, 0, dst, dfh, 0, 4), Err(libc::ENOSYS));
    assert_eq!(std::fs::read(c.dir.join("f")).unwrap(), b"data");
    g.release(ino, fh).unwrap();
    g.release(dst, dfh).unwrap();
}
