//! The machinery behind `cargo xtask`: machine setup, image assembly and QEMU runs.
//!
//! A library so the QEMU integration tests in `tests/` boot systems exactly the way
//! `cargo xtask run` does.
#![forbid(unsafe_code)]

pub mod append;
pub mod boards;
pub mod code_points;
pub mod debian;
pub mod gdb;
pub mod help;
pub mod image;
pub mod initramfs;
pub mod kernel_modules;
pub mod latency_plot;
pub mod linux_tools;
pub mod patience;
pub mod qemu;
pub mod rt_baseline;
pub mod rt_marks;
pub mod sdcard;
pub mod session;
pub mod setup;
pub mod vcpu_insns;

use std::fmt;
use std::path::PathBuf;
use std::process::Command;

/// A failure with a message meant for the user.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// One line of progress.
pub fn step(message: &str) {
    eprintln!("xtask: {message}");
}

/// Runs a command to completion, output passed through; non-zero exit is an error.
pub fn run(cmd: &mut Command) -> Result<(), Error> {
    let status = cmd
        .status()
        .map_err(|e| Error::new(format!("cannot run {:?}: {e}", cmd.get_program())))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::new(format!("{cmd:?} failed ({status})")))
    }
}

/// The workspace root (where the top Cargo.toml is).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}
