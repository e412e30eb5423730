//! Command-line arguments of the load generator (fio-like names).

use clap::{Args, ValueEnum};
use serde::Serialize;
use std::path::PathBuf;

/// What each operation of the benchmark does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Sequential READs of `bs`.
    Read,
    /// Sequential WRITEs of `bs`.
    Write,
    /// Random aligned READs of `bs`.
    Randread,
    /// Random aligned WRITEs of `bs`.
    Randwrite,
    /// Random READs and WRITEs, `rwmixread` percent reads.
    Randrw,
    /// GETATTR of the job's file.
    Stat,
    /// CREATE, RELEASE, UNLINK of a fresh name (one op = three requests, plus FORGETs).
    CreateUnlink,
    /// OPENDIR, READDIR until the end, RELEASEDIR of a directory of `files` entries.
    Readdir,
    /// OPEN, FLUSH, RELEASE of the job's file (what open(2)+close(2) send).
    OpenClose,
}

impl Workload {
    /// True for the data workloads (bs, size, MiB/s apply).
    pub fn is_io(self) -> bool {
        matches!(self, Workload::Read | Workload::Write | Workload::Randread | Workload::Randwrite | Workload::Randrw)
    }

    /// True if the job's file must hold `size` bytes before the run.
    pub fn needs_data(self) -> bool {
        matches!(self, Workload::Read | Workload::Randread | Workload::Randrw)
    }
}

/// How requests are cut into descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SegmentationArg {
    /// As Linux's virtio-fs driver (header | args | pages).
    Linux,
    /// One descriptor each way.
    Contiguous,
}

/// Arguments of the load generator.
#[derive(Clone, Debug, Args, Serialize)]
pub struct BenchArgs {
    /// vhost-user-fs socket of the device under test (dpfs serve, virtiofsd…).
    #[arg(long = "socket-path", value_name = "PATH")]
    pub socket_path: PathBuf,
    /// Workload.
    #[arg(long, value_enum, default_value_t = Workload::Randread)]
    pub rw: Workload,
    /// Block size of data workloads; on the command line `--bs` of [`SweepArgs`] sets it.
    #[arg(skip = 4096u64)]
    pub bs: u64,
    /// Operations in flight per job; on the command line `--iodepth` of [`SweepArgs`] sets it.
    #[arg(skip = 1usize)]
    pub iodepth: usize,
    /// Request queues to bring up (capped by the device); jobs split them between them.
    #[arg(long, default_value_t = 1)]
    pub queues: usize,
    /// Threads issuing operations; each owns at least one request queue (jobs ≤ queues).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// File size per job for data workloads (suffixes k, m, g).
    #[arg(long, default_value = "64m", value_parser = parse_size)]
    pub size: u64,
    /// Seconds to run.
    #[arg(long, default_value_t = 5.0)]
    pub runtime: f64,
    /// Stop each job after this many operations (whichever of this and runtime comes first).
    #[arg(long)]
    pub number_ios: Option<u64>,
    /// Percentage of reads in randrw.
    #[arg(long, default_value_t = 50)]
    pub rwmixread: u32,
    /// Entries in each job's directory for readdir.
    #[arg(long, default_value_t = 1000)]
    pub files: usize,
    /// Ring entries per queue.
    #[arg(long, default_value_t = 1024)]
    pub queue_size: u16,
    /// How requests are cut into descriptors.
    #[arg(long, value_enum, default_value_t = SegmentationArg::Linux)]
    pub segmentation: SegmentationArg,
    /// Do not negotiate VIRTIO_RING_F_EVENT_IDX.
    #[arg(long)]
    pub no_event_idx: bool,
    /// Do not negotiate VIRTIO_RING_F_INDIRECT_DESC.
    #[arg(long)]
    pub no_indirect: bool,
    /// Spin on the used rings instead of sleeping on the call eventfds.
    #[arg(long)]
    pub busy_poll: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Leave the benchmark's files in place.
    #[arg(long)]
    pub keep: bool,
}

/// The command line of the load generator: the sweep axes (block sizes and queue depths,
/// each a comma list) and everything else a run takes.
#[derive(Clone, Debug, Args)]
pub struct SweepArgs {
    /// Block size(s) of data workloads (suffixes k, m, g); a comma list sweeps: 4k,128k.
    #[arg(long, value_name = "SIZE[,SIZE...]", default_value = "4k", value_delimiter = ',', value_parser = parse_size)]
    pub bs: Vec<u64>,
    /// Operations in flight per job; a comma list sweeps: 1,4,16,32.
    #[arg(long, value_name = "N[,N...]", default_value = "1", value_delimiter = ',')]
    pub iodepth: Vec<usize>,
    /// The rest of the run's parameters.
    #[command(flatten)]
    pub run: BenchArgs,
}

impl SweepArgs {
    /// True if more than one point is asked for (a list in `--bs` or `--iodepth`).
    pub fn is_sweep(&self) -> bool {
        self.bs.len() * self.iodepth.len() > 1
    }

    /// One run's arguments per point: block sizes outer, queue depths inner, in the order given.
    pub fn points(&self) -> Vec<BenchArgs> {
        self.bs
            .iter()
            .flat_map(|&bs| self.iodepth.iter().map(move |&iodepth| BenchArgs { bs, iodepth, ..self.run.clone() }))
            .collect()
    }
}

/// Parses `4096`, `4k`, `1M`, `2g` (binary multiples).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_lowercase() {
                'k' => 1u64 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                _ => return Err(format!("unknown size suffix in {s:?}")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    let n: u64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    n.checked_mul(mult).ok_or_else(|| format!("size {s:?} overflows"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        sweep: SweepArgs,
    }

    fn parse(extra: &[&str]) -> Result<SweepArgs, clap::Error> {
        use clap::Parser;
        let argv = ["bench", "--socket-path", "/s"].iter().chain(extra);
        Cli::try_parse_from(argv).map(|c| c.sweep)
    }

    #[test]
    fn comma_lists_sweep_block_sizes_outer_and_depths_inner() {
        let s = parse(&["--bs", "4k,128k", "--iodepth", "1,4,16"]).unwrap();
        assert!(s.is_sweep());
        assert_eq!(s.bs, [4096, 128 << 10]);
        let points: Vec<(u64, usize)> = s.points().iter().map(|p| (p.bs, p.iodepth)).collect();
        assert_eq!(points, [(4096, 1), (4096, 4), (4096, 16), (131072, 1), (131072, 4), (131072, 16)]);
    }

    #[test]
    fn single_values_are_one_point() {
        let s = parse(&["--bs", "8k", "--iodepth", "32"]).unwrap();
        assert!(!s.is_sweep());
        let p = s.points();
        assert_eq!((p.len(), p[0].bs, p[0].iodepth), (1, 8192, 32));
        let d = parse(&[]).unwrap();
        assert_eq!((d.bs.as_slice(), d.iodepth.as_slice()), (&[4096u64][..], &[1usize][..]));
    }

    #[test]
    fn bad_list_items_name_the_value() {
        let e = parse(&["--bs", "4k,12q"]).unwrap_err().to_string();
        assert!(e.contains("12q") && e.contains("--bs"), "{e}");
        let e = parse(&["--iodepth", "1,x"]).unwrap_err().to_string();
        assert!(e.contains("'x'") && e.contains("--iodepth"), "{e}");
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert!(parse_size("1x").is_err());
        assert!(parse_size("k").is_err());
    }
}
