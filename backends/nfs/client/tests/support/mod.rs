//! A private nfs-ganesha on 127.0.0.1:2049 for integration tests: fresh export and recovery
//! directories, graceless, killed (and its log shown on failure) when dropped.

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
    child: Child,
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
        let log = dir.path().join("ganesha.log");
        std::fs::write(
            &conf,
            format!(
                "NFS_CORE_PARAM {{ Protocols = 4; NFS_Port = 2049; Bind_addr = 127.0.0.1; Enable_NLM = false; \
                 Enable_RQUOTA = false; Enable_UDP = false; }}\n\
                 NFSV4 {{ Minor_Versions = 0, 1, 2; Grace_Period = 1; Lease_Lifetime = 10; Graceless = true; \
                 RecoveryBackend = fs; RecoveryRoot = {}; Allow_Numeric_Owners = true; Only_Numeric_Owners = true; }}\n\
                 NFS_KRB5 {{ Active_krb5 = false; }}\n\
                 EXPORT {{ Export_Id = 1; Path = {}; Pseudo = {EXPORT}; Protocols = 4; Transports = TCP; \
                 Access_Type = RW; Squash = No_Root_Squash; SecType = sys; FSAL {{ Name = VFS; }} }}\n",
                recovery.display(),
                export_dir.display()
            ),
        )
        .unwrap();
        let child = Command::new(&bin)
            .arg("-F")
            .arg("-L")
            .arg(&log)
            .arg("-f")
            .arg(&conf)
            .arg("-p")
            .arg(dir.path().join("ganesha.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut g = Ganesha { child, log, export_dir, _dir: dir };
        let start = Instant::now();
        loop {
            if let Some(status) = g.child.try_wait().unwrap() {
                panic!("ganesha exited with {status} while starting:\n{}", g.log_text());
            }
            // Graceless logs "skipping GRACE" at start; with a grace period it ends with "NOT IN GRACE".
            let log = g.log_text();
            let out_of_grace = log.contains("NOT IN GRACE") || log.contains("skipping GRACE");
            if out_of_grace && listening(addr) {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "ganesha not ready after 30 s:\n{}", g.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("ganesha ready in {:?}", start.elapsed());
        Some(g)
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
