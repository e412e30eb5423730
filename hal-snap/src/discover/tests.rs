//! Discovery over a fake RDMA stack: every case of the command's output.

use super::prm::synth;
use super::*;
use std::collections::HashMap;

/// Canned output boxes by (opcode, op_mod).
type Boxes = HashMap<(u16, u16), Vec<u8>>;

/// Answers by (opcode, op_mod) from canned boxes; an absent entry fails with EIO.
struct FakeDevx(Boxes);

impl Devx for FakeDevx {
    fn cmd(&self, inbox: &[u8], out: &mut [u8]) -> Result<(), i32> {
        let key = (u16::from_be_bytes([inbox[0], inbox[1]]), u16::from_be_bytes([inbox[6], inbox[7]]));
        let b = self.0.get(&key).ok_or(libc::EIO)?;
        let n = b.len().min(out.len());
        out[..n].copy_from_slice(&b[..n]);
        Ok(())
    }
}

struct Fake {
    list: Result<Vec<String>, NoRdma>,
    mlx5: Vec<&'static str>,
    open: HashMap<&'static str, Result<Boxes, i32>>,
}

impl Rdma for Fake {
    fn devices(&self) -> Result<Vec<String>, NoRdma> {
        self.list.clone()
    }
    fn is_mlx5(&self, name: &str) -> bool {
        self.mlx5.contains(&name)
    }
    fn open(&self, name: &str) -> Result<Box<dyn Devx + '_>, i32> {
        match self.open.get(name) {
            Some(Ok(m)) => Ok(Box::new(FakeDevx(m.clone()))),
            Some(Err(e)) => Err(*e),
            None => Err(libc::ENODEV),
        }
    }
}

#[test]
fn no_library_no_kernel_no_devices() {
    for e in [NoRdma::LibraryMissing { detail: "x".into() }, NoRdma::NoKernelSupport { errno: libc::ENOSYS }] {
        let d = discover(&Fake { list: Err(e.clone()), mlx5: vec![], open: HashMap::new() });
        assert_eq!(d.no_rdma, Some(e));
        assert_eq!(d.to_string().lines().count(), 1);
    }
    let d = discover(&Fake { list: Ok(vec![]), mlx5: vec![], open: HashMap::new() });
    assert_eq!(d.no_rdma, Some(NoRdma::NoDevices));
    assert!(d.to_string().starts_with("no RDMA devices"));
}

#[test]
fn a_bluefield_with_one_manager_and_every_kind_of_other_device() {
    let fs = EmulationType::VirtioFs;
    let manager: HashMap<_, _> = [
        ((prm::QUERY_HCA_CAP, 0), synth::general_caps(&[fs])),
        ((prm::QUERY_HCA_CAP, fs.cap_op_mod()), synth::emulation_caps(2, 64)),
        ((prm::QUERY_EMULATED_FUNCTIONS_INFO, 5), synth::functions(&[(0x8100, 3, Some(126)), (0x8101, 4, None)])),
    ]
    .into();
    let plain: HashMap<_, _> = [((prm::QUERY_HCA_CAP, 0), synth::general_caps(&[]))].into();
    let mut failing_status = synth::general_caps(&[fs]);
    failing_status[0] = 3;
    let broken: HashMap<_, _> = [((prm::QUERY_HCA_CAP, 0), failing_status)].into();
    let fake = Fake {
        list: Ok(["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3", "mlx5_4", "rxe0"].map(String::from).to_vec()),
        mlx5: vec!["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3", "mlx5_4"],
        open: [
            ("mlx5_0", Ok(manager)),
            ("mlx5_1", Ok(plain)),
            ("mlx5_2", Err(libc::EPERM)),
            ("mlx5_3", Ok(broken)),
            ("mlx5_4", Ok(HashMap::new())),
        ]
        .into(),
    };
    let d = discover(&fake);
    let text = d.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "mlx5_0: emulation manager");
    assert_eq!(lines[1], "  virtio-fs: up to 2 PFs, 64 virtqueues each");
    assert_eq!(lines[2], "    PF 81:00.0 vhca 3 max_num_vfs 126");
    assert_eq!(lines[3], "    PF 81:00.1 vhca 4 max_num_vfs unknown");
    assert_eq!(lines[4], "mlx5_1: not an emulation manager");
    assert_eq!(lines[5], "mlx5_2: cannot open with DevX: DevX needs privileges: run as root");
    assert!(lines[6].starts_with("mlx5_3: QUERY_HCA_CAP general: firmware status 0x3"), "{}", lines[6]);
    assert!(lines[7].starts_with("mlx5_4: QUERY_HCA_CAP general: DevX command failed"), "{}", lines[7]);
    assert_eq!(lines[8], "rxe0: not an mlx5 device");
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["devices"][0]["status"]["emulations"][0]["functions"]["Ok"][0]["max_num_vfs"], 126);
}

#[test]
fn a_manager_whose_function_query_fails_still_reports_its_limits() {
    let fs = EmulationType::VirtioFs;
    let m: HashMap<_, _> = [
        ((prm::QUERY_HCA_CAP, 0), synth::general_caps(&[fs])),
        ((prm::QUERY_HCA_CAP, fs.cap_op_mod()), synth::emulation_caps(1, 32)),
    ]
    .into();
    let fake = Fake { list: Ok(vec!["mlx5_0".into()]), mlx5: vec!["mlx5_0"], open: [("mlx5_0", Ok(m))].into() };
    let text = discover(&fake).to_string();
    assert!(text.contains("up to 1 PFs, 32 virtqueues") && text.contains("PFs unknown (DevX command failed"), "{text}");
}
