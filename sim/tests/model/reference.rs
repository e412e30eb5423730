//! The reference model: a tree of nodes below a case directory, enough to predict every
//! result and errno of the operations.

use super::ops::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Content {
    File(Vec<u8>),
    Dir(BTreeMap<Vec<u8>, usize>),
    Symlink(Vec<u8>),
}

#[derive(Clone, Debug)]
struct Node {
    content: Content,
    /// Links from directories (files and symlinks); directories compute theirs.
    nlink: u32,
    /// The directory holding a directory.
    parent: usize,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// A tree of nodes below a case directory (node 0), with open handles.
#[derive(Clone, Debug)]
pub struct Model {
    nodes: Vec<Node>,
    handles: [Option<usize>; SLOTS],
}

pub type MResult<T> = Result<T, i32>;

impl Model {
    pub fn new() -> Model {
        let root = Node { content: Content::Dir(BTreeMap::new()), nlink: 0, parent: 0, xattrs: BTreeMap::new() };
        Model { nodes: vec![root], handles: [None; SLOTS] }
    }

    pub fn kind(&self, n: usize) -> Kind {
        match self.nodes[n].content {
            Content::File(_) => Kind::File,
            Content::Dir(_) => Kind::Dir,
            Content::Symlink(_) => Kind::Symlink,
        }
    }

    fn dir(&self, n: usize) -> MResult<&BTreeMap<Vec<u8>, usize>> {
        match &self.nodes[n].content {
            Content::Dir(d) => Ok(d),
            _ => Err(libc::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, n: usize) -> &mut BTreeMap<Vec<u8>, usize> {
        match &mut self.nodes[n].content {
            Content::Dir(d) => d,
            _ => unreachable!("not a directory"),
        }
    }

    fn lookup(&self, dir: usize, name: &[u8]) -> MResult<usize> {
        self.dir(dir)?.get(name).copied().ok_or(libc::ENOENT)
    }

    /// The node a parent path names, which need not be a directory (the client looks the path
    /// up, the server checks the type when the operation arrives).
    pub fn parent_node(&self, p: usize) -> MResult<usize> {
        let mut n = 0;
        for c in PARENTS[p] {
            n = self.lookup(n, c)?;
        }
        Ok(n)
    }

    /// Does parent path `p` go through a symlink?
    pub fn crosses_symlink(&self, p: usize) -> bool {
        let mut n = 0;
        for c in PARENTS[p] {
            match self.lookup(n, c) {
                Ok(c) if self.kind(c) == Kind::Symlink => return true,
                Ok(c) => n = c,
                Err(_) => return false,
            }
        }
        false
    }

    pub fn parent(&self, p: usize) -> MResult<usize> {
        let n = self.parent_node(p)?;
        self.dir(n)?;
        Ok(n)
    }

    pub fn resolve(&self, p: P) -> MResult<(usize, usize)> {
        let dir = self.parent(p.0)?;
        Ok((dir, self.lookup(dir, NAMES[p.1])?))
    }

    pub fn nlink(&self, n: usize) -> u32 {
        match &self.nodes[n].content {
            Content::Dir(d) => 2 + d.values().filter(|&&c| self.kind(c) == Kind::Dir).count() as u32,
            _ => self.nodes[n].nlink,
        }
    }

    fn add(&mut self, dir: usize, name: &[u8], content: Content) -> usize {
        let n = self.nodes.len();
        self.nodes.push(Node { content, nlink: 1, parent: dir, xattrs: BTreeMap::new() });
        self.dir_mut(dir).insert(name.to_vec(), n);
        n
    }

    /// Is `anc` `n` or one of its ancestors?
    fn is_ancestor(&self, anc: usize, mut n: usize) -> bool {
        loop {
            if n == anc {
                return true;
            }
            if n == 0 {
                return false;
            }
            n = self.nodes[n].parent;
        }
    }

    fn attr(&self, n: usize) -> Outcome {
        let (size, target) = match &self.nodes[n].content {
            Content::File(d) => (d.len() as u64, None),
            Content::Dir(_) => (0, None),
            Content::Symlink(t) => (t.len() as u64, Some(t.clone())),
        };
        Outcome::Attr { kind: self.kind(n), size, nlink: self.nlink(n), target }
    }

    pub fn apply(&mut self, op: &Op) -> Outcome {
        let r = self.apply_inner(op);
        r.unwrap_or_else(Outcome::Err)
    }

    fn apply_inner(&mut self, op: &Op) -> MResult<Outcome> {
        match *op {
            Op::Create { p, slot } => {
                self.handles[slot] = None;
                let dir = self.parent(p.0)?;
                if self.dir(dir)?.contains_key(NAMES[p.1]) {
                    return Err(libc::EEXIST);
                }
                let n = self.add(dir, NAMES[p.1], Content::File(Vec::new()));
                self.handles[slot] = Some(n);
                Ok(Outcome::Done)
            }
            Op::Open { p, slot, trunc } => {
                self.handles[slot] = None;
                let (_, n) = self.resolve(p)?;
                match &mut self.nodes[n].content {
                    Content::Dir(_) => return Err(libc::EISDIR),
                    Content::Symlink(_) => return Err(libc::ELOOP),
                    Content::File(d) if trunc => d.clear(),
                    Content::File(_) => {}
                }
                self.handles[slot] = Some(n);
                Ok(Outcome::Done)
            }
            Op::Write { slot, off, len, byte } => {
                let Some(n) = self.handles[slot] else { return Ok(Outcome::Skipped) };
                let Content::File(d) = &mut self.nodes[n].content else { unreachable!() };
                let end = off as usize + len;
                if len > 0 {
                    if d.len() < end {
                        d.resize(end, 0);
                    }
                    d[off as usize..end].fill(byte);
                }
                Ok(Outcome::Written(len as u32))
            }
            Op::Read { slot, off, len } => {
                let Some(n) = self.handles[slot] else { return Ok(Outcome::Skipped) };
                let Content::File(d) = &self.nodes[n].content else { unreachable!() };
                let start = (off as usize).min(d.len());
                let end = (off as usize + len as usize).min(d.len());
                Ok(Outcome::Data(d[start..end].to_vec()))
            }
            Op::Close { slot } => {
                if self.handles[slot].take().is_none() {
                    return Ok(Outcome::Skipped);
                }
                Ok(Outcome::Done)
            }
            Op::Truncate { p, size } => {
                let (_, n) = self.resolve(p)?;
                match &mut self.nodes[n].content {
                    Content::File(d) => d.resize(size as usize, 0),
                    Content::Dir(_) => return Err(libc::EISDIR),
                    Content::Symlink(_) => return Err(libc::EINVAL),
                }
                Ok(Outcome::Done)
            }
            Op::Mkdir { p } => {
                let dir = self.parent(p.0)?;
                if self.dir(dir)?.contains_key(NAMES[p.1]) {
                    return Err(libc::EEXIST);
                }
                let n = self.add(dir, NAMES[p.1], Content::Dir(BTreeMap::new()));
                self.nodes[n].parent = dir;
                Ok(Outcome::Done)
            }
            Op::Rmdir { p } => {
                let (dir, n) = self.resolve(p)?;
                if !self.dir(n).map_err(|_| libc::ENOTDIR)?.is_empty() {
                    return Err(libc::ENOTEMPTY);
                }
                self.dir_mut(dir).remove(NAMES[p.1]);
                Ok(Outcome::Done)
            }
            Op::Unlink { p } => {
                let (dir, n) = self.resolve(p)?;
                if self.kind(n) == Kind::Dir {
                    return Err(libc::EISDIR);
                }
                self.dir_mut(dir).remove(NAMES[p.1]);
                self.nodes[n].nlink -= 1;
                Ok(Outcome::Done)
            }
            Op::Symlink { p, target } => {
                let dir = self.parent(p.0)?;
                if self.dir(dir)?.contains_key(NAMES[p.1]) {
                    return Err(libc::EEXIST);
                }
                self.add(dir, NAMES[p.1], Content::Symlink(symlink_target(target)));
                Ok(Outcome::Done)
            }
            Op::Link { from, to } => {
                let (_, n) = self.resolve(from)?;
                let dir = self.parent_node(to.0)?;
                // dpfs checks the source type before the new parent's.
                if self.kind(n) == Kind::Dir {
                    return Err(libc::EPERM);
                }
                if self.dir(dir)?.contains_key(NAMES[to.1]) {
                    return Err(libc::EEXIST);
                }
                self.dir_mut(dir).insert(NAMES[to.1].to_vec(), n);
                self.nodes[n].nlink += 1;
                Ok(Outcome::Done)
            }
            Op::Rename { from, to, flags } => self.rename(from, to, flags).map(|()| Outcome::Done),
            Op::Getattr { p } => {
                let (_, n) = self.resolve(p)?;
                Ok(self.attr(n))
            }
            Op::Readdir { parent } => {
                let dir = self.parent(parent)?;
                let d = self.dir(dir)?;
                Ok(Outcome::Names(d.iter().map(|(k, &v)| (k.clone(), self.kind(v))).collect()))
            }
            Op::Setxattr { p, name, value, flags } => {
                let (_, n) = self.resolve(p)?;
                if self.kind(n) == Kind::Symlink {
                    return Err(libc::EPERM);
                }
                let x = &mut self.nodes[n].xattrs;
                let exists = x.contains_key(XNAMES[name]);
                if flags == XATTR_CREATE && exists {
                    return Err(libc::EEXIST);
                }
                if flags == XATTR_REPLACE && !exists {
                    return Err(libc::ENODATA);
                }
                x.insert(XNAMES[name].to_vec(), xattr_value(value));
                Ok(Outcome::Done)
            }
            Op::Getxattr { p, name } => {
                let (_, n) = self.resolve(p)?;
                let v = self.nodes[n].xattrs.get(XNAMES[name]).ok_or(libc::ENODATA)?;
                Ok(Outcome::Xattr(v.clone()))
            }
            Op::Removexattr { p, name } => {
                let (_, n) = self.resolve(p)?;
                if self.kind(n) == Kind::Symlink {
                    return Err(libc::EPERM);
                }
                self.nodes[n].xattrs.remove(XNAMES[name]).ok_or(libc::ENODATA)?;
                Ok(Outcome::Done)
            }
            Op::Fstat { slot } => {
                let Some(n) = self.handles[slot] else { return Ok(Outcome::Skipped) };
                Ok(self.attr(n))
            }
            Op::Ftruncate { slot, size } => {
                let Some(n) = self.handles[slot] else { return Ok(Outcome::Skipped) };
                let Content::File(d) = &mut self.nodes[n].content else { unreachable!() };
                d.resize(size as usize, 0);
                Ok(Outcome::Done)
            }
        }
    }

    fn rename(&mut self, from: P, to: P, flags: u32) -> MResult<()> {
        let sp = self.parent(from.0)?;
        let dp = self.parent(to.0)?;
        let (sn, dn) = (NAMES[from.1], NAMES[to.1]);
        let src = self.lookup(sp, sn)?;
        let dst = self.dir(dp)?.get(dn).copied();
        let exchange = flags == RENAME_EXCHANGE;
        if flags == RENAME_NOREPLACE && dst.is_some() {
            return Err(libc::EEXIST);
        }
        if exchange && dst.is_none() {
            return Err(libc::ENOENT);
        }
        // A directory cannot move below itself.
        if self.kind(src) == Kind::Dir && self.is_ancestor(src, dp) {
            return Err(libc::EINVAL);
        }
        if let Some(d) = dst {
            if exchange && self.kind(d) == Kind::Dir && self.is_ancestor(d, sp) {
                return Err(libc::EINVAL);
            }
            // The target is an ancestor of the source (and so not empty).
            if !exchange && self.is_ancestor(d, sp) {
                return Err(libc::ENOTEMPTY);
            }
        }
        if dst == Some(src) {
            return Ok(());
        }
        if exchange {
            let d = dst.unwrap_or_default();
            self.dir_mut(sp).insert(sn.to_vec(), d);
            self.dir_mut(dp).insert(dn.to_vec(), src);
            self.nodes[src].parent = dp;
            self.nodes[d].parent = sp;
            return Ok(());
        }
        if let Some(d) = dst {
            match (self.kind(src) == Kind::Dir, self.kind(d) == Kind::Dir) {
                (true, false) => return Err(libc::ENOTDIR),
                (false, true) => return Err(libc::EISDIR),
                (true, true) if !self.dir(d)?.is_empty() => return Err(libc::ENOTEMPTY),
                _ => {}
            }
            if self.kind(d) != Kind::Dir {
                self.nodes[d].nlink -= 1;
            }
        }
        self.dir_mut(sp).remove(sn);
        self.dir_mut(dp).insert(dn.to_vec(), src);
        self.nodes[src].parent = dp;
        Ok(())
    }

    /// Every path below node `n` with what it should look like.
    pub fn dump(&self, n: usize, prefix: &str, out: &mut BTreeMap<String, Outcome>) {
        let Content::Dir(d) = &self.nodes[n].content else { return };
        for (name, &c) in d {
            let path = format!("{prefix}/{}", String::from_utf8_lossy(name));
            out.insert(path.clone(), self.attr(c));
            if let Content::File(data) = &self.nodes[c].content {
                out.insert(format!("{path}#data"), Outcome::Data(data.clone()));
            }
            for (x, v) in &self.nodes[c].xattrs {
                out.insert(format!("{path}@{}", String::from_utf8_lossy(x)), Outcome::Xattr(v.clone()));
            }
            self.dump(c, &path, out);
        }
    }
}
