//! Writes the seed corpus of the `fuse_decoder` fuzz target.
//!
//! `cargo run -p dpfs-core --example fuzz_corpus -- fuzz/corpus/fuse_decoder`

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus/fuse_decoder".into());
    std::fs::create_dir_all(&dir)?;
    let seeds = dpfs_core::corpus::seed_scripts();
    for (name, bytes) in &seeds {
        std::fs::write(format!("{dir}/seed-{name}"), bytes)?;
    }
    eprintln!("wrote {} seed scripts to {dir}", seeds.len());
    Ok(())
}
