//! Many threads creating, writing, renaming and removing at once.

use crate::common::*;
use std::thread;

#[test]
fn multi_threaded_churn() {
    let g = Guest::default_fs();
    let shared = g.mkdir(ROOT, "shared", 0o777).unwrap().nodeid;
    let workers: Vec<_> = (0..4u32)
        .map(|t| {
            let g = g.clone();
            thread::spawn(move || {
                let dir = g.mkdir(ROOT, &format!("t{t}"), 0o755).unwrap().nodeid;
                for i in 0..200u32 {
                    let name = format!("f{i}");
                    let (ino, fh) = g.mkfile(dir, &name).unwrap();
                    let data = format!("{t}:{i}").into_bytes();
                    assert_eq!(g.write(ino, fh, 0, &data).unwrap() as usize, data.len());
                    assert_eq!(g.read(ino, fh, 0, 64).unwrap(), data);
                    g.release(ino, fh).unwrap();
                    let new = format!("g{i}");
                    g.rename(dir, &name, shared, &format!("{t}-{new}"), 0).unwrap();
                    if i % 3 == 0 {
                        g.unlink(shared, &format!("{t}-{new}")).unwrap();
                    }
                    let _ = g.lookup(shared, &format!("{}-g{i}", (t + 1) % 4)).map(|e| g.forget(e.nodeid, 1));
                    g.forget(ino, 1);
                }
                g.forget(dir, 1);
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let names = g.list(shared).unwrap();
    assert_eq!(names.len(), 4 * (200 - 67));
    assert_eq!(g.fs.stats().handles, 0);
    assert_eq!(g.fs.stats().inodes, 2, "root and `shared` remain");
}
