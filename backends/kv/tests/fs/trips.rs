//! Redis round trips per operation, counted by the store's client: the targets of the
//! issue (stat and a 4 KiB read cost one each) and the other common operations' costs.

use crate::common::*;

#[test]
fn round_trips_per_operation_on_redis() {
    let Some(g) = redis() else { return };
    let (f, fh) = g.mkfile(ROOT, "f").unwrap();
    g.write(f, fh, 0, &[3u8; 4096]).unwrap();
    let trips = || g.fs.store().round_trips();
    let cost = |op: &dyn Fn()| {
        let before = trips();
        op();
        trips() - before
    };
    assert_eq!(cost(&|| assert_eq!(g.getattr(f).unwrap().size, 4096)), 1, "stat");
    assert_eq!(cost(&|| assert_eq!(g.read(f, fh, 0, 4096).unwrap().len(), 4096)), 1, "4 KiB read");
    let lookup = cost(&|| assert_eq!(g.lookup(ROOT, "f").unwrap().nodeid, f));
    let write = cost(&|| assert_eq!(g.write(f, fh, 0, &[4u8; 4096]).unwrap(), 4096));
    let create = cost(&|| assert!(g.mkfile(ROOT, "g").is_ok()));
    let unlink = cost(&|| g.unlink(ROOT, "g").unwrap());
    let (c, ch) = g.mkfile(ROOT, "chunked").unwrap();
    g.write(c, ch, 0, &vec![5u8; 256 << 10]).unwrap();
    let read64 = cost(&|| assert_eq!(g.read(c, ch, 0, 64 << 10).unwrap().len(), 64 << 10));
    let write_in = cost(&|| assert_eq!(g.write(c, ch, 4096, &[6u8; 4096]).unwrap(), 4096));
    let write64 = cost(&|| assert_eq!(g.write(c, ch, 64 << 10, &vec![6u8; 64 << 10]).unwrap(), 64 << 10));
    eprintln!(
        "redis round trips: stat 1, read 4 KiB 1, lookup {lookup}, write 4 KiB {write}, create {create}, \
         unlink {unlink}; chunked file: read 64 KiB {read64}, write 4 KiB {write_in}, write a whole chunk {write64}"
    );
    assert_eq!(read64, 2, "chunked read: inode and references, then data");
    assert!(lookup <= 2 && write <= 2, "lookup {lookup}, write {write}");
}
