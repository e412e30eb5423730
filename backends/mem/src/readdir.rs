//! OPENDIR, READDIR and READDIRPLUS. Offsets are the directory's stable cookies: 1 and 2
//! follow `.` and `..`, every other entry's cookie is its own (see `dir`).

use crate::{perm, MemFs};
use dpfs_core::fs::{Context, ReadArgs};
use dpfs_core::reply::{ReplyDir, ReplyDirPlus};
use dpfs_core::Errno;
use std::sync::atomic::Ordering;

const DIR_T: u32 = libc::S_IFDIR >> 12;

impl MemFs {
    pub(crate) fn do_opendir(&self, ctx: &Context, ino: u64, flags: u32) -> Result<u64, Errno> {
        let inode = self.inode(ino)?;
        inode.dir()?;
        {
            let m = inode.meta.lock();
            let mask =
                if flags & libc::O_ACCMODE as u32 == libc::O_RDONLY as u32 { perm::R } else { perm::R | perm::W };
            perm::check(ctx, m.owner(), mask)?;
        }
        self.open_handle(&inode, flags)
    }

    pub(crate) fn do_readdir(&self, ino: u64, args: ReadArgs, mut reply: ReplyDir) {
        let inode = match self.inode(ino) {
            Ok(i) => i,
            Err(e) => return reply.error(e),
        };
        let d = match inode.dir() {
            Ok(d) => d,
            Err(e) => return reply.error(e),
        };
        let dir = d.read();
        if inode.meta.lock().is_dead_dir() {
            drop(dir);
            return reply.error(Errno::ENOENT);
        }
        let parent = inode.parent.load(Ordering::Acquire);
        let mut full = false;
        if args.offset < 1 {
            full = !reply.add(ino, 1, DIR_T, b".");
        }
        if args.offset < 2 && !full {
            full = !reply.add(parent, 2, DIR_T, b"..");
        }
        if !full {
            for (cookie, e) in dir.after(args.offset.max(2)) {
                if !reply.add(e.ino, cookie, e.typ, &e.name) {
                    break;
                }
            }
        }
        drop(dir);
        reply.done()
    }

    pub(crate) fn do_readdirplus(&self, ino: u64, args: ReadArgs, mut reply: ReplyDirPlus) {
        let inode = match self.inode(ino) {
            Ok(i) => i,
            Err(e) => return reply.error(e),
        };
        let d = match inode.dir() {
            Ok(d) => d,
            Err(e) => return reply.error(e),
        };
        let dir = d.read();
        let me = {
            let m = inode.meta.lock();
            if m.is_dead_dir() {
                drop(m);
                drop(dir);
                return reply.error(Errno::ENOENT);
            }
            self.entry(ino, &m)
        };
        // `.` and `..` carry attributes but no lookup reference (the guest takes none).
        let mut full = false;
        if args.offset < 1 {
            full = !reply.add(&me, 1, b".");
        }
        if args.offset < 2 && !full {
            let parent = inode.parent.load(Ordering::Acquire);
            let pe = match self.inode(parent) {
                Ok(p) => self.entry(parent, &p.meta.lock()),
                Err(_) => me,
            };
            full = !reply.add(&pe, 2, b"..");
        }
        if !full {
            for (cookie, e) in dir.after(args.offset.max(2)) {
                if !reply.fits(e.name.len()) {
                    break;
                }
                let Ok(child) = self.inode(e.ino) else { continue };
                let Ok(entry) = self.take_lookup(&child) else { continue };
                if !reply.add(&entry, cookie, &e.name) {
                    // Not sent after all: give the reference back (the name keeps it alive).
                    self.do_forget(e.ino, 1);
                    break;
                }
            }
        }
        drop(dir);
        reply.done()
    }
}
