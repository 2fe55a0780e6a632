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
//! state) are emulated too, in the child module [`redistributor`]
//! ([`VgicDistributor::read_redist`], [`VgicDistributor::write_redist`]); the banked
//! state is shared, so [`VgicDistributor::line_enabled`] and the notes cover INTIDs 0-31
//! on both versions.
//!
//! The model is split by concept, one child module each, sharing its private state: this
//! module decodes and dispatches accesses and owns the registers both versions share
//! (control, bitmaps, priorities, configuration); `effect` the physical actions it hands
//! out; `gicv2` the CPU targets (ITARGETSR); `gicv3` the routes (IROUTER);
//! [`redistributor`] the GICv3 redistributor frames; `sgi` SGI generation (GICD_SGIR,
//! ICC_SGI1R_EL1); `reset` the physical setup of a fresh model. The common MMIO access
//! types are [`crate::mmio_access`]'s.
//!
//! Portable and host-tested; no allocation on the access paths (effects come back in a
//! fixed-capacity list, since one access can touch at most 32 lines, or one by one).

#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::fmt;

use platform::config::GicVersion;

// One concept per child module; they share the model's private state. The GICv3
// redistributor frames share the banked state and the bitmap/priority/config logic;
// `redistributor::REDIST_FRAME` is the per-vCPU frame size.
mod effect;
mod gicv2;
mod gicv3;
pub mod live_state;
pub mod redistributor;
mod reset;
mod sgi;

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

pub use crate::mmio_access::{AccessError, AccessWidth};
pub use effect::{CpuSet, Effect, Effects, Irq, MAX_EFFECTS};
pub use live_state::LiveLines;

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

    #[inline]
    fn field(&self, field: Field) -> &u32 {
        match field {
            Field::Enabled => &self.enabled,
            Field::Pending => &self.pending,
            Field::Active => &self.active,
        }
    }

    #[inline]
    fn field_mut(&mut self, field: Field) -> &mut u32 {
        match field {
            Field::Enabled => &mut self.enabled,
            Field::Pending => &mut self.pending,
            Field::Active => &mut self.active,
        }
    }
}

/// Most SPIs of one partition whose devices hv emulates (the console, the doorbell).
pub const MAX_EMULATED_SPIS: usize = 2;
type EmulatedSpis = [Option<u32>; MAX_EMULATED_SPIS];

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
    /// The owned SPIs whose devices hv emulates (a Linux partition's console UART and
    /// doorbell PL061): the guest configures them like any of its lines, but no physical
    /// line stands behind them, so none of their effects leave the model.
    emulated_spis: EmulatedSpis,
    /// GICv3 GICR_WAKER.ProcessorSleep per vCPU (bit i = vCPU i); set at reset, as on
    /// hardware, until the guest wakes its redistributor.
    processor_sleep: u64,
    /// The partition's SGIs are physical (exit-less delivery: hv sends them with their own
    /// number and the guest takes them from its physical CPU interface), so its GICv2
    /// banked SGI writes reach its CPUs. Otherwise they are virtual and the physical SGIs
    /// of its CPUs (hv's kick SGI among them) are hv's: no SGI write reaches them.
    physical_sgis: bool,
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
            emulated_spis: [None; MAX_EMULATED_SPIS],
            ctlr: 0,
            processor_sleep: u64::MAX >> (64 - n),
            physical_sgis: false,
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

    /// Makes the partition's SGIs physical (exit-less delivery; see `physical_sgis`):
    /// on GICv2 its banked SGI writes then reach its CPUs' distributor banks. GICv3
    /// redistributor SGIs stay virtual either way.
    pub fn with_physical_sgis(mut self) -> Self {
        self.physical_sgis = true;
        self
    }

    /// Makes owned SPI `intid` one whose device hv emulates (see `emulated_spis`); an SPI
    /// the partition does not own, or more than [`MAX_EMULATED_SPIS`], is refused.
    pub fn with_emulated_spi(mut self, intid: u32) -> Result<Self, SetupError> {
        if !self.owns_spi(intid) {
            return Err(SetupError::NotAnSpi(intid));
        }
        let slot = self
            .emulated_spis
            .iter_mut()
            .find(|s| s.is_none())
            .ok_or(SetupError::NotAnSpi(intid))?;
        *slot = Some(intid);
        Ok(self)
    }

    /// Whether `intid` is one of the partition's emulated SPIs (it has no physical line).
    #[inline]
    pub fn is_emulated(&self, intid: u32) -> bool {
        self.emulated_spis.contains(&Some(intid))
    }

    /// Whether `effect` may reach the physical GIC: not when it names an emulated SPI.
    #[inline]
    fn reaches_hardware(emulated_spis: EmulatedSpis, effect: &Effect) -> bool {
        let intid = match *effect {
            Effect::Target { intid, .. } | Effect::Route { intid, .. } => Some(intid),
            ref other => other.irq().map(|irq| irq.intid),
        };
        intid.is_none() || !emulated_spis.contains(&intid)
    }

    #[inline]
    pub fn version(&self) -> GicVersion {
        self.version
    }

    #[inline]
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
    #[inline]
    pub fn distributor_enabled(&self) -> bool {
        self.ctlr != 0
    }

    /// Whether `intid` is an SPI of this partition.
    #[inline]
    pub fn owns_spi(&self, intid: u32) -> bool {
        intid >= 32 && self.word_bit(self.owned.as_slice(), intid)
    }

    /// Whether the guest has `intid` enabled in its view (banked lines: on `vcpu`).
    #[inline]
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
    #[inline]
    pub fn note_pending(&mut self, intid: u32, vcpu: usize, pending: bool) -> bool {
        self.note(intid, vcpu, pending, |b| &mut b.pending, |s| &mut s.pending)
    }

    /// As [`Self::note_pending`], for the active state.
    #[inline]
    pub fn note_active(&mut self, intid: u32, vcpu: usize, active: bool) -> bool {
        self.note(intid, vcpu, active, |b| &mut b.active, |s| &mut s.active)
    }

    #[inline]
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

    /// A guest read of `width` at `offset` in the GICD frame by `accessing_vcpu`, from the
    /// model alone (pending and active as the guest wrote them).
    #[inline]
    pub fn read(
        &self,
        offset: u64,
        width: AccessWidth,
        accessing_vcpu: usize,
    ) -> Result<u64, AccessError> {
        self.read_with(offset, width, accessing_vcpu, None)
    }

    /// [`Self::read`] on the trap path: pending and active are the lines' true state, the
    /// model merged with what `live` reports (the physical GIC, list registers, hv's
    /// queues; see [`live_state`]).
    #[inline]
    pub fn read_live(
        &self,
        offset: u64,
        width: AccessWidth,
        accessing_vcpu: usize,
        live: &dyn LiveLines,
    ) -> Result<u64, AccessError> {
        self.read_with(offset, width, accessing_vcpu, Some(live))
    }

    #[inline]
    fn read_with(
        &self,
        offset: u64,
        width: AccessWidth,
        accessing_vcpu: usize,
        live: Option<&dyn LiveLines>,
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
            Reg::Bits { op, word } => {
                u64::from(self.read_bits(View::Distributor, op, word, vcpu, live))
            }
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
    #[inline]
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
        let emulated_spis = self.emulated_spis;
        let mut physical_only = |effect: Effect| {
            if Self::reaches_hardware(emulated_spis, &effect) {
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

    // ---- decoding ------------------------------------------------------------------

    #[inline]
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

    #[inline]
    fn check_vcpu(&self, vcpu: usize) -> Result<(), AccessError> {
        if vcpu < self.cpus.len() {
            Ok(())
        } else {
            Err(AccessError::NoSuchVcpu { vcpu })
        }
    }

    // ---- register values -------------------------------------------------------------

    /// GICD_TYPER: ITLinesNumber [4:0] = the partition's lines (up to the word of its
    /// highest SPI, not the physical GIC's); GICv2 CPUNumber [7:5] = vCPUs - 1; GICv3
    /// IDbits [23:19] = 9 (10 INTID bits: no LPIs), No1N [25] = 0 (IRM is honoured, see
    /// `write_route`). SecurityExtn = 0: a single security state.
    #[inline]
    fn typer(&self) -> u32 {
        let it_lines = self.owned.iter().rposition(|&w| w != 0).unwrap_or(0) as u32;
        match self.version {
            GicVersion::V2 => it_lines | ((self.cpus.len() as u32 - 1) << 5),
            GicVersion::V3 => it_lines | (9 << 19),
        }
    }

    /// PIDR2: ArchRev [7:4] (2 = GICv2, 3 = GICv3), JEDEC [3] = 1, DES_1 [2:0] = 0b011.
    #[inline]
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
    #[inline]
    fn visible_mask(&self, view: View, word: usize) -> u32 {
        match (view, word, self.version) {
            (View::Distributor, 0, GicVersion::V3) => 0,
            (_, 0, _) => !self.hv_private,
            (View::Distributor, w, _) => self.owned.get(w).copied().unwrap_or(0),
            (View::Redistributor, _, _) => 0,
        }
    }

    #[inline]
    fn visible(&self, view: View, intid: u32) -> bool {
        self.visible_mask(view, (intid / 32) as usize) & (1 << (intid % 32)) != 0
    }

    /// Whether `intid` is the guest's in some frame: a banked line hv does not keep, or
    /// an owned SPI (the version-independent view of `line_enabled` and the notes).
    #[inline]
    fn guest_line(&self, intid: u32) -> bool {
        match intid {
            0..32 => self.hv_private & (1 << intid) == 0,
            _ => self.owns_spi(intid),
        }
    }

    #[inline]
    fn word_bit(&self, words: &[u32], intid: u32) -> bool {
        words
            .get((intid / 32) as usize)
            .is_some_and(|w| w & (1 << (intid % 32)) != 0)
    }

    /// The banked state `intid` refers to for `vcpu`, if it is a banked line.
    #[inline]
    fn banked_of(&self, intid: u32, vcpu: usize) -> Option<&Banked> {
        if intid < 32 {
            self.banked.get(vcpu)
        } else {
            None
        }
    }

    /// A set/clear bitmap register's value: the state of its visible lines (with `live`,
    /// their true pending and active state; `vcpu` is the accessing vCPU, or the frame's
    /// through a redistributor).
    #[inline]
    fn read_bits(
        &self,
        view: View,
        op: BitOp,
        word: usize,
        vcpu: usize,
        live: Option<&dyn LiveLines>,
    ) -> u32 {
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
        let visible = self.visible_mask(view, word);
        let (Some(live), Some(&cpu)) = (live, self.cpus.get(vcpu)) else {
            return state & visible;
        };
        let which = match field {
            Field::Enabled => return state & visible,
            Field::Pending => live_state::State::Pending,
            Field::Active => live_state::State::Active,
        };
        let hardware = match word {
            0 if live.physical_sgis() => !0,
            0 => !SGI_MASK,
            // Lines hv emulates (the console UART's, the doorbell PL061's) have no
            // physical state: only the model's.
            _ => !self
                .emulated_spis
                .iter()
                .flatten()
                .filter(|&&spi| (spi / 32) as usize == word)
                .fold(0u32, |m, &spi| m | 1 << (spi % 32)),
        };
        let physical = live.physical(word, cpu);
        let held = live.held(word, cpu);
        live_state::merge(which, state, hardware, physical, held) & visible
    }

    #[inline]
    fn read_priority(&self, view: View, first: u32, width: AccessWidth, vcpu: usize) -> u64 {
        self.read_bytes(view, first, width, |intid| {
            match self.banked_of(intid, vcpu) {
                Some(b) => b.priority[intid as usize],
                None => self.priority[intid as usize],
            }
        })
    }

    /// ICFGR<index>: bit 2k+1 set = line 16 * index + k is edge-triggered (SGIs always).
    #[inline]
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

    #[inline]
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

    #[inline]
    fn vcpu_bits(&self) -> u64 {
        match self.cpus.len() {
            64 => u64::MAX,
            n => (1u64 << n) - 1,
        }
    }

    /// Physical CPUs of a (valid) virtual CPU mask.
    #[inline]
    fn physical(&self, virt: u64) -> CpuSet {
        let mut set = CpuSet::empty();
        for (vcpu, &cpu) in self.cpus.iter().enumerate() {
            if virt & (1 << vcpu) != 0 {
                set.insert(cpu);
            }
        }
        set
    }

    #[inline]
    fn irq(&self, intid: u32, vcpu: usize) -> Irq {
        Irq {
            intid,
            cpu: (intid < 32).then(|| self.cpus[vcpu]),
        }
    }

    // ---- writes ----------------------------------------------------------------------

    /// A set/clear bitmap write: the virtual state of the visible lines changes; the
    /// changes that [`reaches_hardware`] become effects.
    #[inline]
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
            if !reaches_hardware(view, intid, op.field(), self.physical_sgis) {
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

    #[inline]
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
                if reaches_hardware(view, intid, Field::Enabled, self.physical_sgis) {
                    let irq = self.irq(intid, vcpu);
                    out(Effect::SetPriority { irq, priority });
                }
            }
        }
        if foreign {
            self.stats.foreign_lines += 1;
        }
    }

    /// ICFGR: two bits per line, bit 2k+1 = edge-triggered; SGIs are fixed edge.
    #[inline]
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
    #[inline]
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

    #[inline]
    fn field(self) -> Field {
        match self {
            BitOp::SetEnable | BitOp::ClearEnable => Field::Enabled,
            BitOp::SetPending | BitOp::ClearPending => Field::Pending,
            BitOp::SetActive | BitOp::ClearActive => Field::Active,
        }
    }

    /// Set (ISxxx) rather than clear (ICxxx).
    #[inline]
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
/// distributor: SPIs and GICv2 banked PPIs always, GICv2 banked SGIs only when the
/// partition's SGIs are `physical_sgis` (exit-less). Through a GICv3 redistributor: PPI
/// enable, active, priority and config only. Virtual SGIs are hv's to queue and inject
/// through list registers, and the physical SGIs of the partition's CPUs, kick SGI 0
/// included, are hv's: a guest that disabled, activated or lowered the priority of SGI 0
/// on its CPU would stop hv's kicks reaching it. PPI pending state is virtual in a
/// redistributor: a guest-set pending PPI is hv's to inject, and the physical line of a
/// forwarded PPI is pended by its device, not by the guest.
#[inline]
fn reaches_hardware(view: View, intid: u32, field: Field, physical_sgis: bool) -> bool {
    match view {
        View::Distributor => intid >= 16 || physical_sgis,
        View::Redistributor => (16..32).contains(&intid) && field != Field::Pending,
    }
}

#[cfg(test)]
mod tests;
