//! `dpfs serve --backend remote`: the forwarder's options (`--remote`, `--key-file`,
//! `--remote-timeout`, or DPFS's `[rvfs] remote_uri` and our `[rvfs] key_file`), and the
//! start-up check that the gateway is reachable and accepts the key.

use crate::config::RvfsTable;
use anyhow::{bail, Context as _};
use clap::Args;
use dpfs_remote::{ForwarderConfig, Key};
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::time::Duration;

/// Options of the remote backend.
#[derive(Clone, Debug, Default, Args)]
pub struct RemoteOpts {
    /// Gateway to forward every request to (--backend remote) [default: [rvfs] remote_uri].
    #[arg(long, value_name = "HOST:PORT")]
    pub remote: Option<String>,

    /// Pre-shared key of the gateway link (16 to 4096 bytes) [default: [rvfs] key_file].
    #[arg(long = "key-file", value_name = "FILE")]
    pub key_file: Option<PathBuf>,

    /// Seconds a forwarded request may wait for the gateway before it fails with EIO
    /// [default: 30].
    #[arg(long = "remote-timeout", value_name = "SECS")]
    pub remote_timeout: Option<f64>,
}

/// The forwarder's configuration for device names `<host>:<tag>/<n>`; the address is
/// resolved and the key read now, before the sandbox hides the host.
pub fn forwarder_config(opts: &RemoteOpts, rvfs: Option<&RvfsTable>, tag: &str) -> anyhow::Result<ForwarderConfig> {
    let Some(remote) = opts.remote.clone().or_else(|| rvfs.and_then(|r| r.remote_uri.clone())) else {
        bail!("--backend remote needs the gateway's address: --remote HOST:PORT (or [rvfs] remote_uri)");
    };
    let addrs: Vec<_> = remote
        .to_socket_addrs()
        .with_context(|| format!("--remote {remote}: not a HOST:PORT that resolves"))?
        .collect();
    let Some(key_file) = opts.key_file.clone().or_else(|| rvfs.and_then(|r| r.key_file.as_ref().map(PathBuf::from)))
    else {
        bail!("--backend remote needs the gateway's pre-shared key: --key-file FILE (or [rvfs] key_file)");
    };
    let key = Key::load(&key_file)?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut cfg = ForwarderConfig::new(addrs, key, format!("{}:{tag}", host.trim()));
    if let Some(t) = opts.remote_timeout {
        cfg.deadline = Duration::try_from_secs_f64(t)
            .ok()
            .filter(|d| !d.is_zero())
            .with_context(|| format!("--remote-timeout {t}: must be a positive number of seconds"))?;
    }
    Ok(cfg)
}

/// Refuses remote options given to another backend (a typo would otherwise serve locally).
pub fn check_unused(opts: &RemoteOpts) -> anyhow::Result<()> {
    if opts.remote.is_some() || opts.key_file.is_some() || opts.remote_timeout.is_some() {
        bail!("--remote, --key-file and --remote-timeout are options of --backend remote");
    }
    Ok(())
}

/// Connects once and proves the key (no session is opened): an unreachable gateway or a
/// wrong key is a start-up error, not a guest that hangs.
pub fn check_gateway(cfg: &ForwarderConfig) -> anyhow::Result<()> {
    let shown: Vec<String> = cfg.addrs.iter().map(|a| a.to_string()).collect();
    dpfs_remote::probe(cfg).with_context(|| format!("gateway {}", shown.join(", ")))?;
    tracing::info!(gateway = %shown.join(", "), "gateway reachable, key accepted");
    Ok(())
}
