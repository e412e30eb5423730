//! The default sandbox of `dpfs serve`, checked from the host as an operator would: the
//! daemon's `/proc/PID/status` (seccomp filter, no-new-privs, the documented capability
//! set), its namespaces, and the forbidden-call trigger. Needs root (skipped otherwise).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DPFS: &str = env!("CARGO_BIN_EXE_dpfs");

/// Capabilities the passthrough backend keeps with the default xattr policy (map):
/// chown, dac_override, dac_read_search, fowner, fsetid, setgid, setuid, sys_admin, mknod.
const PASSTHROUGH_CAPS: u64 = 0x0000_0000_0820_00df;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

struct Daemon {
    child: Child,
    /// The sandboxed daemon's pid (the child of `child`).
    pid: u32,
    socket: std::path::PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, args: &[&str]) -> Daemon {
    let socket = dir.join("s.sock");
    let mut child = Command::new(DPFS)
        .arg("serve")
        .arg("--socket-path")
        .arg(&socket)
        .args(args)
        .args(["--log-level", "error"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start dpfs serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Killed on drop even if the checks below panic.
    let mut d = Daemon { child, pid: 0, socket };
    // The parent's line and the daemon's "serving" line may come in either order.
    let pid = sandboxed_pid(&mut lines);
    // Keep draining stdout so the daemon never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    d.pid = pid;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.socket.exists() {
        assert!(Instant::now() < deadline, "no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    d
}

fn status_field(pid: u32, key: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("daemon status");
        let v = s.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim().to_string()).unwrap_or_default();
        // The daemon confines itself right after the fork: wait until the filter is in.
        if key != "Seccomp:" || v == "2" || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ns(pid: &str, which: &str) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{which}")).expect("namespace link")
}

fn check_confined(d: &Daemon, caps: u64) {
    assert_eq!(status_field(d.pid, "Seccomp:"), "2");
    assert_eq!(status_field(d.pid, "NoNewPrivs:"), "1");
    let eff = u64::from_str_radix(&status_field(d.pid, "CapEff:"), 16).unwrap();
    assert_eq!(eff, caps, "CapEff {eff:#x}");
    let bnd = u64::from_str_radix(&status_field(d.pid, "CapBnd:"), 16).unwrap();
    assert_eq!(bnd, caps, "CapBnd {bnd:#x}");
    let pid = d.pid.to_string();
    for which in ["mnt", "pid", "net", "ipc", "uts"] {
        assert_ne!(ns(&pid, which), ns("self", which), "{which} namespace shared with the host");
    }
    let nspid = status_field(d.pid, "NSpid:");
    assert_eq!(nspid.split_whitespace().last(), Some("1"), "NSpid {nspid}");
}

#[test]
fn mem_daemon_is_confined_with_no_capabilities() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = serve(dir.path(), &["--backend", "mem"]);
    check_confined(&d, 0);
    // An empty tmpfs is its root: nothing of the host is reachable.
    let root: Vec<_> = std::fs::read_dir(format!("/proc/{}/root", d.pid)).unwrap().collect();
    assert!(root.is_empty(), "{root:?}");
    let _ = &d.socket;
}

#[test]
fn passthrough_daemon_keeps_the_documented_capabilities() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let share = dir.path().join("share");
    std::fs::create_dir(&share).unwrap();
    std::fs::write(share.join("only-this"), b"x").unwrap();
    let d = serve(dir.path(), &["--shared-dir", share.to_str().unwrap()]);
    check_confined(&d, PASSTHROUGH_CAPS);
    // The shared directory is its root.
    let names: Vec<_> = std::fs::read_dir(format!("/proc/{}/root", d.pid))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["only-this"]);
}

#[test]
fn forbidden_system_call_kills_the_daemon_and_names_the_call() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    for sandbox in ["namespace", "none"] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(DPFS)
            .arg("serve")
            .arg("--socket-path")
            .arg(dir.path().join("s.sock"))
            .args(["--backend", "null", "--sandbox", sandbox])
            .env("DPFS_TEST_FORBIDDEN_SYSCALL", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dpfs serve");
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(159), "--sandbox {sandbox}: {status:?}\n{err}");
        assert!(err.contains("forbidden system call 135 (personality)"), "--sandbox {sandbox}:\n{err}");
    }
}

#[test]
fn mount_daemon_is_confined_and_its_parent_unmounts_on_sigterm() {
    if !is_root() || !Path::new("/dev/fuse").exists() {
        eprintln!("skipped: needs root and /dev/fuse");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mut child = Command::new(DPFS)
        .arg("mount")
        .args(["--backend", "mem", "--log-level", "error"])
        .arg(&mnt)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start dpfs mount");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let pid: u32 = sandboxed_pid(&mut lines);
    std::thread::spawn(move || lines.for_each(drop));
    let d = Daemon { child, pid, socket: mnt.clone() };
    check_confined(&d, 0);
    std::fs::write(mnt.join("f"), b"through the sandbox").unwrap();
    assert_eq!(std::fs::read(mnt.join("f")).unwrap(), b"through the sandbox");
    let mut d = d;
    // SAFETY: kill with the pid of our own child.
    unsafe { libc::kill(d.child.id() as libc::pid_t, libc::SIGTERM) };
    let status = d.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(mnt.to_str().unwrap()), "still mounted");
}

/// Runs `dpfs` with `args` and `DPFS_TEST_ROLE_SYSCALL=role` until it ends on its own;
/// returns its exit code and stderr.
fn run_with_role_trigger(role: &str, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(DPFS)
        .args(args)
        .env("DPFS_TEST_ROLE_SYSCALL", role)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dpfs");
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("dpfs {args:?} with DPFS_TEST_ROLE_SYSCALL={role} did not end:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn thread_role_filter_kills_a_call_the_base_list_allows() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    // openat is in the process-wide list (request threads open files) but not in the
    // signal thread's or the main thread's: the role filter alone stops it, and the trap
    // still names the call.
    for sandbox in ["namespace", "none"] {
        for role in ["signals", "main"] {
            let dir = tempfile::tempdir().unwrap();
            let sock = dir.path().join("s.sock");
            let (code, err) = run_with_role_trigger(
                role,
                &["serve", "--socket-path", sock.to_str().unwrap(), "--backend", "null", "--sandbox", sandbox],
            );
            assert_eq!(code, Some(159), "--sandbox {sandbox}, role {role}:\n{err}");
            assert!(err.contains("forbidden system call 257 (openat)"), "--sandbox {sandbox}, role {role}:\n{err}");
        }
    }
    if Path::new("/dev/fuse").exists() {
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let (code, err) = run_with_role_trigger(
            "signals",
            &["mount", "--backend", "mem", "--log-level", "error", mnt.to_str().unwrap()],
        );
        assert_eq!(code, Some(159), "dpfs mount, role signals:\n{err}");
        assert!(err.contains("forbidden system call 257 (openat)"), "dpfs mount:\n{err}");
    }
}

/// The daemon's pid from the supervisor's "sandboxed daemon runs as pid N" line, among the
/// first lines of its stdout (the daemon's own "serving" line may come first).
fn sandboxed_pid(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> u32 {
    lines
        .take(4)
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("dpfs: sandboxed daemon runs as pid ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|p| p.parse().ok())
        })
        .expect("no daemon pid on stdout")
}
