//! Finds the channel region in Linux's device tree (`/proc/device-tree`): the
//! `reserved-memory` child whose `compatible` is `bulkhead,channel`, and its `reg`; and
//! hv's control page (`/hypervisor/bulkhead,control`). Reads files only; never maps
//! anything.

use std::path::Path;

pub const COMPATIBLE: &str = "bulkhead,channel";

/// Physical base and size of the channel region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub base: u64,
    pub size: u64,
}

fn cells(root: &Path, name: &str, default: usize) -> usize {
    std::fs::read(root.join(name))
        .ok()
        .and_then(|b| b.try_into().ok())
        .map_or(default, |b: [u8; 4]| u32::from_be_bytes(b) as usize)
}

/// Reads a big-endian number of `cells` 32-bit cells.
fn number(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |n, &b| n << 8 | u64::from(b))
}

/// The channel's span under `tree` (normally `/proc/device-tree`).
pub fn find_channel(tree: &Path) -> Result<Span, String> {
    let reserved = tree.join("reserved-memory");
    let entries = std::fs::read_dir(&reserved).map_err(|e| {
        format!(
            "{}: {e} (is this Linux running under Bulkhead?)",
            reserved.display()
        )
    })?;
    let address_cells = cells(&reserved, "#address-cells", 2);
    let size_cells = cells(&reserved, "#size-cells", 1);
    let mut names: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    for node in names.iter().filter(|p| p.is_dir()) {
        let Ok(compatible) = std::fs::read(node.join("compatible")) else {
            continue;
        };
        if !compatible
            .split(|&b| b == 0)
            .any(|c| c == COMPATIBLE.as_bytes())
        {
            continue;
        }
        let reg =
            std::fs::read(node.join("reg")).map_err(|e| format!("{}/reg: {e}", node.display()))?;
        let want = 4 * (address_cells + size_cells);
        if reg.len() < want || address_cells > 2 || size_cells > 2 {
            return Err(format!(
                "{}/reg: {} bytes, expected {want} ({address_cells} address and {size_cells} \
                 size cells)",
                node.display(),
                reg.len()
            ));
        }
        let (base, size) = reg[..want].split_at(4 * address_cells);
        return Ok(Span {
            base: number(base),
            size: number(size),
        });
    }
    Err(format!(
        "no `{COMPATIBLE}` node in {}: this Linux has no channel region",
        reserved.display()
    ))
}

/// hv's control page under `tree`: `/hypervisor/bulkhead,control`, two 64-bit cells.
pub fn find_control(tree: &Path) -> Result<Span, String> {
    let file = tree.join("hypervisor/bulkhead,control");
    let bytes = std::fs::read(&file).map_err(|e| {
        format!(
            "{}: {e} (is this Linux running under Bulkhead?)",
            file.display()
        )
    })?;
    if bytes.len() != 16 {
        return Err(format!(
            "{}: {} bytes, expected 16",
            file.display(),
            bytes.len()
        ));
    }
    Ok(Span {
        base: number(&bytes[..8]),
        size: number(&bytes[8..]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn tree(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rtctl-dt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("reserved-memory")).unwrap();
        dir
    }

    fn node(tree: &Path, name: &str, compatible: &[u8], reg: &[u8]) {
        let n = tree.join("reserved-memory").join(name);
        std::fs::create_dir_all(&n).unwrap();
        std::fs::write(n.join("compatible"), compatible).unwrap();
        std::fs::write(n.join("reg"), reg).unwrap();
    }

    #[test]
    fn finds_the_channel_among_other_reserved_nodes() {
        let t = tree("found");
        std::fs::write(t.join("reserved-memory/#address-cells"), 2u32.to_be_bytes()).unwrap();
        std::fs::write(t.join("reserved-memory/#size-cells"), 2u32.to_be_bytes()).unwrap();
        node(&t, "linux,cma", b"shared-dma-pool\0", &[0; 16]);
        let reg: Vec<u8> = [0u32, 0xaa00_0000, 0, 0x20_0000]
            .iter()
            .flat_map(|c| c.to_be_bytes())
            .collect();
        node(&t, "bulkhead-channel@aa000000", b"bulkhead,channel\0", &reg);
        assert_eq!(
            find_channel(&t),
            Ok(Span {
                base: 0xaa00_0000,
                size: 0x20_0000
            })
        );
        std::fs::remove_dir_all(&t).unwrap();
    }

    #[test]
    fn says_what_is_missing() {
        let t = tree("missing");
        node(&t, "other", b"x\0", &[0; 16]);
        let e = find_channel(&t).unwrap_err();
        assert!(e.contains("no `bulkhead,channel` node"), "{e}");
        node(&t, "ch", b"bulkhead,channel\0", &[0; 7]);
        let e = find_channel(&t).unwrap_err();
        assert!(e.contains("7 bytes, expected 12"), "{e}");
        std::fs::remove_dir_all(&t).unwrap();
        let e = find_channel(&t).unwrap_err();
        assert!(e.contains("is this Linux running under Bulkhead?"), "{e}");
    }

    #[test]
    fn finds_hvs_control_page() {
        let t = tree("control");
        std::fs::create_dir_all(t.join("hypervisor")).unwrap();
        let e = find_control(&t).unwrap_err();
        assert!(e.contains("running under Bulkhead?"), "{e}");
        let reg: Vec<u8> = [0x7f_0000_0000u64, 0x1000]
            .iter()
            .flat_map(|c| c.to_be_bytes())
            .collect();
        std::fs::write(t.join("hypervisor/bulkhead,control"), &reg).unwrap();
        assert_eq!(
            find_control(&t),
            Ok(Span {
                base: 0x7f_0000_0000,
                size: 0x1000
            })
        );
        std::fs::write(t.join("hypervisor/bulkhead,control"), &reg[..8]).unwrap();
        assert!(find_control(&t)
            .unwrap_err()
            .contains("8 bytes, expected 16"));
        std::fs::remove_dir_all(&t).unwrap();
    }
}
