//! `dpfs gateway`: serves the devices that `dpfs serve --backend remote` forwards, one
//! FUSE session and backend instance per forwarded device, until SIGINT/SIGTERM.

use crate::backends::BackendSpec;
use crate::cli::{BackendKind, CacheArg, EngineArg, XattrPolicyArg};
use crate::config::FileConfig;
use anyhow::{bail, Context as _};
use clap::Args;
use dpfs_remote::{Gateway, GatewayConfig, Key};
use std::io::Write as _;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `dpfs gateway`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dpfs gateway --listen 0.0.0.0:31850 --key-file /etc/dpfs/key --backend mem
  dpfs gateway --listen 10.0.0.1:31850 --key-file key --shared-dir /srv/share --threads 4
  (DPU) dpfs serve --socket-path /tmp/vfs.sock --backend remote --remote 10.0.0.1:31850 --key-file key
The first line on stdout names the address listened on (useful with port 0).")]
pub struct GatewayArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: String,

    /// Pre-shared key file; forwarders must hold the same key.
    #[arg(long = "key-file", value_name = "FILE")]
    pub key_file: PathBuf,

    /// Backend of every forwarded device [default: passthrough with --shared-dir, else mem].
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,

    /// Directory to serve (passthrough) or to copy into each device's memory (mem).
    #[arg(long = "shared-dir", value_name = "DIR")]
    pub shared_dir: Option<PathBuf>,

    /// The kv backend's store, volume and durability.
    #[command(flatten)]
    pub kv: crate::kv::KvOpts,

    /// The nfs backend's server and export.
    #[command(flatten)]
    pub nfs: crate::nfs::NfsOpts,

    /// Passthrough data path [default: io-uring; sync on tmpfs/ramfs].
    #[arg(long, value_enum)]
    pub engine: Option<EngineArg>,

    /// Entry/attribute cache policy for the guests [default: auto].
    #[arg(long, value_enum)]
    pub cache: Option<CacheArg>,

    /// Refuse every modification with EROFS (passthrough only).
    #[arg(long)]
    pub readonly: bool,

    /// Where a root guest's trusted.* and security.* xattrs go (passthrough).
    #[arg(long = "xattr-policy", value_enum)]
    pub xattr_policy: Option<XattrPolicyArg>,

    /// Worker threads (each runs the requests of the connections given to it).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: u16,

    /// TOML configuration ([session], [local_mirror], [nfs], [kv]).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log filter: error, warn, info, debug, trace, or a tracing filter directive.
    #[arg(long = "log-level", value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
}

/// Runs the gateway until SIGINT/SIGTERM.
pub fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let key = Key::load(&args.key_file)?;
    let file = match &args.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    if args.threads == 0 {
        bail!("--threads must be at least 1");
    }
    let mirror = file.local_mirror.as_ref();
    let shared_dir = args.shared_dir.clone().or_else(|| mirror.and_then(|m| m.dir.as_ref()).map(PathBuf::from));
    let backend = crate::backends::choose(args.backend, shared_dir.as_deref());
    if backend == BackendKind::Remote {
        bail!("a gateway runs a real backend (null, mem, passthrough, nfs, kv), not --backend remote");
    }
    crate::backends::check_readonly(backend, args.readonly)?;
    crate::backends::check_xattr_policy(backend, args.xattr_policy);
    let passthrough = match backend {
        BackendKind::Passthrough => Some(crate::backends::passthrough_config(
            shared_dir.as_deref(),
            mirror,
            args.cache,
            args.readonly,
            args.engine,
            args.xattr_policy,
        )?),
        _ => None,
    };
    let timeout = crate::backends::entry_timeout(args.cache, mirror)?;
    crate::backends::prepare_process(backend);
    crate::sandbox::raise_nofile();
    // Network stores are opened (and their servers probed) now: a bad one stops the gateway
    // at start with one line.
    let nfs =
        crate::nfs::checked(crate::nfs::plan(backend, &args.nfs, file.nfs.as_ref(), timeout, args.threads.into())?)?;
    let kv = crate::kv::spec(backend, &args.kv, file.kv.as_ref())?;
    let spec = BackendSpec::new(backend, timeout, shared_dir.as_deref(), passthrough)?.with_nfs(nfs).with_kv(kv);
    let addr = args
        .listen
        .to_socket_addrs()
        .with_context(|| format!("--listen {}: not an ADDR:PORT", args.listen))?
        .next()
        .with_context(|| format!("--listen {}: no address", args.listen))?;
    let cfg = GatewayConfig {
        key,
        threads: args.threads,
        session: file.session.unwrap_or_default(),
        factory: Arc::new(move |_| spec.build()),
    };
    let gw = Gateway::bind(addr, cfg).with_context(|| format!("cannot listen on {addr}"))?;
    let bound = gw.local_addr()?;
    // Signals go to the signal wait below only: block them before any thread starts.
    let signals = crate::signals::block()?;
    let handle = gw.start().context("cannot start the gateway")?;
    println!("dpfs: gateway listening on {bound}: backend {backend:?}, {} worker thread(s)", args.threads);
    let _ = std::io::stdout().flush();
    if let Some(sig) = signals.wait() {
        tracing::info!(signal = sig, "shutting down");
    }
    let stats = handle.stats().clone();
    handle.shutdown();
    use std::sync::atomic::Ordering::Relaxed;
    eprintln!(
        "dpfs: gateway: {} session(s), {} request(s) run, {} replayed, {} connection(s) refused",
        stats.sessions.load(Relaxed),
        stats.executed.load(Relaxed),
        stats.replayed.load(Relaxed),
        stats.refused.load(Relaxed)
    );
    Ok(())
}
