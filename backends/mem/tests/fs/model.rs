//! Property test: random operation sequences against a simple model of a tree.

use crate::common::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

const PATHS: &[&str] = &["a", "b", "x", "y", "x/a", "x/b", "y/a", "y/b", "x/a/b"];

#[derive(Clone, Debug)]
enum Op {
    Create(usize),
    Mkdir(usize),
    Write(usize, u16, u16, u8),
    Truncate(usize, u16),
    Rename(usize, usize),
    Link(usize, usize),
    Unlink(usize),
    Rmdir(usize),
    Read(usize),
    List(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PATHS.len();
    prop_oneof![
        p.clone().prop_map(Op::Create),
        p.clone().prop_map(Op::Mkdir),
        (p.clone(), 0..9000u16, 0..6000u16, any::<u8>()).prop_map(|(a, o, l, b)| Op::Write(a, o, l, b)),
        (p.clone(), 0..9000u16).prop_map(|(a, s)| Op::Truncate(a, s)),
        (p.clone(), p.clone()).prop_map(|(a, b)| Op::Rename(a, b)),
        (p.clone(), p.clone()).prop_map(|(a, b)| Op::Link(a, b)),
        p.clone().prop_map(Op::Unlink),
        p.clone().prop_map(Op::Rmdir),
        p.clone().prop_map(Op::Read),
        p.prop_map(Op::List),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    File(u32),
    Dir,
}

/// Paths to nodes; file contents by file id (hard links share an id).
#[derive(Default)]
struct Model {
    tree: BTreeMap<String, Node>,
    data: HashMap<u32, Vec<u8>>,
    next: u32,
}

fn parent(p: &str) -> &str {
    p.rsplit_once('/').map_or("", |(d, _)| d)
}
fn base(p: &str) -> &str {
    p.rsplit_once('/').map_or(p, |(_, n)| n)
}

impl Model {
    fn get(&self, p: &str) -> Option<Node> {
        if p.is_empty() {
            Some(Node::Dir)
        } else {
            self.tree.get(p).copied()
        }
    }
    /// Walks `p` as the harness resolves it: ENOENT for a missing component, ENOTDIR for
    /// a lookup inside a file.
    fn walk(&self, p: &str) -> Result<Node, i32> {
        let mut cur = String::new();
        let mut node = Node::Dir;
        for c in p.split('/').filter(|c| !c.is_empty()) {
            if node != Node::Dir {
                return Err(libc::ENOTDIR);
            }
            if !cur.is_empty() {
                cur.push('/');
            }
            cur.push_str(c);
            node = self.get(&cur).ok_or(libc::ENOENT)?;
        }
        Ok(node)
    }
    /// Resolves the parent of `p` and checks it is a directory.
    fn parent_ok(&self, p: &str) -> Result<(), i32> {
        match self.walk(parent(p))? {
            Node::Dir => Ok(()),
            Node::File(_) => Err(libc::ENOTDIR),
        }
    }
    fn children(&self, d: &str) -> Vec<String> {
        let pre = if d.is_empty() { String::new() } else { format!("{d}/") };
        self.tree
            .keys()
            .filter(|k| k.starts_with(&pre) && !k[pre.len()..].contains('/') && k.len() > pre.len())
            .map(|k| k[pre.len()..].to_string())
            .collect()
    }
    fn create(&mut self, p: &str, dir: bool) -> Result<(), i32> {
        self.parent_ok(p)?;
        if self.get(p).is_some() {
            return Err(libc::EEXIST);
        }
        let n = if dir {
            Node::Dir
        } else {
            self.next += 1;
            self.data.insert(self.next, Vec::new());
            Node::File(self.next)
        };
        self.tree.insert(p.to_string(), n);
        Ok(())
    }
    fn file(&self, p: &str) -> Result<u32, i32> {
        match self.walk(p)? {
            Node::Dir => Err(libc::EISDIR),
            Node::File(id) => Ok(id),
        }
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), i32> {
        self.walk(parent(from))?;
        self.walk(parent(to))?;
        self.parent_ok(from)?;
        self.parent_ok(to)?;
        let src = self.get(from).ok_or(libc::ENOENT)?;
        let dst = self.get(to);
        if from == to || matches!((src, dst), (Node::File(a), Some(Node::File(b))) if a == b) {
            return Ok(());
        }
        if src == Node::Dir && to.starts_with(&format!("{from}/")) {
            return Err(libc::EINVAL);
        }
        if dst == Some(Node::Dir) && from.starts_with(&format!("{to}/")) {
            return Err(libc::ENOTEMPTY);
        }
        match (src, dst) {
            (Node::Dir, Some(Node::File(_))) => return Err(libc::ENOTDIR),
            (Node::File(_), Some(Node::Dir)) => return Err(libc::EISDIR),
            (_, Some(Node::Dir)) if !self.children(to).is_empty() => return Err(libc::ENOTEMPTY),
            _ => {}
        }
        self.tree.remove(to);
        let moved: Vec<(String, Node)> = self
            .tree
            .iter()
            .filter(|(k, _)| *k == from || k.starts_with(&format!("{from}/")))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for (k, v) in moved {
            self.tree.remove(&k);
            self.tree.insert(format!("{to}{}", &k[from.len()..]), v);
        }
        Ok(())
    }
}

/// Resolves a path in the real file system; returns the node id and the lookups taken.
fn resolve(g: &Guest, p: &str, refs: &mut Vec<u64>) -> Result<u64, i32> {
    let mut ino = ROOT;
    for c in p.split('/').filter(|c| !c.is_empty()) {
        ino = g.lookup(ino, c)?.nodeid;
        refs.push(ino);
    }
    Ok(ino)
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let g = Guest::default_fs();
    let mut m = Model::default();
    let mut refs = Vec::new();
    for op in ops {
        let step = format!("{op:?}");
        match op {
            Op::Create(i) | Op::Mkdir(i) => {
                let p = PATHS[i];
                let dir = matches!(op, Op::Mkdir(_));
                let expect = m.create(p, dir);
                let got = resolve(&g, parent(p), &mut refs).and_then(|d| {
                    let e = if dir {
                        g.mkdir(d, base(p), 0o755)?.nodeid
                    } else {
                        let (e, fh) = g.create(d, base(p), 0o644, libc::O_RDWR as u32 | libc::O_EXCL as u32)?;
                        g.release(e.nodeid, fh)?;
                        e.nodeid
                    };
                    refs.push(e);
                    Ok(())
                });
                prop_assert_eq!(got, expect, "{}", step);
            }
            Op::Write(i, off, len, byte) => {
                let p = PATHS[i];
                let expect = m.file(p);
                let got = resolve(&g, p, &mut refs).and_then(|ino| {
                    let fh = g.open(ino, libc::O_WRONLY as u32)?;
                    let n = g.write(ino, fh, off as u64, &vec![byte; len as usize]);
                    g.release(ino, fh)?;
                    n.map(|_| ())
                });
                prop_assert_eq!(got.is_ok(), expect.is_ok(), "{} {:?} {:?}", step, got, expect);
                if let Ok(id) = expect {
                    let d = m.data.entry(id).or_default();
                    if len > 0 {
                        let end = off as usize + len as usize;
                        if d.len() < end {
                            d.resize(end, 0);
                        }
                        d[off as usize..end].fill(byte);
                    }
                }
            }
            Op::Truncate(i, size) => {
                let p = PATHS[i];
                let expect = m.file(p);
                let got = resolve(&g, p, &mut refs).and_then(|ino| g.truncate(ino, size as u64).map(|_| ()));
                prop_assert_eq!(got.is_ok(), expect.is_ok(), "{} {:?} {:?}", step, got, expect);
                if let Ok(id) = expect {
                    m.data.entry(id).or_default().resize(size as usize, 0);
                }
            }
            Op::Rename(a, b) => {
                let (from, to) = (PATHS[a], PATHS[b]);
                let expect = m.rename(from, to);
                let got = resolve(&g, parent(from), &mut refs).and_then(|pf| {
                    let pt = resolve(&g, parent(to), &mut refs)?;
                    g.rename(pf, base(from), pt, base(to), 0)
                });
                prop_assert_eq!(got, expect, "{}", step);
            }
            Op::Link(a, b) => {
                let (from, to) = (PATHS[a], PATHS[b]);
                let expect = m.walk(from).and_then(|n| {
                    m.walk(parent(to))?;
                    if n == Node::Dir {
                        return Err(libc::EPERM);
                    }
                    m.parent_ok(to)?;
                    match (n, m.get(to)) {
                        (_, Some(_)) => Err(libc::EEXIST),
                        (Node::File(id), _) => Ok(id),
                        (Node::Dir, _) => Err(libc::EPERM),
                    }
                });
                let got = resolve(&g, from, &mut refs).and_then(|ino| {
                    let pt = resolve(&g, parent(to), &mut refs)?;
                    let e = g.link(ino, pt, base(to))?;
                    refs.push(e.nodeid);
                    Ok(())
                });
                prop_assert_eq!(got, expect.map(|_| ()), "{}", step);
                if let Ok(id) = expect {
                    m.tree.insert(to.to_string(), Node::File(id));
                }
            }
            Op::Unlink(i) | Op::Rmdir(i) => {
                let p = PATHS[i];
                let dir = matches!(op, Op::Rmdir(_));
                let expect = m.parent_ok(p).and_then(|_| match (m.get(p), dir) {
                    (None, _) => Err(libc::ENOENT),
                    (Some(Node::Dir), false) => Err(libc::EISDIR),
                    (Some(Node::File(_)), true) => Err(libc::ENOTDIR),
                    (Some(Node::Dir), true) if !m.children(p).is_empty() => Err(libc::ENOTEMPTY),
                    _ => Ok(()),
                });
                if expect.is_ok() {
                    m.tree.remove(p);
                }
                let got = resolve(&g, parent(p), &mut refs).and_then(|d| {
                    if dir {
                        g.rmdir(d, base(p))
                    } else {
                        g.unlink(d, base(p))
                    }
                });
                prop_assert_eq!(got, expect, "{}", step);
            }
            Op::Read(i) => {
                let p = PATHS[i];
                if let Ok(id) = m.file(p) {
                    let ino = resolve(&g, p, &mut refs).map_err(|e| TestCaseError::fail(format!("{step}: {e}")))?;
                    let fh = g.open(ino, libc::O_RDONLY as u32).unwrap();
                    let data = g.read(ino, fh, 0, 1 << 16).unwrap();
                    g.release(ino, fh).unwrap();
                    prop_assert_eq!(&data, &m.data[&id], "{}", step);
                }
            }
            Op::List(i) => {
                let p = PATHS[i];
                if m.walk(p) == Ok(Node::Dir) {
                    let ino = resolve(&g, p, &mut refs).unwrap();
                    let mut want = m.children(p);
                    want.sort();
                    prop_assert_eq!(g.list(ino).unwrap(), want, "{}", step);
                }
            }
        }
    }
    // Link counts and accounting agree with the model once the guest forgets everything.
    for ino in refs {
        g.forget(ino, 1);
    }
    let mut ids = std::collections::HashSet::new();
    for (p, n) in &m.tree {
        let ino = resolve(&g, p, &mut Vec::new()).unwrap();
        let a = g.getattr(ino).unwrap();
        match n {
            Node::Dir => {
                let subdirs = m.children(p).iter().filter(|c| m.get(&format!("{p}/{c}")) == Some(Node::Dir)).count();
                prop_assert_eq!(a.nlink as usize, 2 + subdirs, "nlink of {}", p);
            }
            Node::File(id) => {
                ids.insert(*id);
                let links = m.tree.values().filter(|v| **v == Node::File(*id)).count();
                prop_assert_eq!(a.nlink as usize, links, "nlink of {}", p);
                prop_assert_eq!(a.size as usize, m.data[id].len());
            }
        }
        g.forget(ino, 1);
    }
    let dirs = m.tree.values().filter(|v| **v == Node::Dir).count();
    prop_assert_eq!(g.fs.inode_count() as usize, 1 + dirs + ids.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn random_operations_match_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}
