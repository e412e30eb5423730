//! Links the vendor libraries only when pointed at an SDK: `SNAP_LIB_DIR` (feature
//! `ffi-snap`: mlnx-snap's static archives and libsnap) and `DOCA_LIB_DIR` (feature
//! `ffi-doca`: DOCA DevEmu and DMA). Without them the bindings type-check but do not link.

fn main() {
    println!("cargo:rerun-if-env-changed=SNAP_LIB_DIR");
    println!("cargo:rerun-if-env-changed=DOCA_LIB_DIR");
    if std::env::var_os("CARGO_FEATURE_FFI_SNAP").is_some() {
        if let Some(dir) = std::env::var_os("SNAP_LIB_DIR") {
            println!("cargo:rustc-link-search=native={}", dir.to_string_lossy());
            for lib in ["mlx_dev_emu_snap", "mlx_dev_emu", "snap", "ibverbs", "mlx5"] {
                println!("cargo:rustc-link-lib={lib}");
            }
            println!("cargo:rustc-cfg=dpfs_snap_linked");
        }
    }
    if std::env::var_os("CARGO_FEATURE_FFI_DOCA").is_some() {
        if let Some(dir) = std::env::var_os("DOCA_LIB_DIR") {
            println!("cargo:rustc-link-search=native={}", dir.to_string_lossy());
            for lib in ["doca_devemu", "doca_dma", "doca_common"] {
                println!("cargo:rustc-link-lib={lib}");
            }
            println!("cargo:rustc-cfg=dpfs_doca_linked");
        }
    }
    println!("cargo::rustc-check-cfg=cfg(dpfs_snap_linked)");
    println!("cargo::rustc-check-cfg=cfg(dpfs_doca_linked)");
}
