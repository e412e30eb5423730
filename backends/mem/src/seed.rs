//! Host-side helpers that put content in the file system before a guest mounts it
//! (`dpfs serve` seeds the embedded default this way).

use crate::inode::Content;
use crate::namei::NewNode;
use crate::{MemFs, ROOT_ID};
use dpfs_core::fs::Context;
use dpfs_core::Errno;

fn components(path: &str) -> Result<Vec<&[u8]>, Errno> {
    let mut v = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(Errno::EINVAL),
            c => v.push(c.as_bytes()),
        }
    }
    Ok(v)
}

impl MemFs {
    /// The caller seeds act as: root, so permissions never get in the way.
    fn seed_ctx(&self) -> Context {
        Context::default()
    }

    /// Finds or creates directory `name` in `parent` (owned by the root's owner).
    fn seed_child_dir(&self, parent: u64, name: &[u8]) -> Result<u64, Errno> {
        let ctx = self.seed_ctx();
        match self.do_lookup(&ctx, parent, name) {
            Ok(e) => {
                self.do_forget(e.ino, 1);
                let i = self.inode(e.ino)?;
                i.dir()?;
                Ok(e.ino)
            }
            Err(e) if e == Errno::ENOENT => {
                let mode = libc::S_IFDIR | 0o755;
                let (i, _) = self.make_node(&ctx, parent, name, mode, 0, NewNode::Dir)?;
                self.seed_owner(i.ino);
                self.do_forget(i.ino, 1);
                Ok(i.ino)
            }
            Err(e) => Err(e),
        }
    }

    fn seed_owner(&self, ino: u64) {
        if let Ok(i) = self.inode(ino) {
            let mut m = i.meta.lock();
            m.uid = self.cfg.root_uid;
            m.gid = self.cfg.root_gid;
        }
    }

    /// Creates directory `path` (relative to the root) and any missing parents, like
    /// `mkdir -p`. Returns its node id.
    pub fn seed_dir(&self, path: &str) -> Result<u64, Errno> {
        let mut ino = ROOT_ID;
        for c in components(path)? {
            ino = self.seed_child_dir(ino, c)?;
        }
        Ok(ino)
    }

    /// Creates (or replaces the contents of) regular file `path` with `bytes`, creating
    /// missing parent directories; mode 0644. Returns its node id.
    pub fn seed_file(&self, path: &str, bytes: &[u8]) -> Result<u64, Errno> {
        let comps = components(path)?;
        let (name, dirs) = comps.split_last().ok_or(Errno::EINVAL)?;
        let mut parent = ROOT_ID;
        for c in dirs {
            parent = self.seed_child_dir(parent, c)?;
        }
        let ctx = self.seed_ctx();
        let inode = match self.make_node(&ctx, parent, name, libc::S_IFREG | 0o644, 0, NewNode::File) {
            Ok((i, _)) => {
                self.seed_owner(i.ino);
                i
            }
            Err(e) if e == Errno::EEXIST => {
                let ent = self.do_lookup(&ctx, parent, name)?;
                let i = self.inode(ent.ino)?;
                if let Content::File(d) = &i.content {
                    let mut d = d.write();
                    let freed = d.truncate(0);
                    self.space.release_bytes(freed * crate::data::CHUNK);
                    let mut m = i.meta.lock();
                    m.size = 0;
                    m.chunks = 0;
                }
                i
            }
            Err(e) => return Err(e),
        };
        let mut pos = 0;
        let r = self.write_at(&inode, Some(0), bytes.len() as u64, false, |dst| {
            if let Some(src) = bytes.get(pos..pos + dst.len()) {
                dst.copy_from_slice(src);
            }
            pos += dst.len();
        });
        self.do_forget(inode.ino, 1);
        r.map(|_| inode.ino)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemConfig;

    #[test]
    fn seeds_nested_paths() {
        let fs = MemFs::new(MemConfig { root_uid: 7, ..Default::default() });
        let f = fs.seed_file("/a/b/hello.txt", b"hello").unwrap();
        assert_eq!(fs.seed_dir("a/b").unwrap(), fs.seed_dir("./a//b/").unwrap());
        let a = fs.do_getattr(f).unwrap();
        assert_eq!((a.size, a.uid, a.mode & 0o777), (5, 7, 0o644));
        fs.seed_file("a/b/hello.txt", b"hi").unwrap();
        assert_eq!(fs.do_getattr(f).unwrap().size, 2);
        assert_eq!(fs.seed_file("a/b/hello.txt/x", b"").err(), Some(Errno::ENOTDIR));
        assert_eq!(fs.seed_dir("../x").err(), Some(Errno::EINVAL));
        assert_eq!(fs.seed_file("", b"").err(), Some(Errno::EINVAL));
        // Seeding leaves no lookup references behind.
        assert!(fs.inodes.values().iter().all(|i| i.meta.lock().lookups == 0));
    }
}
