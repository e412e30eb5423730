//! Preparing and removing each job's files before and after the measured run.

use super::args::{BenchArgs, Workload};
use super::job::batch_forget;
use super::op::Target;
use crate::client::Client;
use crate::error::{Error, Result};
use dpfs_core::abi::ROOT_ID;
use dpfs_core::Errno;

/// Largest write used to fill files before read workloads.
pub(crate) const FILL_CHUNK: usize = 128 << 10;

fn file_name(job: usize) -> Vec<u8> {
    format!("dpfs-sim-bench.{job}").into_bytes()
}

fn dir_name(job: usize) -> Vec<u8> {
    format!("dpfs-sim-bench.{job}.d").into_bytes()
}

/// Creates (or reuses) job `job`'s file and directory and fills what the workload reads.
pub(crate) fn prepare(client: &Client, args: &BenchArgs, job: usize) -> Result<Target> {
    let mut t = Target {
        file: 0,
        fh: 0,
        dir: 0,
        prefix: format!("f{job}-"),
        payload: (0..args.bs as usize).map(|i| (i * 7 + job) as u8).collect(),
        dir_buf: 4096,
    };
    match args.rw {
        Workload::CreateUnlink | Workload::Readdir => {
            t.dir = mkdir_or_lookup(client, &dir_name(job))?;
            if args.rw == Workload::Readdir {
                populate(client, t.dir, args.files)?;
            }
        }
        _ => {
            let flags = (libc::O_RDWR | libc::O_CREAT) as u32;
            let (e, o) = client.create(ROOT_ID, &file_name(job), flags, 0o644)?;
            (t.file, t.fh) = (e.nodeid, o.fh);
            if args.rw.needs_data() && e.attr.size < args.size {
                fill(client, &t, args.size)?;
            }
        }
    }
    Ok(t)
}

/// Closes and (unless `keep`) removes what [`prepare`] made.
pub(crate) fn cleanup(client: &Client, args: &BenchArgs, job: usize, t: &Target) -> Result<()> {
    let mut forget = Vec::new();
    if t.file != 0 {
        client.release(t.file, t.fh, libc::O_RDWR as u32)?;
        if !args.keep {
            client.unlink(ROOT_ID, &file_name(job))?;
        }
        forget.push(t.file);
    }
    if t.dir != 0 {
        if !args.keep {
            if args.rw == Workload::Readdir {
                for i in 0..args.files {
                    ignore(client.unlink(t.dir, format!("e{i}").as_bytes()), Errno::ENOENT)?;
                }
            }
            client.rmdir(ROOT_ID, &dir_name(job))?;
        }
        forget.push(t.dir);
    }
    batch_forget(client, &mut forget)
}

fn mkdir_or_lookup(client: &Client, name: &[u8]) -> Result<u64> {
    match client.mkdir(ROOT_ID, name, 0o755, 0o022) {
        Ok(e) => Ok(e.nodeid),
        Err(Error::Errno(Errno::EEXIST)) => Ok(client.lookup(ROOT_ID, name)?.nodeid),
        Err(e) => Err(e),
    }
}

fn populate(client: &Client, dir: u64, files: usize) -> Result<()> {
    let mut forget = Vec::new();
    for i in 0..files {
        match client.mknod(dir, format!("e{i}").as_bytes(), libc::S_IFREG | 0o644, 0, 0o022) {
            Ok(e) => forget.push(e.nodeid),
            Err(Error::Errno(Errno::EEXIST)) => {}
            Err(e) => return Err(e),
        }
        if forget.len() >= 256 {
            batch_forget(client, &mut forget)?;
        }
    }
    batch_forget(client, &mut forget)
}

fn fill(client: &Client, t: &Target, size: u64) -> Result<()> {
    let chunk = FILL_CHUNK.min(client.max_write().max(4096));
    let data: Vec<u8> = (0..chunk).map(|i| (i % 253) as u8).collect();
    let mut off = 0u64;
    while off < size {
        let n = chunk.min((size - off) as usize);
        let w = client.write(t.file, t.fh, off, &data[..n])?;
        if w == 0 {
            return Err(Error::Protocol("WRITE wrote nothing while filling".into()));
        }
        off += w as u64;
    }
    client.fsync(t.file, t.fh, true).or_else(|e| if e.errno() == Some(Errno::ENOSYS) { Ok(()) } else { Err(e) })
}

fn ignore(r: Result<()>, errno: Errno) -> Result<()> {
    match r {
        Err(Error::Errno(e)) if e == errno => Ok(()),
        r => r,
    }
}
