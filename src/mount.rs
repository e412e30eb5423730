//! `dpfs mount`: one backend mounted on this host through /dev/fuse, in the foreground.

use crate::backends::BackendSpec;
use crate::cli::{BackendKind, MountArgs};
use crate::config::FileConfig;
use crate::signals::Signals;
use anyhow::{bail, Context as _};
use dpfs_core::{DeviceId, Dispatcher, Handler};
use dpfs_hal_fusedev::{FuseMount, MountOptions, PreparedMount, Unmounter};
use std::path::PathBuf;
use std::sync::Arc;

/// Runs `dpfs mount` until the file system is unmounted or the process is signalled.
pub fn run(args: MountArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let mirror = file.local_mirror.as_ref();
    let shared_dir = args.shared_dir.clone().or_else(|| mirror.and_then(|m| m.dir.as_ref()).map(PathBuf::from));
    let timeout = crate::backends::entry_timeout(args.cache, mirror)?;
    if args.threads == 0 {
        bail!("--threads must be at least 1");
    }
    let backend = crate::backends::choose(args.backend, shared_dir.as_deref());
    if backend == BackendKind::Remote {
        bail!("--backend remote forwards virtio-fs devices: use dpfs serve --backend remote");
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
    let kv = crate::kv::spec(backend, &args.kv, file.kv.as_ref())?;
    let session = file.session.unwrap_or_default();
    let xattr = passthrough.as_ref().map(|c| c.xattr_policy);
    let mut sandbox = crate::sandbox::plan(&args.sandbox, backend, shared_dir.as_deref(), xattr)?;
    sandbox.new_net &= !kv.as_ref().is_some_and(|k| k.needs_network());
    let mut passthrough = passthrough;
    if let (Some(c), Some(root)) = (passthrough.as_mut(), sandbox.served_root()) {
        c.root = root;
    }
    crate::backends::prepare_process(backend);
    crate::sandbox::raise_nofile();
    let nfs =
        crate::nfs::checked(crate::nfs::plan(backend, &args.nfs, file.nfs.as_ref(), timeout, args.threads as usize)?)?;
    let spec = BackendSpec::new(backend, timeout, shared_dir.as_deref(), passthrough)?.with_nfs(nfs).with_kv(kv);
    // The mount is made on the host before confining. The daemon is always forked: the
    // parent keeps the host's mount namespace and its privileges to unmount (and abort)
    // the connection, which the confined daemon (no CAP_SYS_ADMIN for mem, no umount2 in
    // the filter, maybe another mount namespace) cannot.
    let mut opts = MountOptions::new(&args.mountpoint);
    opts.threads = args.threads as usize;
    let prepared =
        PreparedMount::mount(&opts).with_context(|| format!("cannot mount on {}", args.mountpoint.display()))?;
    {
        let host_unmounter = prepared.unmounter();
        if let Some(sup) = crate::sandbox::fork_daemon(sandbox.forks())? {
            drop(prepared); // the daemon holds the connection
            let code = sup.wait(|sup, sig, n| supervise_signal(&host_unmounter, sup, sig, n))?;
            let _ = host_unmounter.unmount();
            if code != 0 {
                std::process::exit(code);
            }
            return Ok(());
        }
    }
    crate::sandbox::confine(&sandbox)?;
    let handler: Arc<dyn Handler> = Arc::new(Dispatcher::new(session.clone(), move |_dev| spec.build()));
    // Signals go to the signal thread only: block them before any other thread starts.
    let signals = crate::signals::block()?;
    let mount = FuseMount::start(prepared, handler, DeviceId(0), &session, opts.threads)
        .with_context(|| format!("cannot mount on {}", args.mountpoint.display()))?;
    println!(
        "dpfs: mounted backend {:?} on {} (fuse.dpfs, {} reader thread(s)); umount it or send SIGINT/SIGTERM to stop",
        backend,
        mount.mountpoint().display(),
        args.threads
    );
    std::thread::Builder::new().name("dpfs-signals".into()).spawn(move || wait_signals(signals))?;
    // Every thread of the main thread's is started: narrow it to waiting and tearing down.
    dpfs_core::thread_role::enter(dpfs_core::ThreadRole::Main);
    mount.wait();
    tracing::info!("unmounted");
    Ok(())
}

/// In the parent of a sandboxed daemon (host mount namespace): the first signal detaches
/// the mount (the daemon's readers then see the connection end), later ones abort it.
fn supervise_signal(unmounter: &Unmounter, sup: &crate::sandbox::Supervisor, sig: libc::c_int, n: u32) {
    if n == 0 {
        tracing::info!(signal = sig, "unmounting {}", unmounter.path().display());
        if let Err(e) = unmounter.unmount() {
            tracing::error!(error = %e, "cannot unmount; stopping the daemon");
            sup.forward(libc::SIGTERM);
        }
    } else {
        tracing::warn!(signal = sig, "aborting the FUSE connection");
        if let Err(e) = unmounter.abort() {
            tracing::error!(error = %e, "cannot abort the FUSE connection; stopping the daemon");
            sup.forward(libc::SIGKILL);
        }
    }
}

/// A signal sent to the daemon itself (the parent unmounts on its own signals): end now;
/// the connection closes with the process and the parent unmounts what is left.
fn wait_signals(signals: Signals) {
    dpfs_core::thread_role::enter(dpfs_core::ThreadRole::Signals);
    if let Some(sig) = signals.wait() {
        tracing::info!(signal = sig, "stopping; the parent process unmounts");
        std::process::exit(0);
    }
}
