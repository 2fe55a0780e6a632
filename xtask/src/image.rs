//! Builds `hv` and assembles the system image: hv as a flat arm64 Image, its memory
//! (BSS, stacks) zero-filled, then the payload table with the board config.

use std::path::{Path, PathBuf};
use std::process::Command;

use object::read::elf::ElfFile64;
use object::{Object, ObjectSegment, ObjectSymbol};
use platform::config::{Config, PartitionKind};
use platform::hv_seal;
use platform::image::{build as build_table, PayloadKind, Payloads};

use crate::{debian, initramfs, sdcard, step, target_dir, workspace_root, Error};

/// Target of the RT kernel (may use FP/SIMD).
pub const TARGET: &str = "aarch64-unknown-none";
/// Target of hv: no FP/SIMD, so a trap never clobbers a guest's FP registers.
pub const HV_TARGET: &str = "aarch64-unknown-none-softfloat";
/// Offset of `image_size` in the arm64 Image header.
const IMAGE_SIZE_OFFSET: usize = arm64_boot::IMAGE_SIZE_OFFSET;
const IMAGE_MAGIC_OFFSET: usize = arm64_boot::IMAGE_MAGIC_OFFSET;

/// The ELF binaries of one build: the hypervisor and the RT kernel.
pub struct Binaries {
    pub hv: PathBuf,
    pub guest_rt: PathBuf,
}

/// `cargo build` of `hv` and `guest-rt` for their targets.
pub fn build_binaries() -> Result<Binaries, Error> {
    step(&format!(
        "building hv ({HV_TARGET}) and guest-rt ({TARGET}), release"
    ));
    // guest-rt with its self-tests and kernel bench: what run, test and bench boot.
    for (package, target, features) in [("hv", HV_TARGET, ""), ("guest-rt", TARGET, "selftests")] {
        crate::run(
            Command::new(env!("CARGO"))
                .current_dir(workspace_root())
                .args([
                    "build",
                    "--quiet",
                    "--release",
                    "-p",
                    package,
                    "--bins",
                    "--target",
                    target,
                    "--features",
                    features,
                ]),
        )?;
    }
    Ok(binaries())
}

/// Where [`build_binaries`] leaves the ELF files (with their symbols and debug info).
pub fn binaries() -> Binaries {
    Binaries {
        hv: target_dir().join(HV_TARGET).join("release/hv"),
        guest_rt: target_dir().join(TARGET).join("release/guest-rt"),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::new(format!("reading {}: {e}", path.display())))
}

/// An image's loadable bytes laid out from address 0 up to `__image_end` (BSS and stacks
/// as zeros, so whatever follows it can never be overwritten by them): a flat arm64 Image.
pub fn flatten(elf: &[u8]) -> Result<Vec<u8>, Error> {
    let file = ElfFile64::<object::LittleEndian>::parse(elf)
        .map_err(|e| Error::new(format!("not a valid ELF: {e}")))?;
    let end = file
        .symbols()
        .find(|s| s.name() == Ok("__image_end"))
        .ok_or_else(|| Error::new("ELF has no __image_end symbol (linker script not used?)"))?
        .address() as usize;
    let mut flat = vec![0u8; end];
    for segment in file.segments() {
        let data = segment
            .data()
            .map_err(|e| Error::new(format!("reading a segment: {e}")))?;
        let at = segment.address() as usize;
        if data.is_empty() {
            continue;
        }
        let dst = flat.get_mut(at..at + data.len()).ok_or_else(|| {
            Error::new(format!(
                "segment at {at:#x} lies beyond __image_end {end:#x}"
            ))
        })?;
        dst.copy_from_slice(data);
    }
    if flat.get(IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4) != Some(b"ARM\x64") {
        return Err(Error::new(
            "the ELF does not start with an arm64 Image header",
        ));
    }
    let size = flat.len() as u64;
    flat[IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8].copy_from_slice(&size.to_le_bytes());
    Ok(flat)
}

/// Where hv's sealed bytes end (its `__sealed_end`: text and read-only data) and where its
/// relocation table lies (`__rela_start`, `__rela_end`): the words it writes count as
/// zeros in the seal.
pub fn sealed_end(elf: &[u8]) -> Result<(usize, (usize, usize)), Error> {
    let file = ElfFile64::<object::LittleEndian>::parse(elf)
        .map_err(|e| Error::new(format!("not a valid ELF: {e}")))?;
    let symbol = |name: &str| {
        file.symbols()
            .find(|s| s.name() == Ok(name))
            .map(|s| s.address() as usize)
            .ok_or_else(|| Error::new(format!("hv's ELF has no {name} symbol (linker script?)")))
    };
    Ok((
        symbol("__sealed_end")?,
        (symbol("__rela_start")?, symbol("__rela_end")?),
    ))
}

/// hv followed by its payload table; the header's `image_size` covers everything, and
/// hv's bytes up to `sealed_end` are sealed ([`platform::hv_seal`]).
pub fn assemble(
    mut flat_hv: Vec<u8>,
    (sealed_end, rela): (usize, (usize, usize)),
    payloads: &[(PayloadKind, &[u8])],
) -> Result<Vec<u8>, Error> {
    flat_hv.resize(flat_hv.len().next_multiple_of(4096), 0);
    let table = flat_hv.len();
    hv_seal::write(&mut flat_hv, sealed_end, table, rela).map_err(|e| Error::new(e.to_string()))?;
    flat_hv.extend_from_slice(&build_table(payloads));
    let total = flat_hv.len() as u64;
    flat_hv[IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8].copy_from_slice(&total.to_le_bytes());
    Ok(flat_hv)
}

/// Checks a system image before it is booted, so a file QEMU could not start, or one whose
/// hv or payloads are corrupt, is a message instead of a silent hang: not empty, an arm64
/// Image header (magic, a branch first, `image_size` = the file's length), hv's seal, and
/// the payload table with every payload's checksum.
pub fn verify(image: &[u8]) -> Result<(), Error> {
    let fail = |why: String| Err(Error::new(why));
    if image.is_empty() {
        return fail("the image is empty".into());
    }
    if image.len() < hv_seal::SEALED_START {
        return fail(format!(
            "the image is {} bytes, shorter than an arm64 Image header",
            image.len()
        ));
    }
    if image[IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4] != *b"ARM\x64" {
        return fail("no arm64 Image header (magic `ARM\\x64` missing at 0x38)".into());
    }
    let first = u32::from_le_bytes(image[..4].try_into().expect("4 bytes"));
    // A64 B: 0b000101 in bits [31:26].
    if first >> 26 != 0b000101 {
        return fail(format!(
            "the Image header does not start with a branch ({first:#010x})"
        ));
    }
    let size = u64::from_le_bytes(
        image[IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8]
            .try_into()
            .expect("8 bytes"),
    );
    if size != image.len() as u64 {
        return fail(format!(
            "the Image header's image_size is {size} bytes, the file {} (truncated or padded)",
            image.len()
        ));
    }
    let seal = hv_seal::read(image, image.len() as u64).map_err(|e| Error::new(e.to_string()))?;
    let rela = image
        .get(seal.rela.0 as usize..seal.rela.1 as usize)
        .ok_or_else(|| Error::new("hv's seal names a relocation table outside the image"))?;
    hv_seal::check(image, &seal, hv_seal::relocated_words(rela))
        .map_err(|e| Error::new(e.to_string()))?;
    let table = image.get(seal.table as usize..).unwrap_or_default();
    Payloads::parse(table).map_err(|e| Error::new(e.to_string()))?;
    Ok(())
}

/// [`verify`] of the file at `path`, the error naming it.
pub fn verify_file(path: &Path) -> Result<(), Error> {
    let bytes = read(path)?;
    verify(&bytes).map_err(|e| Error::new(format!("refusing to boot {}: {e}", path.display())))
}

/// Builds hv and guest-rt and writes `target/images/BOARD.img` (and, for a board that
/// boots from an SD card, the card: [`sdcard`]); returns the file to boot, which for such
/// a board is the card's kernel file.
pub fn system_image(config: &Config) -> Result<PathBuf, Error> {
    system_image_as(config, &config.name)
}

/// The file [`system_image`] returns for `config`, without building anything.
pub fn boot_file(config: &Config, stem: &str) -> PathBuf {
    if config.sdcard.is_some() {
        sdcard::card_dir(stem).join(sdcard::KERNEL_FILE)
    } else {
        target_dir().join("images").join(format!("{stem}.img"))
    }
}

/// Like [`system_image`], written as `target/images/STEM.img` (for config variants).
pub fn system_image_as(config: &Config, stem: &str) -> Result<PathBuf, Error> {
    system_image_with_cmdline(config, stem, &[])
}

/// Like [`system_image_as`]; a board that boots from an SD card gets `cmdline` (checked
/// boot arguments) in its card's cmdline.txt.
pub fn system_image_with_cmdline(
    config: &Config,
    stem: &str,
    cmdline: &[String],
) -> Result<PathBuf, Error> {
    let bins = build_binaries()?;
    let hv_elf = read(&bins.hv)?;
    let hv = flatten(&hv_elf).map_err(|e| Error::new(format!("hv: {e}")))?;
    let sealed = sealed_end(&hv_elf)?;
    let guest_rt =
        flatten(&read(&bins.guest_rt)?).map_err(|e| Error::new(format!("guest-rt: {e}")))?;
    let encoded = config.encode();
    let linux = linux_payloads(config)?;
    let mut payloads: Vec<(PayloadKind, &[u8])> = vec![
        (PayloadKind::Config, &encoded),
        (PayloadKind::GuestRt, &guest_rt),
    ];
    if let Some((kernel, initramfs)) = &linux {
        payloads.push((PayloadKind::LinuxImage, kernel));
        payloads.push((PayloadKind::Initramfs, initramfs));
    }
    let image = assemble(hv, sealed, &payloads)?;
    verify(&image).map_err(|e| Error::new(format!("the image just assembled: {e}")))?;
    let dir = target_dir().join("images");
    std::fs::create_dir_all(&dir).map_err(|e| Error::new(format!("{}: {e}", dir.display())))?;
    let path = dir.join(format!("{stem}.img"));
    std::fs::write(&path, &image).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
    let linux_note = linux.as_ref().map_or(String::new(), |(kernel, initramfs)| {
        format!(
            ", Linux {} KiB, initramfs {} KiB",
            kernel.len() / 1024,
            initramfs.len() / 1024
        )
    });
    step(&format!(
        "system image {} ({} KiB: hv, board config `{}`, guest-rt {} KiB{linux_note})",
        path.display(),
        image.len() / 1024,
        config.name,
        guest_rt.len() / 1024
    ));
    if config.sdcard.is_some() {
        return Ok(sdcard::build(config, stem, &path, cmdline)?.kernel());
    }
    Ok(path)
}

/// A Linux partition's payloads: its kernel Image and its initramfs.
type LinuxPayloads = (Vec<u8>, Vec<u8>);

/// The Linux kernel Image and initramfs, when the board runs a Linux partition.
fn linux_payloads(config: &Config) -> Result<Option<LinuxPayloads>, Error> {
    if !config
        .partitions
        .iter()
        .any(|p| p.kind == PartitionKind::Linux)
    {
        return Ok(None);
    }
    let kernel = read(&debian::linux_image(&target_dir())?)?;
    let initramfs = read(&initramfs::build(&target_dir())?)?;
    Ok(Some((kernel, initramfs)))
}

/// guest-rt alone as a flat arm64 Image (`target/images/guest-rt.img`), to boot it bare
/// under QEMU without hv: the baseline of the benchmarks.
pub fn bare_guest_rt() -> Result<PathBuf, Error> {
    let bins = build_binaries()?;
    let image =
        flatten(&read(&bins.guest_rt)?).map_err(|e| Error::new(format!("guest-rt: {e}")))?;
    let dir = target_dir().join("images");
    std::fs::create_dir_all(&dir).map_err(|e| Error::new(format!("{}: {e}", dir.display())))?;
    let path = dir.join("guest-rt.img");
    std::fs::write(&path, &image).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::image::Payloads;

    #[test]
    fn assembled_image_reports_its_size_and_carries_a_valid_table() {
        let mut hv = vec![0u8; 0x1800];
        hv[..4].copy_from_slice(&0x1400_0010u32.to_le_bytes());
        hv[IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4].copy_from_slice(b"ARM\x64");
        let image = assemble(
            hv,
            (0x1000, (0x1000, 0x1000)),
            &[(PayloadKind::Config, b"cfg")],
        )
        .unwrap();
        let size = u64::from_le_bytes(image[16..24].try_into().unwrap());
        assert_eq!(size as usize, image.len());
        let table = Payloads::parse(&image[0x2000..]).expect("table right after hv, page aligned");
        assert_eq!(table.get(PayloadKind::Config).unwrap(), b"cfg");
        verify(&image).expect("a freshly assembled image verifies");
    }

    fn image() -> Vec<u8> {
        let mut hv = vec![0u8; 0x1800];
        hv[..4].copy_from_slice(&0x1400_0010u32.to_le_bytes());
        hv[IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4].copy_from_slice(b"ARM\x64");
        assemble(
            hv,
            (0x1000, (0x1000, 0x1000)),
            &[(PayloadKind::Config, b"cfg")],
        )
        .unwrap()
    }

    fn refused(image: &[u8]) -> String {
        verify(image).expect_err("refused").to_string()
    }

    #[test]
    fn verify_names_what_is_wrong() {
        assert!(refused(&[]).contains("empty"));
        assert!(refused(&[0; 10]).contains("shorter than an arm64 Image header"));
        let mut bad = image();
        bad[0x38] = b'X';
        assert!(refused(&bad).contains("no arm64 Image header"));
        let mut bad = image();
        bad[3] = 0;
        assert!(refused(&bad).contains("does not start with a branch"));
        let mut bad = image();
        bad.pop();
        assert!(refused(&bad).contains("image_size"));
        let mut bad = image();
        bad[0x800] ^= 0x10;
        assert!(refused(&bad).contains("fails its checksum"));
        let mut bad = image();
        bad[hv_seal::MAGIC_OFFSET] = 0;
        assert!(refused(&bad).contains("no checksum"));
        let mut bad = image();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(refused(&bad).contains("corrupt"), "{}", refused(&bad));
    }
}
