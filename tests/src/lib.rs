//! Harness for the QEMU integration tests: get a board's system image and boot it with a
//! deadline, exactly as `cargo xtask run` would.
//!
//! Images are built by `cargo xtask test` before these tests run; run alone
//! (`cargo test -p bulkhead-tests`), the harness builds them itself.
#![forbid(unsafe_code)]

pub mod webdriver;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use platform::config::Config;
use xtask::qemu::{self, Boot, BootLog};

/// How long a booting system may print nothing before it counts as hung (output extends
/// the wait, up to `xtask::patience::CAP_FACTOR` times this): a healthy boot prints every
/// few milliseconds, a loaded host only stretches that.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// Held while a test builds an image, so two tests never build into the same files at once.
pub static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// The board's config and the file to boot: its system image, or for a board that boots
/// from an SD card the card's kernel file (built once per test process if needed).
pub fn board(name: &str) -> (Config, PathBuf) {
    let config = xtask::boards::load(name).unwrap_or_else(|e| panic!("{e}"));
    let path = xtask::image::boot_file(&config, name);
    if std::env::var_os("BULKHEAD_IMAGES_BUILT").is_none() || !path.exists() {
        let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        xtask::image::system_image(&config).unwrap_or_else(|e| panic!("building {name}: {e}"));
    }
    (config, path)
}

/// Boots and returns the console log; panics with the log when QEMU cannot start.
pub fn boot(boot: &Boot) -> BootLog {
    let log = qemu::capture(boot, BOOT_TIMEOUT, false).unwrap_or_else(|e| panic!("{e}"));
    println!("---- console ----\n{}\n-----------------", log.text());
    log
}

/// `name`'s config with exit-less interrupt delivery for its RT partition, and its image.
pub fn board_exitless(name: &str) -> (Config, PathBuf) {
    let (config, _) = board(name);
    let (config, stem) = xtask::boards::exitless_variant(config);
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = xtask::image::system_image_as(&config, &stem)
        .unwrap_or_else(|e| panic!("building {stem}: {e}"));
    (config, path)
}

/// `name`'s config changed by `edit`, and its image built as `STEM.img` (a board file
/// variant a test needs, such as another fault policy).
pub fn board_variant(name: &str, stem: &str, edit: impl FnOnce(&mut Config)) -> (Config, PathBuf) {
    let (mut config, _) = board(name);
    edit(&mut config);
    config
        .validate()
        .unwrap_or_else(|e| panic!("variant {stem}: {e}"));
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = xtask::image::system_image_as(&config, stem)
        .unwrap_or_else(|e| panic!("building {stem}: {e}"));
    (config, path)
}

/// Boots `name` in smoke mode (power off when ready).
pub fn smoke(name: &str) -> (Config, BootLog) {
    let (config, image) = board(name);
    let mut b = Boot::new(&config, &image);
    b.bootargs.push(qemu::SMOKE_ARG.into());
    let log = boot(&b);
    (config, log)
}

/// A copy of `name`'s image with `edit` applied, written next to it as `NAME-SUFFIX.img`.
pub fn edited_image(
    name: &str,
    suffix: &str,
    edit: impl FnOnce(&mut Vec<u8>),
) -> (Config, PathBuf) {
    let (config, path) = board(name);
    let mut bytes = std::fs::read(&path).expect("image readable");
    edit(&mut bytes);
    let out = path.with_file_name(format!("{name}-{suffix}.img"));
    std::fs::write(&out, bytes).expect("edited image writable");
    (config, out)
}

/// Boots until `enough` holds for the lines so far, then kills QEMU (or stops at the
/// timeout). A test that asserts something did *not* happen makes `enough` wait for a
/// later event (another vCPU's heartbeats, Linux reaching its shell) that shows the
/// machine went on long enough for it to show: never a wall-clock window.
pub fn boot_until(boot: &Boot, enough: impl Fn(&[String]) -> bool) -> BootLog {
    let log = qemu::capture_until(boot, BOOT_TIMEOUT, false, enough, Duration::ZERO)
        .unwrap_or_else(|e| panic!("{e}"));
    println!("---- console ----\n{}\n-----------------", log.text());
    log
}

/// Offset of the payload table in a system image (page aligned, starts with its magic).
pub fn table_offset(image: &[u8]) -> usize {
    (0..image.len())
        .step_by(4096)
        .find(|&at| image[at..].starts_with(b"BLKHDIMG"))
        .expect("system image has a payload table")
}

/// Byte offset of payload number `index` (table order) in a system image.
pub fn payload_offset(image: &[u8], index: usize) -> usize {
    let table = table_offset(image);
    let entry = table + 32 + index * 32;
    let offset = u64::from_le_bytes(image[entry + 8..entry + 16].try_into().expect("8 bytes"));
    table + offset as usize
}

/// How long Linux may stay silent on its way to the shell under hv (it boots in about 3 s
/// on an idle machine).
pub const LINUX_TIMEOUT: Duration = Duration::from_secs(180);

/// Boots `boot` with the console on pipes and waits for the Linux partition's shell (its
/// init's ready line, then the prompt).
pub fn linux_session(boot: &Boot) -> xtask::session::Session {
    let cmd = boot.command().unwrap_or_else(|e| panic!("{e}"));
    let mut session = xtask::session::Session::start(cmd, true).unwrap_or_else(|e| panic!("{e}"));
    session
        .wait_line(0, xtask::initramfs::READY_PREFIX, LINUX_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    session
        .wait_prompt("# ", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    session
}

/// Sets `boot` up for the latency probe under deterministic time: `periods` periods of
/// 1 ms on each RT vCPU, heartbeats out of the way.
pub fn latency_probe(boot: &mut Boot, periods: u64) {
    boot.icount = true;
    boot.bootargs.extend([
        "rt.app=latency".to_string(),
        "rt.latency.interval-us=1000".to_string(),
        "rt.heartbeat-ms=1000000".to_string(),
        format!("rt.latency.periods={periods}"),
    ]);
}
