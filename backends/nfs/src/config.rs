//! [`NfsConfig`]: which server and export, how long a request may wait, and the guest's
//! cache timeouts.

use std::net::SocketAddr;
use std::time::Duration;

/// Which client engine speaks to the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NfsClient {
    /// dpfs's own NFSv4.1/4.2 client (sessions, trunking, recovery, each caller's identity).
    #[default]
    Dpfs,
    /// libnfs's NFSv3 client (cargo feature `libnfs`): the yardstick, and NFSv3-only filers.
    Libnfs,
}

/// The NFS backend's configuration.
#[derive(Debug, Clone)]
pub struct NfsConfig {
    /// The server's address (port 2049 unless given).
    pub server: SocketAddr,
    /// The export's path on the server (`/export`).
    pub export: String,
    /// How long one FUSE request may take, waiting for a slot, the server and retries
    /// included, before it fails with EIO.
    pub deadline: Duration,
    /// How long connecting (EXCHANGE_ID .. the export's root) may take.
    pub connect_timeout: Duration,
    /// Entry cache timeout given to the guest.
    pub entry_timeout: Duration,
    /// Attribute cache timeout given to the guest.
    pub attr_timeout: Duration,
    /// Most node ids the backend keeps at once (the guest's lookups beyond it get ENFILE).
    pub max_nodes: usize,
    /// Most open files at once (EMFILE beyond).
    pub max_handles: usize,
    /// Threads of the backend's tokio runtime.
    pub threads: usize,
    /// TCP connections to the server, one session each, one client id (trunking).
    pub nconnect: usize,
    /// Most bytes of one READ or WRITE (the session's sizes may make it smaller).
    pub max_io: u32,
    /// The NFSv4 minor version: 1, or 2 for lseek (SEEK), fallocate (ALLOCATE, DEALLOCATE)
    /// and copy_file_range (COPY).
    pub minor: u32,
    /// The client engine.
    pub client: NfsClient,
}

impl NfsConfig {
    /// Defaults for `server` and `export`.
    pub fn new(server: SocketAddr, export: impl Into<String>) -> Self {
        Self {
            server,
            export: export.into(),
            deadline: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            entry_timeout: Duration::from_secs(1),
            attr_timeout: Duration::from_secs(1),
            max_nodes: 1 << 20,
            max_handles: 1 << 16,
            threads: 1,
            nconnect: 1,
            max_io: 1 << 20,
            minor: 1,
            client: NfsClient::Dpfs,
        }
    }
}
