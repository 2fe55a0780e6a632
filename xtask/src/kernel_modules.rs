//! Debian's own kernel modules for the Linux partition's initramfs: found by name in the
//! pinned kernel package, with the modules each depends on (the `depends=` entry of its
//! `.modinfo` section, since the package ships no `modules.dep`), in an order `insmod`
//! can load them: every module after those it depends on.
//!
//! This module only reads the unpacked package; it never builds or changes a module.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection};

use crate::{debian, Error};

/// What the Linux partition's NIC needs: the virtio-mmio transport driver and the
/// virtio network driver (the virtio core and ring are built into Debian's kernel).
pub const NETWORK: &[&str] = &["virtio_mmio", "virtio_net"];

/// One module to put in the initramfs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub name: String,
    /// Its path inside the initramfs, e.g. `lib/modules/6.1.0-50-arm64/kernel/.../x.ko`.
    pub path: String,
    pub bytes: Vec<u8>,
}

/// A module file's name as the kernel knows it (`net_failover.ko` -> `net_failover`;
/// `-` and `_` are the same to the kernel).
fn module_name(file: &Path) -> Option<String> {
    let name = file.file_name()?.to_str()?.strip_suffix(".ko")?;
    Some(name.replace('-', "_"))
}

/// The modules `ko` depends on, from its `.modinfo` section (NUL-separated `key=value`).
pub fn depends(ko: &[u8]) -> Result<Vec<String>, String> {
    let file = object::File::parse(ko).map_err(|e| format!("not an ELF object: {e}"))?;
    let section = file
        .section_by_name(".modinfo")
        .ok_or("no .modinfo section")?;
    let info = section
        .data()
        .map_err(|e| format!("unreadable .modinfo: {e}"))?;
    let list = info
        .split(|&b| b == 0)
        .find_map(|entry| entry.strip_prefix(b"depends="))
        .ok_or("no depends= entry in .modinfo")?;
    let list = std::str::from_utf8(list).map_err(|_| "depends= is not UTF-8")?;
    Ok(list
        .split(',')
        .filter(|d| !d.is_empty())
        .map(|d| d.replace('-', "_"))
        .collect())
}

/// Every `.ko` below `dir`, by module name.
fn index(dir: &Path, found: &mut BTreeMap<String, PathBuf>) -> Result<(), Error> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::new(format!("{}: {e}", dir.display())))?;
    for entry in entries {
        let path = entry
            .map_err(|e| Error::new(format!("{}: {e}", dir.display())))?
            .path();
        if path.is_dir() {
            index(&path, found)?;
        } else if let Some(name) = module_name(&path) {
            found.insert(name, path);
        }
    }
    Ok(())
}

/// A module's file by name (None: no such module).
type ReadModule<'a> = dyn FnMut(&str) -> Result<Option<Vec<u8>>, Error> + 'a;

/// `wanted` and what they depend on, dependencies first, each once.
pub fn load_order(
    wanted: &[&str],
    mut read: impl FnMut(&str) -> Result<Option<Vec<u8>>, Error>,
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    fn visit(
        name: &str,
        chain: &mut Vec<String>,
        done: &mut Vec<(String, Vec<u8>)>,
        read: &mut ReadModule<'_>,
    ) -> Result<(), Error> {
        if done.iter().any(|(n, _)| n == name) {
            return Ok(());
        }
        if chain.iter().any(|n| n == name) {
            return Err(Error::new(format!(
                "kernel modules depend on each other in a cycle: {} -> {name}",
                chain.join(" -> ")
            )));
        }
        let bytes = read(name)?.ok_or_else(|| {
            let needed_by = chain
                .last()
                .map(|n| format!(" (needed by {n})"))
                .unwrap_or_default();
            Error::new(format!(
                "kernel module {name}{needed_by} is not in {}",
                debian::KERNEL.describe()
            ))
        })?;
        let deps = depends(&bytes).map_err(|e| Error::new(format!("module {name}: {e}")))?;
        chain.push(name.to_string());
        for dep in &deps {
            visit(dep, chain, done, read)?;
        }
        chain.pop();
        done.push((name.to_string(), bytes));
        Ok(())
    }
    let mut done = Vec::new();
    for name in wanted {
        visit(name, &mut Vec::new(), &mut done, &mut read)?;
    }
    Ok(done)
}

/// [`NETWORK`]'s modules from the pinned kernel package (unpacked if needed), in load order.
pub fn network(target_dir: &Path) -> Result<Vec<Module>, Error> {
    let abi = debian::KERNEL.kernel_abi();
    let tree = debian::unpacked(debian::KERNEL, target_dir)?;
    let modules_dir = tree.join("lib/modules").join(abi);
    let mut files = BTreeMap::new();
    index(&modules_dir.join("kernel"), &mut files)?;
    let order = load_order(NETWORK, |name| match files.get(name) {
        Some(path) => std::fs::read(path)
            .map(Some)
            .map_err(|e| Error::new(format!("reading {}: {e}", path.display()))),
        None => Ok(None),
    })?;
    Ok(order
        .into_iter()
        .map(|(name, bytes)| {
            let relative = files[&name]
                .strip_prefix(&tree)
                .expect("found below the tree")
                .to_string_lossy()
                .into_owned();
            Module {
                name,
                path: relative,
                bytes,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 relocatable object with one `.modinfo` section holding `info`.
    fn ko(info: &[u8]) -> Vec<u8> {
        let shstrtab = b"\0.modinfo\0.shstrtab\0";
        let info_at = 64;
        let strtab_at = info_at + info.len();
        let sh_at = (strtab_at + shstrtab.len()).next_multiple_of(8);
        let mut elf = vec![0u8; sh_at + 3 * 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2; // 64-bit
        elf[5] = 1; // little endian
        elf[6] = 1; // version
        elf[16..18].copy_from_slice(&1u16.to_le_bytes()); // ET_REL
        elf[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
        elf[20..24].copy_from_slice(&1u32.to_le_bytes());
        elf[40..48].copy_from_slice(&(sh_at as u64).to_le_bytes()); // e_shoff
        elf[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        elf[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
        elf[60..62].copy_from_slice(&3u16.to_le_bytes()); // e_shnum
        elf[62..64].copy_from_slice(&2u16.to_le_bytes()); // e_shstrndx
        elf[info_at..strtab_at].copy_from_slice(info);
        elf[strtab_at..strtab_at + shstrtab.len()].copy_from_slice(shstrtab);
        let mut section = |i: usize, name: u32, kind: u32, at: usize, size: usize| {
            let h = sh_at + 64 * i;
            elf[h..h + 4].copy_from_slice(&name.to_le_bytes());
            elf[h + 4..h + 8].copy_from_slice(&kind.to_le_bytes());
            elf[h + 24..h + 32].copy_from_slice(&(at as u64).to_le_bytes());
            elf[h + 32..h + 40].copy_from_slice(&(size as u64).to_le_bytes());
            elf[h + 48..h + 56].copy_from_slice(&1u64.to_le_bytes());
        };
        section(1, 1, 1, info_at, info.len()); // .modinfo, PROGBITS
        section(2, 10, 3, strtab_at, shstrtab.len()); // .shstrtab, STRTAB
        elf
    }

    #[test]
    fn depends_reads_the_modinfo_entry() {
        let m = ko(b"license=GPL\0depends=net_failover,virtio-ring\0vermagic=6.1\0");
        assert_eq!(depends(&m).unwrap(), ["net_failover", "virtio_ring"]);
        assert_eq!(depends(&ko(b"depends=\0")).unwrap(), Vec::<String>::new());
        assert!(depends(&ko(b"license=GPL\0"))
            .unwrap_err()
            .contains("no depends="));
        assert!(depends(b"not elf").unwrap_err().contains("not an ELF"));
    }

    #[test]
    fn dependencies_load_first_and_once() {
        let modules: BTreeMap<&str, Vec<u8>> = [
            ("virtio_mmio", ko(b"depends=\0")),
            ("virtio_net", ko(b"depends=net_failover\0")),
            ("net_failover", ko(b"depends=failover\0")),
            ("failover", ko(b"depends=\0")),
            ("twice", ko(b"depends=failover,net_failover\0")),
        ]
        .into_iter()
        .collect();
        let read = |n: &str| Ok(modules.get(n).cloned());
        let names = |order: Vec<(String, Vec<u8>)>| -> Vec<String> {
            order.into_iter().map(|(n, _)| n).collect()
        };
        assert_eq!(
            names(load_order(&["virtio_mmio", "virtio_net"], read).unwrap()),
            ["virtio_mmio", "failover", "net_failover", "virtio_net"]
        );
        assert_eq!(
            names(load_order(&["twice", "virtio_net"], read).unwrap()),
            ["failover", "net_failover", "twice", "virtio_net"]
        );
    }

    #[test]
    fn a_missing_module_or_a_cycle_is_an_error_naming_it() {
        let missing = load_order(&["virtio_net"], |n| {
            Ok((n == "virtio_net").then(|| ko(b"depends=net_failover\0")))
        })
        .unwrap_err()
        .to_string();
        assert!(
            missing.contains("net_failover (needed by virtio_net) is not in"),
            "{missing}"
        );
        let cycle = load_order(&["a"], |n| {
            Ok(Some(ko(if n == "a" {
                b"depends=b\0"
            } else {
                b"depends=a\0"
            })))
        })
        .unwrap_err()
        .to_string();
        assert!(cycle.contains("cycle: a -> b -> a"), "{cycle}");
    }
}
