//! Debian arm64 packages the project runs with, fetched without touching the host's dpkg
//! architecture, pinned, verified and cached under `target/debian/`: the Linux kernel
//! package (its flat Image and the Pi 4 DTB), `busybox-static` (the Linux partition's
//! initramfs userland) and `raspi-firmware` (the Pi 4's boot firmware, for its SD card).
//!
//! [`PACKAGES`] is the one place a package and its version are pinned. This module only
//! fetches and unpacks files; it never installs anything on the host and never accepts a
//! `.deb` whose SHA-256 differs from its pin.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use arm64_boot::IMAGE_MAGIC_OFFSET;
use sha2::{Digest, Sha256};

use crate::{step, Error};

/// A pinned Debian package (bookworm): name, exact version, architecture (`arm64`, or
/// `all` for architecture-independent files) and the SHA-256 of its .deb.
#[derive(Debug)]
pub struct Package {
    pub name: &'static str,
    pub version: &'static str,
    pub arch: &'static str,
    pub sha256: &'static str,
}

/// Every pinned package. Versions come from bookworm's arm64 `Packages` index; when one
/// leaves the mirror, update its line here (version and SHA-256 together).
pub const PACKAGES: &[Package] = &[
    Package {
        name: "linux-image-6.1.0-50-arm64",
        version: "6.1.176-1",
        arch: "arm64",
        sha256: "914f75b57a8e165d85fb910c3e2dcc7000a05a9fea3f42f90b26e8dd590d5f06",
    },
    Package {
        name: "busybox-static",
        version: "1:1.35.0-4+deb12u1+b1",
        arch: "arm64",
        sha256: "732c9135564fc71337e0e05fb4da4d11e6c28c1834bce3e405e575afef2a52f5",
    },
    // In bookworm's `non-free-firmware` component, which the private source list below
    // adds for these downloads only.
    Package {
        name: "raspi-firmware",
        version: "1.20220830+ds-1",
        arch: "all",
        sha256: "0094ced47a7fbb6a220ff83e7b43aa637a5d8f6802461e2e4e474597fb796f62",
    },
    // The PREEMPT_RT baseline of `cargo xtask bench` (booted bare, no hv): the same
    // kernel release with the RT patch set, cyclictest and the libraries it links.
    Package {
        name: "linux-image-6.1.0-50-rt-arm64",
        version: "6.1.176-1",
        arch: "arm64",
        sha256: "2c8e4c0ebc99daa85a989359827d7ef93d4999ef7056f4c93eb82990d2abeefe",
    },
    Package {
        name: "rt-tests",
        version: "2.4-1",
        arch: "arm64",
        sha256: "da18caa11795ca6b9c10bb6249c1790b985b49d301c3a9f4fb484385411cefce",
    },
    Package {
        name: "libnuma1",
        version: "2.0.16-1",
        arch: "arm64",
        sha256: "b4ed2547f387eb2e97d13c0b423b034d2a4d052b2131dfe043e45a84915452c5",
    },
    Package {
        name: "libc6",
        version: "2.36-9+deb12u14",
        arch: "arm64",
        sha256: "01f4330719fd4f65580e16ea5a0527f372fca750e8f588d26deaf09f2d3b1cf4",
    },
];

/// Debian 12's arm64 kernel (bookworm main).
pub const KERNEL: &Package = &PACKAGES[0];
/// Debian 12's statically linked busybox (bookworm main).
pub const BUSYBOX: &Package = &PACKAGES[1];
/// The Raspberry Pi's GPU firmware: start4.elf and fixup4.dat (bookworm non-free-firmware).
pub const RASPI_FIRMWARE: &Package = &PACKAGES[2];
/// Debian 12's PREEMPT_RT arm64 kernel, same release as [`KERNEL`].
pub const RT_KERNEL: &Package = &PACKAGES[3];
/// cyclictest and the libraries it is linked with (`readelf -d`: libnuma.so.1, and
/// libc6's libc.so.6, librt.so.1, libpthread.so.0 and the loader).
pub const RT_TESTS: &Package = &PACKAGES[4];
pub const LIBNUMA: &Package = &PACKAGES[5];
pub const LIBC: &Package = &PACKAGES[6];

/// The arm64 Image magic, at [`IMAGE_MAGIC_OFFSET`] (Linux
/// `Documentation/arch/arm64/booting.rst`, "Call the kernel image").
const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";
/// The arm64 Image header is 64 bytes long (booting.rst).
const IMAGE_HEADER_LEN: usize = 64;
/// The first two bytes of every gzip member (RFC 1952, section 2.3.1).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl Package {
    /// The kernel ABI name (`6.1.0-50-arm64`) of a `linux-image-*` package.
    pub fn kernel_abi(&self) -> &'static str {
        self.name.trim_start_matches("linux-image-")
    }

    /// The file name `apt-get download` gives the .deb (the epoch's `:` is URL-escaped).
    fn deb_file_name(&self) -> String {
        format!(
            "{}_{}_{}.deb",
            self.name,
            self.version.replace(':', "%3a"),
            self.arch
        )
    }

    /// The directory under `target/debian/unpacked/` the package is unpacked in.
    fn tree_name(&self) -> String {
        format!("{}_{}", self.name, self.version)
    }

    pub fn describe(&self) -> String {
        format!("{} {} ({})", self.name, self.version, self.arch)
    }
}

/// The one-line source list these downloads use instead of `/etc/apt/sources.list`: that
/// file's entries (the `.sources` files in `/etc/apt/sources.list.d` still apply) plus
/// bookworm's `non-free-firmware` component from the machine's own Debian mirror, so the
/// host's apt configuration is never changed for it.
fn source_list(root: &Path) -> Result<PathBuf, Error> {
    let host = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    let mut text = host;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    if let Some((uris, key)) = crate::setup::debian_source() {
        for uri in uris.split_whitespace() {
            text.push_str(&format!(
                "deb [signed-by={key}] {uri} bookworm non-free-firmware\n"
            ));
        }
    }
    let path = root.join("sources.list");
    create_dir(root)?;
    std::fs::write(&path, text).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
    Ok(path)
}

fn apt_options(root: &Path) -> Vec<String> {
    vec![
        format!(
            "-oDir::Etc::SourceList={}",
            root.join("sources.list").display()
        ),
        "-q".into(),
        "-oAPT::Architecture=arm64".into(),
        "-oAPT::Architectures=arm64".into(),
        format!("-oDir::State::Lists={}", root.join("lists").display()),
        format!("-oDir::Cache={}", root.join("cache").display()),
        "-oDir::State::Status=/dev/null".into(),
        "-oDebug::NoLocking=1".into(),
        // The cache lives in the user's target/, which Debian's `_apt` download user may
        // not be able to write; without this apt says so on every download.
        "-oAPT::Sandbox::User=root".into(),
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

fn create_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::new(format!("creating {}: {e}", dir.display())))
}

/// The arm64 package lists are refreshed at most once per process, however many packages
/// are fetched.
static LISTS_REFRESHED: AtomicBool = AtomicBool::new(false);

/// Downloads `pkg`'s .deb into `debs` and checks it against its pin.
fn download(pkg: &Package, root: &Path, deb: &Path) -> Result<(), Error> {
    let debs = deb.parent().expect("the .deb lives in a directory");
    for dir in [
        root.join("lists/partial"),
        root.join("cache/archives/partial"),
        debs.to_path_buf(),
    ] {
        create_dir(&dir)?;
    }
    if Command::new("apt-get").arg("--version").output().is_err() {
        return Err(Error::new(format!(
            "apt-get is needed to fetch Debian's {}; on another system put the .deb at {}",
            pkg.describe(),
            deb.display()
        )));
    }
    if !LISTS_REFRESHED.swap(true, Ordering::SeqCst) {
        source_list(root)?;
        step(&format!(
            "debian: fetching arm64 package lists into {}",
            root.display()
        ));
        crate::run(
            Command::new("apt-get")
                .args(apt_options(root))
                .arg("update"),
        )
        .map_err(|e| Error::new(format!("refreshing Debian's arm64 package lists: {e}")))?;
    }
    // A .deb left there failed its check (or is half-written): fetch it anew.
    let _ = std::fs::remove_file(deb);
    step(&format!("debian: downloading {}", pkg.describe()));
    crate::run(
        Command::new("apt-get")
            .current_dir(debs)
            .args(apt_options(root))
            .arg("download")
            .arg(format!("{}={}", pkg.name, pkg.version)),
    )
    .map_err(|e| {
        Error::new(format!(
            "downloading {} failed: {e}\n(the pinned version may have left the Debian mirror: \
             update its line in PACKAGES in xtask/src/debian.rs)",
            pkg.describe()
        ))
    })?;
    if !deb.exists() {
        return Err(Error::new(format!(
            "apt-get reported success but {} is not there",
            deb.display()
        )));
    }
    step(&format!(
        "debian: checking the SHA-256 of {}",
        pkg.describe()
    ));
    let got = sha256_of(deb)?;
    if got != pkg.sha256 {
        return Err(Error::new(format!(
            "checksum mismatch for {}: expected SHA-256 {}, got {got} ({}); refusing it",
            pkg.describe(),
            pkg.sha256,
            deb.display()
        )));
    }
    Ok(())
}

/// Downloads (once), verifies and unpacks `pkg`; returns the directory it was unpacked in.
/// A second call finds the stamp left by the first and touches no network.
pub fn unpacked(pkg: &Package, target_dir: &Path) -> Result<PathBuf, Error> {
    let root = target_dir.join("debian");
    let deb = root.join("debs").join(pkg.deb_file_name());
    let tree = root.join("unpacked").join(pkg.tree_name());
    let stamp = tree.join(".bulkhead-unpacked");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == pkg.sha256) {
        step(&format!("debian: {}: cached", pkg.describe()));
        return Ok(tree);
    }
    let verified = deb.exists() && sha256_of(&deb)? == pkg.sha256;
    if !verified {
        download(pkg, &root, &deb)?;
    }
    step(&format!("debian: unpacking {}", pkg.describe()));
    // Unpack beside the final tree and rename it into place, so a run that stops halfway
    // (or a second xtask unpacking at the same time) never leaves a stamped partial tree.
    let staging = root.join("unpacked").join(format!(
        ".{}.partial-{}",
        pkg.tree_name(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    create_dir(&staging)?;
    crate::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&staging))?;
    std::fs::write(staging.join(".bulkhead-unpacked"), pkg.sha256)
        .map_err(|e| Error::new(format!("writing the stamp in {}: {e}", staging.display())))?;
    let _ = std::fs::remove_dir_all(&tree);
    if let Err(e) = std::fs::rename(&staging, &tree) {
        let _ = std::fs::remove_dir_all(&staging);
        // Another xtask may have finished the same unpacking first.
        if !std::fs::read_to_string(&stamp).is_ok_and(|s| s == pkg.sha256) {
            return Err(Error::new(format!(
                "moving {} to {}: {e}",
                staging.display(),
                tree.display()
            )));
        }
    }
    Ok(tree)
}

/// `relative` inside `pkg`'s unpacked tree, or an error naming what is missing.
pub fn file_of(pkg: &Package, relative: &str, target_dir: &Path) -> Result<PathBuf, Error> {
    let path = unpacked(pkg, target_dir)?.join(relative);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::new(format!(
            "{relative} is missing from {} after extraction ({})",
            pkg.describe(),
            path.display()
        )))
    }
}

/// A file of the kernel package below `usr/lib/linux-image-*/` (DTBs live there).
pub fn kernel_dtb(relative: &str, target_dir: &Path) -> Result<PathBuf, Error> {
    let under = format!("usr/lib/linux-image-{}/{relative}", KERNEL.kernel_abi());
    file_of(KERNEL, &under, target_dir)
}

/// The folder of [`RASPI_FIRMWARE`] that holds the Pi 4's `start4.elf` and `fixup4.dat`.
pub fn raspi_firmware(target_dir: &Path) -> Result<PathBuf, Error> {
    let start = file_of(
        RASPI_FIRMWARE,
        "usr/lib/raspi-firmware/start4.elf",
        target_dir,
    )?;
    file_of(
        RASPI_FIRMWARE,
        "usr/lib/raspi-firmware/fixup4.dat",
        target_dir,
    )?;
    Ok(start
        .parent()
        .expect("a file has a parent folder")
        .to_path_buf())
}

/// Debian's statically linked arm64 busybox (`bin/busybox` of [`BUSYBOX`]).
pub fn busybox(target_dir: &Path) -> Result<PathBuf, Error> {
    file_of(BUSYBOX, "bin/busybox", target_dir)
}

/// The fields of an arm64 Image header the loader needs (booting.rst, little endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    pub text_offset: u64,
    pub image_size: u64,
    pub flags: u64,
}

/// Why some bytes are not a flat arm64 Image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Shorter than the 64-byte header.
    TooShort(usize),
    /// A gzip stream (an `Image.gz`), not yet decompressed.
    Gzip,
    /// No `ARM\x64` magic at 0x38.
    NoMagic,
}

impl std::fmt::Display for ImageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooShort(n) => write!(
                f,
                "{n} bytes is shorter than the {IMAGE_HEADER_LEN}-byte arm64 Image header"
            ),
            Self::Gzip => f.write_str("gzip-compressed, not a flat arm64 Image"),
            Self::NoMagic => write!(
                f,
                "not a flat arm64 Image (no ARM\\x64 magic at {IMAGE_MAGIC_OFFSET:#x})"
            ),
        }
    }
}

/// Checks that `bytes` start with an arm64 Image header and returns its fields.
pub fn image_header(bytes: &[u8]) -> Result<ImageHeader, ImageError> {
    if bytes.starts_with(&GZIP_MAGIC) {
        return Err(ImageError::Gzip);
    }
    if bytes.len() < IMAGE_HEADER_LEN {
        return Err(ImageError::TooShort(bytes.len()));
    }
    if &bytes[IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4] != IMAGE_MAGIC {
        return Err(ImageError::NoMagic);
    }
    let le64 = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    // booting.rst: text_offset at 8, image_size at 16, flags at 24.
    Ok(ImageHeader {
        text_offset: le64(8),
        image_size: le64(16),
        flags: le64(24),
    })
}

/// Reads the first `IMAGE_HEADER_LEN` bytes of `path` (fewer if the file is shorter).
fn first_bytes(path: &Path) -> Result<Vec<u8>, Error> {
    let mut head = Vec::with_capacity(IMAGE_HEADER_LEN);
    std::fs::File::open(path)
        .and_then(|f| f.take(IMAGE_HEADER_LEN as u64).read_to_end(&mut head))
        .map_err(|e| Error::new(format!("reading {}: {e}", path.display())))?;
    Ok(head)
}

/// Debian's arm64 kernel as a flat Image (`boot/vmlinuz-*` of [`KERNEL`]), checked against
/// the boot protocol header. Should a kernel package ship it gzip-compressed, it is
/// decompressed once to `target/debian/linux/Image-<abi>` and checked again.
pub fn linux_image(target_dir: &Path) -> Result<PathBuf, Error> {
    kernel_image(KERNEL, target_dir)
}

/// Like [`linux_image`], for any pinned `linux-image-*` package.
pub fn kernel_image(kernel: &Package, target_dir: &Path) -> Result<PathBuf, Error> {
    let abi = kernel.kernel_abi();
    let vmlinuz = file_of(kernel, &format!("boot/vmlinuz-{abi}"), target_dir)?;
    let bad = |path: &Path, e: ImageError| {
        Error::new(format!(
            "{} from {}: {e}",
            path.display(),
            kernel.describe()
        ))
    };
    match image_header(&first_bytes(&vmlinuz)?) {
        Ok(_) => return Ok(vmlinuz),
        Err(ImageError::Gzip) => {}
        Err(e) => return Err(bad(&vmlinuz, e)),
    }
    let flat = target_dir.join("debian/linux").join(format!("Image-{abi}"));
    if image_header(&first_bytes(&flat).unwrap_or_default()).is_ok() {
        return Ok(flat);
    }
    step(&format!("debian: decompressing {}", vmlinuz.display()));
    let compressed = std::fs::read(&vmlinuz)
        .map_err(|e| Error::new(format!("reading {}: {e}", vmlinuz.display())))?;
    let mut image = Vec::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .read_to_end(&mut image)
        .map_err(|e| Error::new(format!("decompressing {}: {e}", vmlinuz.display())))?;
    image_header(&image).map_err(|e| bad(&flat, e))?;
    create_dir(flat.parent().expect("under target/debian"))?;
    std::fs::write(&flat, &image)
        .map_err(|e| Error::new(format!("writing {}: {e}", flat.display())))?;
    Ok(flat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A header laid out as booting.rst describes: branch, text_offset, image_size, flags,
    /// reserved words, magic.
    fn synthetic_header() -> Vec<u8> {
        let mut h = vec![0u8; IMAGE_HEADER_LEN];
        h[0..4].copy_from_slice(&0x1400_0010u32.to_le_bytes());
        h[8..16].copy_from_slice(&0x8_0000u64.to_le_bytes());
        h[16..24].copy_from_slice(&0x20_0000u64.to_le_bytes());
        h[24..32].copy_from_slice(&0xau64.to_le_bytes());
        h[0x38..0x3c].copy_from_slice(b"ARM\x64");
        h
    }

    #[test]
    fn a_valid_header_is_accepted_with_its_fields() {
        let mut image = synthetic_header();
        image.extend_from_slice(&[0xaa; 100]);
        assert_eq!(
            image_header(&image),
            Ok(ImageHeader {
                text_offset: 0x8_0000,
                image_size: 0x20_0000,
                flags: 0xa
            })
        );
    }

    #[test]
    fn gzip_is_rejected_as_gzip_and_decompresses_to_a_valid_image() {
        let image = synthetic_header();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&image).unwrap();
        let compressed = gz.finish().unwrap();
        assert_eq!(image_header(&compressed), Err(ImageError::Gzip));
        assert!(ImageError::Gzip.to_string().contains("gzip"));

        let mut back = Vec::new();
        flate2::read::GzDecoder::new(compressed.as_slice())
            .read_to_end(&mut back)
            .unwrap();
        assert!(image_header(&back).is_ok());
    }

    #[test]
    fn garbage_and_short_input_are_rejected() {
        let mut garbage = synthetic_header();
        garbage[0x38..0x3c].copy_from_slice(b"ARM\x65");
        assert_eq!(image_header(&garbage), Err(ImageError::NoMagic));
        assert_eq!(image_header(&[0u8; 4096]), Err(ImageError::NoMagic));
        assert_eq!(
            image_header(&synthetic_header()[..63]),
            Err(ImageError::TooShort(63))
        );
        assert!(ImageError::NoMagic.to_string().contains("0x38"));
    }

    #[test]
    fn every_pin_has_a_sha256_and_no_package_is_listed_twice() {
        for (i, pkg) in PACKAGES.iter().enumerate() {
            assert_eq!(pkg.sha256.len(), 64, "{}", pkg.name);
            assert!(
                pkg.sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{}: SHA-256 must be lower-case hex",
                pkg.name
            );
            assert!(!pkg.version.is_empty(), "{}", pkg.name);
            for other in &PACKAGES[i + 1..] {
                assert_ne!(pkg.name, other.name, "listed twice");
                assert_ne!(pkg.sha256, other.sha256, "{} and {}", pkg.name, other.name);
            }
        }
    }

    #[test]
    fn named_pins_point_into_the_table() {
        assert!(KERNEL.name.starts_with("linux-image-"));
        assert_eq!(KERNEL.kernel_abi(), "6.1.0-50-arm64");
        assert_eq!(BUSYBOX.name, "busybox-static");
    }

    /// A scratch `target` directory holding a stamped (so: already verified and unpacked)
    /// tree for `pkg` with the given files.
    fn stamped_tree(tag: &str, pkg: &Package, files: &[(&str, &[u8])]) -> PathBuf {
        let target =
            std::env::temp_dir().join(format!("bulkhead-debian-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&target);
        let tree = target.join("debian/unpacked").join(pkg.tree_name());
        for (file, contents) in files {
            let path = tree.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::write(tree.join(".bulkhead-unpacked"), pkg.sha256).unwrap();
        target
    }

    #[test]
    fn a_stamped_tree_is_used_without_fetching_and_missing_files_are_named() {
        let target = stamped_tree("busybox", BUSYBOX, &[("bin/busybox", b"x")]);
        assert_eq!(
            busybox(&target).unwrap(),
            target
                .join("debian/unpacked")
                .join(BUSYBOX.tree_name())
                .join("bin/busybox")
        );
        std::fs::remove_dir_all(&target).unwrap();

        let target = stamped_tree("empty", BUSYBOX, &[]);
        let e = busybox(&target).unwrap_err().to_string();
        assert!(e.contains("bin/busybox is missing"), "{e}");
        assert!(e.contains(BUSYBOX.version), "{e}");
        std::fs::remove_dir_all(&target).unwrap();
    }

    #[test]
    fn a_kernel_without_the_magic_is_refused_with_its_path() {
        let vmlinuz = format!("boot/vmlinuz-{}", KERNEL.kernel_abi());
        let target = stamped_tree("kernel", KERNEL, &[(&vmlinuz, b"x")]);
        let e = linux_image(&target).unwrap_err().to_string();
        assert!(e.contains(&vmlinuz) && e.contains("shorter than"), "{e}");
        std::fs::remove_dir_all(&target).unwrap();
    }

    #[test]
    fn a_gzip_kernel_is_decompressed_once_and_checked() {
        let mut image = synthetic_header();
        image.extend_from_slice(&[0x55; 1000]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&image).unwrap();
        let vmlinuz = format!("boot/vmlinuz-{}", KERNEL.kernel_abi());
        let target = stamped_tree("gzip", KERNEL, &[(&vmlinuz, &gz.finish().unwrap())]);
        let flat = linux_image(&target).unwrap();
        assert_eq!(flat, target.join("debian/linux/Image-6.1.0-50-arm64"));
        assert_eq!(std::fs::read(&flat).unwrap(), image);
        // A gzip stream that does not hold an Image is refused after decompression.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[0u8; 200]).unwrap();
        std::fs::remove_dir_all(&target).unwrap();
        let target = stamped_tree("gzip-bad", KERNEL, &[(&vmlinuz, &gz.finish().unwrap())]);
        let e = linux_image(&target).unwrap_err().to_string();
        assert!(e.contains("no ARM\\x64 magic"), "{e}");
        std::fs::remove_dir_all(&target).unwrap();
    }

    #[test]
    fn the_deb_file_name_escapes_the_epoch_as_apt_does() {
        assert_eq!(
            BUSYBOX.deb_file_name(),
            "busybox-static_1%3a1.35.0-4+deb12u1+b1_arm64.deb"
        );
        assert_eq!(
            KERNEL.deb_file_name(),
            "linux-image-6.1.0-50-arm64_6.1.176-1_arm64.deb"
        );
    }
}
