//! Runs the loom models (`src/loom_models.rs`) as part of every `cargo test -p channel`:
//! they need the whole crate built with `--cfg loom`, so this test builds and runs them in
//! a target directory of their own (`target/loom`, kept between runs) and passes only if
//! every model passes.
#![cfg(not(loom))]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn loom_models_pass() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../target"))
        .join("loom");
    let out = Command::new(env!("CARGO"))
        .current_dir(&manifest)
        .env("RUSTFLAGS", "--cfg loom")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("CARGO_TARGET_DIR", &target)
        .args([
            "test",
            "--quiet",
            "--release",
            "-p",
            "channel",
            "--lib",
            "loom_",
        ])
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the loom models failed:\n{stdout}\n{stderr}"
    );
    // The five models ran (a filter that matched nothing would also succeed).
    assert!(
        stdout.contains("test result: ok. 5 passed"),
        "expected 5 loom models to pass:\n{stdout}"
    );
}
