//! Guest memory: one memfd-backed region shared with the device, and a bump allocator in it.
//!
//! The region is mapped `MAP_SHARED` from a memfd, so the vhost-user device maps the very same
//! pages when it receives the fd in `SET_MEM_TABLE`. Guest physical addresses start at
//! [`GUEST_BASE`] (not 0, so that a device confusing guest and host addresses fails loudly).

use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::FromRawFd;
use std::sync::atomic::Ordering;
use vhost::VhostUserMemoryRegionInfo;
use vm_memory::{
    Address, AtomicAccess, ByteValued, Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap,
};

/// Guest physical address of the first byte of guest memory.
pub const GUEST_BASE: u64 = 0x4000_0000;

/// Page size the driver lays buffers out on.
pub const PAGE_SIZE: usize = 4096;

/// Shared guest memory with a never-freeing allocator (queues and request slots are allocated
/// once at setup and live as long as the memory).
pub struct GuestMemory {
    mem: GuestMemoryMmap<()>,
    size: usize,
    next: Mutex<u64>,
}

impl GuestMemory {
    /// Creates `size` bytes (rounded up to a page) of zeroed memory backed by a fresh memfd.
    pub fn new(size: usize) -> Result<GuestMemory> {
        let size = size.div_ceil(PAGE_SIZE).max(1) * PAGE_SIZE;
        let file = memfd("dpfs-sim-guest")?;
        file.set_len(size as u64)?;
        let ranges = [(GuestAddress(GUEST_BASE), size, Some(FileOffset::new(file, 0)))];
        let mem = GuestMemoryMmap::<()>::from_ranges_with_files(ranges).map_err(|e| Error::Memory(e.to_string()))?;
        Ok(GuestMemory { mem, size, next: Mutex::new(GUEST_BASE) })
    }

    /// Total size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Bytes not yet handed out by [`alloc`](Self::alloc).
    pub fn available(&self) -> usize {
        (GUEST_BASE + self.size as u64 - *self.next.lock()) as usize
    }

    /// Allocates `len` bytes aligned to `align` (a power of two); never freed.
    pub fn alloc(&self, len: usize, align: usize) -> Result<GuestAddress> {
        let mut next = self.next.lock();
        let start = next.next_multiple_of(align.max(1) as u64);
        let end = start.checked_add(len as u64).ok_or(Error::Memory("allocation overflows".into()))?;
        if end > GUEST_BASE + self.size as u64 {
            let room = (GUEST_BASE + self.size as u64).saturating_sub(*next) as usize;
            return Err(Error::TooLarge { what: "guest memory", need: len, room });
        }
        *next = end;
        Ok(GuestAddress(start))
    }

    /// The regions to pass in `SET_MEM_TABLE` (fd, guest address and our mapping address).
    pub fn regions(&self) -> Result<Vec<VhostUserMemoryRegionInfo>> {
        self.mem
            .iter()
            .map(|r| VhostUserMemoryRegionInfo::from_guest_region(r).map_err(|e| Error::Memory(e.to_string())))
            .collect()
    }

    /// The address at which this process maps guest address `gpa` (vhost-user ring addresses
    /// are given in the frontend's address space).
    pub fn host_address(&self, gpa: GuestAddress) -> Result<u64> {
        self.mem.get_host_address(gpa).map(|p| p as u64).map_err(|e| Error::Memory(e.to_string()))
    }

    /// Copies `data` to guest address `gpa`.
    pub fn write(&self, gpa: GuestAddress, data: &[u8]) -> Result<()> {
        self.mem.write_slice(data, gpa).map_err(mem_err)
    }

    /// Copies guest memory at `gpa` into `buf`.
    pub fn read(&self, gpa: GuestAddress, buf: &mut [u8]) -> Result<()> {
        self.mem.read_slice(buf, gpa).map_err(mem_err)
    }

    /// Writes a plain-data value at `gpa`.
    pub fn write_obj<T: ByteValued>(&self, gpa: GuestAddress, v: T) -> Result<()> {
        self.mem.write_obj(v, gpa).map_err(mem_err)
    }

    /// Reads a plain-data value at `gpa`.
    pub fn read_obj<T: ByteValued>(&self, gpa: GuestAddress) -> Result<T> {
        self.mem.read_obj(gpa).map_err(mem_err)
    }

    /// Atomically stores `v` at `gpa` (naturally aligned) with `order`.
    pub fn store<T: AtomicAccess>(&self, gpa: GuestAddress, v: T, order: Ordering) -> Result<()> {
        self.mem.store(v, gpa, order).map_err(mem_err)
    }

    /// Atomically loads the value at `gpa` (naturally aligned) with `order`.
    pub fn load<T: AtomicAccess>(&self, gpa: GuestAddress, order: Ordering) -> Result<T> {
        self.mem.load(gpa, order).map_err(mem_err)
    }

    /// The mapping itself, for a device model running in this process (the benches drive
    /// the vhost-user HAL's queue path on it without a socket).
    pub fn mmap(&self) -> &GuestMemoryMmap<()> {
        &self.mem
    }

    /// True if `[gpa, gpa + len)` lies inside guest memory.
    pub fn contains(&self, gpa: GuestAddress, len: usize) -> bool {
        gpa.raw_value() >= GUEST_BASE
            && gpa.checked_add(len as u64).is_some_and(|end| end.raw_value() <= GUEST_BASE + self.size as u64)
    }
}

fn mem_err(e: vm_memory::GuestMemoryError) -> Error {
    Error::Memory(e.to_string())
}

/// Creates an anonymous memory file (close-on-exec).
fn memfd(name: &str) -> Result<File> {
    let cname = CString::new(name).map_err(|_| Error::Memory("memfd name contains NUL".into()))?;
    // SAFETY: `cname` is a valid NUL-terminated string that outlives the call; the flags are
    // a valid combination and the call has no other memory effects.
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: `fd` was just returned by memfd_create, is valid and owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_is_aligned_and_bounded() {
        let m = GuestMemory::new(3 * PAGE_SIZE).unwrap();
        let a = m.alloc(10, 1).unwrap();
        assert_eq!(a.raw_value(), GUEST_BASE);
        let b = m.alloc(16, 4096).unwrap();
        assert_eq!(b.raw_value(), GUEST_BASE + 4096);
        assert!(m.alloc(3 * PAGE_SIZE, 1).is_err());
        assert!(m.contains(b, 16));
        assert!(!m.contains(GuestAddress(GUEST_BASE + 3 * 4096), 1));
    }

    #[test]
    fn round_trips_bytes_and_atomics() {
        let m = GuestMemory::new(PAGE_SIZE).unwrap();
        let a = GuestAddress(GUEST_BASE + 8);
        m.write(a, b"hello").unwrap();
        let mut buf = [0u8; 5];
        m.read(a, &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        m.store(GuestAddress(GUEST_BASE + 16), 0xbeefu16, Ordering::Release).unwrap();
        assert_eq!(m.load::<u16>(GuestAddress(GUEST_BASE + 16), Ordering::Acquire).unwrap(), 0xbeef);
        let regions = m.regions().unwrap();
        assert_eq!(regions.len(), 1);
        assert_eq!(regions[0].guest_phys_addr, GUEST_BASE);
        assert!(regions[0].mmap_handle >= 0);
    }
}
