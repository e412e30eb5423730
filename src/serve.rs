//! `dpfs serve`: vhost-user-fs devices over Unix sockets.

use crate::backends::BackendSpec;
use crate::cli::{BackendKind, CacheArg, PollArg, ServeArgs};
use crate::config::FileConfig;
use crate::signals::Signals;
use anyhow::{bail, Context as _};
use dpfs_core::{DeviceId, Dispatcher, SessionConfig};
use dpfs_hal_snap::{Dma, DpuFlow, Flow};
use dpfs_hal_vhost_user::{DeviceConfig, PollMode, Server, ShutdownTrigger, SocketSpec};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Everything `serve` runs with, after merging the command line and the file.
#[derive(Debug)]
pub struct ServePlan {
    /// Devices and where they listen.
    pub devices: Vec<(DeviceConfig, SocketSpec)>,
    /// Backend of every device.
    pub backend: BackendKind,
    /// Directory served (passthrough) or seeded from (mem).
    pub shared_dir: Option<PathBuf>,
    /// The passthrough backend's configuration (passthrough only).
    pub passthrough: Option<dpfs_backend_passthrough::PassthroughConfig>,
    /// Guest entry/attribute cache timeout.
    pub timeout: Duration,
    /// FUSE session settings.
    pub session: SessionConfig,
    /// Socket group.
    pub socket_group: Option<String>,
    /// The nfs backend's configuration (nfs only).
    pub nfs: Option<dpfs_backend_nfs::NfsConfig>,
    /// The kv backend's opened store (kv only).
    pub kv: Option<Arc<crate::kv::KvSpec>>,
    /// The forwarder's configuration (remote backend only).
    pub remote: Option<dpfs_remote::ForwarderConfig>,
}

/// Merges the command line, `-o` options and the configuration file. Flags win over the
/// file.
pub fn plan(args: &ServeArgs) -> anyhow::Result<ServePlan> {
    let file = match &args.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let (mut shared_dir, mut cache) = (args.shared_dir.clone(), args.cache);
    for opts in &args.options {
        for opt in opts.split(',').filter(|o| !o.is_empty()) {
            match opt.split_once('=') {
                Some(("source", dir)) if shared_dir.is_none() => shared_dir = Some(PathBuf::from(dir)),
                Some(("cache", c)) if cache.is_none() => {
                    cache = Some(
                        <CacheArg as clap::ValueEnum>::from_str(c, true)
                            .map_err(|e| anyhow::anyhow!("-o cache={c}: {e}"))?,
                    )
                }
                _ => tracing::warn!(option = opt, "-o option not supported by dpfs; ignored"),
            }
        }
    }
    let snap = file.snap_hal.as_ref();
    let mirror = file.local_mirror.as_ref();
    if shared_dir.is_none() {
        shared_dir = mirror.and_then(|m| m.dir.as_ref()).map(PathBuf::from);
    }
    let timeout = crate::backends::entry_timeout(cache, mirror)?;
    if let Some(n) = args.thread_pool_size {
        tracing::info!(n, "--thread-pool-size ignored: requests run on the poller threads (--threads)");
    }
    let backend = crate::backends::choose(args.backend, shared_dir.as_deref());
    crate::backends::check_readonly(backend, args.readonly)?;
    crate::backends::check_xattr_policy(backend, args.xattr_policy);
    let passthrough = match backend {
        BackendKind::Passthrough => Some(crate::backends::passthrough_config(
            shared_dir.as_deref(),
            mirror,
            cache,
            args.readonly,
            args.engine,
            args.xattr_policy,
        )?),
        _ => None,
    };
    let kv = crate::kv::spec(backend, &args.kv, file.kv.as_ref())?;
    let poll = match args.poll {
        None | Some(PollArg::Event) => PollMode::Event,
        Some(PollArg::Busy) => PollMode::Busy,
        Some(PollArg::Hybrid) => PollMode::Hybrid,
    };
    let threads = args.threads.or(snap.and_then(|s| s.nthreads)).unwrap_or(1);
    let request_queues = args
        .request_queues
        .or(snap.and_then(|s| s.virtio_request_queues))
        .or(file.rvfs_hal.as_ref().and_then(|r| r.virtio_request_queues))
        .unwrap_or(threads);
    if let Some(c) = passthrough.as_ref().filter(|c| c.uring_cq_polling) {
        if c.uring_cq_polling_nthreads != u32::from(threads) {
            tracing::info!(
                nthreads = c.uring_cq_polling_nthreads,
                threads,
                "uring_cq_polling: one polling completion thread per poller thread (--threads), not nthreads"
            );
        }
    }
    let queue_size = match (args.queue_size, file.dpfs.as_ref().and_then(|d| d.queue_depth)) {
        (Some(q), _) => q,
        (None, Some(q)) => u16::try_from(q).context("[dpfs] queue_depth too large")?,
        (None, None) => dpfs_hal_vhost_user::config::MAX_QUEUE_SIZE,
    };
    let tag = args.tag.clone().or(snap.and_then(|s| s.tag.clone())).unwrap_or_else(|| "dpfs".into());
    let mut sockets: Vec<SocketSpec> = args.socket_path.iter().cloned().map(SocketSpec::Path).collect();
    sockets.extend(args.fd.iter().map(|&fd| SocketSpec::Fd(fd)));
    if sockets.is_empty() {
        bail!("nothing to serve: give --socket-path PATH (repeatable) or --fd N");
    }
    let many = sockets.len() > 1;
    let devices = sockets
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            let mut d = DeviceConfig::new(DeviceId(i as u32), if many { format!("{tag}-{i}") } else { tag.clone() });
            d.request_queues = request_queues;
            d.threads = threads.min(request_queues.max(1));
            d.max_queue_size = queue_size;
            d.poll = poll;
            if let Some(us) = args.poll_spin_us {
                d.spin = Duration::from_micros(us);
            }
            d.config_space = args.config_space;
            d.validate().with_context(|| format!("device {i} ({spec})"))?;
            Ok((d, spec))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let remote = match backend {
        BackendKind::Remote => Some(crate::remote::forwarder_config(&args.remote, file.rvfs.as_ref(), &tag)?),
        _ => {
            crate::remote::check_unused(&args.remote)?;
            None
        }
    };
    let mut session = file.session.unwrap_or_default();
    session.metrics |= args.metrics;
    Ok(ServePlan {
        devices,
        backend,
        shared_dir,
        passthrough,
        timeout,
        session,
        socket_group: args.socket_group.clone(),
        nfs: crate::nfs::plan(backend, &args.nfs, file.nfs.as_ref(), timeout, threads.into())?,
        kv,
        remote,
    })
}

/// Runs `dpfs serve` until SIGINT/SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    #[cfg(feature = "ffi-snap")]
    if args.hal == crate::cli::HalArg::Snap {
        return crate::serve_snap::run(args);
    }
    let mut plan = plan(&args)?;
    let xattr = plan.passthrough.as_ref().map(|c| c.xattr_policy);
    let mut sandbox = crate::sandbox::plan(&args.sandbox, plan.backend, plan.shared_dir.as_deref(), xattr)?;
    sandbox.new_net &= !plan.kv.as_ref().is_some_and(|k| k.needs_network());
    crate::backends::prepare_process(plan.backend);
    crate::sandbox::raise_nofile();
    if let (Some(c), Some(root)) = (plan.passthrough.as_mut(), sandbox.served_root()) {
        c.root = root;
    }
    // Everything that needs the host happens before confining: the mem seed is read and
    // the sockets are bound (the socket files stay the parent's to remove).
    let spec = BackendSpec::new(plan.backend, plan.timeout, plan.shared_dir.as_deref(), plan.passthrough.clone())?
        .with_nfs(crate::nfs::checked(plan.nfs.clone())?)
        .with_kv(plan.kv.clone());
    if let Some(cfg) = &plan.remote {
        crate::remote::check_gateway(cfg)?;
    }
    let mut owned_sockets = Vec::new();
    let shown: Vec<String> = plan.devices.iter().map(|(_, s)| s.to_string()).collect();
    // Sockets are bound here whatever the mode: the seccomp filter allows no socket(2).
    for (_, s) in plan.devices.iter_mut() {
        if let SocketSpec::Path(p) = s {
            let l = dpfs_hal_vhost_user::bind_socket(p).context("cannot start serving")?;
            if let Some(group) = &plan.socket_group {
                chgrp(p, group)?;
            }
            let m = std::fs::symlink_metadata(&*p)?;
            owned_sockets.push((p.clone(), (m.dev(), m.ino())));
            *s = SocketSpec::Fd(std::os::fd::IntoRawFd::into_raw_fd(l));
        }
    }
    if sandbox.forks() {
        if let Some(sup) = crate::sandbox::fork_daemon(true)? {
            let code = sup.wait(|sup, sig, _| sup.forward(sig))?;
            remove_sockets(&owned_sockets);
            if code != 0 {
                std::process::exit(code);
            }
            return Ok(());
        }
    }
    crate::sandbox::confine(&sandbox)?;
    let factory_spec = spec.clone();
    let dispatcher = Arc::new(Dispatcher::new(plan.session.clone(), move |_dev| factory_spec.build()));
    // Signals go to the signal thread only: block them before any other thread starts.
    let signals = crate::signals::block()?;
    // The forwarder (remote backend) or core; the DPU model's data flow goes in front of
    // either, so the remote backend works over the model as over vhost-user.
    let inner: Arc<dyn dpfs_core::Handler> = match &plan.remote {
        Some(cfg) => Arc::new(dpfs_remote::Forwarder::start(cfg.clone()).context("cannot start the forwarder")?),
        None => dispatcher.clone(),
    };
    let handler: Arc<dyn dpfs_core::Handler> = match args.hal {
        crate::cli::HalArg::DpuModel | crate::cli::HalArg::DpuModelDoca => {
            let flow = if args.hal == crate::cli::HalArg::DpuModel { Flow::Snap } else { Flow::Doca };
            Arc::new(DpuFlow::new(flow, Arc::new(Dma::new()), inner))
        }
        _ => inner,
    };
    let server = Server::start(handler, plan.devices.clone()).context("cannot start serving")?;
    let seed_note = match (plan.backend, &plan.shared_dir) {
        (BackendKind::Mem, Some(d)) => {
            format!(", seeded with {} files from {}", crate::backends::Seed::files(&spec.seed), d.display())
        }
        (BackendKind::Mem, None) => format!(", seeded with {} example files", crate::backends::Seed::files(&spec.seed)),
        (BackendKind::Passthrough, Some(d)) => format!(" of {}", d.display()),
        (BackendKind::Remote, _) => {
            let addrs: Vec<String> = plan.remote.iter().flat_map(|c| &c.addrs).map(|a| a.to_string()).collect();
            format!(" to gateway {}", addrs.join(", "))
        }
        _ => String::new(),
    };
    for ((d, _), s) in plan.devices.iter().zip(&shown) {
        println!(
            "dpfs: serving {} on {s}: tag {}, backend {:?}{seed_note}, {} request queue(s) + hiprio, {} poller thread(s), {} polling{}",
            d.id,
            d.tag,
            plan.backend,
            d.request_queues,
            d.threads,
            d.poll,
            match args.hal {
                crate::cli::HalArg::DpuModel => ", through the BlueField-2 (SNAP) device model",
                crate::cli::HalArg::DpuModelDoca => ", through the BlueField-3 (DOCA) device model",
                _ => "",
            }
        );
    }
    // Keep the core devices: the server unregisters them when it stops.
    let core_devices = dispatcher.devices();
    let trigger = server.shutdown_trigger();
    std::thread::Builder::new().name("dpfs-signals".into()).spawn(move || wait_signal(signals, trigger))?;
    // Every thread of the main thread's is started: narrow it to waiting and tearing down.
    dpfs_core::thread_role::enter(dpfs_core::ThreadRole::Main);
    let devices = server.devices();
    server.wait();
    if sandbox.mode == crate::cli::SandboxArg::None {
        remove_sockets(&owned_sockets);
    }
    tracing::info!("stopped");
    report(&core_devices, &devices, plan.session.metrics);
    Ok(())
}

/// Logs per-queue request counts, and per-opcode counters when metrics are on.
fn report(
    core_devices: &[Arc<dpfs_core::Device>],
    devices: &[(DeviceConfig, Arc<dpfs_hal_vhost_user::DeviceStats>)],
    metrics: bool,
) {
    for (cfg, stats) in devices {
        let queues: Vec<String> = stats
            .snapshot()
            .iter()
            .map(|q| {
                if q.broken > 0 {
                    format!("q{}={} ({} broken)", q.queue, q.requests, q.broken)
                } else {
                    format!("q{}={}", q.queue, q.requests)
                }
            })
            .collect();
        eprintln!(
            "dpfs: {} ({}): {} connection(s), requests per queue: {}",
            cfg.id,
            cfg.tag,
            stats.connections(),
            queues.join(" ")
        );
    }
    if !metrics {
        return;
    }
    for dev in core_devices {
        print_ops(dev.id(), &dev.metrics().snapshot());
    }
}

fn print_ops(id: DeviceId, ops: &[dpfs_core::metrics::OpStats]) {
    for o in ops {
        eprintln!(
            "dpfs: {id} {:<16} count {:>9} errors {:>7} p50 {:>10?} p99 {:>10?}",
            o.op, o.count, o.errors, o.p50, o.p99
        );
    }
}

fn wait_signal(signals: Signals, trigger: ShutdownTrigger) {
    dpfs_core::thread_role::enter(dpfs_core::ThreadRole::Signals);
    if let Some(sig) = signals.wait() {
        tracing::info!(signal = sig, "shutting down: finishing requests in flight");
    }
    trigger.trigger();
}

/// Removes the socket files bound at startup that are still ours (same inode).
fn remove_sockets(sockets: &[(PathBuf, (u64, u64))]) {
    for (p, id) in sockets {
        match std::fs::symlink_metadata(p) {
            Ok(m) if (m.dev(), m.ino()) == *id => {
                if let Err(e) = std::fs::remove_file(p) {
                    tracing::warn!(path = %p.display(), error = %e, "cannot remove socket");
                }
            }
            _ => tracing::debug!(path = %p.display(), "socket file replaced or gone; left alone"),
        }
    }
}

fn chgrp(path: &Path, group: &str) -> anyhow::Result<()> {
    let gid = match group.parse::<u32>() {
        Ok(g) => g,
        Err(_) => {
            let name = std::ffi::CString::new(group).context("--socket-group")?;
            // SAFETY: getgrnam reads the group database into static storage; no other thread
            // of this process calls it, and the result is read at once.
            let gr = unsafe { libc::getgrnam(name.as_ptr()) };
            if gr.is_null() {
                bail!("--socket-group {group}: no such group");
            }
            // SAFETY: non-null pointer to a struct group returned just above.
            unsafe { (*gr).gr_gid }
        }
    };
    std::os::unix::fs::chown(path, None, Some(gid)).with_context(|| format!("cannot chgrp {}", path.display()))
}
