//! A private redis-server on loopback for the tests: started on a free port, stopped (and
//! its directory removed) when dropped. Missing redis-server skips with a line, or fails
//! when `DPFS_REQUIRE_REDIS=1` (as CI sets).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server.
pub struct RedisServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its working directory (AOF files).
    pub dir: tempfile::TempDir,
    aof: bool,
}

/// True if redis-server can be started; otherwise prints why the test is skipped, or
/// panics when DPFS_REQUIRE_REDIS=1.
pub fn available() -> bool {
    let ok = Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_ok();
    if !ok {
        if std::env::var("DPFS_REQUIRE_REDIS").as_deref() == Ok("1") {
            panic!("DPFS_REQUIRE_REDIS=1 but redis-server is missing (apt-get install redis-server)");
        }
        eprintln!("SKIP: redis-server not installed (apt-get install redis-server, or DPFS_REQUIRE_REDIS=1 to fail)");
    }
    ok
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl RedisServer {
    /// A server without persistence.
    pub fn start() -> RedisServer {
        Self::start_in(tempfile::tempdir().expect("tempdir"), None, false)
    }

    /// A server that fsyncs every write to its append-only file.
    pub fn start_durable() -> RedisServer {
        Self::start_in(tempfile::tempdir().expect("tempdir"), None, true)
    }

    fn start_in(dir: tempfile::TempDir, port: Option<u16>, aof: bool) -> RedisServer {
        let port = port.unwrap_or_else(free_port);
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""]);
        cmd.args(["--dir", &dir.path().display().to_string()]);
        if aof {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("redis-server");
        let s = RedisServer { child, port, dir, aof };
        s.wait_ready();
        s
    }

    fn wait_ready(&self) {
        Self::wait_port(self.port)
    }

    fn wait_port(port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                let out = Command::new("redis-cli").args(["-p", &port.to_string(), "ping"]).output();
                if out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG")) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {port} did not come up");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL (no shutdown save).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port and directory (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        let next = Self::start_in(dir, Some(self.port), self.aof);
        let old = std::mem::replace(self, next);
        drop(old);
    }

    /// The working directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A path in the server's directory.
pub fn file(s: &RedisServer, name: &str) -> PathBuf {
    s.path().join(name)
}

/// A 3-node Redis Cluster on loopback (no replicas), stopped when dropped.
pub struct RedisCluster {
    nodes: Vec<Child>,
    /// The nodes' ports.
    pub ports: Vec<u16>,
    dirs: Vec<tempfile::TempDir>,
}

impl RedisCluster {
    /// Starts three nodes and joins them into one cluster (all 16384 slots covered).
    pub fn start() -> RedisCluster {
        let mut c = RedisCluster { nodes: Vec::new(), ports: Vec::new(), dirs: Vec::new() };
        for _ in 0..3 {
            // The cluster bus listens on port + 10000: pick ports whose bus port is free too.
            let port = loop {
                let p = free_port();
                if p < 55000 && TcpListener::bind(("127.0.0.1", p + 10000)).is_ok() {
                    break p;
                }
            };
            let dir = tempfile::tempdir().expect("tempdir");
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--cluster-enabled", "yes", "--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--dir", &dir.path().display().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server");
            c.nodes.push(child);
            c.ports.push(port);
            c.dirs.push(dir);
        }
        for &p in &c.ports {
            RedisServer::wait_port(p);
        }
        let addrs: Vec<String> = c.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(out.status.success(), "cluster create: {}", String::from_utf8_lossy(&out.stdout));
        let deadline = Instant::now() + Duration::from_secs(20);
        for &p in &c.ports {
            loop {
                let info = Command::new("redis-cli").args(["-p", &p.to_string(), "cluster", "info"]).output();
                if info.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok")) {
                    break;
                }
                assert!(Instant::now() < deadline, "cluster did not reach cluster_state:ok");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        c
    }

    /// The seed nodes as `redis://` URLs.
    pub fn urls(&self) -> Vec<String> {
        self.ports.iter().map(|p| format!("redis://127.0.0.1:{p}")).collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in &mut self.nodes {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
