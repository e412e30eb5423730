//! A hostile guest must not get out of the shared directory.

use crate::common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[test]
fn symlink_to_etc_is_never_followed() {
    let g = Guest::default_fs();
    std::os::unix::fs::symlink("/etc", g.host("link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", g.host("pw")).unwrap();
    let l = g.lookup(ROOT, "link").unwrap();
    assert_eq!(l.attr.mode & libc::S_IFMT, libc::S_IFLNK, "returned as a symlink");
    assert_eq!(g.readlink(l.nodeid).unwrap(), b"/etc");
    assert!(g.lookup(l.nodeid, "passwd").is_err());
    assert!(g.open(l.nodeid, libc::O_RDONLY as u32).is_err());
    assert!(g.opendir(l.nodeid).is_err());
    assert!(g.create(l.nodeid, "evil", libc::S_IFREG | 0o644, libc::O_RDWR as u32).is_err());
    assert!(g.mkdir(l.nodeid, "evil", 0o755).is_err());
    assert!(!std::path::Path::new("/etc/evil").exists());
    let p = g.lookup(ROOT, "pw").unwrap();
    assert_eq!(g.open(p.nodeid, libc::O_RDONLY as u32).unwrap_err(), libc::ELOOP);
    // CREATE over an existing symlink name does not follow it either.
    assert!(g.create(ROOT, "pw", libc::S_IFREG | 0o644, libc::O_RDWR as u32).is_err());
    // Attributes of the link are the link's, not the target's.
    assert_eq!(g.getattr(p.nodeid).unwrap().mode & libc::S_IFMT, libc::S_IFLNK);
    assert!(g.truncate(p.nodeid, 0).is_err());
    assert!(std::fs::metadata("/etc/passwd").unwrap().len() > 0);
}

#[test]
fn dotdot_stays_inside() {
    let g = Guest::default_fs();
    for _ in 0..5 {
        assert_eq!(g.lookup(ROOT, "..").unwrap().nodeid, ROOT);
    }
    assert_eq!(g.lookup(ROOT, ".").unwrap().nodeid, ROOT);
    let d = g.mkdir(ROOT, "d", 0o755).unwrap();
    let dd = g.mkdir(d.nodeid, "dd", 0o755).unwrap();
    assert_eq!(g.lookup(dd.nodeid, "..").unwrap().nodeid, d.nodeid);
    assert_eq!(g.lookup(d.nodeid, "..").unwrap().nodeid, ROOT);
    assert!(g.lookup(ROOT, "../..").is_err() || g.lookup(ROOT, "../..").unwrap().nodeid == ROOT);
    // A directory whose parent the guest never saw (moved outside by the host) is refused.
    let outside = TempDir::new("outside");
    std::fs::create_dir(g.host("mv")).unwrap();
    let mv = g.lookup(ROOT, "mv").unwrap();
    std::fs::rename(g.host("mv"), outside.path().join("mv")).unwrap();
    assert_eq!(g.lookup(mv.nodeid, "..").unwrap_err(), libc::EACCES);
}

#[test]
fn forged_ids_and_handles() {
    let g = Guest::default_fs();
    let (a, fha) = g.mkfile(ROOT, "a").unwrap();
    let (b, _fhb) = g.mkfile(ROOT, "b").unwrap();
    g.write(a, fha, 0, b"secret-a").unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x == a || x == b || x == ROOT {
            continue;
        }
        assert_eq!(g.getattr(x).unwrap_err(), libc::ENOENT);
        assert_eq!(g.lookup(x, "a").unwrap_err(), libc::ENOENT);
        assert_eq!(g.read(a, x, 0, 16).unwrap_err(), libc::EBADF);
        assert_eq!(g.write(a, x, 0, b"z").unwrap_err(), libc::EBADF);
    }
    // A real handle presented with another node id is refused, not served.
    assert_eq!(g.read(b, fha, 0, 16).unwrap_err(), libc::EBADF);
    assert_eq!(g.release(b, fha).unwrap_err(), libc::EBADF);
    assert_eq!(g.read(a, fha, 0, 16).unwrap(), b"secret-a");
    g.forget(u64::MAX, 5);
    g.forget(ROOT, u64::MAX);
    assert_eq!(g.getattr(ROOT).unwrap().mode & libc::S_IFMT, libc::S_IFDIR);
}

#[test]
fn device_nodes_are_not_opened_on_the_host() {
    let g = Guest::default_fs();
    let c = std::ffi::CString::new(g.host("null").to_str().unwrap()).unwrap();
    // SAFETY: plain mknod of /dev/null's numbers in the temp share.
    assert_eq!(unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) }, 0);
    let e = g.lookup(ROOT, "null").unwrap();
    assert_eq!(g.open(e.nodeid, libc::O_RDWR as u32).unwrap_err(), libc::ENXIO);
}

#[test]
fn rename_race_never_creates_outside() {
    let g = Guest::default_fs();
    let outside = TempDir::new("outside");
    std::fs::create_dir(g.host("d")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (share, out, stop) = (g.dir.path().to_path_buf(), outside.path().to_path_buf(), stop.clone());
        std::thread::spawn(move || {
            let (d, real) = (share.join("d"), share.join("real"));
            while !stop.load(Ordering::Relaxed) {
                // Swap the directory for a symlink pointing outside, then back.
                let _ = std::fs::rename(&d, &real);
                let _ = std::os::unix::fs::symlink(&out, &d);
                std::thread::yield_now();
                let _ = std::fs::remove_file(&d);
                let _ = std::fs::rename(&real, &d);
            }
        })
    };
    let mut created = 0;
    // At least 3000 rounds, more if the swapper won every one so far (a loaded machine).
    for i in 0..30_000 {
        if i >= 3000 && created > 0 {
            break;
        }
        let Ok(e) = g.lookup(ROOT, "d") else { continue };
        let name = format!("x{i}");
        if g.create(e.nodeid, &name, libc::S_IFREG | 0o644, libc::O_RDWR as u32).is_ok() {
            created += 1;
        }
        let _ = g.mkdir(e.nodeid, &format!("m{i}"), 0o755);
        let _ = g.symlink(e.nodeid, &format!("s{i}"), "/");
        if let Ok(n) = g.lookup(e.nodeid, "..") {
            assert!(n.nodeid == ROOT || n.nodeid == e.nodeid || g.getattr(n.nodeid).is_ok());
        }
        g.forget(e.nodeid, 1);
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    let leaked: Vec<_> = std::fs::read_dir(outside.path()).unwrap().collect();
    assert!(leaked.is_empty(), "created outside the share: {leaked:?}");
    assert!(created > 0, "the race test did create files inside");
}

/// Unmounts on drop, even if the test fails.
struct Mounted(std::ffi::CString);

impl Drop for Mounted {
    fn drop(&mut self) {
        // SAFETY: detaching the mount this test made.
        unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn mount_points_under_the_share_are_hidden() {
    let g = Guest::default_fs();
    std::fs::create_dir(g.host("mnt")).unwrap();
    let c = std::ffi::CString::new(g.host("mnt").to_str().unwrap()).unwrap();
    // SAFETY: valid NUL-terminated strings; a private tmpfs on a temp directory.
    let r = unsafe { libc::mount(c"none".as_ptr(), c.as_ptr(), c"tmpfs".as_ptr(), 0, std::ptr::null()) };
    if r != 0 {
        eprintln!("skipped: cannot mount here ({})", std::io::Error::last_os_error());
        return;
    }
    let _m = Mounted(c);
    std::fs::write(g.host("mnt/inside"), b"x").unwrap();
    assert_eq!(g.lookup(ROOT, "mnt").unwrap_err(), libc::EXDEV);
    let plus = g.readdirplus(ROOT, 0, 4096).unwrap();
    assert!(!plus.iter().any(|d| d.name == b"mnt"), "hidden from READDIRPLUS");
}
