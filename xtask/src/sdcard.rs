//! `cargo xtask image --board rpi4`: the SD card a Raspberry Pi 4 boots Bulkhead from.
//!
//! Writes the card's boot partition twice, from the same bytes: as a folder
//! (`target/images/BOARD-sd/`, to copy onto a card by hand) and as a whole-disk image
//! (`target/images/BOARD-sd.img`: an MBR with one FAT32 partition of type 0x0c, the kind
//! the Pi's boot ROM reads), built without root with the `fatfs` crate. The partition
//! holds the firmware (`start4.elf`, `fixup4.dat` from Debian's `raspi-firmware`), the
//! board's DTB from the pinned kernel package, `config.txt`, `cmdline.txt` and the
//! system image as the kernel. QEMU boots the folder's kernel and DTB, so what is tested
//! is what goes on the card.
//!
//! This module only writes files under `target/images/`; it never touches a block device.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use platform::config::{Config, SdCardSpec};

use crate::{debian, step, target_dir, Error};

/// The kernel file on the card, named in config.txt.
pub const KERNEL_FILE: &str = "bulkhead.img";
/// Sector size of the disk image (what every SD card and the MBR format use).
const SECTOR: u64 = 512;
/// The partition starts 1 MiB in, the alignment SD cards' erase blocks like.
const PARTITION_START: u64 = 1 << 20;
/// MBR partition type: FAT32 with LBA addressing, what the Pi's boot ROM looks for.
const FAT32_LBA: u8 = 0x0c;
/// Fixed volume serial number, so the same inputs give the same image, byte for byte.
const VOLUME_ID: u32 = 0x424b_4844;
/// Fixed MBR disk signature, for the same reason.
const DISK_SIGNATURE: u32 = 0x424b_4844;

/// Where the card's files went.
#[derive(Debug)]
pub struct SdCard {
    /// The boot partition's files as a folder.
    pub dir: PathBuf,
    /// The whole-disk image (MBR + FAT32).
    pub image: PathBuf,
}

impl SdCard {
    /// The folder's kernel file (the system image).
    pub fn kernel(&self) -> PathBuf {
        self.dir.join(KERNEL_FILE)
    }
}

/// The folder the card of image `stem` (a board name, or a variant's) is written to.
pub fn card_dir(stem: &str) -> PathBuf {
    target_dir().join("images").join(format!("{stem}-sd"))
}

/// The DTB file name on the card: the last component of the kernel package's path.
pub fn dtb_name(card: &SdCardSpec) -> &str {
    card.dtb.rsplit('/').next().unwrap_or(&card.dtb)
}

/// Where the Pi 4's firmware loads a 64-bit kernel unless config.txt says otherwise.
pub const FIRMWARE_LOAD_ADDRESS: u64 = 0x20_0000;

/// The firmware's config.txt for a board whose hv the firmware loads at
/// `card.load_address`.
pub fn config_txt(card: &SdCardSpec) -> String {
    let load = if card.load_address == FIRMWARE_LOAD_ADDRESS {
        format!(
            "# hv is position independent: the firmware's default load address for a 64-bit\n\
             # kernel ({FIRMWARE_LOAD_ADDRESS:#x}) lies in hv's RAM, so no kernel_address here.\n"
        )
    } else {
        format!(
            "# The board file loads hv elsewhere than the firmware's default.\n\
             kernel_address={:#x}\n",
            card.load_address
        )
    };
    format!(
        "\
# Bulkhead on a Raspberry Pi 4, written by `cargo xtask image`.
# The firmware loads {KERNEL_FILE} (hv and its payloads) and enters it at EL2.
arm_64bit=1
kernel={KERNEL_FILE}
{load}device_tree={dtb}
# The console is the PL011 (uart0) on GPIO 14/15 (pins 8 and 10), 115200 8N1: by default
# the mini-UART sits there and the PL011 drives Bluetooth, so mux the pins to ALT0.
enable_uart=1
gpio=14-15=a0
# hv drives the GIC-400 itself.
enable_gic=1
# Before measuring latency, pin the CPU clock (the firmware scales it with load and
# temperature), e.g.:
#arm_freq=1500
#force_turbo=1
",
        dtb = dtb_name(card),
    )
}

/// cmdline.txt: the boot arguments (`cargo xtask image --append`, checked like `run
/// --append`) on one line. The firmware puts them in `/chosen/bootargs` after its own
/// words, which hv ignores; with none, the line is empty.
pub fn cmdline_txt(words: &[String]) -> String {
    format!("{}\n", words.join(" "))
}

/// Refuses a system image the firmware would load past the end of hv's RAM (hv checks
/// it again at boot, but then the board is already booting).
pub fn check_fits(config: &Config, card: &SdCardSpec, image_len: u64) -> Result<(), Error> {
    let hv = config.hv.ram;
    let end = card.load_address + image_len;
    if hv.end().is_some_and(|hv_end| end <= hv_end) {
        return Ok(());
    }
    Err(Error::new(format!(
        "board `{}`: the system image ({} KiB) loaded at {:#x} ends at {end:#x}, past hv's RAM {hv}",
        config.name,
        image_len / 1024,
        card.load_address
    )))
}

/// Builds the card of `config` around the system image at `system_image`, in the folder
/// and image named after `stem`, with `cmdline` (checked boot arguments) in cmdline.txt.
pub fn build(
    config: &Config,
    stem: &str,
    system_image: &Path,
    cmdline: &[String],
) -> Result<SdCard, Error> {
    let card = config.sdcard.as_ref().ok_or_else(|| {
        Error::new(format!(
            "board `{}` has no [sdcard] section: it does not boot from an SD card",
            config.name
        ))
    })?;
    let target = target_dir();
    let firmware = debian::raspi_firmware(&target)?;
    let dtb = debian::kernel_dtb(&card.dtb, &target)?;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for name in ["start4.elf", "fixup4.dat"] {
        files.push((name.into(), read(&firmware.join(name))?));
    }
    files.push((dtb_name(card).into(), read(&dtb)?));
    files.push(("config.txt".into(), config_txt(card).into_bytes()));
    files.push(("cmdline.txt".into(), cmdline_txt(cmdline).into_bytes()));
    let kernel = read(system_image)?;
    check_fits(config, card, kernel.len() as u64)?;
    files.push((KERNEL_FILE.into(), kernel));

    let dir = card_dir(stem);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| Error::new(format!("{}: {e}", dir.display())))?;
    for (name, bytes) in &files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
    }
    let disk = disk_image(&files)?;
    let image = dir.with_extension("img");
    std::fs::write(&image, &disk).map_err(|e| Error::new(format!("{}: {e}", image.display())))?;
    step(&format!(
        "sd card {} ({} MiB, FAT32: {}) and its folder {}",
        image.display(),
        disk.len() >> 20,
        files
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        dir.display()
    ));
    Ok(SdCard { dir, image })
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::new(format!("reading {}: {e}", path.display())))
}

/// Size of the FAT32 partition for `payload` bytes of files: room for them plus a
/// quarter, rounded up to whole MiB, and never below the 64 MiB where FAT32 with 512-byte
/// clusters still has the 65525 clusters FAT32 needs.
fn partition_size(payload: u64) -> u64 {
    let wanted = payload + payload / 4 + (4 << 20);
    wanted.div_ceil(1 << 20).max(64) << 20
}

/// A whole-disk image: MBR, then one FAT32 partition holding `files` in its root folder.
pub fn disk_image(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, Error> {
    let payload: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    let size = partition_size(payload);
    let fat = fat32_partition(size, files)?;
    let mut disk = vec![0u8; PARTITION_START as usize];
    disk[..512].copy_from_slice(&mbr(PARTITION_START / SECTOR, size / SECTOR));
    disk.extend_from_slice(&fat);
    Ok(disk)
}

fn fat_error(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::new(format!("FAT32 boot partition: {what}: {e}"))
}

/// A formatted FAT32 file system of `size` bytes with `files` in its root folder.
fn fat32_partition(size: u64, files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, Error> {
    let mut volume = Cursor::new(vec![0u8; size as usize]);
    fatfs::format_volume(
        &mut volume,
        fatfs::FormatVolumeOptions::new()
            .fat_type(fatfs::FatType::Fat32)
            .bytes_per_cluster(SECTOR as u32)
            .volume_id(VOLUME_ID)
            .volume_label(*b"BULKHEAD   "),
    )
    .map_err(fat_error("formatting"))?;
    {
        let fs = fatfs::FileSystem::new(&mut volume, fatfs::FsOptions::new())
            .map_err(fat_error("opening"))?;
        for (name, bytes) in files {
            let mut file = fs
                .root_dir()
                .create_file(name)
                .map_err(fat_error("creating a file"))?;
            file.truncate().map_err(fat_error(name))?;
            file.write_all(bytes).map_err(fat_error(name))?;
        }
        fs.unmount().map_err(fat_error("unmounting"))?;
    }
    Ok(volume.into_inner())
}

/// A master boot record with one partition of type [`FAT32_LBA`] at `start` sectors,
/// `sectors` long (addressed by LBA; the CHS fields hold the "use LBA" marker).
fn mbr(start: u64, sectors: u64) -> [u8; 512] {
    let mut mbr = [0u8; 512];
    mbr[440..444].copy_from_slice(&DISK_SIGNATURE.to_le_bytes());
    let entry = &mut mbr[446..462];
    entry[0] = 0x80; // active: the partition the firmware boots from
    entry[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]);
    entry[4] = FAT32_LBA;
    entry[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
    entry[8..12].copy_from_slice(&(start as u32).to_le_bytes());
    entry[12..16].copy_from_slice(&(sectors as u32).to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    mbr
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn files() -> Vec<(String, Vec<u8>)> {
        vec![
            ("config.txt".into(), b"arm_64bit=1\n".to_vec()),
            (
                KERNEL_FILE.into(),
                (0..3_000_000u32).map(|i| (i % 251) as u8).collect(),
            ),
        ]
    }

    #[test]
    fn the_disk_has_one_active_fat32_lba_partition_at_1_mib() {
        let disk = disk_image(&files()).expect("builds");
        assert_eq!(&disk[510..512], &[0x55, 0xaa]);
        let entry = &disk[446..462];
        assert_eq!(entry[0], 0x80);
        assert_eq!(entry[4], 0x0c);
        let start = u32::from_le_bytes(entry[8..12].try_into().unwrap()) as usize;
        let sectors = u32::from_le_bytes(entry[12..16].try_into().unwrap()) as usize;
        assert_eq!(start * 512, 1 << 20);
        assert_eq!(
            start * 512 + sectors * 512,
            disk.len(),
            "the partition fills the disk"
        );
        assert!(disk[462..510].iter().all(|&b| b == 0), "one partition only");
    }

    #[test]
    fn the_partition_reads_back_as_fat32_with_every_file() {
        let disk = disk_image(&files()).expect("builds");
        let mut part = Cursor::new(disk[1 << 20..].to_vec());
        let fs = fatfs::FileSystem::new(&mut part, fatfs::FsOptions::new()).expect("mounts");
        assert_eq!(fs.fat_type(), fatfs::FatType::Fat32);
        for (name, bytes) in files() {
            let mut back = Vec::new();
            fs.root_dir()
                .open_file(&name)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .read_to_end(&mut back)
                .expect("reads");
            assert_eq!(back, bytes, "{name}");
        }
    }

    #[test]
    fn the_same_files_give_the_same_image() {
        assert_eq!(disk_image(&files()).unwrap(), disk_image(&files()).unwrap());
    }

    #[test]
    fn partitions_grow_with_their_files_and_stay_fat32_sized() {
        assert_eq!(partition_size(0), 64 << 20);
        assert_eq!(partition_size(40 << 20), 64 << 20);
        let big = partition_size(100 << 20);
        assert!(big >= (125 << 20) && big.is_multiple_of(1 << 20), "{big}");
    }

    #[test]
    fn config_txt_leaves_the_firmware_default_load_address_and_muxes_the_pl011() {
        let mut card = SdCardSpec {
            dtb: "broadcom/bcm2711-rpi-4-b.dtb".into(),
            load_address: FIRMWARE_LOAD_ADDRESS,
        };
        let text = config_txt(&card);
        for line in [
            "arm_64bit=1",
            "kernel=bulkhead.img",
            "device_tree=bcm2711-rpi-4-b.dtb",
            "enable_uart=1",
            "gpio=14-15=a0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(
            !text.lines().any(|l| l.starts_with("kernel_address")),
            "{text}"
        );
        assert_eq!(dtb_name(&card), "bcm2711-rpi-4-b.dtb");

        card.load_address = 0x8_0000;
        assert!(config_txt(&card)
            .lines()
            .any(|l| l == "kernel_address=0x80000"));
    }

    #[test]
    fn cmdline_txt_holds_the_words_on_one_line() {
        assert_eq!(cmdline_txt(&[]), "\n");
        let words = ["rt.app=latency".to_string(), "linux.quiet".to_string()];
        assert_eq!(cmdline_txt(&words), "rt.app=latency linux.quiet\n");
    }

    #[test]
    fn an_image_the_firmware_would_load_past_hvs_ram_is_refused() {
        let config = crate::boards::load("rpi4").unwrap();
        let card = config.sdcard.clone().unwrap();
        let room = config.hv.ram.end().unwrap() - card.load_address;
        assert!(check_fits(&config, &card, room).is_ok());
        let e = check_fits(&config, &card, room + 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("past hv's RAM [0x0..0x4000000)"), "{e}");
    }
}
