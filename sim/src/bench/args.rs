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
    /// Block size of data workloads (suffixes k, m, g).
    #[arg(long, default_value = "4k", value_parser = parse_size)]
    pub bs: u64,
    /// Operations in flight per job.
    #[arg(long, default_value_t = 1)]
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

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert!(parse_size("1x").is_err());
        assert!(parse_size("k").is_err());
    }
}
