//! A private nfs-ganesha on 127.0.0.1:2049 for integration tests: fresh export and recovery
//! directories, graceless, killed (and its log shown on failure) when dropped; it can be
//! killed with SIGKILL and started again on the same directories. Shared by dpfs-nfs4's and
//! dpfs-backend-nfs's tests (the latter include it by path).
#![allow(dead_code)]

pub mod proxy;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the test server listens.
pub const ADDR: &str = "127.0.0.1:2049";
/// The export's pseudo path.
pub const EXPORT: &str = "/export";
/// The server binary; `DPFS_GANESHA_BIN` overrides it.
const BIN: &str = "/usr/bin/ganesha.nfsd";

/// A running ganesha.
pub struct Ganesha {
    child: std::sync::Mutex<Child>,
    conf: PathBuf,
    bin: String,
    log: PathBuf,
    /// The directory behind the export (on /tmp).
    pub export_dir: PathBuf,
    _dir: tempfile::TempDir,
}

fn listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

impl Ganesha {
    /// Starts ganesha, or returns `None` (after printing a skip line) when it is not installed
    /// and `DPFS_REQUIRE_NFS=1` is not set; with it set, a missing ganesha fails the test.
    pub fn start() -> Option<Self> {
        Self::start_with_grace(None)
    }

    /// [`start`](Self::start), with a grace period of `grace` seconds after each (re)start
    /// (`None`: graceless). [`restart`](Self::restart) returns once the grace period ended.
    pub fn start_with_grace(grace: Option<u32>) -> Option<Self> {
        Self::start_conf(grace, false)
    }

    /// [`start`](Self::start) serving NFSv3 too (MOUNT and NFS registered with rpcbind, the
    /// export mounted by its pseudo path): rpcbind must answer on 127.0.0.1:111, else the
    /// test is skipped, or fails under `DPFS_REQUIRE_NFS=1`.
    pub fn start_v3() -> Option<Self> {
        let rpcbind: SocketAddr = "127.0.0.1:111".parse().unwrap();
        if !listening(rpcbind) {
            if std::env::var("DPFS_REQUIRE_NFS").as_deref() == Ok("1") {
                panic!(
                    "DPFS_REQUIRE_NFS=1 but rpcbind does not answer on {rpcbind} (apt-get install rpcbind; rpcbind)"
                );
            }
            eprintln!("SKIP: rpcbind does not answer on {rpcbind} (NFSv3 needs it; set DPFS_REQUIRE_NFS=1 to fail)");
            return None;
        }
        Self::start_conf(None, true)
    }

    fn start_conf(grace: Option<u32>, v3: bool) -> Option<Self> {
        let bin = std::env::var("DPFS_GANESHA_BIN").unwrap_or_else(|_| BIN.to_owned());
        if !Path::new(&bin).exists() {
            if std::env::var("DPFS_REQUIRE_NFS").as_deref() == Ok("1") {
                panic!("DPFS_REQUIRE_NFS=1 but {bin} is missing (apt-get install nfs-ganesha nfs-ganesha-vfs)");
            }
            eprintln!(
                "SKIP: {bin} not installed (install nfs-ganesha nfs-ganesha-vfs, or set DPFS_REQUIRE_NFS=1 to fail)"
            );
            return None;
        }
        let addr: SocketAddr = ADDR.parse().unwrap();
        assert!(!listening(addr), "something already listens on {ADDR}: stop it before this test");

        let dir = tempfile::Builder::new().prefix("dpfs-ganesha-").tempdir().unwrap();
        let export_dir = dir.path().join("export");
        let recovery = dir.path().join("recovery");
        std::fs::create_dir(&export_dir).unwrap();
        std::fs::create_dir(&recovery).unwrap();
        let conf = dir.path().join("ganesha.conf");
        let protocols = if v3 { "3, 4" } else { "4" };
        let log = dir.path().join("ganesha.log");
        std::fs::write(
            &conf,
            format!(
                "NFS_CORE_PARAM {{ Protocols = {protocols}; NFS_Port = 2049; Bind_addr = 127.0.0.1; Enable_NLM = false; \
                 Enable_RQUOTA = false; Enable_UDP = false; Mount_Path_Pseudo = true; }}\n\
                 NFSV4 {{ Minor_Versions = 0, 1, 2; Grace_Period = {}; Lease_Lifetime = 10; Graceless = {}; \
                 RecoveryBackend = fs; RecoveryRoot = {}; Allow_Numeric_Owners = true; Only_Numeric_Owners = true; }}\n\
                 NFS_KRB5 {{ Active_krb5 = false; }}\n\
                 EXPORT {{ Export_Id = 1; Path = {}; Pseudo = {EXPORT}; Protocols = {protocols}; Transports = TCP; \
                 Access_Type = RW; Squash = No_Root_Squash; SecType = sys; FSAL {{ Name = VFS; }} }}\n",
                grace.unwrap_or(1),
                grace.is_none(),
                recovery.display(),
                export_dir.display()
            ),
        )
        .unwrap();
        let child = spawn(&bin, &log, &conf, &dir.path().join("ganesha.pid"));
        let g = Ganesha { child: std::sync::Mutex::new(child), conf, bin, log, export_dir, _dir: dir };
        g.wait_ready();
        Some(g)
    }

    /// Kills the server with SIGKILL (no state saved, connections reset).
    pub fn kill9(&self) {
        let mut c = self.child.lock().unwrap();
        let _ = c.kill();
        let _ = c.wait();
    }

    /// Starts the server again on the same export and recovery directories.
    pub fn restart(&self) {
        let pid = self.conf.with_file_name("ganesha.pid");
        let _ = std::fs::remove_file(&pid);
        *self.child.lock().unwrap() = spawn(&self.bin, &self.log, &self.conf, &pid);
        self.wait_ready();
    }

    /// Waits until the (re)started server serves; its log is the evidence.
    fn wait_ready(&self) {
        let addr: SocketAddr = ADDR.parse().unwrap();
        let from = self.log_text().len();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.lock().unwrap().try_wait().unwrap() {
                panic!("ganesha exited with {status} while starting:\n{}", self.log_text());
            }
            // Graceless logs "skipping GRACE" at start; with a grace period it ends with "NOT IN GRACE".
            let log = self.log_text();
            let fresh = log.get(from..).unwrap_or_default();
            let out_of_grace = fresh.contains("NOT IN GRACE") || fresh.contains("skipping GRACE");
            if out_of_grace && listening(addr) {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "ganesha not ready after 30 s:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("ganesha ready in {:?}", start.elapsed());
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Ganesha {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- ganesha log ----\n{}", self.log_text());
        }
        self.kill9();
    }
}

fn spawn(bin: &str, log: &Path, conf: &Path, pid: &Path) -> Child {
    Command::new(bin)
        .arg("-F")
        .arg("-L")
        .arg(log)
        .arg("-f")
        .arg(conf)
        .arg("-p")
        .arg(pid)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}
