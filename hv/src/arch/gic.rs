//! The physical GIC (v2 or v3), owned by hv: distributor and per-CPU setup, acknowledging
//! interrupts at EL2, and injecting virtual interrupts through the virtualization
//! interface (GICv3 ICH list registers, GICv2 GICH list registers: the child module
//! [`list_registers`], one interface for both versions).
//!
//! Register offsets and fields: Arm IHI 0048B (GICv2 architecture specification: GICD
//! 4.3, GICC 4.4, GICH 5.3) and Arm IHI 0069 (GICv3: GICD 12.9, GICR 12.10/12.11, ICC and
//! ICH system registers 12.2-12.5). Guests never touch this driver's frames: their GICD is
//! unmapped and their CPU interface is virtual (GICv3 ICV_* registers, the GICv2 GICV
//! frame mapped where they expect GICC), except on the CPUs of an exit-less GICv2
//! partition, which own the physical GICC (hv takes no interrupts there).

use aarch64_cpu::registers::{Readable, Writeable, ICC_SRE_EL2, ICH_HCR_EL2, ICH_VTR_EL2};
use platform::config::GicVersion;
use platform::dtb::GicInfo;
use spin::Once;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use super::cpu;
use super::device_regs::{DeviceRegs, RegisterBlock};
use hv_core::kick_requests::{self, KickRequests, SgiVerdict};
use hv_core::layout::MAX_CPUS;
use hv_core::vgic::{Effect, Irq};

register_structs! {
    /// Distributor (common part of v2 and v3).
    Gicd {
        (0x000 => ctlr: ReadWrite<u32>),
        (0x004 => typer: ReadOnly<u32>),
        (0x008 => _reserved0),
        (0x080 => igroupr: [ReadWrite<u32>; 32]),
        (0x100 => isenabler: [ReadWrite<u32>; 32]),
        (0x180 => icenabler: [ReadWrite<u32>; 32]),
        (0x200 => ispendr: [ReadWrite<u32>; 32]),
        (0x280 => icpendr: [ReadWrite<u32>; 32]),
        (0x300 => isactiver: [ReadWrite<u32>; 32]),
        (0x380 => icactiver: [ReadWrite<u32>; 32]),
        (0x400 => ipriorityr: [ReadWrite<u32>; 255]),
        (0x7fc => _reserved2),
        (0x800 => itargetsr: [ReadWrite<u32>; 255]),
        (0xbfc => _reserved3),
        (0xc00 => icfgr: [ReadWrite<u32>; 64]),
        (0xd00 => _reserved4),
        (0xf00 => sgir: WriteOnly<u32>),
        (0xf04 => _reserved5),
        (0x1000 => @END),
    },
    /// GICv3 redistributor, SGI/PPI frame (RD_base + 64 KiB).
    GicrSgi {
        (0x000 => _reserved0),
        (0x080 => igroupr0: ReadWrite<u32>),
        (0x084 => _reserved1),
        (0x100 => isenabler0: ReadWrite<u32>),
        (0x104 => _reserved2),
        (0x180 => icenabler0: ReadWrite<u32>),
        (0x184 => _reserved3),
        (0x200 => ispendr0: ReadWrite<u32>),
        (0x204 => _reserved4),
        (0x280 => icpendr0: ReadWrite<u32>),
        (0x284 => _reserved5),
        (0x300 => isactiver0: ReadWrite<u32>),
        (0x304 => _reserved6),
        (0x380 => icactiver0: ReadWrite<u32>),
        (0x384 => _reserved7),
        (0x400 => ipriorityr: [ReadWrite<u32>; 8]),
        (0x420 => _reserved8),
        (0xc00 => icfgr: [ReadWrite<u32>; 2]),
        (0xc08 => @END),
    },
    /// GICv2 CPU interface.
    Gicc {
        (0x000 => ctlr: ReadWrite<u32>),
        (0x004 => pmr: ReadWrite<u32>),
        (0x008 => _bpr: ReadWrite<u32>),
        (0x00c => iar: ReadOnly<u32>),
        (0x010 => eoir: WriteOnly<u32>),
        (0x014 => _reserved0),
        (0x1000 => dir: WriteOnly<u32>),
        (0x1004 => @END),
    },
    /// GICv3 redistributor, RD_base frame (the registers hv uses).
    GicrRd {
        (0x000 => _ctlr: ReadWrite<u32>),
        (0x004 => _iidr: ReadOnly<u32>),
        (0x008 => typer: ReadOnly<u64>),
        (0x010 => _statusr: ReadWrite<u32>),
        (0x014 => waker: ReadWrite<u32>),
        (0x018 => @END),
    },
    /// GICv2 virtual interface control.
    Gich {
        (0x000 => hcr: ReadWrite<u32>),
        (0x004 => vtr: ReadOnly<u32>),
        (0x008 => vmcr: ReadWrite<u32>),
        (0x00c => _reserved0),
        (0x030 => elrsr0: ReadOnly<u32>),
        (0x034 => _reserved1),
        (0x0f0 => apr: ReadWrite<u32>),
        (0x0f4 => _reserved2),
        (0x100 => lr: [ReadWrite<u32>; 64]),
        (0x200 => @END),
    }
}

/// GICD_CTLR: ARE and both group enables (v3, single security state: DS = 1 on QEMU virt).
const GICD_CTLR_V3: u32 = (1 << 4) | (1 << 1) | 1;
/// GICD_CTLR (v2): forward group 0 and group 1.
const GICD_CTLR_V2: u32 = 0b11;
/// ICC_CTLR_EL1.EOImode (bit 1; aarch64-cpu declares only ExtRange): EOIR drops priority
/// only, deactivation is separate (the guest's EOI of the HW-linked virtual interrupt).
const ICC_CTLR_EOIMODE: u64 = 1 << 1;
/// GICR_WAKER: ProcessorSleep (1), ChildrenAsleep (2).
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// GICv2 GICC_CTLR: EnableGrp0 | EnableGrp1 | EOImode for group 0 (bit 9): a write to
/// EOIR only drops priority; the guest's virtual EOI deactivates (HW list registers).
const GICC_CTLR: u32 = 0b11 | GICC_CTLR_EOIMODE;
const GICC_CTLR_EOIMODE: u32 = 1 << 9;
/// GICH_HCR.En.
const GICH_HCR_EN: u32 = 1;
/// Priority hv gives the interrupts it forwards (lower is more urgent).
const PRIORITY: u8 = 0xa0;
/// INTIDs at or above this are special (spurious).
const SPURIOUS: u32 = 1020;
/// Frame of one GICv3 redistributor: RD_base and SGI_base, 64 KiB each.
const GICR_STRIDE: usize = 0x2_0000;
const GICR_SGI_OFFSET: usize = 0x1_0000;
/// GICD_IROUTER<n> (v3), 64-bit, at 0x6000 + 8n (n < 1020 meaningful).
const GICD_IROUTER: usize = 0x6000;
type Irouters = [ReadWrite<u64>; 1020];

// SAFETY: each is a `register_structs!` of tock-registers cells (or an array of them).
unsafe impl RegisterBlock for Gicd {}
// SAFETY: as above.
unsafe impl RegisterBlock for GicrRd {}
// SAFETY: as above.
unsafe impl RegisterBlock for GicrSgi {}
// SAFETY: as above.
unsafe impl RegisterBlock for Gicc {}
// SAFETY: as above.
unsafe impl RegisterBlock for Gich {}
// SAFETY: as above.
unsafe impl RegisterBlock for Irouters {}
/// Affinity fields of an MPIDR (Aff3, Aff2, Aff1, Aff0) as GICD_IROUTER takes them.
const AFFINITY_MASK: u64 = 0xff_00ff_ffff;

pub struct Gic {
    gicd: DeviceRegs<Gicd>,
    /// The frames of the version's CPU and virtualization interfaces.
    frames: Frames,
    list_registers: Once<usize>,
    /// MPIDR affinity of each CPU (index = hv's CPU index), for GICv3 routing and SGIs.
    mpidr: [u64; MAX_CPUS],
    /// GICv2 CPU interface mask of each CPU (learnt from its banked ITARGETSR0).
    interface: [AtomicU8; MAX_CPUS],
}

/// Physical SGI hv sends to a CPU to make it pick up virtual interrupts queued for its
/// vCPU. Guests never send physical SGIs (their SGI writes trap), so any number works.
pub const KICK_SGI: u32 = 0;
/// The virtualization interface's maintenance interrupt (PPI 9 on every GIC Bulkhead
/// supports: QEMU virt and the BCM2711 DTB both say so).
pub const MAINTENANCE: u32 = 25;

// The list-register interface (both versions): injecting, refilling and resetting a
// vCPU's virtual interrupts.
mod list_registers;

static GIC: Once<Gic> = Once::new();

/// Kicks hv requested and not yet taken, per CPU.
static KICKS: KickRequests = KickRequests::new();

/// SGIs hv took but did not send, per CPU: [its kick number unrequested, other numbers]
/// (written by the owning CPU, read by whoever prints statistics).
pub static STRAY_SGIS: [[AtomicU64; 2]; MAX_CPUS] =
    [const { [const { AtomicU64::new(0) }; 2] }; MAX_CPUS];

/// What differs between the GIC versions' frames: GICv2's CPU interface (GICC) and
/// virtual interface control (GICH) frames; GICv3's routing registers and one
/// redistributor per CPU (its CPU interfaces are system registers).
enum Frames {
    V2 {
        gicc: DeviceRegs<Gicc>,
        gich: DeviceRegs<Gich>,
    },
    V3 {
        irouter: DeviceRegs<Irouters>,
        redistributors: [Option<Redistributor>; MAX_CPUS],
    },
}

/// One CPU's GICv3 redistributor: RD_base, then SGI_base.
#[derive(Clone, Copy)]
struct Redistributor {
    rd: DeviceRegs<GicrRd>,
    sgi: DeviceRegs<GicrSgi>,
}

pub fn get() -> Option<&'static Gic> {
    GIC.get()
}

/// Records the GIC and enables the distributor (boot CPU, once). `mpidrs` lists the CPUs'
/// affinities in hv's CPU order. Fails when the DTB lacks a frame the version needs.
///
/// # Safety
/// `info`'s frames are the GIC's, mapped as device memory by hv's tables for the rest of
/// hv's life, and no partition maps them.
pub unsafe fn init(info: &GicInfo, mpidrs: &[u64]) -> Result<&'static Gic, &'static str> {
    let frames = match info.version {
        GicVersion::V2 => {
            let (Some(gicc), Some(gich)) = (info.gicc, info.gich) else {
                return Err("GICv2 without GICC and GICH frames in the DTB");
            };
            // SAFETY: the caller vouches for the frames; each block is its frame's start.
            unsafe {
                Frames::V2 {
                    gicc: DeviceRegs::new(gicc.base as usize),
                    gich: DeviceRegs::new(gich.base as usize),
                }
            }
        }
        GicVersion::V3 => {
            let Some(gicr) = info.gicr else {
                return Err("GICv3 without redistributors in the DTB");
            };
            // Only the frames the GICR region holds exist.
            let count = (gicr.size / GICR_STRIDE as u64) as usize;
            let redistributors = core::array::from_fn(|cpu| {
                let base = gicr.base as usize + cpu * GICR_STRIDE;
                // SAFETY: frame `cpu` lies inside the region the caller vouches for.
                (cpu < count).then(|| unsafe {
                    Redistributor {
                        rd: DeviceRegs::new(base),
                        sgi: DeviceRegs::new(base + GICR_SGI_OFFSET),
                    }
                })
            });
            // SAFETY: the IROUTER array lies inside the 64 KiB GICv3 distributor frame.
            let irouter = unsafe { DeviceRegs::new(info.gicd.base as usize + GICD_IROUTER) };
            Frames::V3 {
                irouter,
                redistributors,
            }
        }
    };
    let gic = GIC.call_once(|| {
        let mut mpidr = [0; MAX_CPUS];
        for (slot, m) in mpidr.iter_mut().zip(mpidrs) {
            *slot = *m;
        }
        Gic {
            // SAFETY: the caller vouches for the distributor frame.
            gicd: unsafe { DeviceRegs::new(info.gicd.base as usize) },
            frames,
            list_registers: Once::new(),
            mpidr,
            // GIC-400 and QEMU number CPU interfaces like the cores; each CPU confirms its
            // own from its banked ITARGETSR0 in `init_cpu`.
            interface: core::array::from_fn(|i| AtomicU8::new(1 << (i % 8))),
        }
    });
    let gicd = gic.gicd.get();
    match gic.version() {
        GicVersion::V3 => {
            gicd.ctlr.set(GICD_CTLR_V3);
            while gicd.ctlr.get() & (1 << 31) != 0 {
                core::hint::spin_loop();
            }
        }
        GicVersion::V2 => gicd.ctlr.set(GICD_CTLR_V2),
    }
    Ok(gic)
}

impl Gic {
    pub fn version(&self) -> GicVersion {
        match self.frames {
            Frames::V2 { .. } => GicVersion::V2,
            Frames::V3 { .. } => GicVersion::V3,
        }
    }

    /// Number of INTIDs the distributor implements (GICD_TYPER.ITLinesNumber).
    pub fn lines(&self) -> u32 {
        32 * ((self.gicd.get().typer.get() & 0x1f) + 1)
    }

    /// CPU `cpu`'s GICv3 redistributor. Panics on GICv2 or for a CPU the GICR region has
    /// no frame for (`check_redistributors` refuses such a board at boot).
    fn redistributor(&self, cpu: usize) -> Redistributor {
        match &self.frames {
            Frames::V3 { redistributors, .. } => redistributors
                .get(cpu)
                .copied()
                .flatten()
                .expect("a redistributor frame per CPU"),
            Frames::V2 { .. } => panic!("GICv2 has no redistributors"),
        }
    }

    /// Physical (pending, active) of 32-line word `word`: word 0 is CPU `cpu`'s banked
    /// SGIs/PPIs (its redistributor on GICv3; on GICv2 only this CPU's own bank is
    /// readable, another's reads as zero).
    pub fn physical_word(&self, word: usize, cpu: usize) -> (u32, u32) {
        let gicd = self.gicd.get();
        match (&self.frames, word) {
            (Frames::V3 { .. }, 0) => {
                let sgi = self.gicr_sgi(cpu);
                (sgi.ispendr0.get(), sgi.isactiver0.get())
            }
            (Frames::V2 { .. }, 0) if cpu != cpu::index() => (0, 0),
            _ if word < gicd.ispendr.len() => {
                (gicd.ispendr[word].get(), gicd.isactiver[word].get())
            }
            _ => (0, 0),
        }
    }

    fn gicr_sgi(&self, cpu: usize) -> &'static GicrSgi {
        self.redistributor(cpu).sgi.get()
    }

    /// Checks that redistributor frame `i` (at GICR base + i * 128 KiB, which hv and the
    /// partitions' emulated redistributors assume) belongs to CPU `i`, by its GICR_TYPER
    /// affinity (IHI 0069 12.11.35: Aff3.Aff2.Aff1.Aff0 in bits [63:32]). A board with
    /// another order would have hv program the wrong CPU's interrupts.
    pub fn check_redistributors(&self, cpus: usize) -> Result<(), alloc::string::String> {
        let Frames::V3 { redistributors, .. } = &self.frames else {
            return Ok(());
        };
        let frames = redistributors.iter().zip(&self.mpidr).enumerate();
        for (cpu, (frame, &m)) in frames.take(cpus.min(MAX_CPUS)) {
            let Some(frame) = frame else {
                return Err(alloc::format!("no redistributor frame for CPU {cpu}"));
            };
            let typer = frame.rd.get().typer.get();
            let expected = (m & 0xff_ffff) | ((m >> 32) & 0xff) << 24;
            if typer >> 32 != expected {
                return Err(alloc::format!(
                    "redistributor frame {cpu} has affinity {:#x}, CPU {cpu} is MPIDR {m:#x}",
                    typer >> 32
                ));
            }
        }
        Ok(())
    }

    /// Sets up this CPU's interface and virtualization interface. Called on every CPU that
    /// runs a vCPU, before entering it.
    pub fn init_cpu(&self) {
        self.init_cpu_for(false);
    }

    /// As [`Self::init_cpu`]; `exitless`: the guest on this CPU will own the physical CPU
    /// interface (EOI both drops priority and deactivates; the virtual interface is off).
    pub fn init_cpu_for(&self, exitless: bool) {
        let me = cpu::index();
        match &self.frames {
            Frames::V3 { .. } => {
                let waker = &self.redistributor(me).rd.get().waker;
                waker.set(waker.get() & !WAKER_PROCESSOR_SLEEP);
                while waker.get() & WAKER_CHILDREN_ASLEEP != 0 {
                    core::hint::spin_loop();
                }
                let sgi = self.gicr_sgi(me);
                sgi.igroupr0.set(u32::MAX);
                ICC_SRE_EL2.write(ICC_SRE_EL2::SRE::SET + ICC_SRE_EL2::ENABLE::SET);
                aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
                // SAFETY: CTLR, PMR and IGRPEN1 only configure this CPU's physical interface;
                // hv runs with PSTATE.I set, so nothing is taken at EL2 until a guest runs.
                unsafe {
                    core::arch::asm!(
                        "msr icc_ctlr_el1, {ctlr}",
                        "msr icc_pmr_el1, {pmr}",
                        "msr icc_igrpen1_el1, {one}",
                        "isb",
                        ctlr = in(reg) if exitless { 0 } else { ICC_CTLR_EOIMODE },
                        pmr = in(reg) 0xffu64,
                        one = in(reg) 1u64,
                        options(nostack)
                    );
                }
                ICH_HCR_EL2.write(if exitless {
                    ICH_HCR_EL2::En::CLEAR
                } else {
                    ICH_HCR_EL2::En::SET
                });
                self.list_registers
                    .call_once(|| (ICH_VTR_EL2.read(ICH_VTR_EL2::ListRegs) + 1) as usize);
            }
            Frames::V2 { gicc, gich } => {
                // Byte 0 of the banked ITARGETSR0 reads as this CPU's interface mask.
                let mask = (self.gicd.get().itargetsr[0].get() & 0xff) as u8;
                self.interface[me].store(mask, Ordering::Relaxed);
                let gicc = gicc.get();
                gicc.pmr.set(0xff);
                gicc.ctlr.set(if exitless {
                    GICC_CTLR & !GICC_CTLR_EOIMODE
                } else {
                    GICC_CTLR
                });
                let gich = gich.get();
                gich.hcr.set(if exitless { 0 } else { GICH_HCR_EN });
                self.list_registers
                    .call_once(|| ((gich.vtr.get() & 0x3f) + 1) as usize);
            }
        }
    }

    /// Enables the banked PPI or SGI `intid` on this CPU, routed to its interface.
    pub fn enable_private(&self, intid: u32) {
        let bit = 1u32 << intid;
        let byte = intid as usize;
        match self.version() {
            GicVersion::V3 => {
                let sgi = self.gicr_sgi(cpu::index());
                write_byte(&sgi.ipriorityr, byte, PRIORITY);
                sgi.isenabler0.set(bit);
            }
            GicVersion::V2 => {
                // GICD's first registers are banked per CPU for SGIs and PPIs.
                let gicd = self.gicd.get();
                write_byte(&gicd.ipriorityr, byte, PRIORITY);
                gicd.isenabler[0].set(bit);
            }
        }
    }

    /// Acknowledges the highest-priority pending interrupt; `None` if spurious. The
    /// priority is dropped at once; the interrupt stays active until deactivated (by the
    /// guest's EOI of the linked virtual interrupt, or by [`Self::deactivate`]).
    pub fn acknowledge(&self) -> Option<u32> {
        let intid = match &self.frames {
            Frames::V3 { .. } => {
                let iar: u64;
                // SAFETY: reading IAR acknowledges an interrupt; hv handles what it returns.
                unsafe {
                    core::arch::asm!("mrs {0}, icc_iar1_el1", out(reg) iar, options(nostack));
                }
                (iar & 0xff_ffff) as u32
            }
            Frames::V2 { gicc, .. } => gicc.get().iar.get() & 0x3ff,
        };
        if intid >= SPURIOUS {
            return None;
        }
        match &self.frames {
            Frames::V3 { .. } => {
                // SAFETY: EOIR with EOImode = 1 only drops the running priority.
                unsafe {
                    core::arch::asm!("msr icc_eoir1_el1, {0}", "isb", in(reg) u64::from(intid), options(nostack));
                }
            }
            Frames::V2 { gicc, .. } => gicc.get().eoir.set(intid),
        }
        Some(intid)
    }

    /// Deactivates an interrupt hv acknowledged but does not forward.
    pub fn deactivate(&self, intid: u32) {
        match &self.frames {
            Frames::V3 { .. } => {
                // SAFETY: DIR deactivates the given (active) interrupt of this CPU.
                unsafe {
                    core::arch::asm!("msr icc_dir_el1, {0}", "isb", in(reg) u64::from(intid), options(nostack));
                }
            }
            Frames::V2 { gicc, .. } => gicc.get().dir.set(intid),
        }
    }
}

impl Gic {
    /// Puts a partition's SPI in the group guests' virtual interrupts use: group 1 on
    /// GICv3 (group 0 would be signalled as FIQ); GICv2 keeps group 0 (hv's CPU interface
    /// signals it as IRQ).
    pub fn claim_spi(&self, intid: u32) {
        if self.version() == GicVersion::V3 {
            let reg = &self.gicd.get().igroupr[intid as usize / 32];
            let _config = CONFIG_WORDS.lock();
            reg.set(reg.get() | 1 << (intid % 32));
        }
    }

    /// Applies one physical action of a partition's emulated distributor (see
    /// [`hv_core::vgic`]). Banked effects name the calling CPU, whose banked registers these
    /// are.
    pub fn apply(&self, effect: &Effect) {
        if let (GicVersion::V3, Some(cpu)) = (self.version(), effect.irq().and_then(|i| i.cpu)) {
            // GICv3 SGIs/PPIs live in each CPU's redistributor, which any CPU can reach.
            self.apply_banked_v3(self.gicr_sgi(cpu as usize), effect);
            return;
        }
        let gicd = self.gicd.get();
        let bit = |intid: u32| (intid as usize / 32, 1u32 << (intid % 32));
        match *effect {
            Effect::Enable(irq) => {
                let (i, b) = bit(irq.intid);
                self.banked_or_shared(
                    irq,
                    |sgi| sgi.isenabler0.set(b),
                    || gicd.isenabler[i].set(b),
                );
            }
            Effect::Disable(irq) => {
                let (i, b) = bit(irq.intid);
                self.banked_or_shared(
                    irq,
                    |sgi| sgi.icenabler0.set(b),
                    || gicd.icenabler[i].set(b),
                );
            }
            Effect::SetPending(irq) => gicd.ispendr[bit(irq.intid).0].set(bit(irq.intid).1),
            Effect::ClearPending(irq) => gicd.icpendr[bit(irq.intid).0].set(bit(irq.intid).1),
            Effect::SetActive(irq) => gicd.isactiver[bit(irq.intid).0].set(bit(irq.intid).1),
            Effect::ClearActive(irq) => gicd.icactiver[bit(irq.intid).0].set(bit(irq.intid).1),
            Effect::SetPriority { irq, priority } => {
                write_byte(&gicd.ipriorityr, irq.intid as usize, priority);
            }
            Effect::SetConfig { irq, edge } => {
                set_edge(&gicd.icfgr[irq.intid as usize / 16], irq.intid, edge);
            }
            Effect::Target { intid, cpus } => {
                let mask = cpus.iter().fold(0u8, |m, cpu| {
                    m | self.interface[cpu as usize].load(Ordering::Relaxed)
                });
                write_byte(&gicd.itargetsr, intid as usize, mask);
            }
            Effect::Route { intid, cpu } => {
                if let Frames::V3 { irouter, .. } = &self.frames {
                    irouter.get()[intid as usize].set(self.mpidr[cpu as usize] & AFFINITY_MASK);
                }
            }
            // Virtual SGIs are delivered by the caller (they target vCPUs, not lines).
            Effect::SendSgi { .. } => {}
        }
    }

    /// [`Self::apply`] for one CPU's SGI/PPI (INTID < 32) on GICv3.
    fn apply_banked_v3(&self, sgi: &GicrSgi, effect: &Effect) {
        let Some(irq) = effect.irq().filter(|irq| irq.intid < 32) else {
            return;
        };
        let bit = 1u32 << irq.intid;
        match *effect {
            Effect::Enable(_) => sgi.isenabler0.set(bit),
            Effect::Disable(_) => sgi.icenabler0.set(bit),
            Effect::SetPending(_) => sgi.ispendr0.set(bit),
            Effect::ClearPending(_) => sgi.icpendr0.set(bit),
            Effect::SetActive(_) => sgi.isactiver0.set(bit),
            Effect::ClearActive(_) => sgi.icactiver0.set(bit),
            Effect::SetPriority { priority, .. } => {
                write_byte(&sgi.ipriorityr, irq.intid as usize, priority);
            }
            Effect::SetConfig { edge, .. } => {
                set_edge(&sgi.icfgr[irq.intid as usize / 16], irq.intid, edge);
            }
            Effect::Target { .. } | Effect::Route { .. } | Effect::SendSgi { .. } => {}
        }
    }

    fn banked_or_shared(&self, irq: Irq, banked: impl FnOnce(&GicrSgi), shared: impl FnOnce()) {
        match (self.version(), irq.cpu) {
            (GicVersion::V3, Some(cpu)) => banked(self.gicr_sgi(cpu as usize)),
            _ => shared(),
        }
    }

    /// Kicks CPU `cpu` (hv's kick SGI), recording the request first so the kick is told
    /// from one hv did not send (see [`Self::sgi_expected`]).
    pub fn kick(&self, cpu: usize) {
        KICKS.request(cpu);
        self.send_sgi(KICK_SGI, cpu);
    }

    /// Whether SGI `intid`, just acknowledged on this CPU, is a kick hv requested (taking
    /// the request). Any other SGI is one hv did not send (an exit-less partition's on
    /// GICv3 can reach any CPU): counted in [`STRAY_SGIS`]; the caller only deactivates it.
    pub fn sgi_expected(&self, intid: u32) -> bool {
        let me = cpu::index();
        let slot = match kick_requests::classify(&KICKS, me, intid, KICK_SGI) {
            SgiVerdict::Kick => return true,
            SgiVerdict::UnrequestedKick => 0,
            SgiVerdict::Foreign => 1,
        };
        if STRAY_SGIS[me][slot].fetch_add(1, Ordering::Relaxed) == 0 {
            log::warn!(
                "SGI {intid} on CPU {me} not sent by hv: ignored (counted in the statistics)"
            );
        }
        false
    }

    /// Sends physical SGI `intid` to CPU `cpu` (hv's index).
    pub fn send_sgi(&self, intid: u32, cpu: usize) {
        match &self.frames {
            Frames::V3 { .. } => {
                let m = self.mpidr[cpu];
                let value = ((m >> 32) & 0xff) << 48 // Aff3
                    | ((m >> 16) & 0xff) << 32 // Aff2
                    | (u64::from(intid) & 0xf) << 24
                    | ((m >> 8) & 0xff) << 16 // Aff1
                    | 1 << (m & 0xf); // target list: Aff0 (< 16)
                                      // SAFETY: generating an SGI only signals the target CPU's interface.
                unsafe {
                    core::arch::asm!("dsb ish", "msr icc_sgi1r_el1, {0}", "isb", in(reg) value, options(nostack));
                }
            }
            Frames::V2 { .. } => {
                let mask = u32::from(self.interface[cpu].load(Ordering::Relaxed));
                aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISH);
                self.gicd.get().sgir.set((mask << 16) | (intid & 0xf));
            }
        }
    }
}

/// Writes byte `index` of a byte-accessible GIC register array (IPRIORITYR, ITARGETSR:
/// IHI 0048B 4.3.11/4.3.12, IHI 0069 12.9.22/12.9.26 allow byte accesses). A store of the
/// one byte, not a read-modify-write of the word: CPUs configuring neighbouring lines at
/// the same time cannot undo each other's writes.
fn write_byte(array: &[ReadWrite<u32>], index: usize, value: u8) {
    assert!(
        index < array.len() * 4,
        "GIC register byte {index} out of range"
    );
    let first = array.as_ptr() as *mut u8;
    // SAFETY: the array is a GIC register block mapped as device memory (its frame is in
    // hv's map); `index` is inside it (checked above), and these registers accept byte
    // writes.
    unsafe { first.add(index).write_volatile(value) };
}

/// Serialises the read-modify-write of GIC configuration words (ICFGR, IGROUPR), which
/// pack several lines per word and take no byte writes.
static CONFIG_WORDS: spin::Mutex<()> = spin::Mutex::new(());

/// Sets `intid`'s trigger in its ICFGR word: edge (bit 2n+1 set) or level.
fn set_edge(reg: &ReadWrite<u32>, intid: u32, edge: bool) {
    let shift = (intid % 16) * 2 + 1;
    let _config = CONFIG_WORDS.lock();
    reg.set((reg.get() & !(1 << shift)) | (u32::from(edge) << shift));
}
