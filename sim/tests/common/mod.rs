//! Test helpers: start a vhost-user-fs daemon on a temporary socket.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `ci/guest/install-virtiofsd.sh` installs virtiofsd.
pub const VIRTIOFSD: &str = "/var/tmp/dpfs-tools/bin/virtiofsd";

/// A daemon process, killed on drop, with its temporary socket and shared directory.
pub struct Daemon {
    child: Child,
    pub socket: PathBuf,
    pub shared: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// virtiofsd on a fresh socket and shared directory, or `None` (with the reason printed)
    /// if it is not installed.
    pub fn virtiofsd() -> Option<Daemon> {
        let bin = std::env::var("DPFS_VIRTIOFSD").unwrap_or_else(|_| VIRTIOFSD.into());
        if !Path::new(&bin).exists() {
            return skip(&format!("virtiofsd not found at {bin} (run ci/guest/install-virtiofsd.sh)"));
        }
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("vfs.sock");
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        let child = Command::new(bin)
            .arg("--socket-path")
            .arg(&socket)
            .arg("--shared-dir")
            .arg(&shared)
            .args(["--sandbox", "none", "--cache", "never", "--xattr", "--log-level", "error"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Some(Daemon::wait_ready(child, socket, shared, dir))
    }

    /// `dpfs serve` with `backend` and `queues` request queues, or `None` (reason printed) if
    /// no dpfs binary was built (`$DPFS_BIN`, else the workspace's target/{release,debug}).
    pub fn dpfs(backend: &str, queues: usize) -> Option<Daemon> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let candidates = [
            std::env::var("DPFS_BIN").map(PathBuf::from).ok(),
            Some(root.join("target/debug/dpfs")),
            Some(root.join("target/release/dpfs")),
        ];
        let Some(bin) = candidates.into_iter().flatten().find(|p| p.exists()) else {
            return skip("no dpfs binary (cargo build -p dpfs, or set DPFS_BIN)");
        };
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("dpfs.sock");
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg("--socket-path")
            .arg(&socket)
            .args(["--backend", backend, "--request-queues", &queues.to_string(), "--threads", &queues.to_string()])
            .args(["--config-space", "--log-level", "error"])
            // One suite, several HALs: DPFS_SIM_HAL=dpu-model runs it through the DPU model.
            .args(["--hal", &std::env::var("DPFS_SIM_HAL").unwrap_or_else(|_| "vhost-user".into())])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Some(Daemon::wait_ready(child, socket, shared, dir))
    }

    /// Panics unless the daemon process is still running (it neither crashed nor exited).
    pub fn assert_alive(&mut self) {
        match self.child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => panic!("daemon exited: {status}"),
            Err(e) => panic!("cannot poll the daemon: {e}"),
        }
    }

    fn wait_ready(mut child: Child, socket: PathBuf, shared: PathBuf, dir: tempfile::TempDir) -> Daemon {
        // A ceiling for a machine under load (a daemon behind ci/remote-dpfs.sh starts a
        // gateway first), not a performance bound: a daemon that exits fails at once.
        let start = Instant::now();
        while !socket.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("daemon exited before creating {}: {status}", socket.display());
            }
            assert!(start.elapsed() < Duration::from_secs(60), "daemon did not create {}", socket.display());
            std::thread::sleep(Duration::from_millis(10));
        }
        Daemon { child, socket, shared, _dir: dir }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A daemon is missing: skip the test, or fail it when `DPFS_REQUIRE_DAEMONS` is set (CI
/// installs both daemons, so there a skip would hide a test that did not run).
fn skip<T>(why: &str) -> Option<T> {
    if std::env::var_os("DPFS_REQUIRE_DAEMONS").is_some() {
        panic!("DPFS_REQUIRE_DAEMONS is set but {why}");
    }
    eprintln!("SKIP: {why}");
    None
}
