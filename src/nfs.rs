//! The nfs backend's command-line options and `[nfs]` keys, merged into an [`NfsConfig`],
//! and the start-up check that the server and export answer (one clear line otherwise).

use crate::config::NfsTable;
use anyhow::{bail, Context as _};
use clap::Args;
use dpfs_backend_nfs::NfsConfig;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// `--nfs-*` options of `dpfs serve` and `dpfs mount`.
#[derive(Debug, Args, Clone)]
pub struct NfsOpts {
    /// NFS server, HOST[:PORT] (port 2049 by default) [default: [nfs] server].
    #[arg(id = "nfs_server", long = "nfs-server", value_name = "HOST[:PORT]")]
    pub server: Option<String>,

    /// Export path on the NFS server [default: [nfs] export].
    #[arg(id = "nfs_export", long = "nfs-export", value_name = "/PATH")]
    pub export: Option<String>,

    /// TCP connections to the server, each with its own session of one client id (1-16)
    /// [default: one per poller thread (--threads)].
    #[arg(id = "nfs_nconnect", long = "nfs-nconnect", value_name = "N")]
    pub nconnect: Option<u32>,

    /// Seconds an NFS request may take (server outages included) before the guest gets EIO.
    #[arg(id = "nfs_deadline", long = "nfs-deadline", value_name = "SECS", default_value_t = 30.0)]
    pub deadline: f64,

    /// Threads of the nfs backend's tokio runtime (per device), where requests run. One is
    /// the fastest here (no hand-offs between workers); more help when the server is far.
    #[arg(id = "nfs_threads", long = "nfs-threads", value_name = "N", default_value_t = 1)]
    pub threads: usize,

    /// NFSv4 minor version: 1, or 2 for lseek SEEK_DATA/SEEK_HOLE, fallocate and
    /// copy_file_range done on the server.
    #[arg(id = "nfs_minor", long = "nfs-minor", value_name = "1|2", default_value_t = 1)]
    pub minor: u32,

    /// Client engine: dpfs (its own NFSv4.1/4.2 client) or libnfs (NFSv3 through libnfs, in
    /// builds with the `libnfs` feature; the server's rpcbind must answer).
    #[arg(id = "nfs_client", long = "nfs-client", value_enum, default_value_t = ClientKind::Dpfs)]
    pub client: ClientKind,
}

/// `--nfs-client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientKind {
    /// dpfs's own NFSv4.1/4.2 client.
    Dpfs,
    /// libnfs, NFSv3.
    Libnfs,
}

impl Default for NfsOpts {
    /// The command line's defaults.
    fn default() -> Self {
        Self {
            server: None,
            export: None,
            nconnect: None,
            deadline: 30.0,
            threads: 1,
            minor: 1,
            client: ClientKind::Dpfs,
        }
    }
}

/// `HOST[:PORT]` (IPv6 as `[addr]:port`) resolved to its first address, port 2049 if none.
fn resolve(server: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(a) = server.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = server.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 2049));
    }
    let (host, port) = match server.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().with_context(|| format!("NFS server {server}: bad port"))?),
        None => (server, 2049),
    };
    (host, port)
        .to_socket_addrs()
        .with_context(|| format!("NFS server {server}: cannot resolve"))?
        .next()
        .with_context(|| format!("NFS server {server}: no address"))
}

/// The backend's configuration from the options and `[nfs]` (options win), with the
/// guest's cache `timeout`.
/// `pollers`: the threads that run requests (the default number of connections).
pub fn config(
    opts: &NfsOpts,
    table: Option<&NfsTable>,
    timeout: Duration,
    pollers: usize,
) -> anyhow::Result<NfsConfig> {
    let server = opts
        .server
        .clone()
        .or_else(|| table.and_then(|t| t.server.clone()))
        .context("the nfs backend needs a server: --nfs-server HOST[:PORT] (or [nfs] server)")?;
    let export = opts
        .export
        .clone()
        .or_else(|| table.and_then(|t| t.export.clone()))
        .context("the nfs backend needs an export: --nfs-export /PATH (or [nfs] export)")?;
    if !export.starts_with('/') {
        bail!("--nfs-export {export}: an absolute path on the server (/PATH)");
    }
    if !(1..=2).contains(&opts.minor) {
        bail!("--nfs-minor {}: 1 (NFSv4.1) or 2 (NFSv4.2)", opts.minor);
    }
    // DPFS's layout: a connection (and session) per poller thread, so pollers never share one.
    let nconnect = opts.nconnect.unwrap_or(pollers.clamp(1, dpfs_backend_nfs::MAX_NCONNECT) as u32);
    if !(1..=dpfs_backend_nfs::MAX_NCONNECT as u32).contains(&nconnect) {
        bail!("--nfs-nconnect {nconnect}: between 1 and {}", dpfs_backend_nfs::MAX_NCONNECT);
    }
    let deadline = Duration::try_from_secs_f64(opts.deadline)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("--nfs-deadline {}: a positive number of seconds", opts.deadline))?;
    if table.and_then(|t| t.cq_polling).is_some() {
        tracing::info!("[nfs] cq_polling: completions are answered by the client's tasks; the key has no effect");
    }
    let mut cfg = NfsConfig::new(resolve(&server)?, export);
    cfg.deadline = deadline;
    cfg.nconnect = nconnect as usize;
    cfg.minor = opts.minor;
    cfg.client = match opts.client {
        ClientKind::Dpfs => dpfs_backend_nfs::NfsClient::Dpfs,
        ClientKind::Libnfs => dpfs_backend_nfs::NfsClient::Libnfs,
    };
    if !(1..=64).contains(&opts.threads) {
        bail!("--nfs-threads {}: between 1 and 64", opts.threads);
    }
    cfg.threads = opts.threads;
    cfg.connect_timeout = deadline.min(Duration::from_secs(10));
    cfg.entry_timeout = timeout;
    cfg.attr_timeout = timeout;
    Ok(cfg)
}

/// The nfs backend's configuration when `backend` is nfs.
pub fn plan(
    backend: crate::cli::BackendKind,
    opts: &NfsOpts,
    table: Option<&NfsTable>,
    timeout: Duration,
    pollers: usize,
) -> anyhow::Result<Option<NfsConfig>> {
    match backend {
        crate::cli::BackendKind::Nfs => config(opts, table, timeout, pollers).map(Some),
        _ => Ok(None),
    }
}

/// `cfg` once [`check`]ed.
pub fn checked(cfg: Option<NfsConfig>) -> anyhow::Result<Option<NfsConfig>> {
    if let Some(c) = &cfg {
        check(c)?;
    }
    Ok(cfg)
}

/// Connects once (no threads: a current-thread runtime), so that a server that is down, an
/// export that does not exist or refused credentials stop the daemon at start, with the
/// server and export named.
pub fn check(cfg: &NfsConfig) -> anyhow::Result<()> {
    dpfs_backend_nfs::probe(cfg)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfs_options_parse_beside_the_daemons_own() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "dpfs",
            "serve",
            "--socket-path",
            "/tmp/s",
            "--backend",
            "nfs",
            "--threads",
            "2",
            "--nfs-server",
            "127.0.0.1",
            "--nfs-export",
            "/e",
            "--nfs-threads",
            "3",
            "--nfs-nconnect",
            "2",
            "--nfs-deadline",
            "7",
            "--nfs-client",
            "libnfs",
        ])
        .unwrap();
        let crate::cli::Command::Serve(a) = cli.command else { panic!("not serve") };
        assert_eq!((a.threads, a.nfs.threads, a.nfs.nconnect, a.nfs.deadline), (Some(2), 3, Some(2), 7.0));
        assert_eq!((a.nfs.server.as_deref(), a.nfs.export.as_deref()), (Some("127.0.0.1"), Some("/e")));
        assert_eq!(a.nfs.client, ClientKind::Libnfs);
        let cli =
            crate::cli::Cli::try_parse_from(["dpfs", "mount", "--backend", "nfs", "--threads", "3", "/mnt"]).unwrap();
        let crate::cli::Command::Mount(a) = cli.command else { panic!("not mount") };
        assert_eq!((a.threads, a.nfs.threads, a.nfs.minor, a.nfs.client), (3, 1, 1, ClientKind::Dpfs));
    }

    #[test]
    fn servers_resolve_with_the_default_port() {
        assert_eq!(resolve("127.0.0.1").unwrap(), "127.0.0.1:2049".parse().unwrap());
        assert_eq!(resolve("127.0.0.1:2050").unwrap(), "127.0.0.1:2050".parse().unwrap());
        assert_eq!(resolve("::1").unwrap(), "[::1]:2049".parse().unwrap());
        assert_eq!(resolve("[::1]:7").unwrap(), "[::1]:7".parse().unwrap());
        assert_eq!(resolve("localhost:2049").unwrap().port(), 2049);
    }

    #[test]
    fn options_win_over_the_table_and_bad_values_are_named() {
        let table = NfsTable { server: Some("127.0.0.1".into()), export: Some("/t".into()), cq_polling: Some(true) };
        let c = config(&NfsOpts { deadline: 5.0, ..Default::default() }, Some(&table), Duration::ZERO, 1).unwrap();
        assert_eq!((c.server.port(), c.export.as_str(), c.deadline), (2049, "/t", Duration::from_secs(5)));
        let opts = NfsOpts { export: Some("/o".into()), deadline: 5.0, ..Default::default() };
        assert_eq!(config(&opts, Some(&table), Duration::ZERO, 1).unwrap().export, "/o");
        let e = config(&NfsOpts { deadline: 5.0, ..Default::default() }, None, Duration::ZERO, 1).unwrap_err();
        assert!(e.to_string().contains("--nfs-server"), "{e}");
        let bad = NfsOpts { export: Some("rel".into()), ..opts.clone() };
        assert!(config(&bad, Some(&table), Duration::ZERO, 1).unwrap_err().to_string().contains("absolute"));
        let v42 = NfsOpts { minor: 2, ..opts.clone() };
        assert_eq!(config(&v42, Some(&table), Duration::ZERO, 1).unwrap().minor, 2);
        let bad = NfsOpts { minor: 3, ..opts.clone() };
        assert!(config(&bad, Some(&table), Duration::ZERO, 1).unwrap_err().to_string().contains("NFSv4.2"));
        let bad = NfsOpts { deadline: 0.0, ..opts };
        assert!(config(&bad, Some(&table), Duration::ZERO, 1).unwrap_err().to_string().contains("--nfs-deadline"));
    }

    #[test]
    fn connections_default_to_one_per_poller_thread() {
        let opts = NfsOpts { server: Some("127.0.0.1".into()), export: Some("/e".into()), ..Default::default() };
        assert_eq!(config(&opts, None, Duration::ZERO, 4).unwrap().nconnect, 4);
        assert_eq!(config(&opts, None, Duration::ZERO, 64).unwrap().nconnect, dpfs_backend_nfs::MAX_NCONNECT);
        let two = NfsOpts { nconnect: Some(2), ..opts.clone() };
        assert_eq!(config(&two, None, Duration::ZERO, 4).unwrap().nconnect, 2);
        let bad = NfsOpts { nconnect: Some(0), ..opts };
        assert!(config(&bad, None, Duration::ZERO, 4).unwrap_err().to_string().contains("--nfs-nconnect 0"));
    }

    #[cfg(not(feature = "libnfs"))]
    #[test]
    fn the_libnfs_engine_needs_its_feature() {
        let opts = NfsOpts {
            server: Some("127.0.0.1".into()),
            export: Some("/e".into()),
            client: ClientKind::Libnfs,
            ..Default::default()
        };
        let cfg = config(&opts, None, Duration::ZERO, 1).unwrap();
        let e = check(&cfg).unwrap_err().to_string();
        assert!(e.contains("`libnfs` cargo feature"), "{e}");
    }
}
