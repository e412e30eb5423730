//! Mounts backends on the host through /dev/fuse and drives them with `std::fs` and libc.
//! Needs root and /dev/fuse; skipped (with the reason printed) otherwise. Every wait is
//! bounded: a stuck request aborts the connection and fails the test.

use dpfs_core::{DeviceId, Dispatcher, FileSystem, Handler, SessionConfig};
use dpfs_hal_fusedev::{FuseMount, MountOptions, Unmounter};
use std::ffi::CString;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

const BOUND: Duration = Duration::from_secs(60);

fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    match fs::OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        Ok(_) => None,
        Err(e) => Some(format!("/dev/fuse unavailable: {e}")),
    }
}

macro_rules! require_fuse {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let p = std::env::temp_dir().join(format!(
        "dpfs-fusedev-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&p).unwrap();
    p
}

struct Fixture {
    mount: Option<FuseMount>,
    dir: PathBuf,
}

impl Fixture {
    fn new(fs: Arc<dyn FileSystem>, threads: usize) -> Fixture {
        let dir = temp_dir();
        let session = SessionConfig::default();
        let handler: Arc<dyn Handler> = Arc::new(Dispatcher::new(session.clone(), move |_| Ok(fs.clone())));
        let mut opts = MountOptions::new(&dir);
        opts.threads = threads;
        let mount = FuseMount::mount(handler, DeviceId(0), &session, opts).unwrap();
        Fixture { mount: Some(mount), dir }
    }

    fn mem(threads: usize) -> Fixture {
        Fixture::new(Arc::new(dpfs_backend_mem::MemFs::new(Default::default())), threads)
    }

    fn path(&self) -> PathBuf {
        self.mount.as_ref().unwrap().mountpoint().to_path_buf()
    }

    fn unmounter(&self) -> Unmounter {
        self.mount.as_ref().unwrap().unmounter()
    }

    /// Runs `f` on another thread; if it does not finish within BOUND, aborts the
    /// connection (unblocking it) and fails.
    fn bounded<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        let h = std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        match rx.recv_timeout(BOUND) {
            Ok(v) => {
                h.join().unwrap();
                v
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
                Err(p) => std::panic::resume_unwind(p),
                Ok(()) => unreachable!(),
            },
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = self.unmounter().abort();
                panic!("file system operation did not finish within {BOUND:?}");
            }
        }
    }

    fn unmount(mut self) {
        let m = self.mount.take().unwrap();
        m.unmount(Duration::from_secs(10)).unwrap();
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        drop(self.mount.take());
        let _ = fs::remove_dir(&self.dir);
    }
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[test]
fn namespace_and_data_ops() {
    require_fuse!();
    let fx = Fixture::mem(2);
    let root = fx.path();
    fx.bounded(move || {
        assert!(fs::metadata(&root).unwrap().is_dir());
        // Really a FUSE mount, not the bare temporary directory.
        // SAFETY: statfs is plain old data; all zeroes is a valid value.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: a valid path and a valid out pointer.
        assert_eq!(unsafe { libc::statfs(cpath(&root).as_ptr(), &mut st) }, 0);
        assert_eq!(st.f_type, 0x6573_5546, "not a FUSE mount");
        // create / write / read
        let f = root.join("a.txt");
        fs::write(&f, b"hello fuse").unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"hello fuse");
        assert_eq!(fs::metadata(&f).unwrap().len(), 10);
        // large write and read (several max_write-sized requests)
        let big: Vec<u8> = (0..3 * 1024 * 1024 + 123).map(|i| (i * 7 % 251) as u8).collect();
        let bf = root.join("big");
        fs::write(&bf, &big).unwrap();
        assert_eq!(fs::read(&bf).unwrap(), big);
        let mut h = fs::File::open(&bf).unwrap();
        h.seek(SeekFrom::Start(1_000_000)).unwrap();
        let mut part = vec![0u8; 5000];
        h.read_exact(&mut part).unwrap();
        assert_eq!(part, big[1_000_000..1_005_000]);
        // append
        let mut a = fs::OpenOptions::new().append(true).open(&f).unwrap();
        a.write_all(b"!").unwrap();
        drop(a);
        assert_eq!(fs::read(&f).unwrap(), b"hello fuse!");
        // mkdir / readdir / rename / unlink / rmdir
        let d = root.join("dir");
        fs::create_dir(&d).unwrap();
        for i in 0..50 {
            fs::write(d.join(format!("f{i:02}")), format!("{i}")).unwrap();
        }
        let mut names: Vec<String> =
            fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names.len(), 50);
        assert_eq!(names[7], "f07");
        fs::rename(d.join("f07"), root.join("moved")).unwrap();
        assert_eq!(fs::read_to_string(root.join("moved")).unwrap(), "7");
        assert_eq!(fs::metadata(d.join("f07")).unwrap_err().kind(), std::io::ErrorKind::NotFound);
        assert_eq!(fs::remove_dir(&d).unwrap_err().raw_os_error(), Some(libc::ENOTEMPTY));
        for n in fs::read_dir(&d).unwrap() {
            fs::remove_file(n.unwrap().path()).unwrap();
        }
        fs::remove_dir(&d).unwrap();
        assert!(!d.exists());
        fs::remove_file(root.join("moved")).unwrap();
        // symlink / readlink / hard link
        let l = root.join("link");
        std::os::unix::fs::symlink("a.txt", &l).unwrap();
        assert_eq!(fs::read_link(&l).unwrap(), Path::new("a.txt"));
        assert_eq!(fs::read(&l).unwrap(), b"hello fuse!");
        fs::hard_link(&f, root.join("hard")).unwrap();
        assert_eq!(fs::metadata(&f).unwrap().nlink(), 2);
        // chmod / truncate
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(fs::metadata(&f).unwrap().mode() & 0o7777, 0o600);
        fs::OpenOptions::new().write(true).open(&f).unwrap().set_len(5).unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"hello");
        // missing names
        assert_eq!(fs::read(root.join("nope")).unwrap_err().raw_os_error(), Some(libc::ENOENT));
    });
    fx.unmount();
}

#[test]
fn xattrs() {
    require_fuse!();
    let fx = Fixture::mem(1);
    let root = fx.path();
    fx.bounded(move || {
        let f = root.join("x");
        fs::write(&f, b"").unwrap();
        let p = cpath(&f);
        let (name, value) = (c"user.dpfs", b"value-1");
        // SAFETY: valid NUL-terminated strings and a valid buffer.
        let r = unsafe { libc::setxattr(p.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
        assert_eq!(r, 0, "setxattr errno {}", errno());
        let mut buf = [0u8; 64];
        // SAFETY: as above.
        let n = unsafe { libc::getxattr(p.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!(n, value.len() as isize, "getxattr errno {}", errno());
        assert_eq!(&buf[..n as usize], value);
        // SAFETY: as above.
        let n = unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        assert!(n > 0, "listxattr errno {}", errno());
        assert!(buf[..n as usize].split(|&b| b == 0).any(|s| s == b"user.dpfs"));
        // SAFETY: as above.
        let r = unsafe {
            libc::setxattr(p.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), libc::XATTR_CREATE)
        };
        assert_eq!((r, errno()), (-1, libc::EEXIST));
        // SAFETY: as above.
        assert_eq!(unsafe { libc::removexattr(p.as_ptr(), name.as_ptr()) }, 0);
        // SAFETY: as above.
        let n = unsafe { libc::getxattr(p.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!((n, errno()), (-1, libc::ENODATA));
    });
    fx.unmount();
}

#[test]
fn flock_and_posix_locks() {
    require_fuse!();
    let fx = Fixture::mem(2);
    let root = fx.path();
    fx.bounded(move || {
        let f = root.join("lockme");
        fs::write(&f, b"0123456789").unwrap();
        let a = fs::OpenOptions::new().read(true).write(true).open(&f).unwrap();
        let b = fs::OpenOptions::new().read(true).write(true).open(&f).unwrap();
        // SAFETY: flock on open descriptors.
        unsafe {
            assert_eq!(libc::flock(a.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB), 0, "errno {}", errno());
            assert_eq!(libc::flock(b.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB), -1);
            assert_eq!(errno(), libc::EWOULDBLOCK);
            assert_eq!(libc::flock(a.as_raw_fd(), libc::LOCK_UN), 0);
            assert_eq!(libc::flock(b.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB), 0, "errno {}", errno());
            assert_eq!(libc::flock(b.as_raw_fd(), libc::LOCK_UN), 0);
        }
        // A blocking flock that waits for the holder: parked in the backend, completed
        // later from the thread that unlocks.
        // SAFETY: as above.
        assert_eq!(unsafe { libc::flock(a.as_raw_fd(), libc::LOCK_EX) }, 0);
        let bfd = b.as_raw_fd();
        let waiter = std::thread::spawn(move || {
            // SAFETY: `b` outlives the thread (joined below).
            unsafe { libc::flock(bfd, libc::LOCK_EX) }
        });
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: as above.
        assert_eq!(unsafe { libc::flock(a.as_raw_fd(), libc::LOCK_UN) }, 0);
        assert_eq!(waiter.join().unwrap(), 0);
        // POSIX record locks are per process: the conflicting owner is a child.
        let fl = libc::flock {
            l_type: libc::F_WRLCK as i16,
            l_whence: libc::SEEK_SET as i16,
            l_start: 0,
            l_len: 5,
            l_pid: 0,
        };
        // SAFETY: fcntl with a valid struct flock.
        assert_eq!(unsafe { libc::fcntl(a.as_raw_fd(), libc::F_SETLK, &fl) }, 0, "errno {}", errno());
        let mut probe = fl;
        // SAFETY: as above; F_GETLK from the owner sees no conflict with itself.
        assert_eq!(unsafe { libc::fcntl(a.as_raw_fd(), libc::F_GETLK, &mut probe) }, 0);
        assert_eq!(probe.l_type, libc::F_UNLCK as i16);
        drop(b);
        drop(a);
    });
    fx.unmount();
}

#[test]
fn many_threads_many_clients() {
    require_fuse!();
    let fx = Fixture::mem(4);
    let root = fx.path();
    fx.bounded(move || {
        let workers: Vec<_> = (0..8)
            .map(|t| {
                let root = root.clone();
                std::thread::spawn(move || {
                    let d = root.join(format!("t{t}"));
                    fs::create_dir(&d).unwrap();
                    for i in 0..40 {
                        let data = vec![(t * 40 + i) as u8; 1000 + i * 333];
                        let p = d.join(format!("f{i}"));
                        fs::write(&p, &data).unwrap();
                        assert_eq!(fs::read(&p).unwrap(), data);
                    }
                    assert_eq!(fs::read_dir(&d).unwrap().count(), 40);
                    for i in 0..40 {
                        fs::remove_file(d.join(format!("f{i}"))).unwrap();
                    }
                    fs::remove_dir(&d).unwrap();
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
    });
    fx.unmount();
}

#[test]
fn external_umount_ends_wait() {
    require_fuse!();
    let mut fx = Fixture::mem(2);
    let root = fx.path();
    let m = fx.mount.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        m.wait();
        let _ = tx.send(());
    });
    fx.bounded(move || fs::write(root.join("f"), b"x").unwrap());
    let st = std::process::Command::new("umount").arg(fx.path_unmounted()).status().unwrap();
    assert!(st.success());
    rx.recv_timeout(BOUND).expect("wait() did not return after umount");
}

impl Fixture {
    fn path_unmounted(&self) -> PathBuf {
        self.dir.canonicalize().unwrap()
    }
}

#[test]
fn null_backend_mounts() {
    require_fuse!();
    let fx = Fixture::new(Arc::new(dpfs_backend_null::NullFs::new()), 1);
    let root = fx.path();
    // Whatever the null backend answers, the mount must answer too (not hang).
    fx.bounded(move || {
        let _ = fs::metadata(&root);
        let _ = fs::read_dir(&root).map(|d| d.count());
    });
    fx.unmount();
}

#[test]
fn busy_mount_is_aborted_on_stop() {
    require_fuse!();
    let mut fx = Fixture::mem(2);
    let root = fx.path();
    // An open file keeps the detached mount alive; stopping must still end (by aborting).
    let busy = fx.bounded(move || {
        let f = root.join("busy");
        fs::write(&f, b"x").unwrap();
        fs::File::open(&f).unwrap()
    });
    let m = fx.mount.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(m.unmount(Duration::from_millis(500)));
    });
    let r = rx.recv_timeout(BOUND).expect("unmount of a busy mount did not return");
    r.unwrap();
    drop(busy);
}

extern "C" fn on_sigusr1(_: libc::c_int) {}

#[test]
fn interrupted_lock_wait() {
    require_fuse!();
    let fx = Fixture::mem(2);
    let root = fx.path();
    fx.bounded(move || {
        // SAFETY: installs a handler that does nothing, without SA_RESTART, so that a
        // signal interrupts the blocked flock with EINTR.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigusr1 as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
        }
        let f = root.join("contended");
        fs::write(&f, b"").unwrap();
        let a = fs::File::open(&f).unwrap();
        let b = fs::File::open(&f).unwrap();
        // SAFETY: flock on an open descriptor.
        assert_eq!(unsafe { libc::flock(a.as_raw_fd(), libc::LOCK_EX) }, 0);
        let bfd = b.as_raw_fd();
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            // SAFETY: `b` outlives the thread (joined below).
            let r = unsafe { libc::flock(bfd, libc::LOCK_EX) };
            let _ = tx.send((r, errno()));
        });
        use std::os::unix::thread::JoinHandleExt;
        // Signal until the waiter returns (a signal that lands before it blocks is lost).
        // The kernel sends INTERRUPT; the backend answers the parked SETLKW with EINTR.
        let result = loop {
            // SAFETY: the thread is not joined yet, so its id is valid; SIGUSR1 has a handler.
            assert_eq!(unsafe { libc::pthread_kill(waiter.as_pthread_t(), libc::SIGUSR1) }, 0);
            if let Ok(r) = rx.recv_timeout(Duration::from_millis(100)) {
                break r;
            }
        };
        waiter.join().unwrap();
        assert_eq!(result, (-1, libc::EINTR));
        // The lock is still usable afterwards.
        // SAFETY: as above.
        unsafe {
            assert_eq!(libc::flock(a.as_raw_fd(), libc::LOCK_UN), 0);
            assert_eq!(libc::flock(b.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB), 0);
        }
        drop((a, b));
    });
    fx.unmount();
}
