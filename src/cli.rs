//! Command line of the `dpfs` binary.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// File-system virtualization over virtio-fs.
#[derive(Debug, Parser)]
#[command(name = "dpfs", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
// Parsed once at start and moved into its command: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve virtio-fs devices over vhost-user sockets (QEMU: -device vhost-user-fs-pci).
    Serve(ServeArgs),
    /// Mount a backend on this host through /dev/fuse (foreground; root needed).
    Mount(MountArgs),
    /// Load-generate against a vhost-user-fs socket (dpfs serve, virtiofsd…) with a simulated guest.
    Bench(BenchCmd),
    /// List this DPU's RDMA devices that can emulate virtio-fs (and blk, net, NVMe) functions,
    /// with their PFs and queue limits (rdma-core loaded at run time).
    ListEmulationManagers(ListEmulationManagersArgs),
    /// Draw saved `dpfs bench --json` sweeps (one per daemon) into one SVG (and an HTML page).
    BenchPlot(BenchPlotArgs),
    /// Check (and with --repair fix) a kv volume; stop the daemons serving it first.
    Fsck(FsckArgs),
    /// Run backends for remote DPUs: `dpfs serve --backend remote` forwards its devices here.
    Gateway(crate::gateway::GatewayArgs),
}

/// Arguments of `dpfs fsck`.
#[derive(Debug, Args)]
pub struct FsckArgs {
    /// The store: redb:///path/fs.redb, redis://HOST:PORT or redis+cluster://H:P,...
    #[arg(long = "kv-url", value_name = "URL")]
    pub kv_url: String,
    /// The volume [default: "default"].
    #[arg(long = "kv-volume", value_name = "NAME")]
    pub kv_volume: Option<String>,
    /// Repair what is found (dangling entries, leaked chunks, link counts, orphans, counters).
    #[arg(long)]
    pub repair: bool,
}

/// Arguments of `dpfs bench`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dpfs bench --socket-path S --rw randread --iodepth 1,4,16,32 --bs 4k,128k --runtime 3 --plot qd.svg
  dpfs bench --socket-path S --iodepth 32 --repeat 5 --json > base.json
  dpfs bench --socket-path S --iodepth 32 --repeat 5 --baseline base.json --max-regression 10
A single --bs and --iodepth print one report (and --json gives the same document as before
sweeps existed); lists print a table and --json gives one document with every point.
--baseline refuses a report measured with other workload parameters, and exits 1 when a
figure (IOPS and MiB/s: higher is better; p50 and p99 latency: lower) got worse by more
than --max-regression percent.")]
// The DPU model needs no socket.
#[command(mut_arg("socket_path", |a| a.required(false).required_unless_present("dpu_model").default_value("-")))]
pub struct BenchCmd {
    /// The load generator's arguments.
    #[command(flatten)]
    pub sweep: dpfs_sim::bench::SweepArgs,

    /// Run each point N times; every figure reported is the median over the N runs.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,

    /// Compare with a report saved earlier with --json; exit 1 if a figure regressed.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Percent any figure may get worse than the baseline (wall-clock figures are noisy: 10-15).
    #[arg(long = "max-regression", value_name = "PCT", default_value_t = 10.0, value_parser = parse_pct)]
    pub max_regression: f64,

    /// Write an SVG of IOPS and p99 latency against queue depth, one line per block size.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// The DPU model instead of a socket: what the workload would do on a BlueField (bf2,
    /// bf3, or a profile file), on a virtual clock, in this process (see docs/dpu-model.md).
    #[command(flatten)]
    pub dpu: crate::bench::dpu::DpuArgs,
}

/// Arguments of `dpfs list-emulation-managers`.
#[derive(Debug, Args)]
pub struct ListEmulationManagersArgs {
    /// Print a JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `dpfs bench-plot`.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  dpfs bench-plot --out qd.svg --html index.html dpfs-null=null.json dpfs-mem=mem.json virtiofsd=vfsd.json")]
pub struct BenchPlotArgs {
    /// SVG to write: IOPS and p99 latency against queue depth, one line per report.
    #[arg(long, value_name = "FILE.svg")]
    pub out: PathBuf,

    /// Also write an HTML page that shows the SVG and a table of every figure.
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,

    /// Title of the figure and page.
    #[arg(long, default_value = "dpfs bench: IOPS and p99 latency against queue depth")]
    pub title: String,

    /// Saved `dpfs bench --json` reports, each with its legend label; reports given under
    /// one label are joined into one line (e.g. one single-point report per queue depth).
    #[arg(value_name = "LABEL=FILE", required = true, value_parser = crate::plot::parse_labelled)]
    pub reports: Vec<(String, PathBuf)>,
}

/// Parses a percentage: a finite number >= 0.
fn parse_pct(s: &str) -> Result<f64, String> {
    match s.trim().trim_end_matches('%').parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("expected a percentage >= 0 (e.g. 10), not {s:?}")),
    }
}

/// Backends `dpfs serve` and `dpfs mount` can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// Serves --shared-dir itself (the default when a directory is given).
    Passthrough,
    /// In-memory file system (seeded from --shared-dir, or with a few example files).
    Mem,
    /// Answers without doing any work (overhead measurements).
    Null,
    /// An NFSv4.1 export (--nfs-server, --nfs-export, or [nfs] server/export).
    Nfs,
    /// A POSIX file system in a key-value store (--kv-url: redb file or Redis).
    Kv,
    /// Forwards every request to `dpfs gateway` on another host (--remote, --key-file).
    Remote,
}

/// Device implementations `dpfs serve` offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HalArg {
    /// The daemon is the virtio-fs device.
    VhostUser,
    /// BlueField-2 model: SNAP copies each chain into DPU buffers, and the reply back.
    DpuModel,
    /// BlueField-3 model: DOCA DevEmu headers in DPU memory, payload moved by DMA tasks.
    DpuModelDoca,
    /// On a BlueField-2: SNAP virtio-fs controllers for `[snap_hal] pf_ids` (--config).
    #[cfg(feature = "ffi-snap")]
    Snap,
}

/// Polling modes of the poller threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PollArg {
    /// Sleep until the guest kicks a queue.
    Event,
    /// Spin on the queues while work keeps arriving; sleep after 1 s without any.
    Busy,
    /// Spin briefly (--poll-spin-us) after each burst, then sleep.
    Hybrid,
}

/// virtiofsd-style cache policies: how long the guest may cache entries and attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CacheArg {
    /// 1 second.
    Auto,
    /// 1 day.
    Always,
    /// No caching (timeout 0).
    Never,
    /// Metadata for 1 day.
    Metadata,
}

/// Data-path engines of the passthrough backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// Synchronous preadv/pwritev on the poller thread.
    Sync,
    /// io_uring, one ring per poller thread (falls back to sync where unavailable).
    IoUring,
    /// Linux native AIO (io_submit), one context per poller thread (DPFS's dpfs_aio).
    Aio,
}

/// Where a root guest's `trusted.*` and `security.*` xattrs go on host files (passthrough).
/// Non-root guest callers are refused those namespaces whatever the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum XattrPolicyArg {
    /// Store them as trusted.dpfs.<name> on the host and translate back for the guest.
    Map,
    /// Answer EOPNOTSUPP for them.
    Refuse,
    /// Set them on host files unchanged (file capabilities included): trusted guests only.
    Passthrough,
}

impl From<XattrPolicyArg> for dpfs_backend_passthrough::XattrPolicy {
    fn from(a: XattrPolicyArg) -> Self {
        match a {
            XattrPolicyArg::Map => Self::Map,
            XattrPolicyArg::Refuse => Self::Refuse,
            XattrPolicyArg::Passthrough => Self::Passthrough,
        }
    }
}

/// How the daemon confines itself (virtiofsd's `--sandbox`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SandboxArg {
    /// New mount, pid, ipc, uts and net namespaces; the shared directory (or an empty
    /// tmpfs for mem/null) becomes `/` (the default as root).
    Namespace,
    /// chroot into the shared directory; no namespaces.
    Chroot,
    /// No confinement of the file system view (the default when not root).
    None,
}

/// What a system call outside the seccomp allowlist does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SeccompArg {
    /// Log the call's name and end the daemon (exit status 159).
    Kill,
    /// Let it through; the kernel logs it.
    Log,
    /// No filter.
    None,
}

/// Sandbox options shared by `dpfs serve` and `dpfs mount`.
#[derive(Clone, Debug, Args)]
pub struct SandboxOpts {
    /// Confinement [default: namespace as root, else none].
    #[arg(long, value_enum)]
    pub sandbox: Option<SandboxArg>,

    /// System-call filter.
    #[arg(long, value_enum, default_value = "kill")]
    pub seccomp: SeccompArg,

    /// Change the kept capabilities (as root): e.g. +sys_admin,-mknod.
    #[arg(long, value_name = "+CAP,-CAP")]
    pub modcaps: Option<String>,
}

/// Arguments of `dpfs serve`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dpfs serve --socket-path /tmp/vfs.sock --shared-dir /srv/share      (passthrough)
  dpfs serve --socket-path /tmp/vfs.sock --shared-dir /srv/share --backend mem   (a copy)
  dpfs serve --socket-path /tmp/a.sock --socket-path /tmp/b.sock --tag tenant --backend null
  QEMU: -chardev socket,id=c0,path=/tmp/vfs.sock -device vhost-user-fs-pci,chardev=c0,tag=dpfs
        -object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem
Several --socket-path/--fd give several devices, each with its own backend instance and
tag <tag>-<index>. SIGINT/SIGTERM stop accepting, finish requests in flight, remove the
sockets and exit 0.")]
pub struct ServeArgs {
    /// vhost-user socket to listen on; repeat for several devices.
    #[arg(long = "socket-path", value_name = "PATH")]
    pub socket_path: Vec<PathBuf>,

    /// Already listening Unix socket to accept on (inherited descriptor); repeatable.
    #[arg(long = "fd", value_name = "N")]
    pub fd: Vec<i32>,

    /// virtio-fs tag; with several devices each gets "<tag>-<index>" [default: dpfs].
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,

    /// Backend behind every device [default: passthrough with --shared-dir (or
    /// [local_mirror] dir), else mem].
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,

    /// Directory to share. The passthrough backend serves it directly (each device its own
    /// instance; the daemon runs with umask 0). With --backend mem its files are copied
    /// (recursively) into the in-memory file system at startup; changes stay in memory.
    #[arg(long = "shared-dir", value_name = "DIR")]
    pub shared_dir: Option<PathBuf>,

    /// The kv backend's store, volume and durability.
    #[command(flatten)]
    pub kv: crate::kv::KvOpts,

    /// Passthrough data path [default: io-uring; sync on tmpfs/ramfs, whose I/O never waits for a device].
    #[arg(long, value_enum)]
    pub engine: Option<EngineArg>,

    /// Request queues per device [default: --threads].
    #[arg(long = "request-queues", value_name = "N")]
    pub request_queues: Option<u16>,

    /// Poller threads per device [default: 1, or [snap_hal] nthreads].
    #[arg(long, value_name = "N")]
    pub threads: Option<u16>,

    /// How poller threads wait for work [default: event].
    #[arg(long, value_enum)]
    pub poll: Option<PollArg>,

    /// Hybrid polling: microseconds to spin for more work after a burst [default: 50].
    #[arg(long = "poll-spin-us", value_name = "US")]
    pub poll_spin_us: Option<u64>,

    /// Largest virtqueue the frontend may configure (power of two) [default: 32768, or
    /// [dpfs] queue_depth].
    #[arg(long = "queue-size", value_name = "N")]
    pub queue_size: Option<u16>,

    /// TOML configuration: DPFS's conf_example.toml tables ([dpfs], [snap_hal], [rvfs_hal],
    /// [nfs], [rvfs], [kv], [local_mirror]) and [session] (FUSE session limits).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log filter: error, warn, info, debug, trace, or a tracing filter directive.
    #[arg(long = "log-level", value_name = "LEVEL", default_value = "info")]
    pub log_level: String,

    /// Collect per-opcode counters and print them (and per-queue counts) on exit.
    #[arg(long)]
    pub metrics: bool,

    /// Offer the vhost-user CONFIG protocol feature (frontends may read tag and queue count
    /// from the device; QEMU's vhost-user-fs does not need it).
    #[arg(long = "config-space")]
    pub config_space: bool,

    /// Entry/attribute cache policy for the guest (virtiofsd compatible) [default: auto].
    #[arg(long, value_enum)]
    pub cache: Option<CacheArg>,

    /// virtiofsd compatibility: accepted and ignored (requests run on the poller threads;
    /// see --threads).
    #[arg(long = "thread-pool-size", value_name = "N")]
    pub thread_pool_size: Option<usize>,

    /// Sandbox: namespaces or chroot, seccomp, capabilities.
    #[command(flatten)]
    pub sandbox: SandboxOpts,

    /// Refuse every modification with EROFS (passthrough only; refused for mem and null).
    #[arg(long)]
    pub readonly: bool,

    /// What implements each device: this daemon over vhost-user, or the BlueField device
    /// model in front of core (the frontend's memory stands for the tenant host's; see
    /// docs/dpu-model.md).
    #[arg(long, value_enum, default_value_t = HalArg::VhostUser)]
    pub hal: HalArg,

    /// Where a root guest's trusted.* and security.* xattrs go on host files (passthrough)
    /// [default: map, or [local_mirror] xattr_policy].
    #[arg(long = "xattr-policy", value_enum)]
    pub xattr_policy: Option<XattrPolicyArg>,

    /// Group to give the socket files to (name or number).
    #[arg(long = "socket-group", value_name = "GROUP")]
    pub socket_group: Option<String>,

    /// Legacy C virtiofsd options: source=DIR, cache=POLICY; others are ignored with a
    /// warning.
    #[arg(short = 'o', value_name = "OPT[,OPT...]")]
    pub options: Vec<String>,

    /// The nfs backend's server and export.
    #[command(flatten)]
    pub nfs: crate::nfs::NfsOpts,
    /// The remote backend options (--remote, --key-file, --remote-timeout).
    #[command(flatten)]
    pub remote: crate::remote::RemoteOpts,
}

/// Arguments of `dpfs mount`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dpfs mount --backend mem /mnt/dpfs
  dpfs mount --shared-dir /srv/share /mnt/dpfs          (passthrough)
  dpfs mount --backend mem --threads 4 --config dpfs.toml /mnt/dpfs
Runs in the foreground until the file system is unmounted (umount MOUNTPOINT) or the
daemon gets SIGINT/SIGTERM, which detach the mount (a second signal aborts the connection
if the mount is still in use).")]
pub struct MountArgs {
    /// Backend to mount [default: passthrough with --shared-dir (or [local_mirror] dir),
    /// else mem].
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,

    /// The nfs backend's server and export.
    #[command(flatten)]
    pub nfs: crate::nfs::NfsOpts,

    /// Reader threads on /dev/fuse.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: u16,

    /// TOML configuration ([session] limits; [local_mirror] configures passthrough, its
    /// dir seeds the mem backend).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Directory to serve (passthrough), or to copy into memory at startup (--backend mem).
    #[arg(long = "shared-dir", value_name = "DIR")]
    pub shared_dir: Option<PathBuf>,

    /// The kv backend's store, volume and durability.
    #[command(flatten)]
    pub kv: crate::kv::KvOpts,

    /// Passthrough data path [default: io-uring; sync on tmpfs/ramfs, whose I/O never waits for a device].
    #[arg(long, value_enum)]
    pub engine: Option<EngineArg>,

    /// Refuse every modification with EROFS (passthrough only).
    #[arg(long)]
    pub readonly: bool,

    /// Where a root caller's trusted.* and security.* xattrs go on host files (passthrough)
    /// [default: map, or [local_mirror] xattr_policy].
    #[arg(long = "xattr-policy", value_enum)]
    pub xattr_policy: Option<XattrPolicyArg>,

    /// Entry/attribute cache policy for the kernel [default: auto].
    #[arg(long, value_enum)]
    pub cache: Option<CacheArg>,

    /// Log filter: error, warn, info, debug, trace, or a tracing filter directive.
    #[arg(long = "log-level", value_name = "LEVEL", default_value = "info")]
    pub log_level: String,

    /// Sandbox: namespaces or chroot, seccomp, capabilities.
    #[command(flatten)]
    pub sandbox: SandboxOpts,

    /// Where to mount (an existing directory).
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: PathBuf,
}
