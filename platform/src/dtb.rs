//! The board model read from a flattened device tree (via the `fdt` crate).
//!
//! [`BoardInfo::parse`] turns the DTB that firmware hands to `hv` into plain data: RAM,
//! CPUs and how they start, PSCI, the GIC and its frames, PL011 UARTs, timer interrupts and
//! boot arguments. Bus addresses are translated through every parent's `ranges` so all
//! addresses here are CPU physical addresses (the Pi 4 puts its peripherals behind
//! `/soc` ranges).
//!
//! Parsing never panics on a malformed tree: missing or odd properties are skipped or
//! reported as a [`DtbError`].

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use fdt::node::FdtNode;
use fdt::Fdt;

use crate::config::{GicVersion, Region};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CpuEnable {
    Psci,
    SpinTable {
        release_addr: u64,
    },
    /// Any other or missing `enable-method` (the string, possibly empty).
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuInfo {
    /// The `reg` value: MPIDR affinity bits.
    pub mpidr: u64,
    pub enable: CpuEnable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciConduit {
    Smc,
    Hvc,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GicInfo {
    pub version: GicVersion,
    pub gicd: Region,
    /// GICv3 redistributor range.
    pub gicr: Option<Region>,
    /// GICv2 CPU interface, hypervisor control and virtual CPU interface frames.
    pub gicc: Option<Region>,
    pub gich: Option<Region>,
    pub gicv: Option<Region>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UartInfo {
    pub path: String,
    pub base: u64,
    pub size: u64,
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardInfo {
    pub model: String,
    pub compatible: Vec<String>,
    pub memory: Vec<Region>,
    pub cpus: Vec<CpuInfo>,
    pub psci: Option<PsciConduit>,
    pub gic: Option<GicInfo>,
    pub uarts: Vec<UartInfo>,
    /// INTIDs of the architected timer's PPIs, in DTB order (secure, non-secure EL1
    /// physical, virtual, EL2 physical).
    pub timer_irqs: Vec<u32>,
    pub bootargs: Option<String>,
    /// BCM2835-family power-management watchdog (the Pi's only way to reset or stop).
    pub watchdog: Option<Region>,
    /// RAM the firmware keeps for itself: the `/memreserve/` entries and the `reg` of
    /// `/reserved-memory`'s children (a Pi's armstub keeps its spin-table page this way).
    pub reserved: Vec<Region>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DtbError {
    /// The blob is not a device tree (bad magic, truncated, bad offsets).
    Malformed(String),
    NoCpus,
    NoMemory,
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "not a valid device tree: {why}"),
            Self::NoCpus => write!(f, "the device tree lists no CPU"),
            Self::NoMemory => write!(f, "the device tree lists no RAM"),
        }
    }
}

/// Address-space facts of one node, as its children see them.
#[derive(Clone)]
struct Bus {
    address_cells: usize,
    size_cells: usize,
    /// `None`: no `ranges` (child addresses are not translatable; taken as identity).
    /// `Some(empty)`: `ranges;` identity. Otherwise (child base, parent base, size).
    ranges: Option<Vec<(u64, u64, u64)>>,
}

fn read_cells(bytes: &[u8], cells: usize) -> Option<(u64, &[u8])> {
    let len = cells * 4;
    if bytes.len() < len || cells > 2 {
        return None;
    }
    let mut value = 0u64;
    for chunk in bytes[..len].chunks_exact(4) {
        value =
            (value << 32) | u64::from(u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
    }
    Some((value, &bytes[len..]))
}

fn prop_u32(node: &FdtNode, name: &str) -> Option<u32> {
    let value = node.property(name)?.value;
    read_cells(value, 1).map(|(v, _)| v as u32)
}

fn prop_str<'a>(node: &FdtNode<'_, 'a>, name: &str) -> Option<&'a str> {
    let value = node.property(name)?.value;
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    core::str::from_utf8(&value[..end]).ok()
}

fn has_compatible(node: &FdtNode, wanted: &[&str]) -> bool {
    node.compatible()
        .is_some_and(|c| c.all().any(|s| wanted.contains(&s)))
}

/// Translates `addr` from the address space of the innermost bus in `buses` up to the CPU's.
fn translate(buses: &[Bus], mut addr: u64) -> u64 {
    // buses[0] is the root, whose children's addresses are CPU addresses.
    for bus in buses.iter().skip(1).rev() {
        if let Some(ranges) = &bus.ranges {
            if let Some((child, parent, _)) = ranges
                .iter()
                .find(|(child, _, size)| addr >= *child && addr - child < *size)
            {
                // Wrapping: a hostile `ranges` must not panic a debug build.
                addr = (addr - child).wrapping_add(*parent);
            }
        }
    }
    addr
}

fn node_regs(node: &FdtNode, buses: &[Bus]) -> Vec<Region> {
    let parent = buses.last().expect("walk always has the root bus");
    let Some(prop) = node.property("reg") else {
        return Vec::new();
    };
    if parent.address_cells + parent.size_cells == 0 {
        // Entries of zero bytes: nothing to read (and no progress to make).
        return Vec::new();
    }
    let mut bytes = prop.value;
    let mut out = Vec::new();
    while let Some((addr, rest)) = read_cells(bytes, parent.address_cells) {
        let (size, rest) = if parent.size_cells == 0 {
            (0, rest)
        } else {
            match read_cells(rest, parent.size_cells) {
                Some(v) => v,
                None => break,
            }
        };
        out.push(Region::new(translate(buses, addr), size));
        bytes = rest;
    }
    out
}

fn bus_of(node: &FdtNode, parent: &Bus) -> Bus {
    let address_cells = prop_u32(node, "#address-cells").unwrap_or(2) as usize;
    let size_cells = prop_u32(node, "#size-cells").unwrap_or(1) as usize;
    let ranges = node.property("ranges").map(|p| {
        let mut bytes = p.value;
        let mut out = Vec::new();
        if address_cells + parent.address_cells + size_cells == 0 {
            // Entries of zero bytes: nothing to read (and no progress to make).
            return out;
        }
        while let Some((child, rest)) = read_cells(bytes, address_cells) {
            let Some((parent_addr, rest)) = read_cells(rest, parent.address_cells) else {
                break;
            };
            let Some((size, rest)) = read_cells(rest, size_cells) else {
                break;
            };
            out.push((child, parent_addr, size));
            bytes = rest;
        }
        out
    });
    Bus {
        address_cells,
        size_cells,
        ranges,
    }
}

/// PPI/SPI specifiers (3 cells: type, number, flags) to GIC INTIDs.
fn gic_intids(node: &FdtNode) -> Vec<u32> {
    let Some(prop) = node.property("interrupts") else {
        return Vec::new();
    };
    prop.value
        .chunks_exact(12)
        .map(|c| {
            let kind = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            let number = u32::from_be_bytes([c[4], c[5], c[6], c[7]]);
            // Saturating: a hostile number must not panic a debug build.
            if kind == 1 {
                number.saturating_add(16)
            } else {
                number.saturating_add(32)
            }
        })
        .collect()
}

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Deepest node nesting accepted (the root is level 1; real trees stay below 10).
pub const MAX_DEPTH: usize = 32;

/// Returns the DTB with every `FDT_NOP` token removed from its structure block.
///
/// Firmware that edits a tree in place (QEMU's raspi4b disables nodes with libfdt) leaves
/// NOP tokens that the `fdt` crate (0.1.5) does not skip, so they go before parsing.
/// The walk also checks what the `fdt` crate assumes (and panics on otherwise): a
/// well-nested tree with one root, properties before child nodes, UTF-8 names, property
/// names inside the strings block, at most [`MAX_DEPTH`] levels, no bytes missing.
/// Layout from the Devicetree Specification v0.4, chapter 5.
pub fn strip_nops(dtb: &[u8]) -> Result<Vec<u8>, DtbError> {
    let bad = |why: &str| DtbError::Malformed(why.to_string());
    if be32(dtb, 0) != Some(FDT_MAGIC) {
        return Err(bad("bad magic"));
    }
    let field = |i: usize| {
        be32(dtb, 4 * i)
            .map(|v| v as usize)
            .ok_or_else(|| bad("truncated header"))
    };
    let (total, off_struct, off_strings, off_rsvmap) = (field(1)?, field(2)?, field(3)?, field(4)?);
    let (size_strings, size_struct) = (field(8)?, field(9)?);
    if dtb.len() < total {
        return Err(bad("blob shorter than its totalsize"));
    }
    let block = |off: usize, len: usize| {
        dtb.get(off..off.checked_add(len)?)
            .filter(|_| off + len <= total)
    };
    let structure =
        block(off_struct, size_struct).ok_or_else(|| bad("structure block out of bounds"))?;
    let strings =
        block(off_strings, size_strings).ok_or_else(|| bad("strings block out of bounds"))?;
    // The reservation map ends with an all-zero entry.
    let mut rsv_len = 0;
    loop {
        let entry =
            block(off_rsvmap + rsv_len, 16).ok_or_else(|| bad("unterminated reservation map"))?;
        rsv_len += 16;
        if entry.iter().all(|&b| b == 0) {
            break;
        }
    }
    let rsvmap = &dtb[off_rsvmap..off_rsvmap + rsv_len];

    // The `fdt` crate panics on trees that break the grammar below, so the walk checks it:
    // one root; in each node, properties before child nodes; names in UTF-8; property
    // names inside the strings block; bounded nesting.
    let name_at = |off: usize| {
        let tail = strings.get(off..)?;
        let end = tail.iter().position(|&b| b == 0)?;
        core::str::from_utf8(&tail[..end]).ok()
    };
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut props_allowed = false;
    let mut out_struct = Vec::with_capacity(structure.len());
    let mut at = 0;
    loop {
        let token =
            be32(structure, at).ok_or_else(|| bad("structure block ends without FDT_END"))?;
        let len = match token {
            FDT_BEGIN_NODE => {
                let name_len = structure[at + 4..]
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or_else(|| bad("unterminated node name"))?;
                if core::str::from_utf8(&structure[at + 4..at + 4 + name_len]).is_err() {
                    return Err(bad("node name is not UTF-8"));
                }
                if depth == 0 && seen_root {
                    return Err(bad("more than one root node"));
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(bad("nodes nested too deeply"));
                }
                seen_root = true;
                props_allowed = true;
                4 + (name_len + 1).next_multiple_of(4)
            }
            FDT_PROP => {
                let value_len =
                    be32(structure, at + 4).ok_or_else(|| bad("truncated property"))? as usize;
                let name_off =
                    be32(structure, at + 8).ok_or_else(|| bad("truncated property"))? as usize;
                let Some(name) = name_at(name_off) else {
                    return Err(bad("property name outside the strings block or not UTF-8"));
                };
                // `fdt` panics on a cell-count property shorter than one cell.
                if name.starts_with('#') && name.ends_with("-cells") && value_len != 4 {
                    return Err(bad("a #...-cells property that is not one cell"));
                }
                if !props_allowed {
                    return Err(bad("property outside a node or after a child node"));
                }
                12 + value_len.next_multiple_of(4)
            }
            FDT_END_NODE => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| bad("FDT_END_NODE outside any node"))?;
                props_allowed = false;
                4
            }
            FDT_END if depth != 0 || !seen_root => {
                return Err(bad("FDT_END inside a node or before the root"))
            }
            FDT_NOP | FDT_END => 4,
            other => {
                return Err(DtbError::Malformed(alloc::format!(
                    "unknown token {other:#x}"
                )))
            }
        };
        let piece = structure
            .get(at..at + len)
            .ok_or_else(|| bad("structure block truncated"))?;
        if token != FDT_NOP {
            out_struct.extend_from_slice(piece);
        }
        at += len;
        if token == FDT_END {
            break;
        }
    }

    let header_len: usize = 40;
    let rsv_at = header_len.next_multiple_of(8);
    let struct_at = rsv_at + rsvmap.len();
    let strings_at = struct_at + out_struct.len();
    let new_total = strings_at + strings.len();
    let mut out = alloc::vec![0u8; new_total];
    out[..header_len].copy_from_slice(&dtb[..header_len]);
    for (i, v) in [
        (1, new_total),
        (2, struct_at),
        (3, strings_at),
        (4, rsv_at),
        (8, strings.len()),
        (9, out_struct.len()),
    ] {
        out[4 * i..4 * i + 4].copy_from_slice(&(v as u32).to_be_bytes());
    }
    out[rsv_at..struct_at].copy_from_slice(rsvmap);
    out[struct_at..strings_at].copy_from_slice(&out_struct);
    out[strings_at..].copy_from_slice(strings);
    Ok(out)
}

impl BoardInfo {
    /// Parses a DTB (NOP tokens tolerated, see [`strip_nops`]).
    pub fn parse(dtb: &[u8]) -> Result<Self, DtbError> {
        let clean = strip_nops(dtb)?;
        Self::parse_clean(&clean)
    }

    fn parse_clean(dtb: &[u8]) -> Result<Self, DtbError> {
        let fdt = Fdt::new(dtb).map_err(|e| DtbError::Malformed(alloc::format!("{e:?}")))?;
        let root = fdt
            .find_node("/")
            .ok_or_else(|| DtbError::Malformed("no root node".to_string()))?;
        let mut info = BoardInfo {
            model: prop_str(&root, "model").unwrap_or("").to_string(),
            compatible: root
                .compatible()
                .map(|c| c.all().map(ToString::to_string).collect())
                .unwrap_or_default(),
            memory: Vec::new(),
            cpus: Vec::new(),
            psci: None,
            gic: None,
            uarts: Vec::new(),
            timer_irqs: Vec::new(),
            bootargs: fdt
                .find_node("/chosen")
                .and_then(|c| prop_str(&c, "bootargs"))
                .map(ToString::to_string),
            watchdog: None,
            // Truncating casts are no issue: hv runs on 64-bit hosts and targets only.
            reserved: fdt
                .memory_reservations()
                .map(|r| Region::new(r.address() as u64, r.size() as u64))
                .filter(|r| r.size > 0)
                .collect(),
        };
        let top = Bus {
            address_cells: 2,
            size_cells: 1,
            ranges: Some(Vec::new()),
        };
        let root_bus = bus_of(&root, &top);
        let mut buses = alloc::vec![root_bus];
        for child in root.children() {
            info.visit(child, &mut buses, "");
        }
        if info.cpus.is_empty() {
            return Err(DtbError::NoCpus);
        }
        if info.memory.is_empty() {
            return Err(DtbError::NoMemory);
        }
        Ok(info)
    }

    fn visit(&mut self, node: FdtNode, buses: &mut Vec<Bus>, parent_path: &str) {
        let path = alloc::format!("{parent_path}/{}", node.name);
        let device_type = prop_str(&node, "device_type");
        let enabled = prop_str(&node, "status").is_none_or(|s| s == "okay" || s == "ok");

        if device_type == Some("memory") {
            self.memory
                .extend(node_regs(&node, buses).into_iter().filter(|r| r.size > 0));
        } else if parent_path == "/reserved-memory" {
            // A child with only `size` is a pool the OS may place: nothing is fixed yet.
            self.reserved
                .extend(node_regs(&node, buses).into_iter().filter(|r| r.size > 0));
        } else if device_type == Some("cpu") && parent_path == "/cpus" {
            if let Some(reg) = node_regs(&node, buses).first() {
                let method = prop_str(&node, "enable-method").unwrap_or("");
                let enable = match method {
                    "psci" => CpuEnable::Psci,
                    "spin-table" => match node
                        .property("cpu-release-addr")
                        .and_then(|p| read_cells(p.value, p.value.len() / 4))
                    {
                        Some((addr, _)) => CpuEnable::SpinTable { release_addr: addr },
                        None => {
                            CpuEnable::Other(String::from("spin-table without cpu-release-addr"))
                        }
                    },
                    other => CpuEnable::Other(other.to_string()),
                };
                self.cpus.push(CpuInfo {
                    mpidr: reg.base,
                    enable,
                });
            }
        } else if has_compatible(&node, &["arm,psci", "arm,psci-0.2", "arm,psci-1.0"]) {
            self.psci = match prop_str(&node, "method") {
                Some("hvc") => Some(PsciConduit::Hvc),
                Some("smc") => Some(PsciConduit::Smc),
                _ => None,
            };
        } else if has_compatible(&node, &["arm,gic-v3"]) && self.gic.is_none() {
            let regs = node_regs(&node, buses);
            if let Some(&gicd) = regs.first() {
                self.gic = Some(GicInfo {
                    version: GicVersion::V3,
                    gicd,
                    gicr: regs.get(1).copied(),
                    gicc: None,
                    gich: None,
                    gicv: None,
                });
            }
        } else if has_compatible(
            &node,
            &["arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a7-gic"],
        ) && self.gic.is_none()
        {
            let regs = node_regs(&node, buses);
            if let Some(&gicd) = regs.first() {
                self.gic = Some(GicInfo {
                    version: GicVersion::V2,
                    gicd,
                    gicr: None,
                    gicc: regs.get(1).copied(),
                    gich: regs.get(2).copied(),
                    gicv: regs.get(3).copied(),
                });
            }
        } else if has_compatible(&node, &["arm,pl011"]) {
            if let Some(reg) = node_regs(&node, buses).first() {
                self.uarts.push(UartInfo {
                    path: path.clone(),
                    base: reg.base,
                    size: reg.size,
                    enabled,
                });
            }
        } else if has_compatible(&node, &["brcm,bcm2835-pm-wdt", "brcm,bcm2835-pm"]) {
            self.watchdog = node_regs(&node, buses).first().copied();
        } else if has_compatible(&node, &["arm,armv8-timer"]) {
            self.timer_irqs = gic_intids(&node);
        }

        let bus = bus_of(&node, buses.last().expect("root bus present"));
        buses.push(bus);
        for child in node.children() {
            self.visit(child, buses, &path);
        }
        buses.pop();
    }

    /// Logical CPU index (DTB order) of the CPU whose MPIDR affinity is `mpidr`.
    pub fn cpu_index(&self, mpidr: u64) -> Option<usize> {
        let aff = mpidr & 0xff_00ff_ffff;
        self.cpus.iter().position(|c| c.mpidr == aff)
    }

    pub fn uart_at(&self, base: u64) -> Option<&UartInfo> {
        self.uarts.iter().find(|u| u.base == base)
    }
}
