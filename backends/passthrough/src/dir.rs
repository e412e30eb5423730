//! Directories: OPENDIR, READDIR, READDIRPLUS, RELEASEDIR, FSYNCDIR. Cookies are the
//! host file system's own `d_off` values, so offsets stay stable across calls.

use crate::resolve::open_child;
use crate::{sys, PassthroughFs};
use dpfs_core::fs::{Context, Entry, ReadArgs};
use dpfs_core::reply::{ReplyDir, ReplyDirPlus};
use dpfs_core::Errno;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// One `linux_dirent64` read back from `getdents64`.
struct Dirent<'a> {
    ino: u64,
    off: u64,
    typ: u8,
    name: &'a [u8],
}

/// Parses the records in `buf`, stopping at the first malformed one.
fn parse(buf: &[u8]) -> Vec<Dirent<'_>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some(rec) = buf.get(pos..pos + 19) {
        let ino = u64::from_ne_bytes(rec[0..8].try_into().unwrap_or_default());
        let off = u64::from_ne_bytes(rec[8..16].try_into().unwrap_or_default());
        let reclen = u16::from_ne_bytes(rec[16..18].try_into().unwrap_or_default()) as usize;
        let typ = rec[18];
        let Some(name) = buf.get(pos + 19..pos + reclen) else { break };
        if reclen < 19 {
            break;
        }
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        out.push(Dirent { ino, off, typ, name });
        pos += reclen;
    }
    out
}

/// Reads the next batch of entries from `fd`'s current position (empty at the end).
fn getdents(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for `len` bytes.
    let n = unsafe { libc::syscall(libc::SYS_getdents64, fd.as_raw_fd(), buf.as_mut_ptr(), buf.len()) };
    sys::cvt(n).map(|n| n as usize)
}

fn seek(fd: BorrowedFd<'_>, off: u64) -> Result<(), Errno> {
    // SAFETY: plain syscall on a descriptor we own. Cookies are opaque 64-bit values.
    sys::cvt(unsafe { libc::lseek(fd.as_raw_fd(), off as i64, libc::SEEK_SET) }).map(|_| ())
}

impl PassthroughFs {
    pub(crate) fn do_opendir(&self, ctx: &Context, ino: u64) -> Result<(u64, u32), Errno> {
        let fd = self.inodes.fd(ino)?;
        if sys::ftype(sys::fstat(fd.as_fd())?.st_mode) != libc::S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let dir = {
            let _g = self.creds(ctx)?;
            self.reopen(fd.as_fd(), libc::O_RDONLY | libc::O_DIRECTORY)?
        };
        let fh = self.handles.insert(ino, dir)?;
        Ok((fh, self.cfg.fopen_flags(true)))
    }

    pub(crate) fn do_releasedir(&self, ino: u64, fh: u64) -> Result<(), Errno> {
        self.handles.remove(fh, ino).map(drop)
    }

    pub(crate) fn do_readdir(&self, ino: u64, args: ReadArgs, mut reply: ReplyDir) {
        let h = match self.handles.get(args.fh, ino) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let _l = h.dir_lock.lock();
        if let Err(e) = seek(h.fd.as_fd(), args.offset) {
            return reply.error(e);
        }
        let mut buf = vec![0u8; (args.size as usize).clamp(4096, 1 << 17)];
        loop {
            let n = match getdents(h.fd.as_fd(), &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return reply.error(e),
            };
            for d in parse(&buf[..n]) {
                if !reply.add(d.ino, d.off, d.typ as u32, d.name) {
                    return reply.done();
                }
            }
        }
        reply.done()
    }

    pub(crate) fn do_readdirplus(&self, ctx: &Context, ino: u64, args: ReadArgs, mut reply: ReplyDirPlus) {
        let h = match self.handles.get(args.fh, ino) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let _l = h.dir_lock.lock();
        if let Err(e) = seek(h.fd.as_fd(), args.offset) {
            return reply.error(e);
        }
        let _g = match self.creds(ctx) {
            Ok(g) => g,
            Err(e) => return reply.error(e),
        };
        let mut buf = vec![0u8; (args.size as usize).clamp(4096, 1 << 17)];
        loop {
            let n = match getdents(h.fd.as_fd(), &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return reply.error(e),
            };
            for d in parse(&buf[..n]) {
                if !reply.fits(d.name.len()) {
                    return reply.done();
                }
                if d.name == b"." || d.name == b".." {
                    let mut e = Entry::default();
                    e.attr.ino = d.ino;
                    e.attr.mode = libc::S_IFDIR;
                    reply.add(&e, d.off, d.name);
                    continue;
                }
                // Entries that vanished or sit on another mount are left out (hidden).
                let Ok(c) = sys::cstr(d.name) else { continue };
                let Ok(fd) = open_child(h.fd.as_fd(), &c) else { continue };
                let Ok(e) = self.entry_from(fd, false) else { continue };
                if !reply.add(&e, d.off, d.name) {
                    self.inodes.forget(e.ino, 1);
                    return reply.done();
                }
            }
        }
        reply.done()
    }

    pub(crate) fn do_fsyncdir(&self, ino: u64, fh: u64, datasync: bool) -> Result<(), Errno> {
        self.do_fsync(ino, fh, datasync)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ino: u64, off: u64, typ: u8, name: &[u8]) -> Vec<u8> {
        let len = (19 + name.len() + 1).div_ceil(8) * 8;
        let mut v = Vec::new();
        v.extend_from_slice(&ino.to_ne_bytes());
        v.extend_from_slice(&off.to_ne_bytes());
        v.extend_from_slice(&(len as u16).to_ne_bytes());
        v.push(typ);
        v.extend_from_slice(name);
        v.resize(len, 0);
        v
    }

    #[test]
    fn parses_records_and_stops_at_garbage() {
        let mut b = rec(5, 10, 8, b"hello");
        b.extend(rec(6, 20, 4, b"d"));
        let d = parse(&b);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].ino, d[0].off, d[0].typ, d[0].name), (5, 10, 8, &b"hello"[..]));
        assert_eq!(d[1].name, b"d");
        // Truncated second record, and a zero reclen: no panic, no loop.
        assert_eq!(parse(&b[..b.len() - 3]).len(), 1);
        let mut z = rec(1, 1, 1, b"x");
        z[16] = 0;
        z[17] = 0;
        assert!(parse(&z).is_empty());
    }
}
