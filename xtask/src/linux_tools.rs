//! Builds the Linux partition's own tools (today `rtctl`) as static aarch64 Linux
//! binaries, for the initramfs.
//!
//! The target is `aarch64-unknown-linux-musl`, linked by the toolchain's own `rust-lld`
//! with musl's self-contained start files and libc: nothing beyond `rustup target add`
//! (which `setup` does), no cross gcc. The environment variables below apply to that
//! target only, so host and bare-metal builds keep their caches.

use std::path::PathBuf;
use std::process::Command;

use crate::{step, target_dir, workspace_root, Error};

/// The Linux tools' target.
pub const LINUX_TARGET: &str = "aarch64-unknown-linux-musl";

/// `cargo build --release -p rtctl` for [`LINUX_TARGET`]; returns the binary's path.
pub fn build_rtctl() -> Result<PathBuf, Error> {
    step(&format!("building rtctl ({LINUX_TARGET}), release"));
    crate::run(
        Command::new(env!("CARGO"))
            .current_dir(workspace_root())
            .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER", "rust-lld")
            // Self-contained: musl's crt objects and libc.a from the Rust target; symbols
            // stripped, as the initramfs is copied into Linux's RAM at every boot.
            .env(
                "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS",
                "-C link-self-contained=yes -C strip=symbols",
            )
            .args([
                "build",
                "--quiet",
                "--release",
                "-p",
                "rtctl",
                "--target",
                LINUX_TARGET,
            ]),
    )
    .map_err(|e| {
        Error::new(format!(
            "{e} (is the {LINUX_TARGET} target installed? `cargo xtask build` adds it)"
        ))
    })?;
    Ok(target_dir().join(LINUX_TARGET).join("release/rtctl"))
}
