//! The null backend: answers without doing any work, to measure the stack's own overhead.
//!
//! Semantics follow DPFS-null: READ answers `size` bytes without touching the buffer, WRITE
//! acknowledges every byte, and LOOKUP/GETATTR/STATFS are synthetic. The namespace is a
//! root directory in which every name resolves to the same large regular file.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use dpfs_core::abi::{self, ROOT_ID};
use dpfs_core::fs::{Attr, Context, Entry, ReadArgs, Statfs, WriteArgs, WriteData};
use dpfs_core::reply::*;
use dpfs_core::{Errno, FileSystem};
use std::time::Duration;

/// Node id of the one synthetic file.
pub const FILE_ID: u64 = 2;
/// Apparent size of the synthetic file.
pub const FILE_SIZE: u64 = 1 << 40;
const TIMEOUT: Duration = Duration::from_secs(3600);

/// The null file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullFs;

impl NullFs {
    /// A null file system.
    pub fn new() -> NullFs {
        NullFs
    }

    fn attr(ino: u64) -> Attr {
        let (mode, nlink, size) =
            if ino == ROOT_ID { (libc::S_IFDIR | 0o755, 2, 4096) } else { (libc::S_IFREG | 0o666, 1, FILE_SIZE) };
        Attr { ino, size, blocks: size / 512, mode, nlink, blksize: 4096, ..Default::default() }
    }

    fn known(ino: u64) -> Result<(), Errno> {
        if ino == ROOT_ID || ino == FILE_ID {
            Ok(())
        } else {
            Err(Errno::ENOENT)
        }
    }
}

impl FileSystem for NullFs {
    fn lookup(&self, _ctx: &Context, parent: u64, _name: &[u8], reply: ReplyEntry) {
        if parent != ROOT_ID {
            return reply.error(Errno::ENOTDIR);
        }
        reply.entry(&Entry {
            ino: FILE_ID,
            generation: 1,
            attr: Self::attr(FILE_ID),
            entry_timeout: TIMEOUT,
            attr_timeout: TIMEOUT,
        })
    }

    fn getattr(&self, _ctx: &Context, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match Self::known(ino) {
            Ok(()) => reply.attr(&Self::attr(ino), TIMEOUT),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _ctx: &Context, ino: u64, _flags: u32, reply: ReplyOpen) {
        match Self::known(ino) {
            Ok(()) if ino == FILE_ID => reply.opened(0, abi::fopen::DIRECT_IO),
            Ok(()) => reply.error(Errno::EISDIR),
            Err(e) => reply.error(e),
        }
    }

    fn create(&self, ctx: &Context, parent: u64, name: &[u8], _m: u32, _u: u32, _f: u32, reply: ReplyCreate) {
        let _ = (ctx, name);
        if parent != ROOT_ID {
            return reply.error(Errno::ENOTDIR);
        }
        let e = Entry {
            ino: FILE_ID,
            generation: 1,
            attr: Self::attr(FILE_ID),
            entry_timeout: TIMEOUT,
            attr_timeout: TIMEOUT,
        };
        reply.created(&e, 0, abi::fopen::DIRECT_IO)
    }

    fn read(&self, _ctx: &Context, _ino: u64, args: ReadArgs, reply: ReplyData) {
        // The buffer is left as the guest gave it: only the length is answered.
        let n = (args.size as u64).min(FILE_SIZE.saturating_sub(args.offset)) as usize;
        reply.commit(n)
    }

    fn write(&self, _ctx: &Context, _ino: u64, _args: WriteArgs, data: WriteData, reply: ReplyWrite) {
        reply.written(data.len() as u32)
    }

    fn flush(&self, _ctx: &Context, _ino: u64, _fh: u64, _owner: u64, reply: ReplyEmpty) {
        reply.ok()
    }

    fn fsync(&self, _ctx: &Context, _ino: u64, _fh: u64, _datasync: bool, reply: ReplyEmpty) {
        reply.ok()
    }

    fn statfs(&self, _ctx: &Context, _ino: u64, reply: ReplyStatfs) {
        reply.statfs(&Statfs { bsize: 4096, frsize: 4096, namelen: 255, ..Default::default() })
    }

    fn readdir(&self, _ctx: &Context, ino: u64, args: ReadArgs, mut reply: ReplyDir) {
        if ino != ROOT_ID {
            return reply.error(Errno::ENOTDIR);
        }
        if args.offset == 0 {
            let _ =
                reply.add(ROOT_ID, 1, libc::DT_DIR as u32, b".") && reply.add(ROOT_ID, 2, libc::DT_DIR as u32, b"..");
        }
        reply.done()
    }

    fn readdirplus(&self, _ctx: &Context, ino: u64, args: ReadArgs, mut reply: ReplyDirPlus) {
        if ino != ROOT_ID {
            return reply.error(Errno::ENOTDIR);
        }
        let entry =
            |ino| Entry { ino, generation: 1, attr: Self::attr(ino), entry_timeout: TIMEOUT, attr_timeout: TIMEOUT };
        // The same listing as READDIR: the dots only.
        let entries: [(u64, &[u8]); 2] = [(ROOT_ID, b"."), (ROOT_ID, b"..")];
        for (i, (ino, name)) in entries.iter().enumerate().skip(args.offset as usize) {
            if !reply.add(&entry(*ino), i as u64 + 1, name) {
                break;
            }
        }
        reply.done()
    }

    fn access(&self, _ctx: &Context, ino: u64, _mask: u32, reply: ReplyEmpty) {
        match Self::known(ino) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}
