//! Typed reply tokens: how a backend answers a request, inline or later from any thread.
//!
//! Each token is consumed by its answering method, so a request is answered at most once;
//! a token dropped unanswered answers EIO, so it is answered at least once. Encoding goes
//! straight into the request's writable segments.
//!
//! [`Answer`] answers any token with one success shape from a `Result` (the glue every
//! backend uses); [`Xattr`] is the success value of [`ReplyXattr`].

// Every byte here came from the guest: indexing must be checked.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use crate::abi::{self, OutHeader};
pub use crate::answer::{Answer, Xattr};
use crate::errno::Errno;
use crate::fs::{Attr, AttrExt, Entry, Lock, Statfs, Statx};
use crate::metrics::Metrics;
use crate::request::Completion;
use crate::segments::{SegList, SegWriter};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zerocopy::{Immutable, IntoBytes};

const HDR: usize = std::mem::size_of::<OutHeader>();

/// The state shared by all reply tokens: where to write and whom to tell.
pub(crate) struct ReplySink {
    writable: SegList,
    unique: u64,
    minor: u32,
    opcode: abi::Opcode,
    completion: Option<Box<dyn Completion>>,
    metrics: Option<(Arc<Metrics>, Instant)>,
}

impl ReplySink {
    pub(crate) fn new(
        writable: SegList,
        unique: u64,
        minor: u32,
        opcode: abi::Opcode,
        completion: Box<dyn Completion>,
        metrics: Option<(Arc<Metrics>, Instant)>,
    ) -> ReplySink {
        ReplySink { writable, unique, minor, opcode, completion: Some(completion), metrics }
    }

    fn writer(&self) -> SegWriter<'_> {
        SegWriter::new(&self.writable)
    }

    /// Room for the reply body after the out-header.
    fn body_capacity(&self) -> usize {
        self.writer().capacity().saturating_sub(HDR)
    }

    /// Writes the header for a body of `body_len` bytes already in place, and completes.
    fn finish(mut self, error: i32, body_len: usize) {
        let len = HDR + body_len;
        let hdr = OutHeader { len: len as u32, error, unique: self.unique };
        let written = match self.writer().write_obj_at(0, &hdr, HDR) {
            Ok(()) => len,
            Err(_) => 0,
        };
        self.complete(written, error);
    }

    fn complete(&mut self, written: usize, error: i32) {
        if let Some(c) = self.completion.take() {
            if let Some((m, start)) = self.metrics.take() {
                m.record(self.opcode, error != 0, start.elapsed());
            }
            c.complete(written);
        }
    }

    /// Answers with an error.
    pub(crate) fn error(self, e: Errno) {
        self.finish(e.to_wire(), 0)
    }

    /// Answers with the concatenation of `parts`, or EIO if it does not fit.
    fn send(self, parts: &[&[u8]]) {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > self.body_capacity() {
            return self.error(Errno::EIO);
        }
        let w = self.writer();
        let mut pos = HDR;
        for p in parts {
            // Cannot fail: the total was checked against the capacity above.
            let _ = w.write_at(pos, p);
            pos += p.len();
        }
        self.finish(0, total)
    }

    /// Answers with one struct truncated to `size` bytes (compat reply sizes).
    fn send_obj<T: IntoBytes + Immutable>(self, v: &T, size: usize) {
        let b = v.as_bytes();
        self.send(&[b.get(..size).unwrap_or(b)])
    }

    /// Answers with raw bytes (INIT).
    pub(crate) fn send_raw(self, bytes: &[u8]) {
        self.send(&[bytes])
    }

    /// Completes without any reply (FORGET and friends).
    pub(crate) fn no_reply(mut self) {
        self.complete(0, 0);
    }
}

impl Drop for ReplySink {
    fn drop(&mut self) {
        if self.completion.is_some() {
            // A backend dropped its token: answer EIO rather than leave the guest waiting.
            let hdr = OutHeader { len: HDR as u32, error: Errno::EIO.to_wire(), unique: self.unique };
            let written = match self.writer().write_obj_at(0, &hdr, HDR) {
                Ok(()) => HDR,
                Err(_) => 0,
            };
            self.complete(written, Errno::EIO.to_wire());
        }
    }
}

fn split(d: Duration) -> (u64, u32) {
    (d.as_secs(), d.subsec_nanos())
}

fn entry_out(e: &Entry) -> abi::EntryOut {
    let (es, en) = split(e.entry_timeout);
    let (as_, an) = split(e.attr_timeout);
    abi::EntryOut {
        nodeid: e.ino,
        generation: e.generation,
        entry_valid: es,
        attr_valid: as_,
        entry_valid_nsec: en,
        attr_valid_nsec: an,
        attr: e.attr,
    }
}

macro_rules! token {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        pub struct $name(pub(crate) ReplySink);
        impl $name {
            /// Answers with an error.
            pub fn error(self, e: Errno) {
                self.0.error(e)
            }
        }
    };
}

token!(
    /// Reply carrying nothing but success or an error.
    ReplyEmpty
);
impl ReplyEmpty {
    /// Answers success.
    pub fn ok(self) {
        self.0.send(&[])
    }
}

token!(
    /// Reply to LOOKUP, MKNOD, MKDIR, SYMLINK, LINK.
    ReplyEntry
);
impl ReplyEntry {
    /// Answers with an entry (`ino == 0` is a cacheable negative entry).
    pub fn entry(self, e: &Entry) {
        let size = if self.0.minor < 9 { abi::COMPAT_ENTRY_OUT_SIZE } else { 128 };
        self.0.send_obj(&entry_out(e), size)
    }
}

token!(
    /// Reply to GETATTR and SETATTR.
    ReplyAttr
);
impl ReplyAttr {
    /// Answers with attributes valid for `timeout`.
    pub fn attr(self, attr: &Attr, timeout: Duration) {
        let (s, n) = split(timeout);
        let out = abi::AttrOut { attr_valid: s, attr_valid_nsec: n, dummy: 0, attr: *attr };
        let size = if self.0.minor < 9 { abi::COMPAT_ATTR_OUT_SIZE } else { 104 };
        self.0.send_obj(&out, size)
    }
}

token!(
    /// Reply to OPEN and OPENDIR.
    ReplyOpen
);
impl ReplyOpen {
    /// Answers with a handle and `FOPEN_*` flags.
    pub fn opened(self, fh: u64, open_flags: u32) {
        self.0.send_obj(&abi::OpenOut { fh, open_flags, backing_id: 0 }, 16)
    }
}

token!(
    /// Reply to CREATE and TMPFILE.
    ReplyCreate
);
impl ReplyCreate {
    /// Answers with the new entry and its open handle.
    pub fn created(self, e: &Entry, fh: u64, open_flags: u32) {
        let size = if self.0.minor < 9 { abi::COMPAT_ENTRY_OUT_SIZE } else { 128 };
        let eo = entry_out(e);
        let oo = abi::OpenOut { fh, open_flags, backing_id: 0 };
        self.0.send(&[eo.as_bytes().get(..size).unwrap_or_default(), oo.as_bytes()])
    }
}

token!(
    /// Reply to WRITE.
    ReplyWrite
);
impl ReplyWrite {
    /// Answers with the number of bytes written.
    pub fn written(self, size: u32) {
        self.0.send_obj(&abi::WriteOut { size, padding: 0 }, 8)
    }
}

token!(
    /// Reply to COPY_FILE_RANGE and COPY_FILE_RANGE_64.
    ReplyCopy
);
impl ReplyCopy {
    /// Answers with the number of bytes copied (clamped to 32 bits for the old opcode).
    pub fn copied(self, bytes: u64) {
        if self.0.opcode == abi::Opcode::CopyFileRange64 {
            self.0.send_obj(&abi::CopyFileRangeOut { bytes_copied: bytes }, 8)
        } else {
            let size = bytes.min(u32::MAX as u64) as u32;
            self.0.send_obj(&abi::WriteOut { size, padding: 0 }, 8)
        }
    }
}

token!(
    /// Reply to STATFS.
    ReplyStatfs
);
impl ReplyStatfs {
    /// Answers with file-system statistics.
    pub fn statfs(self, st: &Statfs) {
        let size = if self.0.minor < 4 { abi::COMPAT_STATFS_SIZE } else { 80 };
        self.0.send_obj(&abi::StatfsOut { st: *st }, size)
    }
}

/// Reply carrying bytes: READ and READLINK.
///
/// Either hand over a slice with [`data`](Self::data), or fill the reply in place: get
/// the destination segments with [`buffer`](Self::buffer), read into them (`preadv`,
/// io_uring) and then [`commit`](Self::commit) the number of bytes filled.
pub struct ReplyData {
    sink: ReplySink,
    max: usize,
}

impl ReplyData {
    pub(crate) fn new(sink: ReplySink, max: usize) -> ReplyData {
        let max = max.min(sink.body_capacity());
        ReplyData { sink, max }
    }

    /// Answers with an error.
    pub fn error(self, e: Errno) {
        self.sink.error(e)
    }

    /// Largest payload the reply can carry (the request's size, bounded by the buffers).
    pub fn capacity(&self) -> usize {
        self.max
    }

    /// Answers with `data` (truncated to `capacity()`).
    pub fn data(self, data: &[u8]) {
        let n = data.len().min(self.max);
        self.sink.send(&[data.get(..n).unwrap_or_default()])
    }

    /// The first `len` bytes (at most `capacity()`) of the payload area, as segments.
    pub fn buffer(&self, len: usize) -> SegList {
        let len = len.min(self.max);
        self.sink.writer().range(HDR, len).unwrap_or_default()
    }

    /// Answers with the first `len` bytes of the payload area, filled through `buffer`.
    pub fn commit(self, len: usize) {
        let len = len.min(self.max);
        self.sink.finish(0, len)
    }
}

token!(
    /// Reply to GETXATTR and LISTXATTR.
    ReplyXattr
);
impl ReplyXattr {
    /// Answers a `size == 0` probe with the value's length.
    pub fn size(self, size: u32) {
        self.0.send_obj(&abi::GetxattrOut { size, padding: 0 }, 8)
    }
    /// Answers with the value (the backend checked it fits the requested size).
    pub fn data(self, data: &[u8]) {
        self.0.send(&[data])
    }
}

token!(
    /// Reply to GETLK.
    ReplyLock
);
impl ReplyLock {
    /// Answers with the conflicting lock, or one with `typ == F_UNLCK`.
    pub fn lock(self, lock: Lock) {
        self.0.send_obj(&abi::LkOut { lk: lock.into() }, 24)
    }
}

token!(
    /// Reply to BMAP.
    ReplyBmap
);
impl ReplyBmap {
    /// Answers with the device block.
    pub fn block(self, block: u64) {
        self.0.send_obj(&abi::BmapOut { block }, 8)
    }
}

token!(
    /// Reply to LSEEK.
    ReplyLseek
);
impl ReplyLseek {
    /// Answers with the new offset.
    pub fn offset(self, offset: u64) {
        self.0.send_obj(&abi::LseekOut { offset }, 8)
    }
}

token!(
    /// Reply to POLL.
    ReplyPoll
);
impl ReplyPoll {
    /// Answers with the ready events.
    pub fn revents(self, revents: u32) {
        self.0.send_obj(&abi::PollOut { revents, padding: 0 }, 8)
    }
}

token!(
    /// Reply to IOCTL.
    ReplyIoctl
);
impl ReplyIoctl {
    /// Answers with the ioctl's return value and its output bytes.
    pub fn ioctl(self, result: i32, data: &[u8]) {
        let out = abi::IoctlOut { result, flags: 0, in_iovs: 0, out_iovs: 0 };
        self.0.send(&[out.as_bytes(), data])
    }
}

token!(
    /// Reply to STATX.
    ReplyStatx
);
impl ReplyStatx {
    /// Answers with statx data valid for `timeout`.
    pub fn statx(self, stx: &Statx, timeout: Duration) {
        let (s, n) = split(timeout);
        let out = abi::StatxOut { attr_valid: s, attr_valid_nsec: n, flags: 0, spare: [0; 2], stat: *stx };
        self.0.send_obj(&out, std::mem::size_of::<abi::StatxOut>())
    }
}

/// Writes directory entries straight into the reply buffer.
struct DirBuf {
    sink: ReplySink,
    limit: usize,
    pos: usize,
}

impl DirBuf {
    fn new(sink: ReplySink, size: u32) -> DirBuf {
        let limit = (size as usize).min(sink.body_capacity());
        DirBuf { sink, limit, pos: 0 }
    }

    /// Appends `prefix` (fixed part) + name + padding; false if it does not fit.
    fn push(&mut self, prefix: &[u8], name: &[u8]) -> bool {
        let len = prefix.len() + name.len();
        let padded = abi::dirent_align(len);
        if self.pos + padded > self.limit {
            return false;
        }
        let w = self.sink.writer();
        let at = HDR + self.pos;
        let ok = w.write_at(at, prefix).is_ok()
            && w.write_at(at + prefix.len(), name).is_ok()
            && w.write_at(at + len, [0u8; 8].get(..padded - len).unwrap_or_default()).is_ok();
        if ok {
            self.pos += padded;
        }
        ok
    }

    fn done(self) {
        let n = self.pos;
        self.sink.finish(0, n)
    }
}

/// Reply to READDIR: add entries until [`add`](Self::add) returns false, then [`done`](Self::done).
pub struct ReplyDir(DirBuf);

impl ReplyDir {
    pub(crate) fn new(sink: ReplySink, size: u32) -> ReplyDir {
        ReplyDir(DirBuf::new(sink, size))
    }
    /// Adds an entry; `offset` is the cookie of the *next* entry. False if the buffer is full
    /// (the entry was not added).
    pub fn add(&mut self, ino: u64, offset: u64, typ: u32, name: &[u8]) -> bool {
        let d = abi::Dirent { ino, off: offset, namelen: name.len() as u32, typ };
        self.0.push(d.as_bytes(), name)
    }
    /// Answers with the entries added so far (none = end of directory).
    pub fn done(self) {
        self.0.done()
    }
    /// Answers with an error.
    pub fn error(self, e: Errno) {
        self.0.sink.error(e)
    }
}

/// Reply to READDIRPLUS: like [`ReplyDir`], with an entry (and a lookup reference) per name.
pub struct ReplyDirPlus(DirBuf);

impl ReplyDirPlus {
    pub(crate) fn new(sink: ReplySink, size: u32) -> ReplyDirPlus {
        ReplyDirPlus(DirBuf::new(sink, size))
    }
    /// Adds an entry; false if the buffer is full (then no lookup reference was taken).
    pub fn add(&mut self, entry: &Entry, offset: u64, name: &[u8]) -> bool {
        let mut buf = [0u8; abi::DIRENTPLUS_NAME_OFFSET];
        let eo = entry_out(entry);
        buf[..128].copy_from_slice(eo.as_bytes());
        let d =
            abi::Dirent { ino: entry.attr.ino, off: offset, namelen: name.len() as u32, typ: entry.attr.dirent_type() };
        buf[128..].copy_from_slice(d.as_bytes());
        self.0.push(&buf, name)
    }
    /// True if an entry with a name of `namelen` bytes still fits (check before taking a
    /// lookup reference).
    pub fn fits(&self, namelen: usize) -> bool {
        self.0.pos + abi::dirent_align(abi::DIRENTPLUS_NAME_OFFSET + namelen) <= self.0.limit
    }
    /// Answers with the entries added so far.
    pub fn done(self) {
        self.0.done()
    }
    /// Answers with an error.
    pub fn error(self, e: Errno) {
        self.0.sink.error(e)
    }
}
