//! The emulated GIC distributor (GICD) one partition sees, for GICv2 and GICv3.
//!
//! hv owns the physical GIC. A partition's stage 2 leaves the GICD frame unmapped, so its
//! accesses trap as data aborts and the arch code hands them to [`VgicDistributor::read`]
//! and [`VgicDistributor::write`]. This module owns the partition's *virtual* distributor
//! state (enable, pending, active, priority, trigger, targets/routing, the virtual
//! GICD_CTLR) and the decision of what each guest write means physically. A write returns
//! [`Effects`]: the actions the arch driver then applies to the real GICD (or, for banked
//! SGI/PPI state on GICv2, to the banked registers of one named physical CPU). The trap
//! path uses [`VgicDistributor::write_each`] instead, which hands over the same effects
//! one by one without building the list.
//!
//! It must never touch hardware, and it must never produce an effect that names an
//! interrupt line the partition does not own or a physical CPU outside the partition,
//! whatever the guest writes. Lines the partition does not own read as zero and writes
//! to them are dropped and counted ([`VgicStats`]). Bad widths, misaligned or out-of-frame
//! offsets are [`AccessError`]s (a guest fault for the arch side), never panics.
//!
//! Virtual CPU numbering follows the rest of hv: vCPU `i` runs on physical CPU
//! `vcpu_to_cpu[i]`, its virtual MPIDR has Aff0 = `i` and Aff1-3 = 0. Effects name
//! physical CPUs by their hv index (DTB order, MPIDR Aff0 on supported boards); turning
//! that into a GICv2 CPU-interface mask or a GICv3 affinity is the arch driver's job.
//!
//! Sources (facts only: offsets, field positions): GICv2 = Arm IHI 0048B, section 4
//! "Distributor register descriptions"; GICv3 = Arm IHI 0069, chapter 12 "GIC Distributor
//! register map" and ICC_SGI1R_EL1. On GICv3 the model reports a single security state
//! with affinity routing (GICD_CTLR.DS = ARE = 1), so SGIs and PPIs live in the
//! redistributors and the distributor's INTID 0-31 fields are RAZ/WI here.
//!
//! GICv3 redistributors (one 128 KiB frame per vCPU, with that vCPU's banked SGI/PPI
//! state) are emulated too, in the child module `vgic_redist.rs`
//! ([`VgicDistributor::read_redist`], [`VgicDistributor::write_redist`]); the banked
//! state is shared, so [`VgicDistributor::line_enabled`] and the notes cover INTIDs 0-31
//! on both versions.
//!
//! Portable and host-tested; no allocation on the access paths (effects come back in a
//! fixed-capacity list, since one access can touch at most 32 lines, or one by one).

#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::fmt;
use core::ops::Deref;

use platform::config::GicVersion;

// The GICv3 redistributor frames: a child module so it shares the banked state and the
// bitmap/priority/config logic without widening their visibility.
// `crate::vgic::redist::REDIST_FRAME` is the per-vCPU frame size.
#[path = "vgic_redist.rs"]
pub(crate) mod redist;

/// Size of the GICv2 distributor frame (4 KiB).
pub const FRAME_V2: u64 = 0x1000;
/// Size of the GICv3 distributor frame (64 KiB).
pub const FRAME_V3: u64 = 0x1_0000;

// Register offsets (IHI 0048B table 4-1; IHI 0069 distributor register map).
const CTLR: u64 = 0x000;
const TYPER: u64 = 0x004;
const IIDR: u64 = 0x008;
const IGROUPR: u64 = 0x080;
/// ISENABLER, ICENABLER, ISPENDR, ICPENDR, ISACTIVER, ICACTIVER: six 0x80-byte banks.
const BITMAPS: u64 = 0x100;
const BITMAPS_END: u64 = 0x400;
/// Size of each of those banks.
const BITMAP_BANK: u64 = 0x80;
const IPRIORITYR: u64 = 0x400;
const ITARGETSR: u64 = 0x800;
const ICFGR: u64 = 0xc00;
const ICFGR_END: u64 = 0xd00;
const SGIR: u64 = 0xf00;
/// GICv3 GICD_IROUTER<n> at 0x6000 + 8n (n = 32..1019 meaningful).
const IROUTER: u64 = 0x6000;
const IROUTER_END: u64 = 0x8000;
/// Peripheral ID2: 0xFE8 in the 4 KiB GICv2 frame, 0xFFE8 in the 64 KiB GICv3 frame.
const PIDR2_V2: u64 = 0xfe8;
const PIDR2_V3: u64 = 0xffe8;

/// GICD_CTLR bits in the single-security-state GICv3 view.
const CTLR_V3_ENABLE_MASK: u32 = 0b11; // EnableGrp0, EnableGrp1
const CTLR_V3_ARE: u32 = 1 << 4;
const CTLR_V3_DS: u32 = 1 << 6;
/// GICv2 GICD_CTLR bit 0 (Enable, the non-secure view).
const CTLR_V2_ENABLE: u32 = 1;

/// GICD_IIDR reported to guests: ProductID [31:24] = 0x42 ('B', Bulkhead), Variant and
/// Revision 0, Implementer [11:0] = 0x43B (the Arm JEP106 code the GIC registers use).
pub const IIDR_VALUE: u32 = (0x42 << 24) | 0x43b;

/// GICv3 ICC_SGI1R_EL1 / IROUTER fields (IHI 0069).
const IROUTER_IRM: u64 = 1 << 31;
/// Aff0-2 [23:0], IRM [31], Aff3 [39:32]; everything else is RES0.
const IROUTER_DEFINED: u64 = 0xff_8000_0000 | 0xff_ffff;

/// PPIs hv keeps for itself unless told otherwise: the GIC maintenance interrupt
/// (PPI 9 = INTID 25) and the EL2 physical timer (PPI 10 = INTID 26).
pub const DEFAULT_HV_PRIVATE: u32 = (1 << 25) | (1 << 26);

/// At most this many effects come out of one access (a 32-bit set/clear register).
pub const MAX_EFFECTS: usize = 32;

/// Width of a guest access, as the data abort syndrome gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessWidth {
    Byte,
    Half,
    Word,
    Double,
}

impl AccessWidth {
    /// From a size in bytes (`esr::DataAbort::size`).
    pub fn from_bytes(bytes: u8) -> Option<Self> {
        match bytes {
            1 => Some(Self::Byte),
            2 => Some(Self::Half),
            4 => Some(Self::Word),
            8 => Some(Self::Double),
            _ => None,
        }
    }

    pub fn bytes(self) -> u64 {
        match self {
            Self::Byte => 1,
            Self::Half => 2,
            Self::Word => 4,
            Self::Double => 8,
        }
    }

    pub fn mask(self) -> u64 {
        match self {
            Self::Double => u64::MAX,
            w => (1 << (8 * w.bytes())) - 1,
        }
    }
}

/// Why an access was refused; the arch side turns this into a fault for the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessError {
    /// The register does not support this access size.
    BadWidth { offset: u64, width: AccessWidth },
    /// The offset is not a multiple of the access size.
    Misaligned { offset: u64, width: AccessWidth },
    /// The offset lies beyond the distributor frame.
    OutsideFrame { offset: u64 },
    /// hv asked on behalf of a vCPU the partition does not have (an hv bug).
    NoSuchVcpu { vcpu: usize },
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadWidth { offset, width } => {
                write!(f, "GICD {offset:#x}: {width:?} access not supported")
            }
            Self::Misaligned { offset, width } => {
                write!(f, "GICD {offset:#x}: misaligned {width:?} access")
            }
            Self::OutsideFrame { offset } => write!(f, "GICD {offset:#x}: outside the frame"),
            Self::NoSuchVcpu { vcpu } => write!(f, "vCPU {vcpu} is not in the partition"),
        }
    }
}

/// A partition description the model cannot represent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    NoVcpus,
    /// GICv2 addresses at most 8 CPU interfaces; the CPU set is limited to 64 CPUs.
    TooManyVcpus(usize),
    /// Physical CPU index >= 64.
    CpuOutOfRange(u32),
    DuplicateCpu(u32),
    /// `lines` must be 32..=1024.
    BadLineCount(u32),
    /// An owned interrupt that is not an SPI below min(lines, 1020).
    NotAnSpi(u32),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoVcpus => write!(f, "partition has no vCPUs"),
            Self::TooManyVcpus(n) => write!(f, "{n} vCPUs is more than the GIC can target"),
            Self::CpuOutOfRange(c) => write!(f, "physical CPU {c} is out of range"),
            Self::DuplicateCpu(c) => write!(f, "physical CPU {c} given twice"),
            Self::BadLineCount(n) => write!(f, "{n} interrupt lines is not in 32..=1024"),
            Self::NotAnSpi(i) => write!(f, "INTID {i} is not an SPI of this GIC"),
        }
    }
}

/// A set of physical CPUs (hv indices below 64).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuSet(u64);

impl CpuSet {
    pub const fn empty() -> Self {
        Self(0)
    }

    pub fn bits(self) -> u64 {
        self.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn contains(self, cpu: u32) -> bool {
        cpu < 64 && self.0 & (1 << cpu) != 0
    }

    fn insert(&mut self, cpu: u32) {
        if cpu < 64 {
            self.0 |= 1 << cpu;
        }
    }

    pub fn iter(self) -> impl Iterator<Item = u32> {
        (0..64).filter(move |&c| self.0 & (1 << c) != 0)
    }
}

/// An interrupt line on the physical GIC as an effect names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irq {
    pub intid: u32,
    /// `Some(cpu)`: the banked SGI/PPI copy (INTID < 32) of that physical CPU (GICv2
    /// banked GICD registers, written from that CPU). `None`: a shared line (SPI).
    pub cpu: Option<u32>,
}

/// One physical action on the real distributor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Enable(Irq),
    Disable(Irq),
    SetPending(Irq),
    ClearPending(Irq),
    SetActive(Irq),
    ClearActive(Irq),
    SetPriority {
        irq: Irq,
        priority: u8,
    },
    /// `edge`: edge-triggered, else level-sensitive.
    SetConfig {
        irq: Irq,
        edge: bool,
    },
    /// GICv2 ITARGETSR of an SPI: deliver to these physical CPUs (may be empty).
    Target {
        intid: u32,
        cpus: CpuSet,
    },
    /// GICv3 IROUTER of an SPI: deliver to this physical CPU (never 1-of-N).
    Route {
        intid: u32,
        cpu: u32,
    },
    /// Send SGI `intid` to these physical CPUs (all in the partition, never empty).
    SendSgi {
        intid: u32,
        cpus: CpuSet,
    },
}

impl Effect {
    /// The line a per-line effect acts on; `None` for targets, routes and SGIs.
    pub fn irq(&self) -> Option<Irq> {
        match *self {
            Effect::Enable(irq)
            | Effect::Disable(irq)
            | Effect::SetPending(irq)
            | Effect::ClearPending(irq)
            | Effect::SetActive(irq)
            | Effect::ClearActive(irq)
            | Effect::SetPriority { irq, .. }
            | Effect::SetConfig { irq, .. } => Some(irq),
            Effect::Target { .. } | Effect::Route { .. } | Effect::SendSgi { .. } => None,
        }
    }

    /// Whether the effect is on a banked (per-CPU) SGI/PPI register: on GICv2 only its
    /// own CPU can write it (banked GICD); on GICv3 it is in that CPU's redistributor.
    pub fn is_banked(&self) -> bool {
        self.irq().is_some_and(|irq| irq.cpu.is_some())
    }
}

/// The effects of one access: a fixed-capacity list (no allocation on the trap path).
#[derive(Clone, Copy)]
pub struct Effects {
    items: [Effect; MAX_EFFECTS],
    len: usize,
}

impl Effects {
    const PLACEHOLDER: Effect = Effect::Enable(Irq {
        intid: 0,
        cpu: None,
    });

    fn new() -> Self {
        Self {
            items: [Self::PLACEHOLDER; MAX_EFFECTS],
            len: 0,
        }
    }

    /// What a `write_each`-shaped `write` hands over, as a list.
    fn collect(
        write: impl FnOnce(&mut Self) -> Result<(), AccessError>,
    ) -> Result<Self, AccessError> {
        let mut effects = Self::new();
        write(&mut effects)?;
        Ok(effects)
    }

    fn push(&mut self, effect: Effect) {
        // One access touches at most 32 lines, so the list never fills; should it ever,
        // dropping is the safe side (no physical action) and stays panic-free.
        debug_assert!(self.len < MAX_EFFECTS);
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = effect;
            self.len += 1;
        }
    }
}

impl Deref for Effects {
    type Target = [Effect];

    fn deref(&self) -> &[Effect] {
        &self.items[..self.len]
    }
}

impl<'a> IntoIterator for &'a Effects {
    type Item = &'a Effect;
    type IntoIter = core::slice::Iter<'a, Effect>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Debug for Effects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Writes the model dropped, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VgicStats {
    /// Writes that tried to change a line the partition does not own: a 1 in a
    /// set/clear register, or a non-zero priority/target/config/route field. (Foreign
    /// fields read as zero, so a read-modify-write of a shared register is not counted.)
    pub foreign_lines: u64,
    /// Writes naming a CPU outside the partition (targets, routes, SGI target lists).
    pub foreign_cpus: u64,
    /// Writes to reserved or unimplemented offsets and to read-only registers.
    pub reserved: u64,
}

/// The set/clear bitmap registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BitOp {
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
}

/// A decoded distributor offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reg {
    Ctlr,
    Typer,
    Iidr,
    Pidr2,
    Group { word: usize },
    Bits { op: BitOp, word: usize },
    Priority { first: u32 },
    Targets { first: u32 },
    Config { index: u32 },
    Sgir,
    Router { intid: u32, high: bool },
    Reserved,
}

/// Banked SGI/PPI state of one vCPU (INTID 0-31; bit n = INTID n): the GICv2 banked
/// GICD registers, or the SGI_base frame of the vCPU's GICv3 redistributor. Like a
/// redistributor after reset (IHI 0069 leaves most reset values IMPLEMENTATION DEFINED;
/// hv picks 0): every line disabled, not pending, inactive, level (SGIs read as edge),
/// priority 0.
#[derive(Clone, Debug)]
struct Banked {
    enabled: u32,
    pending: u32,
    active: u32,
    /// Edge-triggered PPIs (SGIs are always edge).
    edge: u32,
    priority: [u8; 32],
}

impl Banked {
    fn new() -> Self {
        Self {
            enabled: 0,
            pending: 0,
            active: 0,
            edge: 0,
            priority: [0; 32],
        }
    }

    fn field(&self, field: Field) -> &u32 {
        match field {
            Field::Enabled => &self.enabled,
            Field::Pending => &self.pending,
            Field::Active => &self.active,
        }
    }

    fn field_mut(&mut self, field: Field) -> &mut u32 {
        match field {
            Field::Enabled => &mut self.enabled,
            Field::Pending => &mut self.pending,
            Field::Active => &mut self.active,
        }
    }
}

/// The distributor of one partition. `Clone` keeps a pristine copy for partition reset.
#[derive(Clone)]
pub struct VgicDistributor {
    version: GicVersion,
    /// Implemented INTIDs, a multiple of 32.
    lines: u32,
    /// Physical CPU of each vCPU.
    cpus: Vec<u32>,
    /// Per 32-line word: the SPIs the partition owns (word 0 is always 0).
    owned: Vec<u32>,
    enabled: Vec<u32>,
    pending: Vec<u32>,
    active: Vec<u32>,
    edge: Vec<u32>,
    /// Per INTID (SPIs only).
    priority: Vec<u8>,
    /// GICv2: virtual CPU-target mask per SPI.
    targets: Vec<u8>,
    /// GICv3: virtual IROUTER value per SPI (always a valid route).
    route: Vec<u64>,
    /// Banked SGI/PPI state per vCPU (GICv2 distributor, GICv3 redistributors).
    banked: Vec<Banked>,
    /// INTIDs 0-31 hv keeps: invisible to the guest in every frame.
    hv_private: u32,
    /// The owned SPI whose device hv emulates (a Linux partition's console UART): the
    /// guest configures it like any of its lines, but no physical line stands behind it,
    /// so none of its effects leave the model.
    emulated_spi: Option<u32>,
    /// GICv3 GICR_WAKER.ProcessorSleep per vCPU (bit i = vCPU i); set at reset, as on
    /// hardware, until the guest wakes its redistributor.
    processor_sleep: u64,
    ctlr: u32,
    stats: VgicStats,
}

impl VgicDistributor {
    /// A distributor for a partition owning `owned_spis` (INTIDs) whose vCPU `i` runs on
    /// physical CPU `vcpu_to_cpu[i]`. `lines` is the physical GIC's INTID count
    /// (32 * (GICD_TYPER.ITLinesNumber + 1)). Owned SPIs start disabled, inactive, not
    /// pending, priority 0, level-sensitive and targeted at vCPU 0; hv's private lines are
    /// [`DEFAULT_HV_PRIVATE`]. [`Self::reset_effects`] gives the matching physical setup.
    pub fn new(
        version: GicVersion,
        lines: u32,
        owned_spis: &[u32],
        vcpu_to_cpu: &[u32],
    ) -> Result<Self, SetupError> {
        if !(32..=1024).contains(&lines) {
            return Err(SetupError::BadLineCount(lines));
        }
        let n = vcpu_to_cpu.len();
        if n == 0 {
            return Err(SetupError::NoVcpus);
        }
        let max_vcpus = match version {
            GicVersion::V2 => 8,
            GicVersion::V3 => 64,
        };
        if n > max_vcpus {
            return Err(SetupError::TooManyVcpus(n));
        }
        for (i, &cpu) in vcpu_to_cpu.iter().enumerate() {
            if cpu >= 64 {
                return Err(SetupError::CpuOutOfRange(cpu));
            }
            if vcpu_to_cpu[..i].contains(&cpu) {
                return Err(SetupError::DuplicateCpu(cpu));
            }
        }
        let lines = lines.next_multiple_of(32);
        let words = (lines / 32) as usize;
        let mut owned = alloc::vec![0u32; words];
        let mut targets = alloc::vec![0u8; lines as usize];
        for &spi in owned_spis {
            if spi < 32 || spi >= lines.min(1020) {
                return Err(SetupError::NotAnSpi(spi));
            }
            owned[(spi / 32) as usize] |= 1 << (spi % 32);
            targets[spi as usize] = 1;
        }
        Ok(Self {
            version,
            lines,
            cpus: vcpu_to_cpu.to_vec(),
            owned,
            enabled: alloc::vec![0; words],
            pending: alloc::vec![0; words],
            active: alloc::vec![0; words],
            edge: alloc::vec![0; words],
            priority: alloc::vec![0; lines as usize],
            targets,
            route: alloc::vec![0; lines as usize],
            banked: alloc::vec![Banked::new(); n],
            hv_private: DEFAULT_HV_PRIVATE,
            emulated_spi: None,
            ctlr: 0,
            processor_sleep: u64::MAX >> (64 - n),
            stats: VgicStats::default(),
        })
    }

    /// Replaces the set of INTIDs 0-31 hv keeps for itself (bit n = INTID n); the guest
    /// neither sees nor configures them (GICv2 distributor, GICv3 redistributors), nor
    /// sends those SGIs.
    pub fn with_hv_private(mut self, mask: u32) -> Self {
        self.hv_private = mask;
        self
    }

    /// Makes owned SPI `intid` one whose device hv emulates (see `emulated_spi`); an SPI
    /// the partition does not own is refused.
    pub fn with_emulated_spi(mut self, intid: u32) -> Result<Self, SetupError> {
        if !self.owns_spi(intid) {
            return Err(SetupError::NotAnSpi(intid));
        }
        self.emulated_spi = Some(intid);
        Ok(self)
    }

    /// Whether `intid` is the partition's emulated SPI (it has no physical line).
    pub fn is_emulated(&self, intid: u32) -> bool {
        self.emulated_spi == Some(intid)
    }

    /// Whether `effect` may reach the physical GIC: not when it names the emulated SPI.
    fn reaches_hardware(emulated_spi: Option<u32>, effect: &Effect) -> bool {
        let intid = match *effect {
            Effect::Target { intid, .. } | Effect::Route { intid, .. } => Some(intid),
            ref other => other.irq().map(|irq| irq.intid),
        };
        emulated_spi.is_none() || intid != emulated_spi
    }

    pub fn version(&self) -> GicVersion {
        self.version
    }

    pub fn vcpu_count(&self) -> usize {
        self.cpus.len()
    }

    /// Size of the frame this model answers for.
    pub fn frame_size(&self) -> u64 {
        match self.version {
            GicVersion::V2 => FRAME_V2,
            GicVersion::V3 => FRAME_V3,
        }
    }

    pub fn stats(&self) -> VgicStats {
        self.stats
    }

    /// All writes dropped so far (foreign lines, foreign CPUs, reserved offsets).
    pub fn ignored_writes(&self) -> u64 {
        self.stats.foreign_lines + self.stats.foreign_cpus + self.stats.reserved
    }

    /// True when the guest enabled its virtual distributor (any group): the arch side
    /// injects nothing while it is off.
    pub fn distributor_enabled(&self) -> bool {
        self.ctlr != 0
    }

    /// Whether `intid` is an SPI of this partition.
    pub fn owns_spi(&self, intid: u32) -> bool {
        intid >= 32 && self.word_bit(self.owned.as_slice(), intid)
    }

    /// Whether the guest has `intid` enabled in its view (banked lines: on `vcpu`).
    pub fn line_enabled(&self, intid: u32, vcpu: usize) -> bool {
        if !self.guest_line(intid) {
            return false;
        }
        match self.banked_of(intid, vcpu) {
            Some(b) => b.enabled & (1 << intid) != 0,
            None => self.word_bit(&self.enabled, intid),
        }
    }

    /// The arch side keeps the guest's pending view in step with what it injected or the
    /// guest acknowledged. Returns false (and changes nothing) for lines not the
    /// partition's.
    pub fn note_pending(&mut self, intid: u32, vcpu: usize, pending: bool) -> bool {
        self.note(intid, vcpu, pending, |b| &mut b.pending, |s| &mut s.pending)
    }

    /// As [`Self::note_pending`], for the active state.
    pub fn note_active(&mut self, intid: u32, vcpu: usize, active: bool) -> bool {
        self.note(intid, vcpu, active, |b| &mut b.active, |s| &mut s.active)
    }

    fn note(
        &mut self,
        intid: u32,
        vcpu: usize,
        set: bool,
        banked: fn(&mut Banked) -> &mut u32,
        shared: fn(&mut Self) -> &mut Vec<u32>,
    ) -> bool {
        if !self.guest_line(intid) || vcpu >= self.cpus.len() {
            return false;
        }
        let bit = 1u32 << (intid % 32);
        let word = if intid < 32 {
            match self.banked.get_mut(vcpu) {
                Some(b) => banked(b),
                None => return false,
            }
        } else {
            match shared(self).get_mut((intid / 32) as usize) {
                Some(w) => w,
                None => return false,
            }
        };
        if set {
            *word |= bit;
        } else {
            *word &= !bit;
        }
        true
    }

    /// The physical setup matching the initial virtual state, for partition (re)start:
    /// each owned SPI disabled, not pending, inactive, priority 0, level, delivered to
    /// vCPU 0's CPU; also each vCPU's banked lines that reach its CPU (GICv2: SGIs and
    /// PPIs; GICv3: PPIs only, SGIs are virtual) except hv's, disabled, inactive,
    /// priority 0 and (PPIs) not pending. Banked effects name the vCPU's CPU.
    pub fn reset_effects(&self, mut apply: impl FnMut(Effect)) {
        let mut apply = |effect: Effect| {
            if Self::reaches_hardware(self.emulated_spi, &effect) {
                apply(effect);
            }
        };
        let cpu0 = self.cpus[0];
        for intid in (32..self.lines).filter(|&i| self.owns_spi(i)) {
            let irq = Irq { intid, cpu: None };
            apply(Effect::Disable(irq));
            apply(Effect::ClearPending(irq));
            apply(Effect::ClearActive(irq));
            apply(Effect::SetPriority { irq, priority: 0 });
            apply(Effect::SetConfig { irq, edge: false });
            match self.version {
                GicVersion::V2 => {
                    let mut cpus = CpuSet::empty();
                    cpus.insert(cpu0);
                    apply(Effect::Target { intid, cpus });
                }
                GicVersion::V3 => apply(Effect::Route { intid, cpu: cpu0 }),
            }
        }
        let first_banked = match self.version {
            GicVersion::V2 => 0,
            GicVersion::V3 => 16,
        };
        for &cpu in &self.cpus {
            for intid in (first_banked..32).filter(|i| self.hv_private & (1 << i) == 0) {
                let irq = Irq {
                    intid,
                    cpu: Some(cpu),
                };
                apply(Effect::Disable(irq));
                if intid >= 16 {
                    apply(Effect::ClearPending(irq));
                }
                apply(Effect::ClearActive(irq));
                apply(Effect::SetPriority { irq, priority: 0 });
            }
        }
    }

    /// A guest read of `width` at `offset` in the GICD frame by `accessing_vcpu`.
    pub fn read(
        &self,
        offset: u64,
        width: AccessWidth,
        accessing_vcpu: usize,
    ) -> Result<u64, AccessError> {
        let reg = self.decode(offset, width, accessing_vcpu)?;
        let vcpu = accessing_vcpu;
        let value = match reg {
            Reg::Ctlr => u64::from(match self.version {
                GicVersion::V2 => self.ctlr & CTLR_V2_ENABLE,
                GicVersion::V3 => self.ctlr | CTLR_V3_ARE | CTLR_V3_DS,
            }),
            Reg::Typer => u64::from(self.typer()),
            Reg::Iidr => u64::from(IIDR_VALUE),
            Reg::Pidr2 => u64::from(self.pidr2()),
            Reg::Group { word } => u64::from(self.visible_mask(View::Distributor, word)),
            Reg::Bits { op, word } => u64::from(self.read_bits(View::Distributor, op, word, vcpu)),
            Reg::Priority { first } => self.read_priority(View::Distributor, first, width, vcpu),
            Reg::Targets { first } => self.read_bytes(View::Distributor, first, width, |intid| {
                if intid < 32 {
                    1 << vcpu
                } else {
                    self.targets[intid as usize]
                }
            }),
            Reg::Config { index } => u64::from(self.read_config(View::Distributor, index, vcpu)),
            Reg::Sgir => 0,
            Reg::Router { intid, high } => {
                let route = if self.visible(View::Distributor, intid) {
                    self.route[intid as usize]
                } else {
                    0
                };
                match (width, high) {
                    (AccessWidth::Double, _) => route,
                    (_, false) => route & 0xffff_ffff,
                    (_, true) => route >> 32,
                }
            }
            Reg::Reserved => 0,
        };
        Ok(value)
    }

    /// A guest write of `value` (its low `width` bytes) at `offset` by `accessing_vcpu`.
    /// Returns the physical actions to apply; state visible to later reads is updated.
    pub fn write(
        &mut self,
        offset: u64,
        width: AccessWidth,
        value: u64,
        accessing_vcpu: usize,
    ) -> Result<Effects, AccessError> {
        Effects::collect(|out| {
            self.write_each(offset, width, value, accessing_vcpu, |e| out.push(e))
        })
    }

    /// [`Self::write`] for the trap path: each effect goes to `apply` as soon as it is
    /// decided, in the order `write` would list it, and nothing is collected. (An
    /// [`Effects`] list is 520 bytes: zeroing it and copying it out twice made a trapped
    /// write cost 1269 instructions on target instead of 469.) One access yields at most
    /// one [`Effect::SendSgi`] (a GICD_SGIR write). On an error `apply` is never called
    /// and the model is unchanged.
    pub fn write_each(
        &mut self,
        offset: u64,
        width: AccessWidth,
        value: u64,
        accessing_vcpu: usize,
        mut apply: impl FnMut(Effect),
    ) -> Result<(), AccessError> {
        let reg = self.decode(offset, width, accessing_vcpu)?;
        let value = value & width.mask();
        let vcpu = accessing_vcpu;
        let emulated_spi = self.emulated_spi;
        let mut physical_only = |effect: Effect| {
            if Self::reaches_hardware(emulated_spi, &effect) {
                apply(effect);
            }
        };
        let out = &mut physical_only;
        match reg {
            Reg::Ctlr => {
                self.ctlr = match self.version {
                    GicVersion::V2 => value as u32 & CTLR_V2_ENABLE,
                    GicVersion::V3 => value as u32 & CTLR_V3_ENABLE_MASK,
                };
            }
            Reg::Typer | Reg::Iidr | Reg::Pidr2 | Reg::Reserved => self.stats.reserved += 1,
            // Group 1 for every visible line, read-as-one/write-ignored.
            Reg::Group { .. } => {}
            Reg::Bits { op, word } => {
                self.write_bits(View::Distributor, op, word, value as u32, vcpu, out)
            }
            Reg::Priority { first } => {
                self.write_priority(View::Distributor, first, width, value, vcpu, out)
            }
            Reg::Targets { first } => self.write_targets(first, width, value, out),
            Reg::Config { index } => {
                self.write_config(View::Distributor, index, value as u32, vcpu, out)
            }
            Reg::Sgir => self.write_sgir(value as u32, vcpu, out),
            Reg::Router { intid, high } => {
                let value = match (width, high) {
                    (AccessWidth::Double, _) => value,
                    (_, false) => (self.route_or_zero(intid) & !0xffff_ffff) | value,
                    (_, true) => (self.route_or_zero(intid) & 0xffff_ffff) | (value << 32),
                };
                self.write_route(intid, value, out);
            }
        }
        Ok(())
    }

    /// A trapped GICv3 ICC_SGI1R_EL1 write by `accessing_vcpu` (IHI 0069, ICC_SGI1R_EL1:
    /// TargetList [15:0], Aff1 [23:16], INTID [27:24], Aff2 [39:32], IRM [40], RS
    /// [47:44], Aff3 [55:48]). Virtual affinity is Aff0 = vCPU index, so Aff1-3 must be 0
    /// and the target list names vCPUs RS*16 + bit. IRM = 1 means every vCPU but the
    /// sender. Targets outside the partition are dropped (counted); `None` if none remain.
    pub fn write_sgi1r(
        &mut self,
        value: u64,
        accessing_vcpu: usize,
    ) -> Result<Option<Effect>, AccessError> {
        self.check_vcpu(accessing_vcpu)?;
        let intid = ((value >> 24) & 0xf) as u32;
        let all_vcpus = self.vcpu_bits();
        let virt = if value & (1 << 40) != 0 {
            all_vcpus & !(1 << accessing_vcpu)
        } else {
            let list = value & 0xffff;
            let rs = (value >> 44) & 0xf;
            let high_aff = value & ((0xff << 16) | (0xff << 32) | (0xff << 48));
            let shift = rs * 16;
            let wanted = if high_aff != 0 || shift >= 64 {
                // A cluster that does not exist in the partition.
                if list != 0 {
                    self.stats.foreign_cpus += 1;
                }
                0
            } else {
                list << shift
            };
            if wanted & !all_vcpus != 0 {
                self.stats.foreign_cpus += 1;
            }
            wanted & all_vcpus
        };
        Ok(self.sgi_effect(intid, virt))
    }

    // ---- decoding ------------------------------------------------------------------

    fn decode(&self, offset: u64, width: AccessWidth, vcpu: usize) -> Result<Reg, AccessError> {
        self.check_vcpu(vcpu)?;
        if offset >= self.frame_size() {
            return Err(AccessError::OutsideFrame { offset });
        }
        if !offset.is_multiple_of(width.bytes()) {
            return Err(AccessError::Misaligned { offset, width });
        }
        let v2 = self.version == GicVersion::V2;
        let pidr2 = if v2 { PIDR2_V2 } else { PIDR2_V3 };
        let reg = match offset {
            CTLR => Reg::Ctlr,
            TYPER => Reg::Typer,
            IIDR => Reg::Iidr,
            o if o == pidr2 => Reg::Pidr2,
            IGROUPR..BITMAPS => Reg::Group {
                word: ((offset - IGROUPR) / 4) as usize,
            },
            BITMAPS..BITMAPS_END => {
                let rel = offset - BITMAPS;
                Reg::Bits {
                    op: BitOp::of_bank(rel),
                    word: ((rel % BITMAP_BANK) / 4) as usize,
                }
            }
            IPRIORITYR..ITARGETSR => Reg::Priority {
                first: (offset - IPRIORITYR) as u32,
            },
            ITARGETSR..ICFGR if v2 => Reg::Targets {
                first: (offset - ITARGETSR) as u32,
            },
            ICFGR..ICFGR_END => Reg::Config {
                index: ((offset - ICFGR) / 4) as u32,
            },
            SGIR if v2 => Reg::Sgir,
            IROUTER..IROUTER_END if !v2 => Reg::Router {
                intid: ((offset - IROUTER) / 8) as u32,
                high: offset % 8 == 4,
            },
            _ => Reg::Reserved,
        };
        let ok = match (reg, width) {
            (_, AccessWidth::Half) => false,
            (Reg::Priority { .. } | Reg::Targets { .. }, w) => w != AccessWidth::Double,
            (Reg::Router { .. }, w) => w != AccessWidth::Byte,
            // Reserved space: any size the frame's registers use.
            (Reg::Reserved, AccessWidth::Double) => !v2,
            (Reg::Reserved, _) => true,
            (_, w) => w == AccessWidth::Word,
        };
        if ok {
            Ok(reg)
        } else {
            Err(AccessError::BadWidth { offset, width })
        }
    }

    fn check_vcpu(&self, vcpu: usize) -> Result<(), AccessError> {
        if vcpu < self.cpus.len() {
            Ok(())
        } else {
            Err(AccessError::NoSuchVcpu { vcpu })
        }
    }

    // ---- register values -------------------------------------------------------------

    /// GICD_TYPER: ITLinesNumber [4:0]; GICv2 CPUNumber [7:5] = vCPUs - 1; GICv3 IDbits
    /// [23:19] = 9 (10 INTID bits: no LPIs), No1N [25] = 0 (IRM is honoured, see
    /// `write_route`). SecurityExtn = 0: a single security state.
    fn typer(&self) -> u32 {
        let it_lines = self.lines / 32 - 1;
        match self.version {
            GicVersion::V2 => it_lines | ((self.cpus.len() as u32 - 1) << 5),
            GicVersion::V3 => it_lines | (9 << 19),
        }
    }

    /// PIDR2: ArchRev [7:4] (2 = GICv2, 3 = GICv3), JEDEC [3] = 1, DES_1 [2:0] = 0b011.
    fn pidr2(&self) -> u32 {
        let rev = match self.version {
            GicVersion::V2 => 2,
            GicVersion::V3 => 3,
        };
        (rev << 4) | 0xb
    }

    // ---- visibility --------------------------------------------------------------------

    /// Lines of bitmap word `word` the partition sees through `view`. Word 0 holds the
    /// banked SGIs/PPIs less hv's: in the GICv2 distributor and in a GICv3 redistributor;
    /// the GICv3 distributor's word 0 is RAZ/WI. A redistributor has only word 0.
    fn visible_mask(&self, view: View, word: usize) -> u32 {
        match (view, word, self.version) {
            (View::Distributor, 0, GicVersion::V3) => 0,
            (_, 0, _) => !self.hv_private,
            (View::Distributor, w, _) => self.owned.get(w).copied().unwrap_or(0),
            (View::Redistributor, _, _) => 0,
        }
    }

    fn visible(&self, view: View, intid: u32) -> bool {
        self.visible_mask(view, (intid / 32) as usize) & (1 << (intid % 32)) != 0
    }

    /// Whether `intid` is the guest's in some frame: a banked line hv does not keep, or
    /// an owned SPI (the version-independent view of `line_enabled` and the notes).
    fn guest_line(&self, intid: u32) -> bool {
        match intid {
            0..32 => self.hv_private & (1 << intid) == 0,
            _ => self.owns_spi(intid),
        }
    }

    fn word_bit(&self, words: &[u32], intid: u32) -> bool {
        words
            .get((intid / 32) as usize)
            .is_some_and(|w| w & (1 << (intid % 32)) != 0)
    }

    /// The banked state `intid` refers to for `vcpu`, if it is a banked line.
    fn banked_of(&self, intid: u32, vcpu: usize) -> Option<&Banked> {
        if intid < 32 {
            self.banked.get(vcpu)
        } else {
            None
        }
    }

    /// A set/clear bitmap register's value: the state of its visible lines.
    fn read_bits(&self, view: View, op: BitOp, word: usize, vcpu: usize) -> u32 {
        let field = op.field();
        let state = if word == 0 {
            self.banked.get(vcpu).map_or(0, |b| *b.field(field))
        } else {
            let words = match field {
                Field::Enabled => &self.enabled,
                Field::Pending => &self.pending,
                Field::Active => &self.active,
            };
            words.get(word).copied().unwrap_or(0)
        };
        state & self.visible_mask(view, word)
    }

    fn read_priority(&self, view: View, first: u32, width: AccessWidth, vcpu: usize) -> u64 {
        self.read_bytes(view, first, width, |intid| {
            match self.banked_of(intid, vcpu) {
                Some(b) => b.priority[intid as usize],
                None => self.priority[intid as usize],
            }
        })
    }

    /// ICFGR<index>: bit 2k+1 set = line 16 * index + k is edge-triggered (SGIs always).
    fn read_config(&self, view: View, index: u32, vcpu: usize) -> u32 {
        let mut value = 0;
        for k in 0..16 {
            let intid = index * 16 + k;
            if !self.visible(view, intid) {
                continue;
            }
            let edge = match self.banked_of(intid, vcpu) {
                _ if intid < 16 => true,
                Some(b) => b.edge & (1 << intid) != 0,
                None => self.word_bit(&self.edge, intid),
            };
            if edge {
                value |= 0b10 << (2 * k);
            }
        }
        value
    }

    fn read_bytes(
        &self,
        view: View,
        first: u32,
        width: AccessWidth,
        byte: impl Fn(u32) -> u8,
    ) -> u64 {
        let mut value = 0u64;
        for i in 0..width.bytes() as u32 {
            let intid = first + i;
            if self.visible(view, intid) {
                value |= u64::from(byte(intid)) << (8 * i);
            }
        }
        value
    }

    fn vcpu_bits(&self) -> u64 {
        match self.cpus.len() {
            64 => u64::MAX,
            n => (1u64 << n) - 1,
        }
    }

    /// Physical CPUs of a (valid) virtual CPU mask.
    fn physical(&self, virt: u64) -> CpuSet {
        let mut set = CpuSet::empty();
        for (vcpu, &cpu) in self.cpus.iter().enumerate() {
            if virt & (1 << vcpu) != 0 {
                set.insert(cpu);
            }
        }
        set
    }

    fn irq(&self, intid: u32, vcpu: usize) -> Irq {
        Irq {
            intid,
            cpu: (intid < 32).then(|| self.cpus[vcpu]),
        }
    }

    // ---- writes ----------------------------------------------------------------------

    /// A set/clear bitmap write: the virtual state of the visible lines changes; the
    /// changes that [`reaches_hardware`] become effects.
    fn write_bits(
        &mut self,
        view: View,
        op: BitOp,
        word: usize,
        value: u32,
        vcpu: usize,
        out: &mut impl FnMut(Effect),
    ) {
        let visible = self.visible_mask(view, word);
        if value & !visible != 0 {
            self.stats.foreign_lines += 1;
        }
        let mut writable = value & visible;
        let pending = matches!(op.field(), Field::Pending);
        if view == View::Distributor && word == 0 && pending {
            // GICv2: SGI pending state is set per source through SPENDSGIR/CPENDSGIR;
            // the ISPENDR0/ICPENDR0 SGI bits are write-ignored.
            writable &= !SGI_MASK;
        }
        let state = if word == 0 {
            match self.banked.get_mut(vcpu) {
                Some(b) => b.field_mut(op.field()),
                None => return,
            }
        } else {
            let words = match op.field() {
                Field::Enabled => &mut self.enabled,
                Field::Pending => &mut self.pending,
                Field::Active => &mut self.active,
            };
            match words.get_mut(word) {
                Some(w) => w,
                None => return,
            }
        };
        if op.sets() {
            *state |= writable;
        } else {
            *state &= !writable;
        }
        let mut bits = writable;
        while bits != 0 {
            let bit = bits.trailing_zeros();
            bits &= bits - 1;
            let intid = word as u32 * 32 + bit;
            if !reaches_hardware(view, intid, op.field()) {
                continue;
            }
            let irq = self.irq(intid, vcpu);
            out(match op {
                BitOp::SetEnable => Effect::Enable(irq),
                BitOp::ClearEnable => Effect::Disable(irq),
                BitOp::SetPending => Effect::SetPending(irq),
                BitOp::ClearPending => Effect::ClearPending(irq),
                BitOp::SetActive => Effect::SetActive(irq),
                BitOp::ClearActive => Effect::ClearActive(irq),
            });
        }
    }

    fn write_priority(
        &mut self,
        view: View,
        first: u32,
        width: AccessWidth,
        value: u64,
        vcpu: usize,
        out: &mut impl FnMut(Effect),
    ) {
        let mut foreign = false;
        for i in 0..width.bytes() as u32 {
            let intid = first + i;
            let priority = (value >> (8 * i)) as u8;
            if !self.visible(view, intid) {
                foreign |= priority != 0;
                continue;
            }
            let slot = if intid < 32 {
                match self.banked.get_mut(vcpu) {
                    Some(b) => &mut b.priority[intid as usize],
                    None => continue,
                }
            } else {
                &mut self.priority[intid as usize]
            };
            if *slot != priority {
                *slot = priority;
                if reaches_hardware(view, intid, Field::Enabled) {
                    let irq = self.irq(intid, vcpu);
                    out(Effect::SetPriority { irq, priority });
                }
            }
        }
        if foreign {
            self.stats.foreign_lines += 1;
        }
    }

    /// GICv2 ITARGETSR: a virtual CPU mask per SPI; bits for vCPUs the partition does
    /// not have are dropped. INTIDs 0-31 are read-only (the accessing vCPU's own bit).
    fn write_targets(
        &mut self,
        first: u32,
        width: AccessWidth,
        value: u64,
        out: &mut impl FnMut(Effect),
    ) {
        if first < 32 {
            self.stats.reserved += 1;
            return;
        }
        let valid = self.vcpu_bits() as u8;
        let (mut foreign_line, mut foreign_cpu) = (false, false);
        for i in 0..width.bytes() as u32 {
            let intid = first + i;
            let mask = (value >> (8 * i)) as u8;
            if !self.visible(View::Distributor, intid) {
                foreign_line |= mask != 0;
                continue;
            }
            foreign_cpu |= mask & !valid != 0;
            let mask = mask & valid;
            if self.targets[intid as usize] != mask {
                self.targets[intid as usize] = mask;
                let cpus = self.physical(u64::from(mask));
                out(Effect::Target { intid, cpus });
            }
        }
        if foreign_line {
            self.stats.foreign_lines += 1;
        }
        if foreign_cpu {
            self.stats.foreign_cpus += 1;
        }
    }

    /// ICFGR: two bits per line, bit 2k+1 = edge-triggered; SGIs are fixed edge.
    fn write_config(
        &mut self,
        view: View,
        index: u32,
        value: u32,
        vcpu: usize,
        out: &mut impl FnMut(Effect),
    ) {
        let mut foreign = false;
        for k in 0..16 {
            let intid = index * 16 + k;
            let field = (value >> (2 * k)) & 0b11;
            if !self.visible(view, intid) {
                foreign |= field != 0;
                continue;
            }
            if intid < 16 {
                continue;
            }
            let edge = field & 0b10 != 0;
            let bit = 1u32 << (intid % 32);
            let word = if intid < 32 {
                match self.banked.get_mut(vcpu) {
                    Some(b) => &mut b.edge,
                    None => continue,
                }
            } else {
                &mut self.edge[(intid / 32) as usize]
            };
            if (*word & bit != 0) != edge {
                *word ^= bit;
                let irq = self.irq(intid, vcpu);
                out(Effect::SetConfig { irq, edge });
            }
        }
        if foreign {
            self.stats.foreign_lines += 1;
        }
    }

    /// GICv2 GICD_SGIR: TargetListFilter [25:24] (0 = the list, 1 = all but self,
    /// 2 = self, 3 = reserved), CPUTargetList [23:16], SGIINTID [3:0].
    fn write_sgir(&mut self, value: u32, vcpu: usize, out: &mut impl FnMut(Effect)) {
        let intid = value & 0xf;
        let list = u64::from((value >> 16) & 0xff);
        let all = self.vcpu_bits();
        let virt = match (value >> 24) & 0b11 {
            0 => {
                if list & !all != 0 {
                    self.stats.foreign_cpus += 1;
                }
                list & all
            }
            1 => all & !(1 << vcpu),
            2 => 1 << vcpu,
            _ => {
                self.stats.reserved += 1;
                return;
            }
        };
        if let Some(effect) = self.sgi_effect(intid, virt) {
            out(effect);
        }
    }

    fn sgi_effect(&mut self, intid: u32, virt: u64) -> Option<Effect> {
        if self.hv_private & (1 << intid) != 0 {
            self.stats.foreign_lines += 1;
            return None;
        }
        let cpus = self.physical(virt & self.vcpu_bits());
        (!cpus.is_empty()).then_some(Effect::SendSgi { intid, cpus })
    }

    fn route_or_zero(&self, intid: u32) -> u64 {
        if self.visible(View::Distributor, intid) {
            self.route[intid as usize]
        } else {
            0
        }
    }

    /// The physical CPU a (valid) virtual IROUTER value delivers to. IRM = 1 (1 of N)
    /// is honoured by always choosing the partition's first CPU: the physical IRM must
    /// never be set, or the GIC could pick a CPU of another partition.
    fn route_cpu(&self, route: u64) -> u32 {
        if route & IROUTER_IRM != 0 {
            self.cpus[0]
        } else {
            self.cpus[(route & 0xff) as usize]
        }
    }

    /// GICv3 IROUTER: Aff0 = vCPU index and Aff1-3 = 0, or IRM = 1. A route naming a
    /// vCPU the partition does not have is refused: the old route stays (counted).
    fn write_route(&mut self, intid: u32, value: u64, out: &mut impl FnMut(Effect)) {
        if !self.visible(View::Distributor, intid) {
            if value != 0 {
                self.stats.foreign_lines += 1;
            }
            return;
        }
        let value = value & IROUTER_DEFINED;
        let irm = value & IROUTER_IRM != 0;
        let aff0 = value & 0xff;
        let higher = value & !(IROUTER_IRM | 0xff);
        if !irm && (higher != 0 || aff0 >= self.cpus.len() as u64) {
            self.stats.foreign_cpus += 1;
            return;
        }
        let old = self.route_cpu(self.route[intid as usize]);
        self.route[intid as usize] = value;
        let cpu = self.route_cpu(value);
        if cpu != old {
            out(Effect::Route { intid, cpu });
        }
    }
}

/// The per-line state a set/clear bitmap register changes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Enabled,
    Pending,
    Active,
}

impl BitOp {
    /// The register at `rel` bytes into the six set/clear banks (ISENABLER first).
    fn of_bank(rel: u64) -> Self {
        match rel / BITMAP_BANK {
            0 => BitOp::SetEnable,
            1 => BitOp::ClearEnable,
            2 => BitOp::SetPending,
            3 => BitOp::ClearPending,
            4 => BitOp::SetActive,
            _ => BitOp::ClearActive,
        }
    }

    fn field(self) -> Field {
        match self {
            BitOp::SetEnable | BitOp::ClearEnable => Field::Enabled,
            BitOp::SetPending | BitOp::ClearPending => Field::Pending,
            BitOp::SetActive | BitOp::ClearActive => Field::Active,
        }
    }

    /// Set (ISxxx) rather than clear (ICxxx).
    fn sets(self) -> bool {
        matches!(
            self,
            BitOp::SetEnable | BitOp::SetPending | BitOp::SetActive
        )
    }
}

/// The frame an access came through: it decides which INTIDs 0-31 are visible (see
/// `visible_mask`) and which changes reach the physical GIC (see [`reaches_hardware`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    /// GICD: SPIs, plus the banked SGIs/PPIs on GICv2.
    Distributor,
    /// A GICv3 redistributor's SGI_base frame: the banked SGIs/PPIs of its vCPU.
    Redistributor,
}

/// INTIDs 0-15 in a banked word.
const SGI_MASK: u32 = 0xffff;

/// Whether a guest change of `field` (or of priority/config: pass `Field::Enabled`) on
/// visible line `intid` through `view` is also made on the physical GIC. Through the
/// distributor: always (SPIs and GICv2 banked lines). Through a GICv3 redistributor: PPI
/// enable, active, priority and config only. SGIs are virtual there (hv queues and
/// injects them through list registers; the physical SGIs, kick SGI 0 included, are
/// hv's), and so is PPI pending state: a guest-set pending PPI is hv's to inject, and
/// the physical line of a forwarded PPI is pended by its device, not by the guest.
fn reaches_hardware(view: View, intid: u32, field: Field) -> bool {
    match view {
        View::Distributor => true,
        View::Redistributor => (16..32).contains(&intid) && field != Field::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AccessWidth::{Byte, Double, Half, Word};

    /// Linux-like partition: SPIs 33 and 40 (0x28) and 100; vCPUs on CPUs 0 and 1.
    fn v2() -> VgicDistributor {
        VgicDistributor::new(GicVersion::V2, 288, &[33, 40, 100], &[0, 1]).unwrap()
    }

    /// RT-like partition on CPUs 2 and 3 owning SPI 34.
    fn v3() -> VgicDistributor {
        VgicDistributor::new(GicVersion::V3, 288, &[34, 35], &[2, 3]).unwrap()
    }

    fn spi(intid: u32) -> Irq {
        Irq { intid, cpu: None }
    }

    fn banked(intid: u32, cpu: u32) -> Irq {
        Irq {
            intid,
            cpu: Some(cpu),
        }
    }

    fn cpus(list: &[u32]) -> CpuSet {
        let mut set = CpuSet::empty();
        for &c in list {
            set.insert(c);
        }
        set
    }

    fn w(d: &mut VgicDistributor, offset: u64, value: u64) -> Vec<Effect> {
        d.write(offset, Word, value, 0).unwrap().to_vec()
    }

    fn r(d: &VgicDistributor, offset: u64) -> u64 {
        d.read(offset, Word, 0).unwrap()
    }

    #[test]
    fn an_emulated_spi_is_configured_virtually_and_never_reaches_hardware() {
        let mut d = v3().with_emulated_spi(35).unwrap();
        assert!(d.is_emulated(35) && !d.is_emulated(34));
        // ISENABLER1 for 34 and 35, priorities of 32-35, IROUTER35: only 34's effects leave.
        let enable = w(&mut d, BITMAPS + 4, (1 << 2) | (1 << 3));
        assert_eq!(enable, [Effect::Enable(spi(34))]);
        assert!(d.line_enabled(35, 0), "the guest sees its line enabled");
        let prio = w(&mut d, IPRIORITYR + 32, 0xa0a0_a0a0);
        assert!(
            prio.iter().all(|e| e.irq().is_some_and(|i| i.intid == 34)),
            "{prio:?}"
        );
        assert!(w(&mut d, IROUTER + 8 * 35, 1).is_empty());
        let mut reset = Vec::new();
        d.reset_effects(|e| reset.push(e));
        assert!(!reset.is_empty());
        assert!(reset.iter().all(|e| match *e {
            Effect::Route { intid, .. } | Effect::Target { intid, .. } => intid != 35,
            ref other => other.irq().is_none_or(|i| i.intid != 35),
        }));
        assert!(v3().with_emulated_spi(36).is_err(), "only an owned SPI");
    }

    #[test]
    fn enable_and_disable_an_owned_spi_give_exactly_that_effect() {
        let mut d = v2();
        assert_eq!(w(&mut d, 0x104, 1 << 1), [Effect::Enable(spi(33))]);
        assert_eq!(r(&d, 0x104), 1 << 1);
        assert_eq!(r(&d, 0x184), 1 << 1);
        assert!(d.line_enabled(33, 0));
        assert_eq!(w(&mut d, 0x184, 1 << 1), [Effect::Disable(spi(33))]);
        assert_eq!(r(&d, 0x104), 0);
        assert_eq!(d.ignored_writes(), 0);
    }

    #[test]
    fn linux_style_distributor_init_touches_only_owned_lines() {
        // What a GICv3 guest does at boot: distributor off, every SPI group 1, level,
        // priority 0xa0, inactive, disabled, routed to the boot CPU; distributor on.
        let mut d = v3();
        let mut effects = Vec::new();
        w(&mut d, 0, 0);
        for i in (32..288u64).step_by(32) {
            effects.extend(w(&mut d, 0x80 + i / 8, u64::from(u32::MAX)));
            effects.extend(w(&mut d, 0x380 + i / 8, u64::from(u32::MAX)));
            effects.extend(w(&mut d, 0x180 + i / 8, u64::from(u32::MAX)));
        }
        for i in (32..288u64).step_by(16) {
            effects.extend(w(&mut d, 0xc00 + i / 4, 0));
        }
        for i in (32..288u64).step_by(4) {
            effects.extend(w(&mut d, 0x400 + i, 0xa0a0_a0a0));
        }
        for i in 32..288u64 {
            effects.extend(d.write(0x6000 + 8 * i, Double, 0, 0).unwrap().iter());
        }
        w(&mut d, 0, 0b1_0011);
        let prio = |intid| Effect::SetPriority {
            irq: spi(intid),
            priority: 0xa0,
        };
        assert_eq!(
            effects,
            [
                Effect::ClearActive(spi(34)),
                Effect::ClearActive(spi(35)),
                Effect::Disable(spi(34)),
                Effect::Disable(spi(35)),
                prio(34),
                prio(35),
            ]
        );
        // 8 ICACTIVER + 8 ICENABLER words with foreign bits, 64 priority words.
        assert_eq!(d.stats().foreign_lines, 8 + 8 + 64);
        assert!(d.distributor_enabled());
    }

    #[test]
    fn value_bits_beyond_the_access_width_are_ignored() {
        let mut d = v2();
        assert_eq!(
            w(&mut d, 0x104, (1 << 33) | (1 << 1)),
            [Effect::Enable(spi(33))]
        );
        assert_eq!(AccessWidth::from_bytes(4), Some(Word));
        assert_eq!(AccessWidth::from_bytes(3), None);
        let effects = d.write(0x421, Byte, 0x1_22, 0).unwrap();
        assert_eq!(
            &*effects,
            [Effect::SetPriority {
                irq: spi(33),
                priority: 0x22
            }]
        );
    }

    #[test]
    fn owned_spis_start_disabled() {
        let d = v3();
        for word in 0..9 {
            assert_eq!(r(&d, 0x100 + 4 * word), 0);
        }
        assert!(!d.line_enabled(34, 0));
    }

    #[test]
    fn foreign_bit_in_a_shared_register_is_dropped_and_counted() {
        let mut d = v2();
        // 33 owned, 34 foreign, same register.
        let effects = w(&mut d, 0x104, (1 << 1) | (1 << 2));
        assert_eq!(effects, [Effect::Enable(spi(33))]);
        assert_eq!(d.stats().foreign_lines, 1);
        assert_eq!(r(&d, 0x104), 1 << 1);
        // Only foreign bits: nothing at all.
        assert!(w(&mut d, 0x104, 1 << 2).is_empty());
        assert!(w(&mut d, 0x184, u64::from(u32::MAX)).len() == 2);
        assert_eq!(d.stats().foreign_lines, 3);
        assert_eq!(d.ignored_writes(), 3);
    }

    #[test]
    fn reads_hide_foreign_lines() {
        let mut d = v2();
        w(&mut d, 0x104, u64::from(u32::MAX));
        w(&mut d, 0x204, u64::from(u32::MAX));
        w(&mut d, 0x304, u64::from(u32::MAX));
        let owned_word1 = (1 << 1) | (1 << 8);
        assert_eq!(r(&d, 0x104), owned_word1);
        assert_eq!(r(&d, 0x204), owned_word1);
        assert_eq!(r(&d, 0x284), owned_word1);
        assert_eq!(r(&d, 0x304), owned_word1);
        assert_eq!(r(&d, 0x384), owned_word1);
        // IGROUPR: group 1 for owned lines only.
        assert_eq!(r(&d, 0x084), owned_word1);
        assert_eq!(r(&d, 0x088), 0);
        assert_eq!(r(&d, 0x08c), 1 << 4); // 100 = 96 + 4
                                          // Beyond the implemented lines.
        assert_eq!(r(&d, 0x124), 0);
    }

    #[test]
    fn pending_and_active_effects_and_notes() {
        let mut d = v3();
        assert_eq!(w(&mut d, 0x204, 1 << 2), [Effect::SetPending(spi(34))]);
        assert_eq!(w(&mut d, 0x284, 1 << 2), [Effect::ClearPending(spi(34))]);
        assert_eq!(w(&mut d, 0x304, 1 << 3), [Effect::SetActive(spi(35))]);
        assert_eq!(w(&mut d, 0x384, 1 << 3), [Effect::ClearActive(spi(35))]);
        assert!(d.note_pending(35, 0, true));
        assert_eq!(r(&d, 0x204), 1 << 3);
        assert!(!d.note_pending(36, 0, true));
        // v3: banked lines live in the redistributors, hidden from the distributor.
        assert!(d.note_active(5, 0, true));
        assert!(!d.note_active(25, 0, true)); // hv's maintenance PPI
        assert_eq!(r(&d, 0x300), 0);
        assert_eq!(r(&d, 0x204), 1 << 3);
    }

    #[test]
    fn priorities_are_byte_wise_and_foreign_bytes_ignored() {
        let mut d = v2();
        // IPRIORITYR8 covers 32..35: 33 owned, 32/34/35 foreign.
        let effects = w(&mut d, 0x420, 0x40_30_a0_10);
        assert_eq!(
            effects,
            [Effect::SetPriority {
                irq: spi(33),
                priority: 0xa0
            }]
        );
        assert_eq!(d.stats().foreign_lines, 1);
        assert_eq!(r(&d, 0x420), 0x00_00_a0_00);
        assert_eq!(d.read(0x421, Byte, 0), Ok(0xa0));
        assert_eq!(d.read(0x422, Byte, 0), Ok(0));
        // Byte write to an owned line.
        let effects = d.write(0x428, Byte, 0x80, 0).unwrap();
        assert_eq!(
            &*effects,
            [Effect::SetPriority {
                irq: spi(40),
                priority: 0x80
            }]
        );
        // Same value again: no physical write.
        assert!(d.write(0x428, Byte, 0x80, 0).unwrap().is_empty());
        // Byte write to a foreign line.
        assert!(d.write(0x422, Byte, 0x80, 0).unwrap().is_empty());
        assert_eq!(d.stats().foreign_lines, 2);
        // Read-modify-write of the shared word is not an attempt on the foreign lines.
        let word = r(&d, 0x420);
        w(&mut d, 0x420, (word & !0xff00) | 0x6000);
        assert_eq!(d.stats().foreign_lines, 2);
    }

    #[test]
    fn itargetsr_translates_virtual_to_physical_and_drops_foreign_cpus() {
        // vCPU 0 on CPU 2, vCPU 1 on CPU 3.
        let mut d = VgicDistributor::new(GicVersion::V2, 224, &[33], &[2, 3]).unwrap();
        assert_eq!(d.read(0x821, Byte, 0), Ok(0x01));
        let effects = d.write(0x821, Byte, 0b10, 0).unwrap();
        assert_eq!(
            &*effects,
            [Effect::Target {
                intid: 33,
                cpus: cpus(&[3])
            }]
        );
        assert_eq!(d.read(0x821, Byte, 0), Ok(0b10));
        // Both vCPUs plus vCPUs 2..7 that do not exist.
        let effects = d.write(0x821, Byte, 0xff, 1).unwrap();
        assert_eq!(
            &*effects,
            [Effect::Target {
                intid: 33,
                cpus: cpus(&[2, 3])
            }]
        );
        assert_eq!(d.stats().foreign_cpus, 1);
        assert_eq!(r(&d, 0x820), 0b11 << 8);
        // Only a non-existent vCPU: the line ends up targeting nobody.
        let effects = d.write(0x821, Byte, 0x80, 0).unwrap();
        assert_eq!(
            &*effects,
            [Effect::Target {
                intid: 33,
                cpus: CpuSet::empty()
            }]
        );
        // Foreign line: nothing.
        assert!(w(&mut d, 0x820, 0x01_01_01_01).len() == 1);
        assert_eq!(d.stats().foreign_lines, 1);
        // Banked targets read as the accessing vCPU's own bit, and are read-only.
        assert_eq!(d.read(0x800, Word, 1), Ok(0x0202_0202));
        assert_eq!(d.read(0x819, Byte, 0), Ok(0)); // INTID 25: hv's maintenance PPI
        assert!(w(&mut d, 0x800, 0xffff_ffff).is_empty());
    }

    #[test]
    fn irouter_translates_and_refuses_foreign_cpus() {
        let mut d = v3();
        let off = 0x6000 + 8 * 34;
        assert_eq!(d.read(off, Double, 0), Ok(0));
        // Route to vCPU 1 = physical CPU 3.
        let effects = d.write(off, Double, 1, 0).unwrap();
        assert_eq!(&*effects, [Effect::Route { intid: 34, cpu: 3 }]);
        assert_eq!(d.read(off, Double, 0), Ok(1));
        // vCPU 2 does not exist; Aff1 != 0 does not exist: refused, route unchanged.
        assert!(d.write(off, Double, 2, 0).unwrap().is_empty());
        assert!(d.write(off, Double, 0x100, 0).unwrap().is_empty());
        assert!(d.write(off, Double, 1 << 32, 0).unwrap().is_empty());
        assert_eq!(d.stats().foreign_cpus, 3);
        assert_eq!(d.read(off, Double, 0), Ok(1));
        // IRM = 1 goes to the partition's first CPU.
        let effects = d.write(off, Double, IROUTER_IRM, 0).unwrap();
        assert_eq!(&*effects, [Effect::Route { intid: 34, cpu: 2 }]);
        assert_eq!(d.read(off, Word, 0), Ok(IROUTER_IRM));
        // 32-bit halves (as AArch32 or lo/hi writers do).
        let effects = d.write(off, Word, 1, 0).unwrap();
        assert_eq!(&*effects, [Effect::Route { intid: 34, cpu: 3 }]);
        assert!(d.write(off + 4, Word, 0, 0).unwrap().is_empty());
        assert_eq!(d.read(off + 4, Word, 0), Ok(0));
        // Foreign SPI 33 and SGI/PPI slots: nothing, reads zero.
        let foreign = 0x6000 + 8 * 33;
        assert!(d.write(foreign, Double, 0, 0).unwrap().is_empty());
        assert!(d.write(foreign, Double, 1, 0).unwrap().is_empty());
        assert_eq!(d.read(foreign, Double, 0), Ok(0));
        assert!(d.write(0x6000, Double, 1, 0).unwrap().is_empty());
        assert_eq!(d.stats().foreign_lines, 2);
    }

    #[test]
    fn sgir_filters_map_to_the_partitions_cpus_only() {
        // Four vCPUs on CPUs 4..7 (so virtual and physical numbers differ).
        let mut d = VgicDistributor::new(GicVersion::V2, 224, &[], &[4, 5, 6, 7]).unwrap();
        let sgi = |d: &mut VgicDistributor, value: u64, vcpu: usize| {
            d.write(0xf00, Word, value, vcpu).unwrap().to_vec()
        };
        // Filter 0: list of vCPUs 1 and 3 (and 6, which does not exist).
        assert_eq!(
            sgi(&mut d, (0b0100_1010 << 16) | 3, 0),
            [Effect::SendSgi {
                intid: 3,
                cpus: cpus(&[5, 7])
            }]
        );
        assert_eq!(d.stats().foreign_cpus, 1);
        // Filter 1: all but self.
        assert_eq!(
            sgi(&mut d, (1 << 24) | 1, 2),
            [Effect::SendSgi {
                intid: 1,
                cpus: cpus(&[4, 5, 7])
            }]
        );
        // Filter 2: self.
        assert_eq!(
            sgi(&mut d, (2 << 24) | 15, 3),
            [Effect::SendSgi {
                intid: 15,
                cpus: cpus(&[7])
            }]
        );
        // Filter 3 is reserved; empty lists send nothing.
        assert!(sgi(&mut d, (3 << 24) | 0xff << 16, 0).is_empty());
        assert!(sgi(&mut d, 0xf0 << 16, 0).is_empty());
        assert_eq!(d.stats().reserved, 1);
        // GICD_SGIR is write-only.
        assert_eq!(r(&d, 0xf00), 0);

        // A single-vCPU partition: all-but-self is nobody.
        let mut one = VgicDistributor::new(GicVersion::V2, 224, &[], &[2]).unwrap();
        assert!(sgi(&mut one, 1 << 24, 0).is_empty());
        assert_eq!(
            sgi(&mut one, 0xff << 16, 0),
            [Effect::SendSgi {
                intid: 0,
                cpus: cpus(&[2])
            }]
        );
        // An SGI hv reserved is never sent.
        let mut d = v2().with_hv_private(DEFAULT_HV_PRIVATE | (1 << 15));
        assert!(sgi(&mut d, (2 << 24) | 15, 0).is_empty());
        assert_eq!(d.stats().foreign_lines, 1);
    }

    #[test]
    fn sgi1r_maps_virtual_affinity_to_partition_cpus() {
        let mut d = VgicDistributor::new(GicVersion::V3, 288, &[], &[1, 2, 3]).unwrap();
        // TargetList vCPUs 0 and 2, INTID 5.
        assert_eq!(
            d.write_sgi1r((5 << 24) | 0b101, 1),
            Ok(Some(Effect::SendSgi {
                intid: 5,
                cpus: cpus(&[1, 3])
            }))
        );
        // IRM: all but self.
        assert_eq!(
            d.write_sgi1r((1 << 40) | (7 << 24), 1),
            Ok(Some(Effect::SendSgi {
                intid: 7,
                cpus: cpus(&[1, 3])
            }))
        );
        // Aff1 != 0, RS != 0, or a list beyond the partition: nobody, counted.
        assert_eq!(d.write_sgi1r((1 << 16) | 1, 0), Ok(None));
        assert_eq!(d.write_sgi1r((1 << 44) | 1, 0), Ok(None));
        assert_eq!(
            d.write_sgi1r(0b1001, 0),
            Ok(Some(Effect::SendSgi {
                intid: 0,
                cpus: cpus(&[1])
            }))
        );
        assert_eq!(d.stats().foreign_cpus, 3);
        assert_eq!(
            d.write_sgi1r(1, 3),
            Err(AccessError::NoSuchVcpu { vcpu: 3 })
        );
    }

    #[test]
    fn sgi1r_from_and_to_vcpus_above_3_in_an_eight_vcpu_partition() {
        // The decoder's limits: target lists name vCPUs RS * 16 + bit, so 0-15 with RS = 0;
        // every vCPU index of a partition (at most one per CPU hv runs on) is a valid source.
        let cpus_of_vcpus: Vec<u32> = (0..8).collect();
        let mut d = VgicDistributor::new(GicVersion::V3, 288, &[], &cpus_of_vcpus).unwrap();
        assert_eq!(
            d.write_sgi1r((2 << 24) | (1 << 6) | 1, 5),
            Ok(Some(Effect::SendSgi {
                intid: 2,
                cpus: cpus(&[0, 6])
            }))
        );
        assert_eq!(
            d.write_sgi1r((1 << 40) | (9 << 24), 7),
            Ok(Some(Effect::SendSgi {
                intid: 9,
                cpus: cpus(&[0, 1, 2, 3, 4, 5, 6])
            }))
        );
        // vCPU 8 and up do not exist: the bits are dropped and counted, not delivered.
        assert_eq!(d.write_sgi1r(1 << 8, 4), Ok(None));
        assert_eq!(d.stats().foreign_cpus, 1);
        assert_eq!(
            d.write_sgi1r(1, 8),
            Err(AccessError::NoSuchVcpu { vcpu: 8 })
        );
    }

    #[test]
    fn v2_banked_sgi_ppi_state_is_per_accessing_vcpu() {
        let mut d = v2(); // vCPU 0 on CPU 0, vCPU 1 on CPU 1
                          // vCPU 1 enables the virtual timer PPI (27) and SGI 1.
        let effects = d.write(0x100, Word, (1 << 27) | (1 << 1), 1).unwrap();
        assert_eq!(
            &*effects,
            [Effect::Enable(banked(1, 1)), Effect::Enable(banked(27, 1))]
        );
        assert_eq!(d.read(0x100, Word, 1), Ok((1 << 27) | (1 << 1)));
        assert_eq!(d.read(0x100, Word, 0), Ok(0));
        assert!(d.line_enabled(27, 1));
        assert!(!d.line_enabled(27, 0));
        // vCPU 0 disables PPI 27 on its own CPU only.
        let effects = d.write(0x180, Word, 1 << 27, 0).unwrap();
        assert_eq!(&*effects, [Effect::Disable(banked(27, 0))]);
        assert_eq!(d.read(0x100, Word, 1), Ok((1 << 27) | (1 << 1)));
        // Banked priority and config.
        let effects = d.write(0x41b, Byte, 0x20, 1).unwrap();
        assert_eq!(
            &*effects,
            [Effect::SetPriority {
                irq: banked(27, 1),
                priority: 0x20
            }]
        );
        assert_eq!(d.read(0x418, Word, 1), Ok(0x20 << 24));
        assert_eq!(d.read(0x418, Word, 0), Ok(0));
        let effects = d.write(0xc04, Word, 0b10 << 22, 0).unwrap();
        assert_eq!(
            &*effects,
            [Effect::SetConfig {
                irq: banked(27, 0),
                edge: true
            }]
        );
        // SGIs read as edge and cannot be changed.
        assert_eq!(d.read(0xc00, Word, 0), Ok(0xaaaa_aaaa));
        assert!(d.write(0xc00, Word, 0, 0).unwrap().is_empty());
        // SGI pending bits of ISPENDR0 are write-ignored; PPI ones act on the CPU.
        let effects = d.write(0x200, Word, 0xffff | (1 << 27), 1).unwrap();
        assert_eq!(&*effects, [Effect::SetPending(banked(27, 1))]);
    }

    #[test]
    fn hv_private_ppis_are_invisible() {
        let mut d = v2();
        // Maintenance (25) and EL2 timer (26).
        assert!(d.write(0x180, Word, 0b11 << 25, 0).unwrap().is_empty());
        assert_eq!(d.stats().foreign_lines, 1);
        let all = d.write(0x100, Word, u64::from(u32::MAX), 0).unwrap();
        assert_eq!(all.len(), 30);
        assert!(all
            .iter()
            .all(|e| !matches!(e, Effect::Enable(Irq { intid: 25 | 26, .. }))));
        assert_eq!(r(&d, 0x100), u64::from(!DEFAULT_HV_PRIVATE));
        assert_eq!(d.read(0x419, Byte, 0), Ok(0));
        assert!(d.write(0x419, Byte, 0xff, 0).unwrap().is_empty());
        assert_eq!(r(&d, 0x080), u64::from(!DEFAULT_HV_PRIVATE));
    }

    #[test]
    fn v3_has_no_banked_lines_in_the_distributor() {
        let mut d = v3();
        assert!(w(&mut d, 0x100, u64::from(u32::MAX)).is_empty());
        assert_eq!(r(&d, 0x100), 0);
        assert_eq!(r(&d, 0xc00), 0);
        assert_eq!(r(&d, 0x080), 0);
        // ITARGETSR and SGIR do not exist with affinity routing.
        assert_eq!(r(&d, 0x820), 0);
        assert!(w(&mut d, 0x820, 0x01010101).is_empty());
        assert!(w(&mut d, 0xf00, 0x0001_0001).is_empty());
        assert_eq!(d.stats().reserved, 2);
    }

    #[test]
    fn icfgr_sets_edge_or_level_on_owned_lines() {
        let mut d = v3();
        // ICFGR2 covers 32..47: 34 and 35 owned (fields 2 and 3).
        let effects = w(&mut d, 0xc08, (0b10 << 4) | (0b10 << 2));
        assert_eq!(
            effects,
            [Effect::SetConfig {
                irq: spi(34),
                edge: true
            }]
        );
        assert_eq!(d.stats().foreign_lines, 1);
        assert_eq!(r(&d, 0xc08), 0b10 << 4);
        // Read-modify-write back unchanged: nothing.
        let v = r(&d, 0xc08);
        assert!(w(&mut d, 0xc08, v).is_empty());
        let effects = w(&mut d, 0xc08, 0b10 << 6);
        assert_eq!(
            effects,
            [
                Effect::SetConfig {
                    irq: spi(34),
                    edge: false
                },
                Effect::SetConfig {
                    irq: spi(35),
                    edge: true
                }
            ]
        );
    }

    #[test]
    fn ctlr_is_a_virtual_enable() {
        let mut d = v2();
        assert_eq!(r(&d, 0), 0);
        assert!(w(&mut d, 0, 0xffff_ffff).is_empty());
        assert_eq!(r(&d, 0), 1);
        assert!(d.distributor_enabled());
        w(&mut d, 0, 0);
        assert!(!d.distributor_enabled());

        let mut d = v3();
        assert_eq!(r(&d, 0), u64::from(CTLR_V3_ARE | CTLR_V3_DS));
        // Linux writes ARE_NS | EnableGrp1A | EnableGrp1.
        assert!(w(&mut d, 0, 0b1_0011).is_empty());
        assert_eq!(r(&d, 0), 0b101_0011);
        assert!(d.distributor_enabled());
        assert_eq!(d.ignored_writes(), 0);
    }

    #[test]
    fn id_registers() {
        let d = v2();
        // 288 lines -> ITLinesNumber 8; 2 vCPUs -> CPUNumber 1.
        assert_eq!(r(&d, 4), 8 | (1 << 5));
        assert_eq!(r(&d, 8), u64::from(IIDR_VALUE));
        assert_eq!(r(&d, 0xfe8), 0x2b);
        let d = v3();
        assert_eq!(r(&d, 4), 8 | (9 << 19));
        assert_eq!(r(&d, 8), u64::from(IIDR_VALUE));
        assert_eq!(r(&d, 0xffe8), 0x3b);
        assert_eq!(r(&d, 0xfe8), 0);
        // Pi 4 GIC-400: 224 lines.
        let pi = VgicDistributor::new(GicVersion::V2, 224, &[153], &[0, 1]).unwrap();
        assert_eq!(r(&pi, 4) & 0x1f, 6);
        // Read-only: writes are dropped and counted.
        let mut d = v2();
        assert!(w(&mut d, 4, 0).is_empty());
        assert!(w(&mut d, 0xfe8, 0).is_empty());
        assert_eq!(r(&d, 4), 8 | (1 << 5));
        assert_eq!(d.stats().reserved, 2);
    }

    #[test]
    fn bad_accesses_are_errors() {
        let mut d = v2();
        let e = |offset, width| Err(AccessError::BadWidth { offset, width });
        assert_eq!(d.read(0x104, Half, 0), e(0x104, Half));
        assert_eq!(d.read(0x104, Byte, 0), e(0x104, Byte));
        assert_eq!(d.read(0x100, Double, 0), e(0x100, Double));
        assert_eq!(d.read(0x420, Double, 0), e(0x420, Double));
        assert_eq!(d.read(0, Byte, 0), e(0, Byte));
        assert_eq!(
            d.write(0x102, Word, 0, 0).unwrap_err(),
            AccessError::Misaligned {
                offset: 0x102,
                width: Word
            }
        );
        assert_eq!(
            d.read(0x1000, Word, 0),
            Err(AccessError::OutsideFrame { offset: 0x1000 })
        );
        assert_eq!(
            d.read(u64::MAX, Byte, 0),
            Err(AccessError::OutsideFrame { offset: u64::MAX })
        );
        assert_eq!(
            d.read(0x100, Word, 2),
            Err(AccessError::NoSuchVcpu { vcpu: 2 })
        );
        let mut d3 = v3();
        assert_eq!(d3.read(0x6000 + 8 * 34, Byte, 0), e(0x6000 + 8 * 34, Byte));
        assert!(d3.read(0x6114, Word, 0).is_ok());
        assert_eq!(
            d3.write(0x6112, Word, 0, 0).unwrap_err(),
            AccessError::Misaligned {
                offset: 0x6112,
                width: Word
            }
        );
        assert_eq!(
            d3.read(0x1_0000, Word, 0),
            Err(AccessError::OutsideFrame { offset: 0x1_0000 })
        );
        // Nothing changed through any of that.
        assert_eq!(d.ignored_writes() + d3.ignored_writes(), 0);
    }

    #[test]
    fn reserved_offsets_read_zero_and_count_writes() {
        let mut d = v2();
        for offset in [0x00c, 0x040, 0xd00, 0xe00, 0xf10, 0xf20, 0xfd0, 0xffc] {
            assert_eq!(r(&d, offset), 0, "{offset:#x}");
            assert!(w(&mut d, offset, u64::from(u32::MAX)).is_empty());
        }
        assert_eq!(d.stats().reserved, 8);
        let mut d3 = v3();
        assert_eq!(d3.read(0x8000, Double, 0), Ok(0));
        assert!(d3.write(0xc000, Double, u64::MAX, 0).unwrap().is_empty());
        assert_eq!(d3.stats().reserved, 1);
    }

    #[test]
    fn setup_errors() {
        use SetupError::*;
        let new = |v, lines, spis: &[u32], cpus: &[u32]| {
            VgicDistributor::new(v, lines, spis, cpus).map(|_| ())
        };
        assert_eq!(new(GicVersion::V2, 288, &[], &[]), Err(NoVcpus));
        assert_eq!(
            new(GicVersion::V2, 288, &[], &[0, 1, 2, 3, 4, 5, 6, 7, 8]),
            Err(TooManyVcpus(9))
        );
        assert_eq!(new(GicVersion::V3, 288, &[], &[64]), Err(CpuOutOfRange(64)));
        assert_eq!(new(GicVersion::V3, 288, &[], &[1, 1]), Err(DuplicateCpu(1)));
        assert_eq!(new(GicVersion::V3, 16, &[], &[0]), Err(BadLineCount(16)));
        assert_eq!(
            new(GicVersion::V3, 2048, &[], &[0]),
            Err(BadLineCount(2048))
        );
        assert_eq!(new(GicVersion::V3, 288, &[31], &[0]), Err(NotAnSpi(31)));
        assert_eq!(new(GicVersion::V3, 288, &[288], &[0]), Err(NotAnSpi(288)));
        assert_eq!(
            new(GicVersion::V3, 1024, &[1020], &[0]),
            Err(NotAnSpi(1020))
        );
        assert_eq!(new(GicVersion::V3, 1024, &[1019], &[0]), Ok(()));
    }

    #[test]
    fn reset_effects_cover_owned_lines_on_partition_cpus() {
        let d = v3();
        let mut effects = Vec::new();
        d.reset_effects(|e| effects.push(e));
        // 2 SPIs x 6, then 2 vCPUs x 14 visible PPIs x 4 (SGIs are virtual on v3).
        assert_eq!(effects.len(), 2 * 6 + 2 * 14 * 4);
        assert!(effects.contains(&Effect::Route { intid: 35, cpu: 2 }));
        assert!(effects.contains(&Effect::Disable(spi(34))));
        assert!(effects.contains(&Effect::Disable(banked(27, 3))));
        assert!(effects.contains(&Effect::ClearPending(banked(16, 2))));
        assert!(!effects.contains(&Effect::Disable(banked(26, 2))));
        assert!(!effects.contains(&Effect::Disable(banked(15, 2))));
        for e in &effects {
            check_effect(&d, &[34, 35], &[2, 3], e);
        }

        let d = v2();
        let mut effects = Vec::new();
        d.reset_effects(|e| effects.push(e));
        assert!(effects.contains(&Effect::Target {
            intid: 100,
            cpus: cpus(&[0])
        }));
        assert!(effects.contains(&Effect::Disable(banked(27, 1))));
        assert!(!effects.contains(&Effect::Disable(banked(25, 1))));
        assert!(!effects.contains(&Effect::ClearPending(banked(3, 0))));
        for e in &effects {
            check_effect(&d, &[33, 40, 100], &[0, 1], e);
        }
    }

    /// Asserts `e` names only owned SPIs, visible banked lines and partition CPUs.
    fn check_effect(d: &VgicDistributor, owned: &[u32], part: &[u32], e: &Effect) {
        let check_irq = |irq: Irq| match irq.cpu {
            None => assert!(owned.contains(&irq.intid), "{e:?}"),
            Some(cpu) => {
                // GICv3 SGIs are virtual: only PPIs reach a redistributor.
                let first = if d.version == GicVersion::V2 { 0 } else { 16 };
                assert!((first..32).contains(&irq.intid), "{e:?}");
                assert!(d.hv_private & (1 << irq.intid) == 0, "{e:?}");
                assert!(part.contains(&cpu), "{e:?}");
            }
        };
        let check_set = |set: CpuSet| assert!(set.iter().all(|c| part.contains(&c)), "{e:?}");
        if let Some(irq) = e.irq() {
            check_irq(irq);
        }
        match e {
            Effect::Target { intid, cpus } => {
                assert!(owned.contains(intid), "{e:?}");
                check_set(*cpus);
            }
            Effect::Route { intid, cpu } => {
                assert!(owned.contains(intid), "{e:?}");
                assert!(part.contains(cpu), "{e:?}");
            }
            Effect::SendSgi { intid, cpus } => {
                assert!(*intid < 16, "{e:?}");
                assert!(!cpus.is_empty());
                check_set(*cpus);
            }
            // Per-line effects: checked above.
            _ => {}
        }
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Random writes at random offsets, widths and values from random vCPUs never give an
    /// effect outside the partition, never panic, and foreign lines keep reading zero.
    #[test]
    fn random_writes_never_escape_the_partition() {
        let configs: [(GicVersion, u32, &[u32], &[u32]); 4] = [
            (GicVersion::V2, 288, &[33, 40, 63, 64, 100], &[0, 1]),
            (GicVersion::V2, 224, &[153], &[2, 3]),
            (GicVersion::V3, 288, &[34, 35, 287], &[2, 3]),
            (GicVersion::V3, 1024, &[32, 1019], &[5, 1, 7]),
        ];
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for (version, lines, owned, part) in configs {
            let mut d = VgicDistributor::new(version, lines, owned, part).unwrap();
            let frame = d.frame_size();
            let mut effects_seen = 0;
            for _ in 0..20_000 {
                let width = [Byte, Half, Word, Double][rng.below(4) as usize];
                // Mostly aim at the interesting registers.
                let offset = match rng.below(5) {
                    0 => rng.below(frame),
                    4 => {
                        // A register field of an owned line (or its neighbours).
                        let intid = u64::from(owned[rng.below(owned.len() as u64) as usize]);
                        let field = match rng.below(4) {
                            0 => 0x100 + 0x80 * rng.below(6) + intid / 32 * 4,
                            1 => 0x400 + intid,
                            2 => 0xc00 + intid / 16 * 4,
                            _ if version == GicVersion::V2 => 0x800 + intid,
                            _ => 0x6000 + 8 * intid,
                        };
                        field & !(width.bytes() - 1)
                    }
                    1 => 0x80 + rng.below(0xc80),
                    2 if version == GicVersion::V3 => 0x6000 + rng.below(0x2000),
                    _ => [
                        0, 0xf00, 0x100, 0x104, 0x184, 0x200, 0x418, 0x420, 0x820, 0xc04, 0xc08,
                    ][rng.below(11) as usize],
                };
                let value = match rng.below(3) {
                    0 => rng.next(),
                    1 => rng.below(256),
                    _ => 1 << rng.below(64),
                };
                let vcpu = rng.below(part.len() as u64 + 1) as usize;
                match d.write(offset, width, value, vcpu) {
                    Ok(effects) => {
                        effects_seen += effects.len();
                        for e in &effects {
                            check_effect(&d, owned, part, e);
                        }
                    }
                    Err(_) => assert!(d.read(offset, width, vcpu).is_err()),
                }
                if version == GicVersion::V3 && rng.below(8) == 0 {
                    if let Ok(Some(e)) = d.write_sgi1r(rng.next(), vcpu) {
                        effects_seen += 1;
                        check_effect(&d, owned, part, &e);
                    }
                }
            }
            assert!(
                effects_seen > 300,
                "{version:?}: only {effects_seen} effects"
            );
            // Every foreign SPI still reads as zero everywhere.
            for intid in 32..d.lines {
                if owned.contains(&intid) {
                    continue;
                }
                let word = u64::from(intid / 32) * 4;
                let bit = 1u64 << (intid % 32);
                for base in [0x080, 0x100, 0x180, 0x200, 0x280, 0x300, 0x380] {
                    assert_eq!(r(&d, base + word) & bit, 0, "{intid} at {base:#x}");
                }
                assert_eq!(d.read(0x400 + u64::from(intid), Byte, 0), Ok(0));
                let cfg = 0xc00 + u64::from(intid / 16) * 4;
                assert_eq!(r(&d, cfg) >> (2 * (intid % 16)) & 0b11, 0);
                match version {
                    GicVersion::V2 => {
                        assert_eq!(d.read(0x800 + u64::from(intid), Byte, 0), Ok(0))
                    }
                    GicVersion::V3 => {
                        assert_eq!(d.read(0x6000 + 8 * u64::from(intid), Double, 0), Ok(0))
                    }
                }
            }
            assert!(d.ignored_writes() > 0);
        }
    }

    /// The trap path's entry point hands over what `write` lists, in order, and for a
    /// refused access nothing at all (no effect, no state change).
    #[test]
    fn write_each_hands_over_effects_in_order_and_none_on_errors() {
        let mut d = v2();
        let mut seen = Vec::new();
        d.write_each(0x104, Word, (1 << 8) | (1 << 1), 0, |e| seen.push(e))
            .unwrap();
        assert_eq!(seen, [Effect::Enable(spi(33)), Effect::Enable(spi(40))]);
        assert_eq!(r(&d, 0x104), (1 << 8) | (1 << 1));
        // GICD_SGIR, target list = vCPU 1: its one SGI, to vCPU 1's CPU.
        seen.clear();
        d.write_each(0xf00, Word, (1 << 17) | 3, 0, |e| seen.push(e))
            .unwrap();
        let sgi = Effect::SendSgi {
            intid: 3,
            cpus: cpus(&[1]),
        };
        assert_eq!(seen, [sgi]);
        let before = (d.stats(), r(&d, 0x104));
        for (offset, width) in [(0x186, Word), (0x104, Half), (0x1000, Word)] {
            let result = d.write_each(offset, width, u64::MAX, 0, |e| {
                panic!("{e:?} from a refused access at {offset:#x}")
            });
            assert!(result.is_err(), "{offset:#x} {width:?}");
        }
        assert_eq!((d.stats(), r(&d, 0x104)), before);
    }
}
