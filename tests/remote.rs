//! `dpfs serve --backend remote` and `dpfs gateway` as processes: start-up errors are one
//! clear line and a non-zero exit (missing key, unreachable gateway, wrong key); under the
//! default sandbox (as root) the forwarder is confined like any daemon except that it keeps
//! the host's network, serves requests through the gateway, fails requests in flight when
//! the gateway dies and serves the next mount once a new gateway is up.

use dpfs_core::abi::ROOT_ID;
use dpfs_core::Errno;
use dpfs_sim::{Client, ClientOptions};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const DPFS: &str = env!("CARGO_BIN_EXE_dpfs");

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn key(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A gateway over mem on `listen`; returns it and the address it reports.
fn gateway(key: &Path, listen: &str) -> (Proc, String) {
    let mut child = Command::new(DPFS)
        .args(["gateway", "--backend", "mem", "--log-level", "error", "--listen", listen, "--key-file"])
        .arg(key)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split_whitespace().nth(4).unwrap_or_default().trim_end_matches(':').to_string();
    assert!(line.starts_with("dpfs: gateway listening on ") && !addr.is_empty(), "{line:?}");
    (Proc(child), addr)
}

fn serve_output(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(DPFS)
        .arg("serve")
        .arg("--socket-path")
        .arg(dir.join("s.sock"))
        .args(["--backend", "remote", "--log-level", "error"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A start-up error exits at once; a hang would be the bug.
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "dpfs serve did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn start_up_errors_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = key(d, "key", "a key of more than sixteen bytes\n");
    let (_gw, addr) = gateway(&good, "127.0.0.1:0");
    let cases: [(Vec<String>, &str); 5] = [
        (vec!["--remote".into(), addr.clone()], "--key-file"),
        (
            vec!["--remote".into(), addr.clone(), "--key-file".into(), d.join("missing").display().to_string()],
            "cannot read key file",
        ),
        (
            vec!["--remote".into(), addr.clone(), "--key-file".into(), key(d, "short", "tiny").display().to_string()],
            "4 bytes",
        ),
        (
            vec![
                "--remote".into(),
                addr.clone(),
                "--key-file".into(),
                key(d, "other", "another key, long enough").display().to_string(),
            ],
            "failed authentication",
        ),
        (vec!["--remote".into(), "127.0.0.1:1".into(), "--key-file".into(), good.display().to_string()], "refused"),
    ];
    for (args, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = serve_output(d, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: exited 0");
        assert!(err.contains("dpfs: error:") && err.contains(want), "{args:?}: {err}");
    }
    // The gateway refuses a missing key file too.
    let out = Command::new(DPFS)
        .args(["gateway", "--listen", "127.0.0.1:0", "--key-file"])
        .arg(d.join("missing"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read key file"));
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn status_field(pid: u32, key: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("daemon status");
    s.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim().to_string()).unwrap_or_default()
}

fn ns(pid: &str, which: &str) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{which}")).expect("namespace link")
}

fn client(socket: &Path) -> Client {
    let opts = ClientOptions { timeout: Duration::from_secs(20), ..Default::default() };
    Client::connect(socket, &opts).unwrap()
}

#[test]
fn sandboxed_forwarder_keeps_the_network_and_survives_a_gateway_restart() {
    if !is_root() {
        eprintln!("skipped: needs root (the default sandbox)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let k = key(dir.path(), "key", "a key of more than sixteen bytes\n");
    let (gw, addr) = gateway(&k, "127.0.0.1:0");
    let socket = dir.path().join("s.sock");
    let mut child = Command::new(DPFS)
        .arg("serve")
        .arg("--socket-path")
        .arg(&socket)
        .args(["--backend", "remote", "--remote", &addr, "--key-file"])
        .arg(&k)
        .args(["--remote-timeout", "3", "--log-level", "error"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let serve = Proc(child);
    let pid: u32 = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("dpfs: sandboxed daemon runs as pid ")
                .map(|r| r.split_whitespace().next().unwrap_or("").to_string())
        })
        .expect("sandboxed pid line")
        .parse()
        .unwrap();
    std::thread::spawn(move || lines.for_each(drop));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() || status_field(pid, "Seccomp:") != "2" {
        assert!(Instant::now() < deadline, "daemon not ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(status_field(pid, "NoNewPrivs:"), "1");
    assert_eq!(u64::from_str_radix(&status_field(pid, "CapEff:"), 16).unwrap(), 0);
    let p = pid.to_string();
    for which in ["mnt", "pid", "ipc", "uts"] {
        assert_ne!(ns(&p, which), ns("self", which), "{which} namespace shared with the host");
    }
    assert_eq!(ns(&p, "net"), ns("self", "net"), "the forwarder keeps the host's network");

    // Requests go through the gateway (the network thread's socket calls pass seccomp).
    let c = client(&socket);
    let (e, o) = c.create(ROOT_ID, b"f", libc::O_RDWR as u32, 0o644).unwrap();
    assert_eq!(c.write(e.nodeid, o.fh, 0, b"remote").unwrap(), 6);
    assert_eq!(c.read(e.nodeid, o.fh, 0, 100).unwrap(), b"remote");

    // The gateway dies: requests fail (EIO at the latest at the deadline), the daemon
    // stays up; a new gateway on the same address serves the next mount.
    drop(gw);
    assert_eq!(c.read(e.nodeid, o.fh, 0, 100).unwrap_err().errno(), Some(Errno::EIO));
    let (_gw2, addr2) = gateway(&k, &addr);
    assert_eq!(addr2, addr);
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(20);
    let c = loop {
        // The first mount may race the forwarder's reconnect (EIO at INIT): retry.
        match Client::connect(&socket, &ClientOptions { timeout: Duration::from_secs(20), ..Default::default() }) {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "no mount after the restart: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    // A new gateway, a new mem backend: the old file is gone, new ones work.
    assert_eq!(c.lookup(ROOT_ID, b"f").unwrap_err().errno(), Some(Errno::ENOENT));
    c.mkdir(ROOT_ID, b"after-restart", 0o755, 0).unwrap();
    let mut serve = serve;
    assert!(serve.0.try_wait().unwrap().is_none(), "the daemon stayed up");
}
