//! The operations through the sim client, on one request queue of a `dpfs serve` device.

use super::ops::*;
use dpfs_core::abi::{self, fattr, misc};
use dpfs_core::operation::Operation as O;
use dpfs_sim::reply::parse_dirents;
use dpfs_sim::{Client, Request};
use std::cell::RefCell;
use std::collections::BTreeMap;
use zerocopy::FromBytes;

/// A failure of the transport (timeout, protocol violation): fails the test outright.
#[derive(Debug)]
enum SimErr {
    Errno(i32),
    Fatal(String),
}

type SResult<T> = Result<T, SimErr>;

/// A case directory on the device, driven through request queue `queue`.
pub struct Sim<'a> {
    c: &'a Client,
    queue: usize,
    base: u64,
    handles: [Option<(u64, u64)>; SLOTS],
    /// Lookup references taken by the current operation, forgotten when it ends.
    refs: RefCell<Vec<u64>>,
}

impl<'a> Sim<'a> {
    pub fn new(c: &'a Client, queue: usize, base: u64) -> Sim<'a> {
        Sim { c, queue, base, handles: [None; SLOTS], refs: RefCell::new(Vec::new()) }
    }

    fn call(&self, req: &Request<'_>) -> SResult<dpfs_sim::Reply> {
        let r = self.c.call_queue(self.queue, req).map_err(|e| SimErr::Fatal(e.to_string()))?;
        if r.header.error < 0 {
            return Err(SimErr::Errno(-r.header.error));
        }
        Ok(r)
    }

    /// An entry reply: its lookup reference is forgotten at the end of the operation.
    fn entry(&self, req: &Request<'_>) -> SResult<abi::EntryOut> {
        let r = self.call(req)?;
        let e: abi::EntryOut = r.parse().map_err(|e| SimErr::Fatal(e.to_string()))?;
        self.refs.borrow_mut().push(e.nodeid);
        Ok(e)
    }

    fn lookup(&self, dir: u64, name: &[u8]) -> SResult<abi::EntryOut> {
        self.entry(&Request::new(dir, O::Lookup { name }))
    }

    fn parent(&self, p: usize) -> SResult<u64> {
        let mut n = self.base;
        for c in PARENTS[p] {
            n = self.lookup(n, c)?.nodeid;
        }
        Ok(n)
    }

    fn resolve(&self, p: P) -> SResult<(u64, abi::EntryOut)> {
        let dir = self.parent(p.0)?;
        Ok((dir, self.lookup(dir, NAMES[p.1])?))
    }

    fn close(&mut self, slot: usize) -> SResult<bool> {
        let Some((node, fh)) = self.handles[slot].take() else { return Ok(false) };
        let arg = abi::ReleaseIn { fh, flags: libc::O_RDWR as u32, release_flags: 0, lock_owner: 0 };
        self.call(&Request::new(node, O::Release(arg)))?;
        self.refs.borrow_mut().push(node);
        Ok(true)
    }

    pub fn apply(&mut self, op: &Op) -> Result<Outcome, String> {
        let r = self.apply_inner(op);
        let refs = std::mem::take(&mut *self.refs.borrow_mut());
        for n in refs {
            self.c.forget(n, 1).map_err(|e| format!("FORGET: {e}"))?;
        }
        match r {
            Ok(o) => Ok(o),
            Err(SimErr::Errno(e)) => Ok(Outcome::Err(e)),
            Err(SimErr::Fatal(s)) => Err(s),
        }
    }

    fn fatal<E: std::fmt::Display>(e: E) -> SimErr {
        SimErr::Fatal(e.to_string())
    }

    fn apply_inner(&mut self, op: &Op) -> SResult<Outcome> {
        match *op {
            Op::Create { p, slot } => {
                self.close(slot)?;
                let dir = self.parent(p.0)?;
                let flags = (libc::O_RDWR | libc::O_CREAT | libc::O_EXCL) as u32;
                let arg = abi::CreateIn { flags, mode: libc::S_IFREG | 0o644, umask: 0o022, open_flags: 0 };
                let r = self.call(&Request::new(dir, O::Create { arg, name: NAMES[p.1] }))?;
                let (e, rest) = abi::EntryOut::read_from_prefix(&r.body).map_err(|_| Self::fatal("short CREATE"))?;
                let (o, _) = abi::OpenOut::read_from_prefix(rest).map_err(|_| Self::fatal("short CREATE"))?;
                self.handles[slot] = Some((e.nodeid, o.fh));
                Ok(Outcome::Done)
            }
            Op::Open { p, slot, trunc } => {
                self.close(slot)?;
                let (_, e) = self.resolve(p)?;
                let flags = (libc::O_RDWR | if trunc { libc::O_TRUNC } else { 0 }) as u32;
                let o: abi::OpenOut = self
                    .call(&Request::new(e.nodeid, O::Open(abi::OpenIn { flags, open_flags: 0 })))?
                    .parse()
                    .map_err(Self::fatal)?;
                // Keep the lookup reference while the file is open.
                self.refs.borrow_mut().pop();
                self.handles[slot] = Some((e.nodeid, o.fh));
                Ok(Outcome::Done)
            }
            Op::Write { slot, off, len, byte } => {
                let Some((node, fh)) = self.handles[slot] else { return Ok(Outcome::Skipped) };
                let data = vec![byte; len];
                let arg = abi::WriteIn {
                    fh,
                    offset: off,
                    size: len as u32,
                    flags: libc::O_RDWR as u32,
                    ..Default::default()
                };
                let w: abi::WriteOut =
                    self.call(&Request::with_payload(node, O::Write(arg), &data))?.parse().map_err(Self::fatal)?;
                Ok(Outcome::Written(w.size))
            }
            Op::Read { slot, off, len } => {
                let Some((node, fh)) = self.handles[slot] else { return Ok(Outcome::Skipped) };
                let arg = abi::ReadIn { fh, offset: off, size: len, flags: libc::O_RDWR as u32, ..Default::default() };
                Ok(Outcome::Data(self.call(&Request::new(node, O::Read(arg)))?.body))
            }
            Op::Close { slot } => Ok(if self.close(slot)? { Outcome::Done } else { Outcome::Skipped }),
            Op::Truncate { p, size } => {
                let (_, e) = self.resolve(p)?;
                let arg = abi::SetattrIn { valid: fattr::SIZE, size, ..Default::default() };
                self.call(&Request::new(e.nodeid, O::Setattr(arg)))?;
                Ok(Outcome::Done)
            }
            Op::Mkdir { p } => {
                let dir = self.parent(p.0)?;
                let arg = abi::MkdirIn { mode: 0o755, umask: 0o022 };
                self.entry(&Request::new(dir, O::Mkdir { arg, name: NAMES[p.1] }))?;
                Ok(Outcome::Done)
            }
            Op::Rmdir { p } => {
                let dir = self.parent(p.0)?;
                self.call(&Request::new(dir, O::Rmdir { name: NAMES[p.1] }))?;
                Ok(Outcome::Done)
            }
            Op::Unlink { p } => {
                let dir = self.parent(p.0)?;
                self.call(&Request::new(dir, O::Unlink { name: NAMES[p.1] }))?;
                Ok(Outcome::Done)
            }
            Op::Symlink { p, target } => {
                let dir = self.parent(p.0)?;
                let target = symlink_target(target);
                self.entry(&Request::new(dir, O::Symlink { name: NAMES[p.1], target: &target }))?;
                Ok(Outcome::Done)
            }
            Op::Link { from, to } => {
                let (_, e) = self.resolve(from)?;
                let dir = self.parent(to.0)?;
                let arg = abi::LinkIn { oldnodeid: e.nodeid };
                self.entry(&Request::new(dir, O::Link { arg, name: NAMES[to.1] }))?;
                Ok(Outcome::Done)
            }
            Op::Rename { from, to, flags } => {
                let sp = self.parent(from.0)?;
                let dp = self.parent(to.0)?;
                let (old, new) = (NAMES[from.1], NAMES[to.1]);
                let op = if flags == 0 {
                    O::Rename { arg: abi::RenameIn { newdir: dp }, old, new }
                } else {
                    O::Rename2 { arg: abi::Rename2In { newdir: dp, flags, padding: 0 }, old, new }
                };
                self.call(&Request::new(sp, op))?;
                Ok(Outcome::Done)
            }
            Op::Getattr { p } => {
                let (_, e) = self.resolve(p)?;
                self.attr(e.nodeid)
            }
            Op::Readdir { parent } => {
                let dir = self.parent(parent)?;
                Ok(Outcome::Names(self.readdir(dir)?))
            }
            Op::Setxattr { p, name, value, flags } => {
                let (_, e) = self.resolve(p)?;
                let value = xattr_value(value);
                let arg = abi::SetxattrIn { size: value.len() as u32, flags, setxattr_flags: 0, padding: 0 };
                self.call(&Request::new(e.nodeid, O::Setxattr { arg, name: XNAMES[name], value: &value }))?;
                Ok(Outcome::Done)
            }
            Op::Getxattr { p, name } => {
                let (_, e) = self.resolve(p)?;
                let arg = abi::GetxattrIn { size: 256, padding: 0 };
                Ok(Outcome::Xattr(self.call(&Request::new(e.nodeid, O::Getxattr { arg, name: XNAMES[name] }))?.body))
            }
            Op::Removexattr { p, name } => {
                let (_, e) = self.resolve(p)?;
                self.call(&Request::new(e.nodeid, O::Removexattr { name: XNAMES[name] }))?;
                Ok(Outcome::Done)
            }
            Op::Fstat { slot } => {
                let Some((node, fh)) = self.handles[slot] else { return Ok(Outcome::Skipped) };
                let arg = abi::GetattrIn { getattr_flags: misc::GETATTR_FH, dummy: 0, fh };
                let a: abi::AttrOut = self.call(&Request::new(node, O::Getattr(arg)))?.parse().map_err(Self::fatal)?;
                Ok(Outcome::Attr { kind: Kind::File, size: a.attr.size, nlink: a.attr.nlink, target: None })
            }
            Op::Ftruncate { slot, size } => {
                let Some((node, fh)) = self.handles[slot] else { return Ok(Outcome::Skipped) };
                let arg = abi::SetattrIn { valid: fattr::SIZE | fattr::FH, fh, size, ..Default::default() };
                self.call(&Request::new(node, O::Setattr(arg)))?;
                Ok(Outcome::Done)
            }
        }
    }

    fn attr(&self, node: u64) -> SResult<Outcome> {
        let a: abi::AttrOut =
            self.call(&Request::new(node, O::Getattr(abi::GetattrIn::default())))?.parse().map_err(Self::fatal)?;
        let kind = match a.attr.mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            m => return Err(SimErr::Fatal(format!("unexpected mode {m:o}"))),
        };
        let target = if kind == Kind::Symlink { Some(self.call(&Request::new(node, O::Readlink))?.body) } else { None };
        let size = if kind == Kind::Dir { 0 } else { a.attr.size };
        Ok(Outcome::Attr { kind, size, nlink: a.attr.nlink, target })
    }

    fn readdir(&self, dir: u64) -> SResult<Vec<(Vec<u8>, Kind)>> {
        let o: abi::OpenOut = self
            .call(&Request::new(dir, O::Opendir(abi::OpenIn { flags: libc::O_RDONLY as u32, open_flags: 0 })))?
            .parse()
            .map_err(Self::fatal)?;
        let mut names = Vec::new();
        let mut off = 0;
        let r = loop {
            let arg = abi::ReadIn { fh: o.fh, offset: off, size: 4096, ..Default::default() };
            let body = match self.call(&Request::new(dir, O::Readdir(arg))) {
                Ok(r) => r.body,
                Err(e) => break Err(e),
            };
            let ents = parse_dirents(&body).map_err(Self::fatal)?;
            let Some(last) = ents.last() else { break Ok(()) };
            off = last.off;
            for d in ents {
                if d.name == b"." || d.name == b".." {
                    continue;
                }
                let kind = match d.typ {
                    t if t == libc::DT_REG as u32 => Kind::File,
                    t if t == libc::DT_DIR as u32 => Kind::Dir,
                    t if t == libc::DT_LNK as u32 => Kind::Symlink,
                    t => return Err(SimErr::Fatal(format!("unexpected dirent type {t}"))),
                };
                names.push((d.name, kind));
            }
        };
        let arg = abi::ReleaseIn { fh: o.fh, flags: libc::O_RDONLY as u32, release_flags: 0, lock_owner: 0 };
        self.call(&Request::new(dir, O::Releasedir(arg)))?;
        r?;
        names.sort();
        Ok(names)
    }

    /// Closes every handle.
    pub fn close_all(&mut self) -> Result<(), String> {
        for slot in 0..SLOTS {
            self.apply(&Op::Close { slot })?;
        }
        Ok(())
    }

    /// Every path below `dir`, as [`Model::dump`] describes it.
    pub fn dump(&self, dir: u64, prefix: &str, out: &mut BTreeMap<String, Outcome>) -> Result<(), String> {
        let r = self.dump_inner(dir, prefix, out);
        let refs = std::mem::take(&mut *self.refs.borrow_mut());
        for n in refs {
            self.c.forget(n, 1).map_err(|e| format!("FORGET: {e}"))?;
        }
        r.map_err(|e| format!("walking {prefix}: {e:?}"))
    }

    fn dump_inner(&self, dir: u64, prefix: &str, out: &mut BTreeMap<String, Outcome>) -> SResult<()> {
        for (name, _) in self.readdir(dir)? {
            let path = format!("{prefix}/{}", String::from_utf8_lossy(&name));
            let e = self.lookup(dir, &name)?;
            let attr = self.attr(e.nodeid)?;
            let kind = match &attr {
                Outcome::Attr { kind, .. } => *kind,
                _ => unreachable!(),
            };
            out.insert(path.clone(), attr);
            if kind == Kind::File {
                let o: abi::OpenOut = self
                    .call(&Request::new(
                        e.nodeid,
                        O::Open(abi::OpenIn { flags: libc::O_RDONLY as u32, open_flags: 0 }),
                    ))?
                    .parse()
                    .map_err(Self::fatal)?;
                let arg = abi::ReadIn { fh: o.fh, offset: 0, size: 128 << 10, ..Default::default() };
                let data = self.call(&Request::new(e.nodeid, O::Read(arg)))?.body;
                let arg = abi::ReleaseIn { fh: o.fh, flags: libc::O_RDONLY as u32, release_flags: 0, lock_owner: 0 };
                self.call(&Request::new(e.nodeid, O::Release(arg)))?;
                out.insert(format!("{path}#data"), Outcome::Data(data));
            }
            if kind != Kind::Symlink {
                for x in XNAMES {
                    let arg = abi::GetxattrIn { size: 256, padding: 0 };
                    match self.call(&Request::new(e.nodeid, O::Getxattr { arg, name: x })) {
                        Ok(r) => {
                            out.insert(format!("{path}@{}", String::from_utf8_lossy(x)), Outcome::Xattr(r.body));
                        }
                        Err(SimErr::Errno(libc::ENODATA)) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            if kind == Kind::Dir {
                self.dump_inner(e.nodeid, &path, out)?;
            }
        }
        Ok(())
    }
}
