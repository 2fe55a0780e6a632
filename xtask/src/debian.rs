//! Debian arm64 packages the project runs with (the Linux kernel package, for its Image
//! and the Pi 4 DTB), fetched without touching the host's dpkg architecture, pinned,
//! verified and cached under `target/debian/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::{step, Error};

/// A pinned Debian package: name, exact version and the SHA-256 of its .deb.
pub struct Package {
    pub name: &'static str,
    pub version: &'static str,
    pub sha256: &'static str,
}

/// Debian 12's arm64 kernel (bookworm main). The one place its version is pinned.
pub const KERNEL: Package = Package {
    name: "linux-image-6.1.0-50-arm64",
    version: "6.1.176-1",
    sha256: "914f75b57a8e165d85fb910c3e2dcc7000a05a9fea3f42f90b26e8dd590d5f06",
};

fn apt_options(root: &Path) -> Vec<String> {
    vec![
        "-q".into(),
        "-oAPT::Architecture=arm64".into(),
        "-oAPT::Architectures=arm64".into(),
        format!("-oDir::State::Lists={}", root.join("lists").display()),
        format!("-oDir::Cache={}", root.join("cache").display()),
        "-oDir::State::Status=/dev/null".into(),
        "-oDebug::NoLocking=1".into(),
    ]
}

fn sha256_of(path: &Path) -> Result<String, Error> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::new(format!("reading {}: {e}", path.display())))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Downloads (once), verifies and unpacks `pkg`; returns the directory it was unpacked in.
pub fn unpacked(pkg: &Package, target_dir: &Path) -> Result<PathBuf, Error> {
    let root = target_dir.join("debian");
    let debs = root.join("debs");
    let deb = debs.join(format!(
        "{}_{}_arm64.deb",
        pkg.name,
        pkg.version.replace(':', "%3a")
    ));
    let tree = root
        .join("unpacked")
        .join(format!("{}_{}", pkg.name, pkg.version));
    let stamp = tree.join(".bulkhead-unpacked");
    if stamp.exists() {
        return Ok(tree);
    }
    let verified = deb.exists() && sha256_of(&deb)? == pkg.sha256;
    if !verified {
        for dir in [
            root.join("lists/partial"),
            root.join("cache/archives/partial"),
            debs.clone(),
        ] {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::new(format!("creating {}: {e}", dir.display())))?;
        }
        if Command::new("apt-get").arg("--version").output().is_err() {
            return Err(Error::new(format!(
                "apt-get is needed to fetch Debian's {} {} (arm64); on another system put the \
                 .deb at {}",
                pkg.name,
                pkg.version,
                deb.display()
            )));
        }
        step(&format!(
            "debian: fetching arm64 package lists into {}",
            root.display()
        ));
        crate::run(
            Command::new("apt-get")
                .args(apt_options(&root))
                .arg("update"),
        )?;
        step(&format!(
            "debian: downloading {} {} (arm64)",
            pkg.name, pkg.version
        ));
        crate::run(
            Command::new("apt-get")
                .current_dir(&debs)
                .args(apt_options(&root))
                .arg("download")
                .arg(format!("{}={}", pkg.name, pkg.version)),
        )
        .map_err(|e| {
            Error::new(format!(
                "{e}\n(the pinned version may have left the Debian mirror: update the pin in \
                 xtask/src/debian.rs)"
            ))
        })?;
        let got = sha256_of(&deb)?;
        if got != pkg.sha256 {
            return Err(Error::new(format!(
                "{} has SHA-256 {got}, the pin says {}: refusing it",
                deb.display(),
                pkg.sha256
            )));
        }
    }
    step(&format!("debian: unpacking {} {}", pkg.name, pkg.version));
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::create_dir_all(&tree).map_err(|e| Error::new(format!("{}: {e}", tree.display())))?;
    crate::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree))?;
    std::fs::write(&stamp, pkg.sha256).map_err(|e| Error::new(e.to_string()))?;
    Ok(tree)
}

/// A file of the kernel package below `usr/lib/linux-image-*/` (DTBs live there).
pub fn kernel_dtb(relative: &str, target_dir: &Path) -> Result<PathBuf, Error> {
    let tree = unpacked(&KERNEL, target_dir)?;
    let abi = KERNEL.name.trim_start_matches("linux-image-");
    let path = tree
        .join("usr/lib")
        .join(format!("linux-image-{abi}"))
        .join(relative);
    if path.exists() {
        Ok(path)
    } else {
        Err(Error::new(format!(
            "{relative} is not in {} {}",
            KERNEL.name, KERNEL.version
        )))
    }
}
