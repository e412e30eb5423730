//! Writes the fuzz seeds: `fuzz/corpus/remote_from_dpu/seed` and
//! `fuzz/corpus/remote_from_gateway/seed` (run from the repository root).

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new("fuzz/corpus");
    for (dir, bytes) in [
        ("remote_from_dpu", dpfs_remote_wire::corpus::dpu_stream()),
        ("remote_from_gateway", dpfs_remote_wire::corpus::gateway_stream()),
    ] {
        let d = root.join(dir);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join("seed"), &bytes)?;
        println!("{}: {} bytes", d.join("seed").display(), bytes.len());
    }
    Ok(())
}
