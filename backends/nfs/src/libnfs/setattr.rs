//! SETATTR on the libnfs engine: each change is one libnfs call on the path (size, mode,
//! owner, times), run one after the other from their callbacks, then the attributes read
//! back; and the staleness check of path-named nodes.

use super::calls::Ctx;
use super::ffi::{self, NfsStat64};
use super::{attr, State};
use dpfs_core::fs::TimeOrNow;
use dpfs_core::reply::{Answer, ReplyAttr};
use dpfs_core::Errno;
use std::ffi::CString;
use std::sync::Arc;

/// `s` if it is the file node `ino` (file id `fileid`) was looked up as: a path names
/// whatever has that name now, and a node whose file was removed or replaced is stale.
pub(super) fn same(ino: u64, fileid: u64, s: &NfsStat64) -> Result<NfsStat64, Errno> {
    if ino == dpfs_core::abi::ROOT_ID || s.nfs_ino == fileid {
        Ok(*s)
    } else {
        Err(Errno::ESTALE)
    }
}

/// One SETATTR step, each a libnfs call on the path.
pub(super) enum Step {
    Mode(u32),
    Owner(Option<u32>, Option<u32>),
    Size(u64),
    Times(Option<TimeOrNow>, Option<TimeOrNow>),
}

/// A time for `utimes`: `Now` as the host's clock, absent as `cur`.
fn timeval(t: Option<TimeOrNow>, cur: (u64, u64)) -> libnfs_sys::timeval {
    let (sec, usec) = match t {
        None => (cur.0 as i64, (cur.1 / 1000) as i64),
        Some(TimeOrNow::Time { sec, nsec }) => (sec, i64::from(nsec.min(999_999_999) / 1000)),
        Some(TimeOrNow::Now) => {
            let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            (d.as_secs() as i64, i64::from(d.subsec_micros()))
        }
    };
    libnfs_sys::timeval { tv_sec: sec, tv_usec: usec }
}

/// Runs the SETATTR `steps` one after the other, then answers the attributes.
pub(super) fn setattr_steps(ctx: &mut Ctx, st: Arc<State>, path: CString, mut steps: Vec<Step>, reply: ReplyAttr) {
    let Some(step) = steps.pop() else {
        let timeout = st.cfg.attr_timeout;
        return ctx.lstat(&path.clone(), move |_, r| reply.answer(r.map(|s| (attr(&s), timeout))));
    };
    let p2 = path.clone();
    let next = move |ctx: &mut Ctx, r: Result<(), Errno>| match r {
        Ok(()) => setattr_steps(ctx, st, p2, steps, reply),
        Err(e) => reply.error(e),
    };
    match step {
        // SAFETY (each call below): on the service thread with its live context, a
        // NUL-terminated path libnfs copies, and the completion `path_op` owns.
        Step::Mode(m) => {
            ctx.path_op(&path, |n, p, cb, pd| unsafe { ffi::nfs_chmod_async(n, p, (m & 0o7777) as i32, cb, pd) }, next)
        }
        Step::Size(s) => ctx.path_op(&path, |n, p, cb, pd| unsafe { ffi::nfs_truncate_async(n, p, s, cb, pd) }, next),
        Step::Owner(Some(u), Some(g)) => {
            ctx.path_op(&path, |n, p, cb, pd| unsafe { ffi::nfs_chown_async(n, p, u as i32, g as i32, cb, pd) }, next)
        }
        Step::Times(Some(TimeOrNow::Now), Some(TimeOrNow::Now)) => ctx.path_op(
            &path,
            // A null `times` sets both to the server's time.
            |n, p, cb, pd| unsafe { ffi::nfs_utimes_async(n, p, std::ptr::null_mut(), cb, pd) },
            next,
        ),
        // A part left as it is: read it first.
        partial => ctx.lstat(&path.clone(), move |ctx, r| match r {
            Err(e) => next(ctx, Err(e)),
            Ok(s) => match partial {
                Step::Owner(u, g) => {
                    let (u, g) = (u.unwrap_or(s.nfs_uid as u32), g.unwrap_or(s.nfs_gid as u32));
                    ctx.path_op(
                        &path,
                        |n, p, cb, pd| unsafe { ffi::nfs_chown_async(n, p, u as i32, g as i32, cb, pd) },
                        next,
                    )
                }
                Step::Times(a, m) => {
                    let mut tv =
                        [timeval(a, (s.nfs_atime, s.nfs_atime_nsec)), timeval(m, (s.nfs_mtime, s.nfs_mtime_nsec))];
                    let tvp = tv.as_mut_ptr();
                    // libnfs copies the times into the request before it returns.
                    ctx.path_op(&path, |n, p, cb, pd| unsafe { ffi::nfs_utimes_async(n, p, tvp, cb, pd) }, next)
                }
                _ => next(ctx, Ok(())),
            },
        }),
    }
}
