//! The kv backend's command-line side: `--kv-url`/`--kv-volume` and `[kv]` merged, the
//! store opened before the daemon confines itself, and one `KvFs` per device.

use crate::cli::BackendKind;
use crate::config::KvTable;
use anyhow::Context as _;
use dpfs_backend_kv::store::{self, Opened};
use dpfs_backend_kv::{KvConfig, KvDurability, StoreUrl};
use dpfs_core::FileSystem;
use std::sync::Arc;
use std::time::Duration;

/// An opened kv store and the volume to serve from it.
#[derive(Clone)]
pub struct KvSpec {
    /// The URL as given (for messages).
    pub url: String,
    /// Parsed URL.
    pub parsed: StoreUrl,
    /// Volume name.
    pub volume: String,
    store: Opened,
}

impl std::fmt::Debug for KvSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvSpec").field("url", &self.url).field("volume", &self.volume).finish()
    }
}

/// The kv backend's options of `dpfs serve`, `mount` and `gateway`.
#[derive(Debug, Default, clap::Args)]
pub struct KvOpts {
    /// kv backend: the store, redb:///path/fs.redb, redis://HOST:PORT or
    /// redis+cluster://H:P,H:P,... [default: [kv] url].
    #[arg(long = "kv-url", value_name = "URL")]
    pub kv_url: Option<String>,

    /// kv backend: the volume's name in the store [default: [kv] volume, else "default"].
    #[arg(long = "kv-volume", value_name = "NAME")]
    pub kv_volume: Option<String>,

    /// kv backend on redb: when commits reach the disk. fsync (default): at the guest's
    /// fsync or within a second; immediate: before each reply (one disk flush per commit
    /// batch) [default: [kv] durability, else fsync].
    #[arg(long = "kv-durability", value_name = "fsync|immediate")]
    pub kv_durability: Option<String>,
}

/// The kv spec for `kind` (`None` for other backends): the flags over `[kv]`, the store
/// opened now (a missing or unreachable store is one clear error).
pub fn spec(kind: BackendKind, opts: &KvOpts, table: Option<&KvTable>) -> anyhow::Result<Option<Arc<KvSpec>>> {
    let (url, volume, durability) = (opts.kv_url.as_deref(), opts.kv_volume.as_deref(), opts.kv_durability.as_deref());
    if kind != BackendKind::Kv {
        if url.is_some() || volume.is_some() {
            tracing::warn!("--kv-url/--kv-volume only apply to --backend kv; ignored");
        }
        return Ok(None);
    }
    let url = match (url, table.and_then(|t| t.url.as_deref())) {
        (Some(u), _) | (None, Some(u)) => u.to_string(),
        (None, None) if table.is_some_and(|t| t.ramcloud_coordinator.is_some()) => anyhow::bail!(
            "[kv] ramcloud_coordinator: RAMCloud is not supported; give [kv] url = \"redb:///path/fs.redb\" \
             (or \"redis://HOST:PORT\", \"redis+cluster://H:P,H:P\") and [kv] volume = \"NAME\", \
             or --kv-url/--kv-volume"
        ),
        (None, None) => anyhow::bail!(
            "the kv backend needs a store: --kv-url redb:///path/fs.redb (or redis://HOST:PORT, \
             redis+cluster://H:P,H:P,...), or [kv] url"
        ),
    };
    let volume = volume.or(table.and_then(|t| t.volume.as_deref())).unwrap_or("default").to_string();
    anyhow::ensure!(
        !volume.is_empty()
            && volume.len() <= 64
            && volume.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
        "--kv-volume {volume:?}: use 1-64 letters, digits, '-', '_' or '.'"
    );
    let parsed = StoreUrl::parse(&url)?;
    prime_heap_trim();
    let durability = match durability.or(table.and_then(|t| t.durability.as_deref())) {
        Some(d) => KvDurability::parse(d).map_err(anyhow::Error::msg)?,
        None => KvDurability::default(),
    };
    let cfg = KvConfig { volume: volume.clone(), durability, ..Default::default() };
    let store = store::open(&parsed, &volume, &cfg).with_context(|| format!("cannot open kv store {url}"))?;
    Ok(Some(Arc::new(KvSpec { url, parsed, volume, store })))
}

/// glibc reads `/proc/sys/vm/overcommit_memory` the first time it shrinks a thread
/// arena's heap. The kv backend's memory is allocated on its runtime's threads and freed
/// on the main thread at exit, whose seccomp role has no `openat`: make glibc read (and
/// cache) the value now, before the sandbox, with a thread that fills and trims its arena.
fn prime_heap_trim() {
    let t = std::thread::spawn(|| {
        let blocks: Vec<Vec<u8>> = (0..1024).map(|i| vec![i as u8; 4000]).collect();
        drop(blocks);
        // SAFETY: malloc_trim has no preconditions.
        unsafe { libc::malloc_trim(0) };
    });
    let _ = t.join();
}

impl KvSpec {
    /// Whether the store is reached over the network (the sandbox keeps the network).
    pub fn needs_network(&self) -> bool {
        !matches!(self.parsed, StoreUrl::Redb(_))
    }

    /// One backend instance (one per device) with the guest cache `timeout`.
    pub fn build(&self, timeout: Duration) -> Result<Arc<dyn FileSystem>, String> {
        let cfg = KvConfig {
            volume: self.volume.clone(),
            entry_timeout: timeout,
            attr_timeout: timeout,
            ..Default::default()
        };
        let fs = self.store.serve(cfg).map_err(|e| format!("kv store {}: {e}", self.url))?;
        Ok(Arc::new(fs))
    }
}

/// `dpfs fsck`: checks the volume, repairs it with `--repair`; an error (exit 1) when
/// problems remain.
pub fn fsck(args: &crate::cli::FsckArgs) -> anyhow::Result<()> {
    let url = StoreUrl::parse(&args.kv_url)?;
    let volume = args.kv_volume.as_deref().unwrap_or("default");
    let cfg = KvConfig { volume: volume.to_string(), ..Default::default() };
    let opened = store::open(&url, volume, &cfg).with_context(|| format!("cannot open kv store {}", args.kv_url))?;
    let rt = dpfs_backend_kv::runtime(1)?;
    let store = opened.store(&rt)?;
    let report = rt.block_on(dpfs_backend_kv::fsck::check(&store, args.repair))?;
    for p in &report.problems {
        println!("{p:?}");
    }
    let n = report.problems.len();
    println!(
        "dpfs fsck: volume {volume} of {}: {} keys, {n} problem(s){}",
        args.kv_url,
        report.keys,
        if report.repaired { ", repaired" } else { "" }
    );
    anyhow::ensure!(n == 0 || report.repaired, "{n} problem(s) found; run with --repair to fix them");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(url: Option<&str>, volume: Option<&str>) -> KvOpts {
        KvOpts { kv_url: url.map(str::to_string), kv_volume: volume.map(str::to_string), kv_durability: None }
    }

    #[test]
    fn ramcloud_and_missing_urls_are_clear_errors() {
        let rc = KvTable { ramcloud_coordinator: Some("x".into()), ..Default::default() };
        let e = spec(BackendKind::Kv, &opts(None, None), Some(&rc)).unwrap_err().to_string();
        assert!(e.contains("ramcloud_coordinator") && e.contains("[kv] url") && e.contains("--kv-url"), "{e}");
        let e = spec(BackendKind::Kv, &opts(None, None), None).unwrap_err().to_string();
        assert!(e.contains("--kv-url"), "{e}");
        let e = spec(BackendKind::Kv, &opts(Some("ftp://x"), None), None).unwrap_err().to_string();
        assert!(e.contains("redb:///"), "{e}");
        let e = spec(BackendKind::Kv, &opts(Some("redb:///nonexistent-dir/x/fs.redb"), None), None).unwrap_err();
        assert!(format!("{e:#}").contains("cannot open kv store"), "{e:#}");
        // Nothing listens on port 1: one clear error, quickly.
        let e = spec(BackendKind::Kv, &opts(Some("redis://127.0.0.1:1"), None), None).unwrap_err();
        assert!(format!("{e:#}").contains("cannot open kv store redis://127.0.0.1:1"), "{e:#}");
        assert!(spec(BackendKind::Mem, &opts(None, None), Some(&rc)).unwrap().is_none());
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file_url = format!("redb://{}/a.redb", dir.path().display());
        let flag_url = format!("redb://{}/b.redb", dir.path().display());
        let t = KvTable { url: Some(file_url), volume: Some("v1".into()), ..Default::default() };
        let s = spec(BackendKind::Kv, &opts(Some(&flag_url), None), Some(&t)).unwrap().unwrap();
        assert_eq!((s.url.as_str(), s.volume.as_str()), (flag_url.as_str(), "v1"));
        assert!(!s.needs_network());
        assert!(s.build(Duration::from_secs(1)).is_ok());
        let e = spec(BackendKind::Kv, &opts(Some(&flag_url), Some("a/b")), None).unwrap_err().to_string();
        assert!(e.contains("--kv-volume"), "{e}");
    }
}
