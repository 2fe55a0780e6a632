//! Makes a fresh machine able to build and run Bulkhead: the Rust targets (bare metal for
//! hv and guest-rt, musl Linux for the Linux partition's tools), QEMU >= 9, and when asked
//! for (`--gdb`, the test suite) Debian's `gdb-multiarch`, and for the test suite
//! Debian's `chromium` and `chromium-driver` (the web HMI's browser test).
//!
//! Every step is idempotent and prints one line. Nothing is installed behind the user's
//! back on a machine we cannot handle (non-Debian, not root): we say what to install.

use std::path::Path;
use std::process::Command;

use crate::{step, Error};

const TARGETS: [&str; 3] = [
    "aarch64-unknown-none",
    "aarch64-unknown-none-softfloat",
    crate::linux_tools::LINUX_TARGET,
];
const QEMU: &str = "qemu-system-aarch64";
/// `raspi4b` arrived in QEMU 9.0.
const QEMU_MIN_MAJOR: u32 = 9;
const BACKPORTS_FILE: &str = "/etc/apt/sources.list.d/bulkhead-bookworm-backports.sources";

pub fn ensure_all() -> Result<(), Error> {
    ensure_rust_target()?;
    ensure_qemu()
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn ensure_rust_target() -> Result<(), Error> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))
        .ok_or_else(|| Error::new("`rustup` is needed to add the aarch64 targets"))?;
    for target in TARGETS {
        if installed.lines().any(|l| l.trim() == target) {
            step(&format!("rust target {target}: present"));
        } else {
            step(&format!(
                "rust target {target}: installing (rustup target add)"
            ));
            crate::run(Command::new("rustup").args(["target", "add", target]))?;
        }
    }
    Ok(())
}

fn qemu_major() -> Option<(u32, String)> {
    let text = output(Command::new(QEMU).arg("--version"))?;
    let version = text.split_whitespace().nth(3)?.to_string();
    let major = version.split('.').next()?.parse().ok()?;
    Some((major, version))
}

pub fn ensure_qemu() -> Result<(), Error> {
    match qemu_major() {
        Some((major, version)) if major >= QEMU_MIN_MAJOR => {
            step(&format!("{QEMU} {version}: ok"));
            return Ok(());
        }
        Some((_, version)) => step(&format!(
            "{QEMU} {version} is too old (need >= {QEMU_MIN_MAJOR} for raspi4b): upgrading"
        )),
        None => step(&format!("{QEMU}: not found, installing")),
    }
    install_qemu_from_backports()?;
    match qemu_major() {
        Some((major, version)) if major >= QEMU_MIN_MAJOR => {
            step(&format!("{QEMU} {version}: installed"));
            Ok(())
        }
        _ => Err(Error::new(format!(
            "{QEMU} >= {QEMU_MIN_MAJOR} is still missing after the install"
        ))),
    }
}

/// Debian's GDB for every architecture (the host's own `gdb` cannot debug AArch64).
pub const GDB: &str = "gdb-multiarch";

/// Installs `gdb-multiarch` (from the machine's own Debian 12 archive) if it is missing.
pub fn ensure_gdb() -> Result<(), Error> {
    let version = || {
        output(Command::new(GDB).arg("--version"))
            .and_then(|v| v.lines().next().map(|l| l.trim().to_string()))
    };
    if let Some(version) = version() {
        step(&format!("{version}: ok"));
        return Ok(());
    }
    step(&format!("{GDB}: not found, installing"));
    let manual = format!("install Debian's {GDB} package yourself and run again");
    may_install(GDB, &manual)?;
    step("apt: updating package lists");
    crate::run(Command::new("apt-get").args(["update", "-q"]))?;
    step(&format!("apt: installing {GDB}"));
    crate::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends", GDB]),
    )?;
    let version =
        version().ok_or_else(|| Error::new(format!("{GDB} is still missing after the install")))?;
    step(&format!("{version}: installed"));
    Ok(())
}

/// Debian's Chromium and its WebDriver server, for the web HMI's browser test.
pub const CHROMIUM: &str = "chromium";
pub const CHROMEDRIVER: &str = "chromedriver";
const CHROMIUM_PACKAGES: [&str; 2] = ["chromium", "chromium-driver"];

/// Installs Debian's `chromium` and `chromium-driver` (from the machine's own Debian 12
/// archive) unless both answer `--version`; returns their version lines.
pub fn ensure_chromium() -> Result<(String, String), Error> {
    let version = |program: &str| {
        output(Command::new(program).arg("--version"))
            .and_then(|v| v.lines().next().map(|l| l.trim().to_string()))
    };
    let both = || Some((version(CHROMIUM)?, version(CHROMEDRIVER)?));
    if let Some((browser, driver)) = both() {
        step(&format!("{browser}, {driver}: ok"));
        return Ok((browser, driver));
    }
    step("chromium or chromedriver: not found, installing");
    let manual = format!(
        "install Debian's {} packages yourself and run again",
        CHROMIUM_PACKAGES.join(" and ")
    );
    may_install("Chromium", &manual)?;
    step("apt: updating package lists");
    crate::run(Command::new("apt-get").args(["update", "-q"]))?;
    step(&format!("apt: installing {}", CHROMIUM_PACKAGES.join(" ")));
    crate::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(CHROMIUM_PACKAGES),
    )?;
    let (browser, driver) = both()
        .ok_or_else(|| Error::new("chromium or chromedriver is still missing after the install"))?;
    step(&format!("{browser}, {driver}: installed"));
    Ok((browser, driver))
}

/// Installing `what` with apt is ours to do only as root on Debian 12; otherwise the
/// error says what to do by hand (`manual`).
fn may_install(what: &str, manual: &str) -> Result<(), Error> {
    let debian = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    if !debian.contains("VERSION_CODENAME=bookworm") {
        return Err(Error::new(format!(
            "this is not Debian 12 (bookworm): {manual}"
        )));
    }
    if !is_root() {
        return Err(Error::new(format!(
            "not running as root, so {what} cannot be installed: {manual}"
        )));
    }
    Ok(())
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|s| s.trim() == "0")
}

/// The `URIs:` and `Signed-By:` of the machine's own Debian entry, so no mirror host is
/// hard-coded here.
pub(crate) fn debian_source() -> Option<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir("/etc/apt/sources.list.d")
        .map(|dir| dir.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let deb822 = files
        .iter()
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("sources"))
        .filter(|p| p.as_path() != Path::new(BACKPORTS_FILE))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .find_map(|text| bookworm_in_deb822(&text));
    deb822.or_else(|| {
        bookworm_in_one_line_list(&std::fs::read_to_string("/etc/apt/sources.list").ok()?)
    })
}

/// The first deb822 stanza for suite `bookworm` with a URI and a key file.
fn bookworm_in_deb822(text: &str) -> Option<(String, String)> {
    text.split("\n\n").find_map(|stanza| {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
                .filter(|v| !v.is_empty())
        };
        let suites = field("Suites:")?;
        suites
            .split_whitespace()
            .any(|s| s == "bookworm")
            .then(|| Some((field("URIs:")?, field("Signed-By:")?)))?
    })
}

/// A classic `deb URI bookworm main` line, with Debian's archive keyring.
fn bookworm_in_one_line_list(text: &str) -> Option<(String, String)> {
    text.lines().find_map(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        if words.first() != Some(&"deb") || !words.contains(&"bookworm") {
            return None;
        }
        let uri = words.iter().find(|w| w.starts_with("http"))?;
        Some((
            uri.to_string(),
            "/usr/share/keyrings/debian-archive-keyring.gpg".to_string(),
        ))
    })
}

fn install_qemu_from_backports() -> Result<(), Error> {
    let manual = format!(
        "install QEMU >= {QEMU_MIN_MAJOR} yourself (package qemu-system-arm; on Debian 12 from \
         bookworm-backports) and run again"
    );
    may_install("QEMU", &manual)?;
    let (uris, key) = debian_source().ok_or_else(|| {
        Error::new(format!(
            "no Debian bookworm entry found in /etc/apt to copy for backports: {manual}"
        ))
    })?;
    if !Path::new(BACKPORTS_FILE).exists() {
        step(&format!(
            "apt: adding bookworm-backports ({BACKPORTS_FILE})"
        ));
        let stanza = format!(
            "Types: deb\nURIs: {uris}\nSuites: bookworm-backports\nComponents: main\nSigned-By: {key}\n"
        );
        std::fs::write(BACKPORTS_FILE, stanza)
            .map_err(|e| Error::new(format!("writing {BACKPORTS_FILE}: {e}")))?;
    }
    step("apt: updating package lists");
    crate::run(Command::new("apt-get").args(["update", "-q"]))?;
    step("apt: installing qemu-system-arm from bookworm-backports");
    crate::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args([
                "install",
                "-y",
                "-q",
                // QEMU's recommends are GUI, audio and GPU libraries; a serial console needs none.
                "--no-install-recommends",
                "-t",
                "bookworm-backports",
                "qemu-system-arm",
            ]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_bookworm_stanza_of_a_deb822_file() {
        let text = "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\n\
                    URIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n\
                    Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
                    Types: deb\nURIs: http://deb.debian.org/debian-security\n\
                    Suites: bookworm-security\nComponents: main\n";
        assert_eq!(
            bookworm_in_deb822(text),
            Some((
                "http://deb.debian.org/debian".into(),
                "/usr/share/keyrings/debian-archive-keyring.gpg".into()
            ))
        );
        assert_eq!(
            bookworm_in_deb822("Suites: bookworm-security\nURIs: x\nSigned-By: y"),
            None
        );
        assert_eq!(
            bookworm_in_deb822("Suites: bookworm\nURIs: http://m/debian\n"),
            None,
            "no key"
        );
    }

    #[test]
    fn finds_a_classic_bookworm_line() {
        let text = "# comment\ndeb-src http://a/debian bookworm main\ndeb http://m.example/debian bookworm main\n";
        assert_eq!(
            bookworm_in_one_line_list(text).map(|(uri, _)| uri),
            Some("http://m.example/debian".into())
        );
        assert_eq!(
            bookworm_in_one_line_list("deb http://m/debian trixie main"),
            None
        );
    }
}
