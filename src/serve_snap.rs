//! `dpfs serve --hal snap --config dpfs.toml` (feature `ffi-snap`, on a BlueField-2 with
//! SNAP): one SNAP virtio-fs controller per `[snap_hal] pf_ids` entry (and mock PF), polled
//! by `nthreads` threads; SIGINT/SIGTERM suspends every device and waits for it.

use crate::backends::BackendSpec;
use crate::cli::{BackendKind, ServeArgs};
use anyhow::Context;
use dpfs_core::{Dispatcher, Handler, SessionConfig};
use dpfs_hal_snap::ffi::snap::{global_clear, global_init, SnapController};
use dpfs_hal_snap::{Controller, PollConfig, SnapHal, SnapHalConfig};
use std::sync::Arc;
use std::time::Duration;

/// Runs the SNAP HAL until a termination signal.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let path = args.config.as_deref().context("--hal snap needs --config FILE with a [snap_hal] table")?;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let cfg = SnapHalConfig::from_toml(&text)?;
    let backend = crate::backends::choose(args.backend, args.shared_dir.as_deref());
    let passthrough = match backend {
        BackendKind::Passthrough => Some(crate::backends::passthrough_config(
            args.shared_dir.as_deref(),
            None,
            args.cache,
            args.readonly,
            args.engine,
            args.xattr_policy,
        )?),
        _ => None,
    };
    let spec = BackendSpec::new(backend, Duration::from_secs(1), args.shared_dir.as_deref(), passthrough)?;
    let dispatcher = Arc::new(Dispatcher::new(SessionConfig::default(), move |_| spec.build()));
    let signals = crate::signals::block()?;
    global_init()?;
    let mut controllers: Vec<Box<dyn Controller>> = Vec::new();
    for d in cfg.devices() {
        dispatcher.register_device(d.id)?;
        let (id, pf, tag) = (d.id, d.pf_id, d.tag.clone());
        let c = SnapController::new(d, &cfg.hal.emulation_manager, dispatcher.clone())
            .with_context(|| format!("device {id} (PF {pf})"))?;
        println!("dpfs: serving {id} on PF {pf} of {}: tag {tag}, backend {backend:?}", cfg.hal.emulation_manager);
        controllers.push(Box::new(c));
    }
    let poll = PollConfig {
        nthreads: usize::from(cfg.hal.nthreads),
        polling_interval: Duration::from_micros(cfg.hal.polling_interval_usec),
        mock_period: Duration::from_secs(1),
    };
    let hal = SnapHal::new(controllers, poll)?;
    let running = hal.start();
    if let Some(sig) = signals.wait() {
        tracing::info!(signal = sig, "suspending every device; waiting for the host to quiesce");
    }
    running.shutdown();
    for d in hal.specs() {
        dispatcher.unregister_device(d.id);
    }
    drop(hal);
    global_clear();
    Ok(())
}
