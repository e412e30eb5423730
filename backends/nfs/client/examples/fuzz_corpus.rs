//! Writes the seed corpus of the `nfs_compound_reply` fuzz target.
//!
//! `cargo run -p dpfs-nfs4 --example fuzz_corpus -- fuzz/corpus/nfs_compound_reply`

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus/nfs_compound_reply".into());
    std::fs::create_dir_all(&dir)?;
    let seeds = dpfs_nfs4::corpus::seed_replies();
    for (name, bytes) in &seeds {
        std::fs::write(format!("{dir}/seed-{name}"), bytes)?;
    }
    eprintln!("wrote {} seed replies to {dir}", seeds.len());
    Ok(())
}
