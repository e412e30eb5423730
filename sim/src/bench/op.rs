//! One benchmark operation as a small state machine: it submits a request, reads the
//! completion, and either submits its next request (create → release → unlink) or finishes.

use crate::error::Result;
use crate::queue::{FsQueue, Token};
use crate::reply::parse_dirents;
use crate::request::Request;
use dpfs_core::abi;
use dpfs_core::operation::Operation as O;
use dpfs_core::Errno;

/// What a job's operations work on.
pub(crate) struct Target {
    /// The job's file (data, stat, open-close workloads).
    pub file: u64,
    /// An open handle of the file.
    pub fh: u64,
    /// The job's directory (create-unlink, readdir).
    pub dir: u64,
    /// Name prefix of created files.
    pub prefix: String,
    /// Data to write (`bs` bytes).
    pub payload: Vec<u8>,
    /// Readdir buffer size.
    pub dir_buf: u32,
}

/// Which latency histogram an operation belongs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    Read,
    Write,
    Meta,
}

/// An operation and where it is.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Read { off: u64 },
    Write { off: u64 },
    Stat,
    CreateUnlink { n: u64, step: u8, nodeid: u64, fh: u64 },
    OpenClose { step: u8, fh: u64 },
    Readdir { step: u8, fh: u64, off: u64, entries: u64 },
}

/// What a completion did to an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It has another request to submit.
    Continue,
    /// It finished; bytes of data moved.
    Done { bytes: u64 },
    /// The device answered an error; the operation is abandoned.
    Failed(Errno),
}

impl Op {
    pub fn class(&self) -> Class {
        match self {
            Op::Read { .. } => Class::Read,
            Op::Write { .. } => Class::Write,
            _ => Class::Meta,
        }
    }

    /// Submits the request of the current step on `q`.
    pub fn submit(&self, t: &Target, q: &mut FsQueue, name: &mut Vec<u8>) -> Result<Token> {
        let bs = t.payload.len() as u32;
        match *self {
            Op::Read { off } => {
                let arg =
                    abi::ReadIn { fh: t.fh, offset: off, size: bs, flags: libc::O_RDWR as u32, ..Default::default() };
                q.submit(&Request::new(t.file, O::Read(arg)))
            }
            Op::Write { off } => {
                let arg =
                    abi::WriteIn { fh: t.fh, offset: off, size: bs, flags: libc::O_RDWR as u32, ..Default::default() };
                q.submit(&Request::with_payload(t.file, O::Write(arg), &t.payload))
            }
            Op::Stat => q.submit(&Request::new(t.file, O::Getattr(abi::GetattrIn::default()))),
            Op::CreateUnlink { n, step, nodeid, fh } => {
                name.clear();
                name.extend_from_slice(t.prefix.as_bytes());
                name.extend_from_slice(n.to_string().as_bytes());
                let req = match step {
                    0 => {
                        let arg = abi::CreateIn {
                            flags: (libc::O_RDWR | libc::O_CREAT | libc::O_EXCL) as u32,
                            mode: libc::S_IFREG | 0o644,
                            umask: 0o022,
                            open_flags: 0,
                        };
                        Request::new(t.dir, O::Create { arg, name })
                    }
                    1 => Request::new(nodeid, O::Release(release(fh, libc::O_RDWR))),
                    _ => Request::new(t.dir, O::Unlink { name }),
                };
                q.submit(&req)
            }
            Op::OpenClose { step, fh } => {
                let req = match step {
                    0 => Request::new(t.file, O::Open(abi::OpenIn { flags: libc::O_RDONLY as u32, open_flags: 0 })),
                    1 => Request::new(t.file, O::Flush(abi::FlushIn { fh, unused: 0, padding: 0, lock_owner: 0 })),
                    _ => Request::new(t.file, O::Release(release(fh, libc::O_RDONLY))),
                };
                q.submit(&req)
            }
            Op::Readdir { step, fh, off, .. } => {
                let req = match step {
                    0 => Request::new(t.dir, O::Opendir(abi::OpenIn { flags: libc::O_RDONLY as u32, open_flags: 0 })),
                    1 => {
                        let arg = abi::ReadIn { fh, offset: off, size: t.dir_buf, ..Default::default() };
                        Request::new(t.dir, O::Readdir(arg))
                    }
                    _ => Request::new(t.dir, O::Releasedir(release(fh, libc::O_RDONLY))),
                };
                q.submit(&req)
            }
        }
    }

    /// Consumes the completion `tok` of the current step; `forget` collects node ids whose
    /// lookup count the op leaves at one (to send FORGET for).
    pub fn complete(&mut self, q: &mut FsQueue, tok: Token, forget: &mut Vec<u64>) -> Result<Outcome> {
        match self {
            Op::Read { .. } | Op::Stat => {
                let st = q.status(tok)?;
                if st.error < 0 {
                    return Ok(Outcome::Failed(Errno(-st.error)));
                }
                let bytes = if matches!(self, Op::Read { .. }) { st.body_len as u64 } else { 0 };
                Ok(Outcome::Done { bytes })
            }
            Op::Write { .. } => {
                let r = q.take(tok)?;
                if r.header.error < 0 {
                    return Ok(Outcome::Failed(Errno(-r.header.error)));
                }
                Ok(Outcome::Done { bytes: r.parse::<abi::WriteOut>()?.size as u64 })
            }
            Op::CreateUnlink { step, nodeid, fh, .. } => {
                let r = q.take(tok)?;
                if r.header.error < 0 {
                    return Ok(Outcome::Failed(Errno(-r.header.error)));
                }
                if *step == 0 {
                    let e: abi::EntryOut = r.parse()?;
                    let o: abi::OpenOut = crate::reply::Reply {
                        header: r.header,
                        body: r.body.get(std::mem::size_of::<abi::EntryOut>()..).unwrap_or_default().to_vec(),
                    }
                    .parse()?;
                    (*nodeid, *fh) = (e.nodeid, o.fh);
                    forget.push(e.nodeid);
                }
                *step += 1;
                Ok(if *step == 3 { Outcome::Done { bytes: 0 } } else { Outcome::Continue })
            }
            Op::OpenClose { step, fh } => {
                let r = q.take(tok)?;
                if r.header.error < 0 {
                    return Ok(Outcome::Failed(Errno(-r.header.error)));
                }
                if *step == 0 {
                    *fh = r.parse::<abi::OpenOut>()?.fh;
                }
                *step += 1;
                Ok(if *step == 3 { Outcome::Done { bytes: 0 } } else { Outcome::Continue })
            }
            Op::Readdir { step, fh, off, entries } => {
                let r = q.take(tok)?;
                if r.header.error < 0 {
                    return Ok(Outcome::Failed(Errno(-r.header.error)));
                }
                match *step {
                    0 => {
                        *fh = r.parse::<abi::OpenOut>()?.fh;
                        *step = 1;
                    }
                    1 => {
                        let d = parse_dirents(&r.body)?;
                        match d.last() {
                            Some(last) => {
                                *off = last.off;
                                *entries += d.len() as u64;
                            }
                            None => *step = 2,
                        }
                    }
                    _ => return Ok(Outcome::Done { bytes: 0 }),
                }
                Ok(Outcome::Continue)
            }
        }
    }
}

fn release(fh: u64, flags: i32) -> abi::ReleaseIn {
    abi::ReleaseIn { fh, flags: flags as u32, release_flags: 0, lock_owner: 0 }
}
