//! The partition config: the one typed source of truth for what each partition owns.
//!
//! A board's config says what the board must look like (checked against its DTB at boot by
//! [`crate::check`]), what RAM the hypervisor keeps for itself, and which CPUs, RAM ranges,
//! devices and interrupt lines each partition owns. [`Config::validate`] refuses a config
//! that could not be enforced (overlaps, double ownership, unknown names); `cargo xtask`
//! runs it when it reads the board file and `hv` runs it again at boot.
//!
//! This module never touches hardware and never allocates more than the config itself.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// Granule every RAM range must be aligned to: stage-2 maps 4 KiB pages.
pub const PAGE_SIZE: u64 = 4096;

/// A physical address range `[base, base + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub base: u64,
    pub size: u64,
}

impl Region {
    pub const fn new(base: u64, size: u64) -> Self {
        Self { base, size }
    }

    /// One past the last byte, or `None` if the range wraps the address space.
    pub fn end(&self) -> Option<u64> {
        self.base.checked_add(self.size)
    }

    pub fn overlaps(&self, other: &Region) -> bool {
        match (self.end(), other.end()) {
            (Some(a_end), Some(b_end)) => self.base < b_end && other.base < a_end,
            _ => true,
        }
    }

    pub fn contains(&self, inner: &Region) -> bool {
        match (self.end(), inner.end()) {
            (Some(a_end), Some(b_end)) => self.base <= inner.base && b_end <= a_end,
            _ => false,
        }
    }

    pub fn contains_addr(&self, addr: u64) -> bool {
        addr >= self.base && self.end().is_none_or(|end| addr < end)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end() {
            Some(end) => write!(f, "[{:#x}..{:#x})", self.base, end),
            None => write!(f, "[{:#x}+{:#x} wraps]", self.base, self.size),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GicVersion {
    V2,
    V3,
}

/// How secondary CPUs are started on the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CpuBoot {
    /// PSCI `CPU_ON` (conduit from the DTB's `/psci` node).
    Psci,
    /// Write the entry address to the CPU's `cpu-release-addr`, then `sev`.
    SpinTable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionKind {
    /// The general-purpose partition (an unmodified Linux).
    Linux,
    /// The real-time partition (`guest-rt`).
    Rt,
}

/// A device the board has, as the config names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    pub name: String,
    /// DTB `compatible` string the device must carry.
    pub compatible: String,
    /// CPU physical address of its registers.
    pub base: u64,
    pub size: u64,
    /// GIC interrupt IDs (SPIs, >= 32) the device raises.
    #[serde(default)]
    pub irqs: Vec<u32>,
}

/// What the board must look like; checked against the DTB at boot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardSpec {
    /// A string the DTB root `compatible` must contain.
    pub compatible: String,
    pub gic: GicVersion,
    pub cpus: u32,
    pub cpu_boot: CpuBoot,
    /// RAM the board has (partition and hv RAM must lie inside).
    pub ram: Vec<Region>,
    #[serde(default)]
    pub devices: Vec<Device>,
    /// The physically indexed shared cache partitions may be coloured for (the Pi 4's L2).
    #[serde(default)]
    pub cache: Option<CacheSpec>,
}

/// A physically indexed, set-associative cache: its page colours are
/// `size / ways / PAGE_SIZE` (16 for the Pi 4's 1 MiB, 16-way L2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSpec {
    pub size: u64,
    pub ways: u64,
    pub line: u64,
}

impl CacheSpec {
    /// Page colours of the cache (at least 1).
    pub fn colours(&self) -> u64 {
        (self.size / self.ways.max(1) / PAGE_SIZE).max(1)
    }
}

/// What the hypervisor keeps for itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HvSpec {
    /// RAM reserved for `hv`: its image, payloads, heap and tables. No partition maps it.
    pub ram: Region,
    /// Name of the board device `hv` logs to.
    pub console: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    pub name: String,
    pub kind: PartitionKind,
    /// Physical CPU indices (DTB order); each runs one vCPU of this partition, pinned.
    pub cpus: Vec<u32>,
    pub ram: Vec<Region>,
    /// Names of board devices passed through to this partition.
    #[serde(default)]
    pub devices: Vec<String>,
    /// SPIs this partition owns.
    #[serde(default)]
    pub irqs: Vec<u32>,
    /// Exit-less interrupt delivery: the partition's CPUs take their interrupts at EL1
    /// straight from the physical GIC CPU interface, without trapping to hv (its
    /// distributor stays emulated, so it still configures only its own lines). For RT
    /// partitions; the cost is that a partition could send physical SGIs to any CPU.
    #[serde(default)]
    pub exitless_irqs: bool,
    /// What hv does when a vCPU of this (RT) partition faults: leaves its sandbox or
    /// raises an exception hv cannot handle. Linux partitions get an external abort or an
    /// undefined instruction instead and keep running, so they take only the default.
    #[serde(default)]
    pub on_fault: OnFault,
    /// With `on_fault = "restart"`: how many fault restarts hv makes in the machine's life
    /// before it stops the partition instead (a fault at every boot must not become a
    /// reboot loop). Default [`DEFAULT_RESTART_LIMIT`].
    #[serde(default)]
    pub restart_limit: Option<u32>,
    /// Windows in which this partition also takes whatever RAM the firmware's DTB
    /// reports (beyond `ram`, which must always be there): a Pi 4's firmware reports
    /// more or less low RAM depending on `gpu_mem`, and RAM from 0x4000_0000 only on its
    /// 2, 4 and 8 GB models. Never overlaps RAM anyone owns; need not lie inside the
    /// board's `ram` (that is what every such board has, these what some have).
    /// hv applies it at boot (`hv_core::board_ram`).
    #[serde(default)]
    pub dtb_ram: Vec<Region>,
    /// Cache colours (of `[board] cache`) this partition's RAM is made of: hv backs a
    /// contiguous IPA range from the start of `ram` with only the pages of these colours
    /// found in `ram` (`hv_core::cache_colour`), so no other coloured partition evicts its
    /// lines. Empty: all of `ram`, identity-mapped. RT partitions only.
    #[serde(default)]
    pub colours: Vec<u64>,
    /// Linux may restart this (RT) partition with another app of its image (`rtctl load
    /// NAME`, through hv's control page); refused with a reason when false. Only for an RT
    /// partition with trap-and-inject delivery: hv stops a running vCPU by kicking its CPU,
    /// and an exit-less CPU takes that kick at EL1, not in hv.
    #[serde(default)]
    pub load_from_linux: bool,
}

/// A partition's fault policy (`on_fault` in the board file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFault {
    /// Only the faulting vCPU stops; the partition's other vCPUs go on.
    #[default]
    StopVcpu,
    /// The whole partition stops (its CPUs park in hv); other partitions go on.
    Stop,
    /// hv reloads the partition's images and reboots it, up to `restart_limit` times.
    Restart,
}

impl OnFault {
    /// As the board file writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::StopVcpu => "stop-vcpu",
            Self::Stop => "stop",
            Self::Restart => "restart",
        }
    }
}

/// `restart_limit` when the board file does not say.
pub const DEFAULT_RESTART_LIMIT: u32 = 3;
/// Largest `restart_limit` accepted.
pub const MAX_RESTART_LIMIT: u32 = 1000;

/// The shared memory of the inter-partition channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    pub ram: Region,
    /// The doorbells both ways (`[channel.doorbells]`); none without it.
    #[serde(default)]
    pub doorbells: Option<DoorbellSpec>,
}

/// The channel's doorbell lines. Neither is a board device's line: hv raises them itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoorbellSpec {
    /// SPI (INTID) hv makes pending in the physical distributor when Linux rings: a free
    /// line the RT partition owns, taken like any of its device lines (both delivery modes).
    pub to_rt: u32,
    /// SPI (INTID) of the PL061 GPIO controller hv emulates for Linux, raised when the RT
    /// partition rings (virtual: no physical line behind it).
    pub to_linux: u32,
    /// Least time between two raises of `to_rt` (µs): rings in between are held and
    /// delivered once the interval is over (1..=1_000_000).
    pub min_interval_us: u32,
}

/// Most `min_interval_us` a board may ask for (1 s).
pub const MAX_DOORBELL_INTERVAL_US: u32 = 1_000_000;

/// A whole board configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Board name as `cargo xtask run --board NAME` knows it.
    pub name: String,
    pub board: BoardSpec,
    pub hv: HvSpec,
    #[serde(rename = "partition")]
    pub partitions: Vec<Partition>,
    /// Memory kept for the channel between the partitions: no partition's own RAM, mapped
    /// into every partition, described to Linux as `reserved-memory`.
    #[serde(default)]
    pub channel: Option<ChannelSpec>,
    /// How to run the board under QEMU, when QEMU can emulate it.
    #[serde(default)]
    pub qemu: Option<QemuSpec>,
    /// The boot medium of a board whose firmware loads hv from an SD card (the Pi 4).
    #[serde(default)]
    pub sdcard: Option<SdCardSpec>,
}

/// What goes on the SD card's FAT boot partition besides hv (used by `cargo xtask`,
/// ignored by `hv`). When a board has one, QEMU boots the card's kernel and DTB files, so
/// what is tested is what goes on the card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SdCardSpec {
    /// The board's DTB, as a path inside Debian's arm64 kernel package; the firmware
    /// applies its overlays and fills in `/memory` before handing it to hv.
    pub dtb: String,
    /// Where the firmware loads hv. hv runs wherever it is loaded (a static PIE), so this
    /// is the firmware's own default for a 64-bit kernel, 0x20_0000, and config.txt
    /// forces nothing; another value becomes a `kernel_address=` line. Validation: a page
    /// inside hv's RAM (and xtask checks that the whole system image fits from there).
    pub load_address: u64,
}

/// QEMU command-line facts for a board (used by `cargo xtask`, ignored by `hv`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuSpec {
    /// `-M` value.
    pub machine: String,
    pub cpu: String,
    pub smp: u32,
    /// `-m` value, e.g. "2G".
    pub memory: String,
    /// A DTB to pass with `-dtb`, as a path inside Debian's arm64 kernel package
    /// (e.g. `broadcom/bcm2711-rpi-4-b.dtb`); `None` lets QEMU generate one (or, on a
    /// board with an `[sdcard]`, take the card's).
    #[serde(default)]
    pub kernel_package_dtb: Option<String>,
    /// Extra arguments (e.g. `-no-reboot`).
    #[serde(default)]
    pub extra_args: Vec<String>,
    /// The QEMU `-device` model of the Linux partition's NIC (e.g. `virtio-net-device`),
    /// on a user-mode network whose host port forwards xtask chooses. The board file
    /// lists the transport it lands on among the Linux partition's devices.
    #[serde(default)]
    pub nic: Option<String>,
}

/// Most CPUs (vCPUs) one partition may have: a GICv2 list register and GICD_SGIR name an
/// SGI's source CPU in 3 bits (GIC architecture, IHI 0048B, GICH_LR.CPUID).
pub const MAX_PARTITION_CPUS: usize = 8;

/// Why a config is refused. Each variant names the offending parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    NoPartitions,
    DuplicatePartition {
        name: String,
    },
    PartitionWithoutCpus {
        partition: String,
    },
    PartitionWithoutRam {
        partition: String,
    },
    EmptyRegion {
        owner: String,
        region: Region,
    },
    MisalignedRegion {
        owner: String,
        region: Region,
    },
    RamOutsideBoard {
        owner: String,
        region: Region,
    },
    OverlappingRam {
        first: String,
        second: String,
        region: Region,
    },
    CpuOutsideBoard {
        partition: String,
        cpu: u32,
        board_cpus: u32,
    },
    CpuTwice {
        cpu: u32,
        first: String,
        second: String,
    },
    UnknownDevice {
        owner: String,
        device: String,
    },
    DuplicateDevice {
        device: String,
    },
    DeviceTwice {
        device: String,
        first: String,
        second: String,
    },
    UnknownIrq {
        partition: String,
        irq: u32,
    },
    IrqTwice {
        irq: u32,
        first: String,
        second: String,
    },
    BadDeviceIrq {
        device: String,
        irq: u32,
    },
    /// `[board] cpus = 0`.
    BoardWithoutCpus,
    /// More vCPUs than a GICv2 list register can name as an SGI's source (3-bit CPUID).
    TooManyCpus {
        partition: String,
        cpus: usize,
    },
    /// Every Linux partition gets the emulated console at the board UART's address: two
    /// would share it.
    SecondLinuxPartition {
        first: String,
        second: String,
    },
    /// Exit-less delivery hands a partition the physical CPU interface and physical SGIs
    /// into every core: only an RT partition, whose kernel is trusted, may have it.
    ExitlessLinux {
        partition: String,
    },
    /// `load_from_linux` on a Linux partition, or on an exit-less one, or on a board
    /// without a Linux partition to ask for it (`why` says which).
    LoadNotAllowed {
        partition: String,
        why: &'static str,
    },
    /// `on_fault` other than the default on a Linux partition, whose faults are answered
    /// inside Linux (external abort, undefined instruction).
    FaultPolicyOnLinux {
        partition: String,
    },
    /// `restart_limit` without `on_fault = "restart"`, or outside 1..=MAX_RESTART_LIMIT.
    BadRestartLimit {
        partition: String,
        limit: u32,
        on_fault: OnFault,
    },
    /// The SD card's `load_address` would load hv outside its own RAM.
    KernelOutsideHv {
        address: u64,
        hv: Region,
    },
    /// Colours without a `[board] cache`, or on a Linux partition, or with `dtb_ram`.
    ColoursNotAllowed {
        partition: String,
        why: &'static str,
    },
    ColourOutOfRange {
        partition: String,
        colour: u64,
        colours: u64,
    },
    ColourTwice {
        colour: u64,
        first: String,
        second: String,
    },
    /// A doorbell line that is not an SPI, or that a device, hv's console, a partition or
    /// the other doorbell already uses (`user` says which).
    DoorbellLine {
        which: &'static str,
        irq: u32,
        user: String,
    },
    /// Doorbells need one Linux and one RT partition (`missing` names the kind).
    DoorbellWithoutPeer {
        missing: &'static str,
    },
    /// `min_interval_us` outside 1..=[`MAX_DOORBELL_INTERVAL_US`].
    DoorbellInterval {
        us: u32,
    },
}

impl ConfigError {
    /// Stable short name of the error, for tests and scripts.
    pub fn name(&self) -> &'static str {
        match self {
            Self::NoPartitions => "no-partitions",
            Self::DuplicatePartition { .. } => "duplicate-partition",
            Self::PartitionWithoutCpus { .. } => "partition-without-cpus",
            Self::PartitionWithoutRam { .. } => "partition-without-ram",
            Self::EmptyRegion { .. } => "empty-region",
            Self::MisalignedRegion { .. } => "misaligned-region",
            Self::RamOutsideBoard { .. } => "ram-outside-board",
            Self::OverlappingRam { .. } => "overlapping-ram",
            Self::CpuOutsideBoard { .. } => "cpu-outside-board",
            Self::CpuTwice { .. } => "cpu-twice",
            Self::UnknownDevice { .. } => "unknown-device",
            Self::DuplicateDevice { .. } => "duplicate-device",
            Self::DeviceTwice { .. } => "device-twice",
            Self::UnknownIrq { .. } => "unknown-irq",
            Self::IrqTwice { .. } => "irq-twice",
            Self::BadDeviceIrq { .. } => "bad-device-irq",
            Self::BoardWithoutCpus => "board-without-cpus",
            Self::DoorbellLine { .. } => "doorbell-line",
            Self::DoorbellWithoutPeer { .. } => "doorbell-without-peer",
            Self::DoorbellInterval { .. } => "doorbell-interval",
            Self::TooManyCpus { .. } => "too-many-cpus",
            Self::SecondLinuxPartition { .. } => "second-linux-partition",
            Self::ExitlessLinux { .. } => "exitless-linux",
            Self::LoadNotAllowed { .. } => "load-not-allowed",
            Self::FaultPolicyOnLinux { .. } => "fault-policy-on-linux",
            Self::BadRestartLimit { .. } => "bad-restart-limit",
            Self::KernelOutsideHv { .. } => "kernel-outside-hv",
            Self::ColoursNotAllowed { .. } => "colours-not-allowed",
            Self::ColourOutOfRange { .. } => "colour-out-of-range",
            Self::ColourTwice { .. } => "colour-twice",
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.name())?;
        match self {
            Self::NoPartitions => write!(f, "the config defines no partition"),
            Self::DuplicatePartition { name } => write!(f, "partition `{name}` is defined twice"),
            Self::PartitionWithoutCpus { partition } => {
                write!(f, "partition `{partition}` has no CPU")
            }
            Self::PartitionWithoutRam { partition } => {
                write!(f, "partition `{partition}` has no RAM")
            }
            Self::EmptyRegion { owner, region } => {
                write!(f, "{owner}: RAM range {region} is empty or wraps around")
            }
            Self::MisalignedRegion { owner, region } => write!(
                f,
                "{owner}: RAM range {region} is not aligned to {PAGE_SIZE:#x} bytes"
            ),
            Self::RamOutsideBoard { owner, region } => {
                write!(
                    f,
                    "{owner}: RAM range {region} is not inside the board's RAM"
                )
            }
            Self::OverlappingRam {
                first,
                second,
                region,
            } => write!(f, "RAM of {second} {region} overlaps RAM of {first}"),
            Self::CpuOutsideBoard {
                partition,
                cpu,
                board_cpus,
            } => write!(
                f,
                "partition `{partition}` names CPU {cpu}, the board has CPUs 0-{}",
                board_cpus.saturating_sub(1)
            ),
            Self::CpuTwice { cpu, first, second } => {
                write!(f, "CPU {cpu} is given to `{first}` and to `{second}`")
            }
            Self::UnknownDevice { owner, device } => {
                write!(
                    f,
                    "{owner} names device `{device}`, which the board does not declare"
                )
            }
            Self::DuplicateDevice { device } => {
                write!(f, "board device `{device}` is declared twice")
            }
            Self::DeviceTwice {
                device,
                first,
                second,
            } => write!(f, "device `{device}` is given to {first} and to {second}"),
            Self::UnknownIrq { partition, irq } => write!(
                f,
                "partition `{partition}` names interrupt {irq}, which no board device raises"
            ),
            Self::IrqTwice { irq, first, second } => {
                write!(f, "interrupt {irq} is given to `{first}` and to `{second}`")
            }
            Self::BadDeviceIrq { device, irq } => write!(
                f,
                "device `{device}` declares interrupt {irq}; only SPIs (32-1019) can be owned"
            ),
            Self::BoardWithoutCpus => write!(f, "the board declares no CPU (`cpus = 0`)"),
            Self::TooManyCpus { partition, cpus } => write!(
                f,
                "partition `{partition}` has {cpus} CPUs; a partition has at most \
                 {MAX_PARTITION_CPUS} (an SGI names its source vCPU in 3 bits)"
            ),
            Self::SecondLinuxPartition { first, second } => write!(
                f,
                "partitions `{first}` and `{second}` are both Linux; only one Linux \
                 partition can have the emulated console"
            ),
            Self::ExitlessLinux { partition } => write!(
                f,
                "partition `{partition}` is Linux and asks for exitless_irqs; only an RT \
                 partition may take the physical CPU interface (it could send SGIs to \
                 every core)"
            ),
            Self::LoadNotAllowed { partition, why } => {
                write!(f, "partition `{partition}` sets load_from_linux, but {why}")
            }
            Self::FaultPolicyOnLinux { partition } => write!(
                f,
                "partition `{partition}` is Linux and sets on_fault; Linux's faults are \
                 answered inside Linux (it keeps running), so only an RT partition has a \
                 fault policy"
            ),
            Self::BadRestartLimit {
                partition,
                limit,
                on_fault: OnFault::Restart,
            } => write!(
                f,
                "partition `{partition}`: restart_limit {limit} is outside \
                 1..={MAX_RESTART_LIMIT}"
            ),
            Self::BadRestartLimit {
                partition,
                on_fault,
                ..
            } => write!(
                f,
                "partition `{partition}` sets restart_limit with on_fault = \"{}\"; it \
                 applies only to on_fault = \"restart\"",
                on_fault.name()
            ),
            Self::KernelOutsideHv { address, hv } => write!(
                f,
                "[sdcard] load_address {address:#x} is not a page inside hv's RAM {hv}"
            ),
            Self::ColoursNotAllowed { partition, why } => {
                write!(f, "partition `{partition}` has colours but {why}")
            }
            Self::ColourOutOfRange {
                partition,
                colour,
                colours,
            } => write!(
                f,
                "partition `{partition}` names colour {colour}; the board's cache has colours 0-{}",
                colours - 1
            ),
            Self::ColourTwice {
                colour,
                first,
                second,
            } => write!(f, "colour {colour} is given to `{first}` and to `{second}`"),
            Self::DoorbellLine { which, irq, user } => write!(
                f,
                "[channel.doorbells] {which} = {irq}: {user}; a doorbell needs an SPI \
                 (32-1019) no device, partition or other doorbell uses"
            ),
            Self::DoorbellWithoutPeer { missing } => write!(
                f,
                "[channel.doorbells] needs a Linux and an RT partition; the board has no \
                 {missing} partition"
            ),
            Self::DoorbellInterval { us } => write!(
                f,
                "[channel.doorbells] min_interval_us = {us} refused: must be within \
                 1..={MAX_DOORBELL_INTERVAL_US}"
            ),
        }
    }
}

impl Config {
    pub fn partition(&self, name: &str) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.name == name)
    }

    pub fn device(&self, name: &str) -> Option<&Device> {
        self.board.devices.iter().find(|d| d.name == name)
    }

    /// The partition that owns physical CPU `cpu`, if any.
    pub fn partition_of_cpu(&self, cpu: u32) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.cpus.contains(&cpu))
    }

    /// Checks every rule; returns the first violation found.
    ///
    /// Rules: at least one partition, unique names; every partition has CPUs and RAM; RAM
    /// ranges are non-empty, page aligned, inside the board's RAM and pairwise disjoint
    /// (hv's RAM included; a partition's `dtb_ram` windows likewise, but they may lie
    /// outside the board's RAM); each CPU exists and is owned once; devices exist and are owned
    /// once (the hv console counts as hv's); interrupt lines are SPIs some board device
    /// raises and are owned once (hv's console line is hv's); at most one Linux partition,
    /// never exit-less, with the default fault policy; `restart_limit` only with
    /// `on_fault = "restart"`, in 1..=[`MAX_RESTART_LIMIT`]; at most
    /// [`MAX_PARTITION_CPUS`] CPUs a partition; the board has CPUs; an SD card loads hv
    /// at a page inside hv's RAM; colours only on RT partitions of a board with a cache,
    /// without dtb_ram, existing, never given twice.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.partitions.is_empty() {
            return Err(ConfigError::NoPartitions);
        }
        if self.board.cpus == 0 {
            return Err(ConfigError::BoardWithoutCpus);
        }
        for (i, p) in self.partitions.iter().enumerate() {
            if self.partitions[..i].iter().any(|q| q.name == p.name) {
                return Err(ConfigError::DuplicatePartition {
                    name: p.name.clone(),
                });
            }
            if p.cpus.is_empty() {
                return Err(ConfigError::PartitionWithoutCpus {
                    partition: p.name.clone(),
                });
            }
            if p.ram.is_empty() {
                return Err(ConfigError::PartitionWithoutRam {
                    partition: p.name.clone(),
                });
            }
            if p.cpus.len() > MAX_PARTITION_CPUS {
                return Err(ConfigError::TooManyCpus {
                    partition: p.name.clone(),
                    cpus: p.cpus.len(),
                });
            }
            if let Some(limit) = p.restart_limit {
                let in_range = (1..=MAX_RESTART_LIMIT).contains(&limit);
                if p.on_fault != OnFault::Restart || !in_range {
                    return Err(ConfigError::BadRestartLimit {
                        partition: p.name.clone(),
                        limit,
                        on_fault: p.on_fault,
                    });
                }
            }
            if p.load_from_linux {
                let why = if p.kind == PartitionKind::Linux {
                    Some("it is Linux: only an RT partition is loaded from Linux")
                } else if p.exitless_irqs {
                    Some(
                        "it has exitless_irqs: hv stops a running vCPU by kicking its CPU, \
                         and an exit-less CPU takes the kick at EL1",
                    )
                } else if !self
                    .partitions
                    .iter()
                    .any(|q| q.kind == PartitionKind::Linux)
                {
                    Some("the board has no Linux partition to ask for it")
                } else {
                    None
                };
                if let Some(why) = why {
                    return Err(ConfigError::LoadNotAllowed {
                        partition: p.name.clone(),
                        why,
                    });
                }
            }
            if p.kind == PartitionKind::Linux {
                if p.on_fault != OnFault::default() {
                    return Err(ConfigError::FaultPolicyOnLinux {
                        partition: p.name.clone(),
                    });
                }
                if p.exitless_irqs {
                    return Err(ConfigError::ExitlessLinux {
                        partition: p.name.clone(),
                    });
                }
                let earlier = self.partitions[..i]
                    .iter()
                    .find(|q| q.kind == PartitionKind::Linux);
                if let Some(first) = earlier {
                    return Err(ConfigError::SecondLinuxPartition {
                        first: first.name.clone(),
                        second: p.name.clone(),
                    });
                }
            }
        }
        self.validate_ram()?;
        self.validate_colours()?;
        self.validate_cpus()?;
        self.validate_devices()?;
        self.validate_irqs()?;
        self.validate_doorbells()
    }

    /// The doorbell lines are SPIs no board device raises (that covers hv's console and
    /// every partition's lines), distinct from each other, between a Linux and an RT
    /// partition, with a sane minimum interval.
    fn validate_doorbells(&self) -> Result<(), ConfigError> {
        let Some(d) = self.channel.as_ref().and_then(|c| c.doorbells) else {
            return Ok(());
        };
        for kind in [PartitionKind::Linux, PartitionKind::Rt] {
            if !self.partitions.iter().any(|p| p.kind == kind) {
                return Err(ConfigError::DoorbellWithoutPeer {
                    missing: match kind {
                        PartitionKind::Linux => "Linux",
                        PartitionKind::Rt => "RT",
                    },
                });
            }
        }
        if d.min_interval_us == 0 || d.min_interval_us > MAX_DOORBELL_INTERVAL_US {
            return Err(ConfigError::DoorbellInterval {
                us: d.min_interval_us,
            });
        }
        for (which, irq, other) in [
            ("to_rt", d.to_rt, d.to_linux),
            ("to_linux", d.to_linux, d.to_rt),
        ] {
            let refuse = |user: String| ConfigError::DoorbellLine { which, irq, user };
            if !(32..1020).contains(&irq) {
                return Err(refuse(String::from("not an SPI")));
            }
            if irq == other {
                return Err(refuse(String::from("the other doorbell's line")));
            }
            if let Some(dev) = self.board.devices.iter().find(|d| d.irqs.contains(&irq)) {
                let user = if dev.name == self.hv.console {
                    alloc::format!("the line of hv's console `{}`", dev.name)
                } else {
                    alloc::format!("the line of device `{}`", dev.name)
                };
                return Err(refuse(user));
            }
            if let Some(p) = self.partitions.iter().find(|p| p.irqs.contains(&irq)) {
                return Err(refuse(alloc::format!("a line of partition `{}`", p.name)));
            }
        }
        Ok(())
    }

    fn validate_ram(&self) -> Result<(), ConfigError> {
        let mut owned: Vec<(String, Region)> = Vec::new();
        owned.push((String::from("hv"), self.hv.ram));
        if let Some(channel) = &self.channel {
            owned.push((String::from("channel"), channel.ram));
        }
        for p in &self.partitions {
            for r in &p.ram {
                owned.push((alloc::format!("partition `{}`", p.name), *r));
            }
        }
        // RAM a partition takes from the DTB: anywhere outside everybody's fixed RAM,
        // board RAM or not (checked below with the fixed RAM, less the board rule).
        let fixed = owned.len();
        for p in &self.partitions {
            for r in &p.dtb_ram {
                owned.push((alloc::format!("partition `{}` (dtb_ram)", p.name), *r));
            }
        }
        for (i, (owner, region)) in owned.iter().enumerate() {
            if region.size == 0 || region.end().is_none() {
                return Err(ConfigError::EmptyRegion {
                    owner: owner.clone(),
                    region: *region,
                });
            }
            if region.base % PAGE_SIZE != 0 || region.size % PAGE_SIZE != 0 {
                return Err(ConfigError::MisalignedRegion {
                    owner: owner.clone(),
                    region: *region,
                });
            }
            if i < fixed && !self.board.ram.iter().any(|b| b.contains(region)) {
                return Err(ConfigError::RamOutsideBoard {
                    owner: owner.clone(),
                    region: *region,
                });
            }
            if let Some((first, _)) = owned[..i].iter().find(|(_, r)| r.overlaps(region)) {
                return Err(ConfigError::OverlappingRam {
                    first: first.clone(),
                    second: owner.clone(),
                    region: *region,
                });
            }
        }
        Ok(())
    }

    fn validate_colours(&self) -> Result<(), ConfigError> {
        let mut owners: Vec<(u64, &str)> = Vec::new();
        for p in self.partitions.iter().filter(|p| !p.colours.is_empty()) {
            let refuse = |why| ConfigError::ColoursNotAllowed {
                partition: p.name.clone(),
                why,
            };
            let Some(cache) = self.board.cache else {
                return Err(refuse("the board declares no [board] cache"));
            };
            if p.kind == PartitionKind::Linux {
                return Err(refuse("it is Linux (only an RT partition may be coloured)"));
            }
            if !p.dtb_ram.is_empty() {
                return Err(refuse("it also takes dtb_ram"));
            }
            for &colour in &p.colours {
                if colour >= cache.colours() || colour >= 64 {
                    return Err(ConfigError::ColourOutOfRange {
                        partition: p.name.clone(),
                        colour,
                        colours: cache.colours(),
                    });
                }
                if let Some((_, first)) = owners.iter().find(|(c, _)| *c == colour) {
                    return Err(ConfigError::ColourTwice {
                        colour,
                        first: String::from(*first),
                        second: p.name.clone(),
                    });
                }
                owners.push((colour, &p.name));
            }
        }
        Ok(())
    }

    fn validate_cpus(&self) -> Result<(), ConfigError> {
        let mut owner: Vec<Option<&str>> = alloc::vec![None; self.board.cpus as usize];
        for p in &self.partitions {
            for &cpu in &p.cpus {
                let slot =
                    owner
                        .get_mut(cpu as usize)
                        .ok_or_else(|| ConfigError::CpuOutsideBoard {
                            partition: p.name.clone(),
                            cpu,
                            board_cpus: self.board.cpus,
                        })?;
                if let Some(first) = slot {
                    return Err(ConfigError::CpuTwice {
                        cpu,
                        first: String::from(*first),
                        second: p.name.clone(),
                    });
                }
                *slot = Some(&p.name);
            }
        }
        Ok(())
    }

    fn validate_devices(&self) -> Result<(), ConfigError> {
        for (i, d) in self.board.devices.iter().enumerate() {
            if self.board.devices[..i].iter().any(|e| e.name == d.name) {
                return Err(ConfigError::DuplicateDevice {
                    device: d.name.clone(),
                });
            }
            if let Some(&irq) = d.irqs.iter().find(|&&irq| !(32..1020).contains(&irq)) {
                return Err(ConfigError::BadDeviceIrq {
                    device: d.name.clone(),
                    irq,
                });
            }
        }
        if self.device(&self.hv.console).is_none() {
            return Err(ConfigError::UnknownDevice {
                owner: String::from("hv (console)"),
                device: self.hv.console.clone(),
            });
        }
        let mut owners: Vec<(&str, String)> =
            alloc::vec![(self.hv.console.as_str(), String::from("hv (console)"))];
        for p in &self.partitions {
            for dev in &p.devices {
                let owner = alloc::format!("partition `{}`", p.name);
                if self.device(dev).is_none() {
                    return Err(ConfigError::UnknownDevice {
                        owner,
                        device: dev.clone(),
                    });
                }
                if let Some((_, first)) = owners.iter().find(|(d, _)| d == dev) {
                    return Err(ConfigError::DeviceTwice {
                        device: dev.clone(),
                        first: first.clone(),
                        second: owner,
                    });
                }
                owners.push((dev, owner));
            }
        }
        Ok(())
    }

    fn validate_irqs(&self) -> Result<(), ConfigError> {
        // hv's console line is hv's: a partition that owned it could silence hv's UART.
        let mut owners: Vec<(u32, &str)> = self
            .device(&self.hv.console)
            .map(|d| d.irqs.iter().map(|&irq| (irq, "hv (console)")).collect())
            .unwrap_or_default();
        for p in &self.partitions {
            for &irq in &p.irqs {
                if !self.board.devices.iter().any(|d| d.irqs.contains(&irq)) {
                    return Err(ConfigError::UnknownIrq {
                        partition: p.name.clone(),
                        irq,
                    });
                }
                if let Some((_, first)) = owners.iter().find(|(i, _)| *i == irq) {
                    return Err(ConfigError::IrqTwice {
                        irq,
                        first: String::from(*first),
                        second: p.name.clone(),
                    });
                }
                owners.push((irq, &p.name));
            }
        }
        if let Some(card) = &self.sdcard {
            let hv = self.hv.ram;
            let inside = card.load_address >= hv.base
                && card.load_address - hv.base < hv.size
                && card.load_address % PAGE_SIZE == 0;
            if !inside {
                return Err(ConfigError::KernelOutsideHv {
                    address: card.load_address,
                    hv,
                });
            }
        }
        Ok(())
    }

    /// Encodes the config for the system image (read back by [`Config::decode`]).
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain owned data into a Vec cannot fail.
        postcard::to_allocvec(self).expect("config serializes")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

#[cfg(feature = "std")]
impl Config {
    /// Parses a board file (TOML) and validates it.
    pub fn from_toml(text: &str) -> Result<Self, std::string::String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }
}
