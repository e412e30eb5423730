//! The operations on a real directory (tmpfs under /dev/shm when there is one), to check the
//! reference model itself against Linux.

use super::ops::*;
use super::reference::Model;

/// Linux's answer to the operations, through paths below a temporary directory.
pub struct Kernel {
    dir: tempfile::TempDir,
    fds: [Option<std::fs::File>; SLOTS],
}

fn cstr(p: &std::path::Path) -> std::ffi::CString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// `r` (a libc return value) as an outcome.
fn sys(r: libc::c_int) -> Outcome {
    if r < 0 {
        Outcome::Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Outcome::Done
    }
}

fn io_outcome<T>(r: std::io::Result<T>, ok: impl FnOnce(T) -> Outcome) -> Outcome {
    match r {
        Ok(v) => ok(v),
        Err(e) => Outcome::Err(e.raw_os_error().unwrap_or(0)),
    }
}

impl Kernel {
    pub fn new() -> Kernel {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.unwrap();
        Kernel { dir, fds: [None, None] }
    }

    fn parent(&self, p: usize) -> std::path::PathBuf {
        let mut path = self.dir.path().to_path_buf();
        for c in PARENTS[p] {
            path.push(String::from_utf8_lossy(c).as_ref());
        }
        path
    }

    fn path(&self, p: P) -> std::path::PathBuf {
        self.parent(p.0).join(String::from_utf8_lossy(NAMES[p.1]).as_ref())
    }

    fn open(&mut self, p: P, slot: usize, flags: i32) -> Outcome {
        self.fds[slot] = None;
        let path = cstr(&self.path(p));
        // SAFETY: `path` is a NUL-terminated string that outlives the call.
        let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_NOFOLLOW | libc::O_CLOEXEC, 0o644) };
        if fd < 0 {
            return sys(fd);
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        self.fds[slot] = Some(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) });
        Outcome::Done
    }

    /// What Linux does with `op`, or `None` where the comparison means nothing: paths through
    /// symlinks (Linux follows them, a FUSE client resolves them itself), truncating a
    /// symlink (Linux follows it), and LINK of a directory (Linux checks the new name before
    /// the source's type, dpfs the other way round; a Linux client never sends such a LINK).
    pub fn apply(&mut self, op: &Op, model: &Model) -> Option<Outcome> {
        use std::os::unix::fs::FileExt;
        let through_symlink = |p: usize| model.crosses_symlink(p);
        let kind = |p: P| model.resolve(p).ok().map(|(_, n)| model.kind(n));
        Some(match *op {
            Op::Create { p, slot } => {
                if through_symlink(p.0) {
                    self.fds[slot] = None;
                    return None;
                }
                self.open(p, slot, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL)
            }
            Op::Open { p, slot, trunc } => {
                if through_symlink(p.0) {
                    self.fds[slot] = None;
                    return None;
                }
                self.open(p, slot, libc::O_RDWR | if trunc { libc::O_TRUNC } else { 0 })
            }
            Op::Write { slot, off, len, byte } => match &self.fds[slot] {
                None => Outcome::Skipped,
                Some(f) => io_outcome(f.write_all_at(&vec![byte; len], off), |()| Outcome::Written(len as u32)),
            },
            Op::Read { slot, off, len } => match &self.fds[slot] {
                None => Outcome::Skipped,
                Some(f) => {
                    let mut buf = vec![0u8; len as usize];
                    let mut n = 0;
                    loop {
                        match f.read_at(&mut buf[n..], off + n as u64) {
                            Ok(0) => break,
                            Ok(k) => n += k,
                            Err(e) => return Some(Outcome::Err(e.raw_os_error().unwrap_or(0))),
                        }
                        if n == buf.len() {
                            break;
                        }
                    }
                    buf.truncate(n);
                    Outcome::Data(buf)
                }
            },
            Op::Close { slot } => {
                if self.fds[slot].take().is_some() {
                    Outcome::Done
                } else {
                    Outcome::Skipped
                }
            }
            Op::Truncate { p, size } => {
                if through_symlink(p.0) || kind(p) == Some(Kind::Symlink) {
                    return None;
                }
                let path = cstr(&self.path(p));
                // SAFETY: `path` is NUL-terminated and outlives the call.
                sys(unsafe { libc::truncate(path.as_ptr(), size as i64) })
            }
            Op::Mkdir { p } => {
                if through_symlink(p.0) {
                    return None;
                }
                let path = cstr(&self.path(p));
                // SAFETY: as above.
                sys(unsafe { libc::mkdir(path.as_ptr(), 0o755) })
            }
            Op::Rmdir { p } => {
                if through_symlink(p.0) {
                    return None;
                }
                let path = cstr(&self.path(p));
                // SAFETY: as above.
                sys(unsafe { libc::rmdir(path.as_ptr()) })
            }
            Op::Unlink { p } => {
                if through_symlink(p.0) {
                    return None;
                }
                let path = cstr(&self.path(p));
                // SAFETY: as above.
                sys(unsafe { libc::unlink(path.as_ptr()) })
            }
            Op::Symlink { p, target } => {
                if through_symlink(p.0) {
                    return None;
                }
                let path = cstr(&self.path(p));
                let target = std::ffi::CString::new(symlink_target(target)).unwrap();
                // SAFETY: both strings are NUL-terminated and outlive the call.
                sys(unsafe { libc::symlink(target.as_ptr(), path.as_ptr()) })
            }
            Op::Link { from, to } => {
                if through_symlink(from.0) || through_symlink(to.0) {
                    return None;
                }
                if kind(from) == Some(Kind::Dir) {
                    return None;
                }
                let (a, b) = (cstr(&self.path(from)), cstr(&self.path(to)));
                // SAFETY: both strings are NUL-terminated and outlive the call.
                sys(unsafe { libc::linkat(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), 0) })
            }
            Op::Rename { from, to, flags } => {
                if through_symlink(from.0) || through_symlink(to.0) {
                    return None;
                }
                let (a, b) = (cstr(&self.path(from)), cstr(&self.path(to)));
                // SAFETY: both strings are NUL-terminated and outlive the call.
                sys(unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), flags) })
            }
            Op::Getattr { p } => {
                if through_symlink(p.0) {
                    return None;
                }
                let path = self.path(p);
                io_outcome(std::fs::symlink_metadata(&path), |m| {
                    use std::os::unix::fs::MetadataExt;
                    let kind = file_kind(m.file_type());
                    let target = (kind == Kind::Symlink).then(|| {
                        use std::os::unix::ffi::OsStrExt;
                        std::fs::read_link(&path).unwrap().as_os_str().as_bytes().to_vec()
                    });
                    let size = if kind == Kind::Dir { 0 } else { m.size() };
                    Outcome::Attr { kind, size, nlink: m.nlink() as u32, target }
                })
            }
            Op::Readdir { parent } => {
                if through_symlink(parent) {
                    return None;
                }
                io_outcome(std::fs::read_dir(self.parent(parent)), |it| {
                    use std::os::unix::ffi::OsStrExt;
                    let mut v: Vec<_> = it
                        .map(|e| {
                            let e = e.unwrap();
                            (e.file_name().as_bytes().to_vec(), file_kind(e.file_type().unwrap()))
                        })
                        .collect();
                    v.sort();
                    Outcome::Names(v)
                })
            }
            Op::Setxattr { p, name, value, flags } => {
                if through_symlink(p.0) {
                    return None;
                }
                let path = cstr(&self.path(p));
                let name = std::ffi::CString::new(XNAMES[name]).unwrap();
                let v = xattr_value(value);
                // SAFETY: the strings are NUL-terminated, `v` is valid for its length; all
                // outlive the call.
                sys(unsafe { libc::lsetxattr(path.as_ptr(), name.as_ptr(), v.as_ptr().cast(), v.len(), flags as i32) })
            }
            Op::Removexattr { p, name } => {
                if through_symlink(p.0) {
                    return None;
                }
                let path = cstr(&self.path(p));
                let name = std::ffi::CString::new(XNAMES[name]).unwrap();
                // SAFETY: both strings are NUL-terminated and outlive the call.
                sys(unsafe { libc::lremovexattr(path.as_ptr(), name.as_ptr()) })
            }
            Op::Fstat { slot } => match &self.fds[slot] {
                None => Outcome::Skipped,
                Some(f) => io_outcome(f.metadata(), |m| {
                    use std::os::unix::fs::MetadataExt;
                    Outcome::Attr { kind: Kind::File, size: m.size(), nlink: m.nlink() as u32, target: None }
                }),
            },
            Op::Ftruncate { slot, size } => match &self.fds[slot] {
                None => Outcome::Skipped,
                Some(f) => io_outcome(f.set_len(size), |()| Outcome::Done),
            },
            Op::Getxattr { p, name } => {
                if through_symlink(p.0) {
                    return None;
                }
                let path = cstr(&self.path(p));
                let name = std::ffi::CString::new(XNAMES[name]).unwrap();
                let mut buf = [0u8; 256];
                // SAFETY: the strings are NUL-terminated, `buf` is writable for its length;
                // all outlive the call.
                let n = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 {
                    sys(-1)
                } else {
                    Outcome::Xattr(buf[..n as usize].to_vec())
                }
            }
        })
    }
}

fn file_kind(t: std::fs::FileType) -> Kind {
    if t.is_dir() {
        Kind::Dir
    } else if t.is_symlink() {
        Kind::Symlink
    } else {
        Kind::File
    }
}
