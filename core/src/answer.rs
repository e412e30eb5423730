//! [`Answer`]: one way to answer any reply token with a `Result`, shared by every backend.
//!
//! Backends compute an operation as `Result<T, Errno>` and answer the token with it:
//!
//! ```ignore
//! fn lookup(&self, ctx: &Context, parent: u64, name: &[u8], reply: ReplyEntry) {
//!     reply.answer(self.do_lookup(ctx, parent, name))
//! }
//! ```
//!
//! `Ok` goes to the token's success method, `Err` to its `error`. The trait is a thin layer
//! over the tokens' own methods ([`ReplyEntry::entry`], [`ReplyAttr::attr`], …), which stay
//! for callers that prefer them.
//!
//! # Answering from another thread
//!
//! Every token is `Send` (the trait requires it) and may be answered from any thread, once,
//! at any time; dropping it unanswered answers EIO. A backend that completes elsewhere moves
//! the token there:
//!
//! ```
//! use dpfs_core::fs::{Attr, Context};
//! use dpfs_core::reply::{Answer, ReplyAttr};
//! use dpfs_core::{Errno, FileSystem};
//! use std::time::Duration;
//!
//! struct Slow;
//!
//! /// Blocks (a network round trip, a disk): must not run on the poller thread.
//! fn fetch_attr(ino: u64) -> Result<Attr, Errno> {
//!     if ino == 1 { Ok(Attr { ino, mode: libc::S_IFDIR | 0o755, ..Default::default() }) } else { Err(Errno::ENOENT) }
//! }
//!
//! impl FileSystem for Slow {
//!     fn getattr(&self, _ctx: &Context, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
//!         std::thread::spawn(move || reply.answer(fetch_attr(ino).map(|a| (a, Duration::from_secs(1)))));
//!     }
//! }
//! ```
//!
//! A tokio task does the same (`tokio::spawn(async move { reply.answer(fs.getattr(ino).await) })`),
//! as does an io_uring completion thread or a network callback; core has no runtime of its own.
//! Generic helpers can take `R: Answer` and `Result<R::Value, Errno>`: `R::Value` is `Send`
//! for every token here.
//!
//! # Success value per token
//!
//! | token | `Value` | success method |
//! |---|---|---|
//! | [`ReplyEmpty`] | `()` | `ok()` |
//! | [`ReplyEntry`] | [`Entry`] | `entry` |
//! | [`ReplyAttr`] | `(Attr, Duration)`: attributes and how long the guest may cache them | `attr` |
//! | [`ReplyStatx`] | `(Statx, Duration)`: as for `ReplyAttr` | `statx` |
//! | [`ReplyOpen`] | `(u64, u32)`: handle and `FOPEN_*` flags | `opened` |
//! | [`ReplyCreate`] | `(Entry, u64, u32)`: entry, handle, `FOPEN_*` flags | `created` |
//! | [`ReplyWrite`] | `u32`: bytes written | `written` |
//! | [`ReplyCopy`] | `u64`: bytes copied | `copied` |
//! | [`ReplyStatfs`] | [`Statfs`] | `statfs` |
//! | [`ReplyData`] | `Vec<u8>`: the bytes (READLINK, small READs) | `data` |
//! | [`ReplyXattr`] | [`Xattr`]: the length for a size probe, or the bytes | `size` / `data` |
//! | [`ReplyLock`] | [`Lock`] | `lock` |
//! | [`ReplyBmap`] | `u64`: device block | `block` |
//! | [`ReplyLseek`] | `u64`: new offset | `offset` |
//! | [`ReplyPoll`] | `u32`: ready events | `revents` |
//! | [`ReplyIoctl`] | `(i32, Vec<u8>)`: result and output bytes | `ioctl` |
//!
//! Tuples rather than named structs: the values come straight from the backends' own
//! results (`do_open` returns `(fh, flags)`), and the table above names their parts.
//!
//! Not covered: [`ReplyData`]'s in-place path ([`ReplyData::buffer`] then
//! [`ReplyData::commit`], for zero-copy reads: the engine fills the buffer, so there is no
//! value to pass), and [`ReplyDir`] / [`ReplyDirPlus`], which are filled entry by entry and
//! finished with `done`. Answer those with their own methods.

use crate::errno::Errno;
use crate::fs::{Attr, Entry, Lock, Statfs, Statx};
use crate::reply::*;
use std::time::Duration;

/// A reply token with one success shape: answer it with a `Result`.
///
/// Implemented by every token whose success carries one value (see the module docs for the
/// table). Each method consumes the token, so a request is answered exactly once.
pub trait Answer: Send + Sized {
    /// What a successful answer carries.
    type Value;

    /// Answers success with `value`, through the token's own success method.
    ///
    /// On [`ReplyEmpty`] its inherent `ok()` (no argument) shadows this in method syntax;
    /// both answer the same.
    fn ok(self, value: Self::Value);

    /// Answers with an error (the token's own `error`).
    fn error(self, e: Errno);

    /// Answers `Ok` with [`ok`](Self::ok) and `Err` with [`error`](Self::error).
    fn answer(self, result: Result<Self::Value, Errno>) {
        match result {
            Ok(v) => self.ok(v),
            Err(e) => self.error(e),
        }
    }
}

/// The success of GETXATTR and LISTXATTR: which of [`ReplyXattr`]'s two shapes to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Xattr {
    /// The guest asked with `size == 0`: the value's (or list's) length.
    Size(u32),
    /// The value or the NUL-separated name list, known to fit the guest's `size`.
    Data(Vec<u8>),
}

impl Xattr {
    /// The answer to a request of `size` bytes for `bytes`: its length for a probe
    /// (`size == 0`), the bytes if they fit, ERANGE if they do not (as `getxattr(2)`).
    pub fn sized(bytes: Vec<u8>, size: u32) -> Result<Xattr, Errno> {
        if size == 0 {
            Ok(Xattr::Size(u32::try_from(bytes.len()).map_err(|_| Errno::E2BIG)?))
        } else if bytes.len() > size as usize {
            Err(Errno::ERANGE)
        } else {
            Ok(Xattr::Data(bytes))
        }
    }
}

/// Implements [`Answer`] for `$token` with `Value = $value`; `|$r, $v| $ok` answers success.
macro_rules! impl_answer {
    ($token:ty, $value:ty, |$r:ident, $v:pat_param| $ok:expr) => {
        impl Answer for $token {
            type Value = $value;
            fn ok(self, value: $value) {
                let ($r, $v) = (self, value);
                $ok
            }
            fn error(self, e: Errno) {
                // Inherent methods take precedence: this is the token's own `error`.
                <$token>::error(self, e)
            }
        }
    };
}

impl_answer!(ReplyEmpty, (), |r, ()| r.ok());
impl_answer!(ReplyEntry, Entry, |r, e| r.entry(&e));
impl_answer!(ReplyAttr, (Attr, Duration), |r, (a, ttl)| r.attr(&a, ttl));
impl_answer!(ReplyStatx, (Statx, Duration), |r, (s, ttl)| r.statx(&s, ttl));
impl_answer!(ReplyOpen, (u64, u32), |r, (fh, flags)| r.opened(fh, flags));
impl_answer!(ReplyCreate, (Entry, u64, u32), |r, (e, fh, flags)| r.created(&e, fh, flags));
impl_answer!(ReplyWrite, u32, |r, n| r.written(n));
impl_answer!(ReplyCopy, u64, |r, n| r.copied(n));
impl_answer!(ReplyStatfs, Statfs, |r, st| r.statfs(&st));
impl_answer!(ReplyData, Vec<u8>, |r, d| r.data(&d));
impl_answer!(ReplyLock, Lock, |r, l| r.lock(l));
impl_answer!(ReplyBmap, u64, |r, b| r.block(b));
impl_answer!(ReplyLseek, u64, |r, o| r.offset(o));
impl_answer!(ReplyPoll, u32, |r, ev| r.revents(ev));
impl_answer!(ReplyIoctl, (i32, Vec<u8>), |r, (res, d)| r.ioctl(res, &d));
impl_answer!(ReplyXattr, Xattr, |r, x| match x {
    Xattr::Size(n) => r.size(n),
    Xattr::Data(d) => r.data(&d),
});
