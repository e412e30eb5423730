//! Runs real requests through the whole model in this process: sim's host driver, the
//! model device, a SNAP or DOCA flow, core and a backend. `dpfs bench --dpu-model` uses it
//! to check that the configuration it predicts actually works, and to report the DMA
//! operations each request really took.

use super::{Bar, HostOptions, ModelDevice, ModelHost};
use crate::config::DeviceSpec;
use crate::poller::{PollConfig, SnapHal};
use crate::{Dma, DpuFlow, Error, Flow};
use dpfs_core::abi::{self, ROOT_ID};
use dpfs_core::operation::Operation as O;
use dpfs_core::{DeviceId, Dispatcher, FileSystem, Handler, SessionConfig};
use dpfs_sim::Request;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use zerocopy::FromBytes;

/// What the requests took.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Exercise {
    /// Requests sent and checked.
    pub requests: u64,
    /// Host-to-DPU DMA operations per request.
    pub dma_reads_per_request: f64,
    /// DPU-to-host DMA operations per request.
    pub dma_writes_per_request: f64,
    /// Bytes moved per request, both ways.
    pub dma_bytes_per_request: f64,
}

/// Creates a file and sends `n` WRITEs (`write`) or READs of `bs` bytes, checking every
/// reply (READs check the data written before them).
pub fn exercise(flow: Flow, fs: Arc<dyn FileSystem>, write: bool, bs: usize, n: u64) -> Result<Exercise, Error> {
    let inner = Dispatcher::new(SessionConfig::default(), move |_| Ok(fs.clone()));
    let dma = Arc::new(Dma::new());
    let dpu = Arc::new(DpuFlow::new(flow, dma.clone(), Arc::new(inner)));
    dpu.register_device(DeviceId(0))?;
    let spec =
        DeviceSpec { id: DeviceId(0), pf_id: 0, vf_id: None, tag: "dpfs-0".into(), queue_depth: 64, mock: false };
    let bar = Bar::new();
    let dev = ModelDevice::new(spec, bar.clone(), dpu);
    let poll = PollConfig { nthreads: 1, polling_interval: Duration::from_micros(10), mock_period: Duration::ZERO };
    let hal = SnapHal::new(vec![Box::new(dev)], poll)?;
    let running = hal.start();
    let result = run(bar, dma, write, bs, n);
    running.shutdown();
    result
}

fn run(bar: Arc<Bar>, dma: Arc<Dma>, write: bool, bs: usize, n: u64) -> Result<Exercise, Error> {
    let opts = HostOptions { max_payload: bs.max(4096), max_reply: bs.max(4096), ..Default::default() };
    let mut host = ModelHost::new(bar, opts)?;
    host.init()?;
    let arg = abi::CreateIn { flags: libc::O_RDWR as u32, mode: 0o644, umask: 0, open_flags: 0 };
    let r = host.call(&Request::new(ROOT_ID, O::Create { arg, name: b"dpu-model-check" }))?.ok()?;
    let node = r.parse_prefix::<abi::EntryOut>().nodeid;
    let open = r.body.get(std::mem::size_of::<abi::EntryOut>()..).and_then(|b| abi::OpenOut::read_from_prefix(b).ok());
    let fh = open.map(|(o, _)| o.fh).ok_or(Error::Model("CREATE reply without open_out".into()))?;
    let data: Vec<u8> = (0..bs).map(|i| (i % 253) as u8).collect();
    let wr = |host: &mut ModelHost, off: u64| -> Result<(), Error> {
        let arg = abi::WriteIn { fh, offset: off, size: bs as u32, flags: libc::O_RDWR as u32, ..Default::default() };
        let r = host.call(&Request::with_payload(node, O::Write(arg), &data))?.ok()?;
        match r.parse::<abi::WriteOut>()?.size as usize == bs {
            true => Ok(()),
            false => Err(Error::Model("short WRITE through the model".into())),
        }
    };
    if !write {
        wr(&mut host, 0)?;
    }
    let before = dma.counters();
    for i in 0..n {
        if write {
            wr(&mut host, i * bs as u64)?;
        } else {
            let arg = abi::ReadIn { fh, offset: 0, size: bs as u32, flags: libc::O_RDWR as u32, ..Default::default() };
            let r = host.call(&Request::new(node, O::Read(arg)))?.ok()?;
            // The null backend reads zeros (or nothing); others must return what was written.
            if !r.body.is_empty() && r.body != data && r.body.iter().any(|&b| b != 0) {
                return Err(Error::Model(format!("READ {i} through the model returned other data")));
            }
        }
    }
    let after = dma.counters();
    let per = |a: u64, b: u64| (a - b) as f64 / n.max(1) as f64;
    Ok(Exercise {
        requests: n,
        dma_reads_per_request: per(after.reads, before.reads),
        dma_writes_per_request: per(after.writes, before.writes),
        dma_bytes_per_request: per(after.read_bytes + after.written_bytes, before.read_bytes + before.written_bytes),
    })
}
