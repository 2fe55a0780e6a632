//! `cargo xtask test`: every check the project has, in order, ending with one summary
//! line (`summary: N passed, N failed`). A failing step does not hide later ones.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use xtask::{boards, image, setup, step, workspace_root, Error};

#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
    failures: Vec<String>,
}

impl Tally {
    fn record(&mut self, name: &str, ok: bool) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            self.failures.push(name.to_string());
        }
    }
}

fn cargo() -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(workspace_root());
    cmd
}

/// A check that passes or fails as a whole (fmt, clippy).
fn check(tally: &mut Tally, name: &str, cmd: &mut Command) {
    step(&format!("check: {name}"));
    let ok = cmd.status().is_ok_and(|s| s.success());
    step(&format!(
        "check: {name}: {}",
        if ok { "ok" } else { "FAILED" }
    ));
    tally.record(name, ok);
}

/// Runs `cargo test ...`, echoing its output and counting its tests from the
/// `test result:` lines.
fn tests(tally: &mut Tally, name: &str, cmd: &mut Command) {
    step(&format!("tests: {name}"));
    let child = cmd.stdout(Stdio::piped()).spawn();
    let Ok(mut child) = child else {
        tally.record(name, false);
        return;
    };
    let (mut passed, mut failed) = (0, 0);
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| {
                rest.split(';')
                    .find_map(|part| {
                        part.trim()
                            .strip_suffix(word)?
                            .trim()
                            .rsplit(' ')
                            .next()?
                            .parse::<u64>()
                            .ok()
                    })
                    .unwrap_or(0)
            };
            passed += count("passed");
            failed += count("failed");
        }
    }
    let ok = child.wait().is_ok_and(|s| s.success());
    if !ok && failed == 0 {
        // Build failure or crash: count the step itself as a failure.
        failed = 1;
    }
    tally.passed += passed;
    tally.failed += failed;
    if failed > 0 {
        tally.failures.push(name.to_string());
    }
    step(&format!("tests: {name}: {passed} passed, {failed} failed"));
}

fn clippy(tally: &mut Tally, name: &str, args: &[&str]) {
    let mut cmd = cargo();
    cmd.args(["clippy", "--quiet"])
        .args(args)
        .args(["--", "-D", "warnings"]);
    check(tally, name, &mut cmd);
}

pub fn run_all() -> Result<(), Error> {
    let mut tally = Tally::default();
    // gdb-multiarch for the gdb test (tests/tests/gdb.rs), Chromium and chromedriver for
    // the HMI's browser test (tests/tests/hmi.rs); each fails without them.
    if let Err(e) = setup::ensure_all()
        .and_then(|()| setup::ensure_gdb())
        .and_then(|()| setup::ensure_chromium().map(|_| ()))
    {
        step(&format!("setup: {e}"));
        tally.record("machine setup", false);
        return finish(tally);
    }

    check(
        &mut tally,
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--check"]),
    );
    clippy(
        &mut tally,
        "clippy (host, all crates and targets)",
        &["--workspace", "--all-targets"],
    );
    clippy(
        &mut tally,
        "clippy (hv, aarch64 soft-float)",
        &["-p", "hv", "--target", image::HV_TARGET],
    );
    clippy(
        &mut tally,
        "clippy (guest-rt, aarch64)",
        &["-p", "guest-rt", "--target", image::TARGET],
    );
    clippy(
        &mut tally,
        "clippy (guest-rt with its self-tests, aarch64)",
        &[
            "-p",
            "guest-rt",
            "--target",
            image::TARGET,
            "--features",
            "selftests",
        ],
    );
    clippy(
        &mut tally,
        "clippy (platform, abi, channel and control no_std, aarch64)",
        &[
            "-p",
            "platform",
            "-p",
            "abi",
            "-p",
            "channel",
            "-p",
            "control",
            "--no-default-features",
            "--target",
            image::TARGET,
        ],
    );
    // The TCG plugin is a Cargo workspace of its own (a host cdylib QEMU loads).
    let plugin = ["--manifest-path", "tools/vcpu-insn-plugin/Cargo.toml"];
    let plugin_target = ["--target-dir", "target/vcpu-insn-plugin"];
    check(
        &mut tally,
        "cargo fmt --check (vcpu-insn plugin)",
        cargo().args(["fmt", "--check"]).args(plugin),
    );
    clippy(
        &mut tally,
        "clippy (vcpu-insn plugin)",
        &[
            plugin[0],
            plugin[1],
            plugin_target[0],
            plugin_target[1],
            "--all-targets",
        ],
    );
    tests(
        &mut tally,
        "vcpu-insn plugin unit tests",
        cargo().args(["test"]).args(plugin).args(plugin_target),
    );
    tests(
        &mut tally,
        "host unit tests",
        cargo().args([
            "test",
            "--no-fail-fast",
            "--workspace",
            "--exclude",
            "bulkhead-tests",
        ]),
    );

    // QEMU integration tests boot the images built here.
    let mut built = true;
    for name in boards::names() {
        if let Err(e) = boards::load(&name).and_then(|c| image::system_image(&c)) {
            step(&format!("image for `{name}`: {e}"));
            built = false;
        }
    }
    if built {
        tests(
            &mut tally,
            "QEMU integration tests",
            cargo().env("BULKHEAD_IMAGES_BUILT", "1").args([
                "test",
                "--no-fail-fast",
                "-p",
                "bulkhead-tests",
                "--",
                "--test-threads=1",
            ]),
        );
    } else {
        tally.record("system images", false);
    }
    finish(tally)
}

/// Prints the failures and the closing summary line (nothing may follow it: CI reads it).
fn finish(tally: Tally) -> Result<(), Error> {
    if !tally.failures.is_empty() {
        step(&format!("failed: {}", tally.failures.join("; ")));
    }
    println!("summary: {} passed, {} failed", tally.passed, tally.failed);
    if tally.failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
