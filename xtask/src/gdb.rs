//! `cargo xtask run --gdb`: where hv and guest-rt run, and the `gdb-multiarch` command that
//! loads their symbols there.
//!
//! Both are static PIEs linked at 0 that relocate themselves, so their ELF addresses are
//! offsets: hv runs where QEMU's loader puts the system image (the board's RAM base plus
//! the Image header's `text_offset`), guest-rt where hv places it (its partition's RAM base
//! plus its own header's `text_offset`, `hv/src/guest_image.rs`). Both keep an identity
//! stage-1 map, so these physical addresses are also the addresses their code runs at.
//! QEMU's gdbstub shows each CPU as a thread: thread N is CPU N-1.
//!
//! This module computes and formats; it never starts QEMU or gdb.

use std::path::{Path, PathBuf};

use platform::config::Config;

use crate::image::{self, Binaries};
use crate::{qemu, Error};

/// QEMU's customary gdbstub port (`-s`).
pub const DEFAULT_PORT: u16 = 1234;

/// `text_offset` when an Image header's `image_size` is 0 (the arm64 boot protocol's rule,
/// which QEMU's loader and hv's both follow).
const DEFAULT_TEXT_OFFSET: u64 = 0x8_0000;

/// One ELF file and the address its link address 0 runs at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    pub elf: PathBuf,
    pub base: u64,
    /// Who this is, for the printed map (`hv`, `partition rt (CPUs 2-3)`).
    pub what: String,
}

/// Where an arm64 Image whose first bytes are `header` runs when loaded into RAM starting
/// at `ram_base`.
pub fn load_address(ram_base: u64, header: &[u8]) -> Result<u64, Error> {
    let field = |at: usize| {
        header
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or_else(|| Error::new("an Image header is 64 bytes; this one is shorter"))
    };
    let text_offset = match field(16)? {
        0 => DEFAULT_TEXT_OFFSET,
        _ => field(8)?,
    };
    Ok(ram_base + text_offset)
}

/// hv and each RT partition's guest-rt, with the addresses they run at on `config`.
pub fn placements(config: &Config, binaries: &Binaries) -> Result<Vec<Placed>, Error> {
    let header = |elf: &Path| -> Result<Vec<u8>, Error> {
        let bytes =
            std::fs::read(elf).map_err(|e| Error::new(format!("{}: {e}", elf.display())))?;
        let mut flat = image::flatten(&bytes)?;
        flat.truncate(64);
        Ok(flat)
    };
    let board_ram = config
        .board
        .ram
        .first()
        .ok_or_else(|| Error::new(format!("board `{}` has no RAM", config.name)))?;
    let mut placed = vec![Placed {
        elf: binaries.hv.clone(),
        base: load_address(board_ram.base, &header(&binaries.hv)?)?,
        what: "hv".into(),
    }];
    let guest_rt = header(&binaries.guest_rt)?;
    for p in qemu::rt_partitions(config) {
        let ram = p
            .ram
            .first()
            .ok_or_else(|| Error::new(format!("partition `{}` has no RAM", p.name)))?;
        placed.push(Placed {
            elf: binaries.guest_rt.clone(),
            base: load_address(ram.base, &guest_rt)?,
            what: format!("guest-rt of partition `{}` (CPUs {:?})", p.name, p.cpus),
        });
    }
    Ok(placed)
}

/// gdb's commands to load every file's symbols where it runs and attach to QEMU.
pub fn commands(placed: &[Placed], port: u16) -> Vec<String> {
    let mut commands = vec![
        "set confirm off".to_string(),
        "set pagination off".to_string(),
    ];
    for p in placed {
        commands.push(format!(
            "add-symbol-file {} -o {:#x}",
            p.elf.display(),
            p.base
        ));
    }
    commands.push(format!("target remote 127.0.0.1:{port}"));
    commands
}

/// The whole `gdb-multiarch` command line, quoted for a POSIX shell.
pub fn command_line(placed: &[Placed], port: u16) -> String {
    let mut line = String::from(crate::setup::GDB);
    for c in commands(placed, port) {
        line.push_str(" -ex '");
        line.push_str(&c.replace('\'', r"'\''"));
        line.push('\'');
    }
    line
}

/// Which gdb thread is which CPU, and whose CPU that is.
pub fn thread_map(config: &Config) -> Vec<String> {
    (0..config.board.cpus)
        .map(|cpu| {
            let owner = config
                .partitions
                .iter()
                .find(|p| p.cpus.contains(&cpu))
                .map_or("hv only".to_string(), |p| format!("partition `{}`", p.name));
            format!("thread {} = CPU {cpu} ({owner})", cpu + 1)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text_offset: u64, image_size: u64) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[8..16].copy_from_slice(&text_offset.to_le_bytes());
        h[16..24].copy_from_slice(&image_size.to_le_bytes());
        h
    }

    #[test]
    fn load_address_follows_the_boot_protocol() {
        assert_eq!(
            load_address(0x4000_0000, &header(0x8_0000, 0x100_0000)).unwrap(),
            0x4008_0000
        );
        assert_eq!(
            load_address(0x4400_0000, &header(0x20_0000, 1)).unwrap(),
            0x4420_0000
        );
        // image_size 0: text_offset is not to be trusted, 0x80000 it is.
        assert_eq!(load_address(0, &header(0x1234_5000, 0)).unwrap(), 0x8_0000);
        assert!(load_address(0, &[0; 20]).is_err());
    }

    #[test]
    fn commands_load_each_file_at_its_base_then_attach() {
        let placed = [
            Placed {
                elf: "/t/hv".into(),
                base: 0x4008_0000,
                what: "hv".into(),
            },
            Placed {
                elf: "/t/it's".into(),
                base: 0x4408_0000,
                what: "guest-rt".into(),
            },
        ];
        let commands = commands(&placed, 4321);
        assert_eq!(commands[2], "add-symbol-file /t/hv -o 0x40080000");
        assert_eq!(commands[3], "add-symbol-file /t/it's -o 0x44080000");
        assert_eq!(commands.last().unwrap(), "target remote 127.0.0.1:4321");
        let line = command_line(&placed, 4321);
        assert!(
            line.starts_with("gdb-multiarch -ex 'set confirm off'"),
            "{line}"
        );
        assert!(
            line.contains(r"-ex 'add-symbol-file /t/it'\''s -o 0x44080000'"),
            "{line}"
        );
    }

    #[test]
    fn threads_name_their_cpus_owner() {
        let config = crate::boards::load("virt").unwrap();
        let map = thread_map(&config);
        assert_eq!(map[0], "thread 1 = CPU 0 (partition `linux`)");
        assert_eq!(map[3], "thread 4 = CPU 3 (partition `rt`)");
    }

    #[test]
    fn virt_places_hv_and_guest_rt_where_hv_says_they_run() {
        // The shipped virt board: hv at RAM base 0x4000_0000 + 0x80000, guest-rt at the
        // RT partition's RAM base 0x4400_0000 + 0x80000 (hv's boot log says the same).
        let config = crate::boards::load("virt").unwrap();
        let h = header(arm64_boot::TEXT_OFFSET, 1);
        assert_eq!(
            load_address(config.board.ram[0].base, &h).unwrap(),
            0x4008_0000
        );
        let rt = qemu::rt_partitions(&config).next().unwrap();
        assert_eq!(load_address(rt.ram[0].base, &h).unwrap(), 0x4408_0000);
    }
}
