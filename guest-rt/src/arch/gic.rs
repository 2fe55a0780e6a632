//! The partition's CPU interface to its (virtual) GIC: acknowledge, drop priority,
//! deactivate.
//!
//! On GICv3 these are the ICC_* system registers, which `hv` turns into the virtual ICV_*
//! interface; on GICv2 it is the GICC frame the partition's DTB names (hv maps the GICV
//! frame there). Offsets: Arm IHI 0048B 4.4 (GICC), IHI 0069 12.2 (ICC).
//!
//! The interface runs with EOImode = 1: an EOI only drops the running priority, and the
//! interrupt stays active (never signalled again) until its deactivation. The interrupt
//! path does both at once for what it handles whole; a threaded line stays active until
//! its handler thread returns (see [`super::irq_threads`]). For a hardware-linked virtual
//! interrupt under hv, the guest's deactivation deactivates the physical one too.

use guest_rt::interrupts::cpu_interface;
use platform::config::GicVersion;
use platform::dtb::GicInfo;
use spin::Once;

#[derive(Clone, Copy)]
enum Interface {
    V3,
    /// Base of the (virtual) GICC frame.
    V2(usize),
}

static INTERFACE: Once<Interface> = Once::new();
/// Base of the distributor frame (emulated by hv: every access traps).
static GICD: Once<usize> = Once::new();
/// Base of the GICv3 redistributors (used only when booted bare).
static GICR: Once<usize> = Once::new();
/// Physical MPIDR of each vCPU's CPU, when hv gave them (exit-less delivery).
static PHYSICAL_MPIDRS: Once<alloc::vec::Vec<u64>> = Once::new();

/// Records the physical MPIDRs hv listed (exit-less: SGIs use physical affinity).
pub fn set_physical_mpidrs(mpidrs: alloc::vec::Vec<u64>) {
    PHYSICAL_MPIDRS.call_once(|| mpidrs);
}

/// GICD_SGIR (v2): target list bits 23:16, INTID bits 3:0.
const GICD_SGIR: usize = 0xf00;

const GICC_CTLR: usize = 0x00;
const GICC_PMR: usize = 0x04;
const GICC_IAR: usize = 0x0c;
const GICC_EOIR: usize = 0x10;
/// GICC_DIR, in the frame's second 4 KiB page (IHI 0048B 4.4, GICC_DIR; GICV_DIR, 5.3).
const GICC_DIR: usize = 0x1000;
/// GICC_CTLR: enable group 0 and group 1 interrupts.
const GICC_CTLR_ENABLE: u32 = 0b11;
/// GICC_CTLR.EOImodeNS: bit 9 in the Non-secure copy, and bit 9 (EOImodeS, the one that
/// applies) in a GIC without Security Extensions (IHI 0048B 4.4, GICC_CTLR); the virtual
/// GICV_CTLR.EOImode is bit 9 too (5.3, GICV_CTLR).
const GICC_CTLR_EOIMODE: u32 = 1 << 9;
/// ICC_CTLR_EL1.EOImode, bit 1 (IHI 0069 12.2.6; under hv this is ICV_CTLR_EL1's).
const ICC_CTLR_EOIMODE: u64 = 1 << 1;
/// Records the interface from the partition's DTB (vCPU 0, once). Refuses a GICv2 CPU
/// interface frame too small to reach GICC_DIR.
pub fn init(info: &GicInfo) -> Result<(), &'static str> {
    if let (GicVersion::V2, Some(gicc)) = (info.version, info.gicc) {
        if gicc.size < (GICC_DIR + 4) as u64 {
            return Err("the GICC frame is smaller than 8 KiB: no GICC_DIR to deactivate with");
        }
    }
    INTERFACE.call_once(|| match (info.version, info.gicc) {
        (GicVersion::V2, Some(gicc)) => Interface::V2(gicc.base as usize),
        _ => Interface::V3,
    });
    GICD.call_once(|| info.gicd.base as usize);
    if let Some(gicr) = info.gicr {
        GICR.call_once(|| gicr.base as usize);
    }
    Ok(())
}

/// The GICv3 redistributors (guest-rt's when booted bare; under hv they are emulated).
pub fn redistributor_frame(info: &GicInfo) -> Option<platform::config::Region> {
    info.gicr
}

/// Booted bare (no hv), guest-rt sets up the GIC itself: the distributor once (vCPU 0)
/// and this vCPU's redistributor, with its virtual timer PPI enabled (GICv3 only; under
/// hv all of this is hv's). Offsets: Arm IHI 0069, 12.9 and 12.10-12.11.
pub fn init_bare(vcpu: usize) {
    const GICD_CTLR_ARE_GRP1: u32 = (1 << 4) | (1 << 1) | 1;
    const GICR_STRIDE: usize = 0x2_0000;
    const GICR_WAKER: usize = 0x14;
    const SGI_BASE: usize = 0x1_0000;
    const IGROUPR0: usize = 0x80;
    const ISENABLER0: usize = 0x100;
    let (Some(Interface::V3), Some(&gicd), Some(&gicr)) = (INTERFACE.get(), GICD.get(), GICR.get())
    else {
        return;
    };
    let rd = gicr + vcpu * GICR_STRIDE;
    // SAFETY: booted bare, the GIC is guest-rt's alone; its frames are mapped as device
    // memory (distributor, redistributors) and each vCPU touches only its own redistributor.
    unsafe {
        if vcpu == 0 {
            reg(gicd, 0).write_volatile(GICD_CTLR_ARE_GRP1);
        }
        let waker = reg(rd, GICR_WAKER);
        waker.write_volatile(waker.read_volatile() & !(1 << 1));
        while waker.read_volatile() & (1 << 2) != 0 {
            core::hint::spin_loop();
        }
        reg(rd + SGI_BASE, IGROUPR0).write_volatile(u32::MAX);
        reg(rd + SGI_BASE, ISENABLER0)
            .write_volatile((1 << super::timer::intid()) | (1 << super::threads::RESCHED_SGI));
    }
}

pub fn is_v3() -> bool {
    matches!(INTERFACE.get(), Some(Interface::V3))
}

/// Sends SGI `intid` to vCPU `target` of this partition (hv delivers it). Nothing is sent
/// for a value the register cannot express (an INTID above 15, a GICv2 target above 7).
/// Out of line: every kernel entry's exit checks for IPIs to send, and inlined here it
/// made each entry save more registers whether or not it sent any.
#[inline(never)]
pub fn send_sgi(intid: u32, target: usize) {
    match INTERFACE.get() {
        Some(Interface::V3) => {
            // Under hv the affinity is virtual (Aff0 = vCPU index, the write traps); with
            // exit-less delivery it is the target CPU's physical MPIDR.
            let mpidr = PHYSICAL_MPIDRS
                .get()
                .and_then(|m| m.get(target).copied())
                .unwrap_or(target as u64);
            let Some(value) = cpu_interface::sgi1r(intid, mpidr) else {
                return;
            };
            // SAFETY: the write traps to hv, which sends the SGI within this partition only.
            unsafe {
                core::arch::asm!("msr icc_sgi1r_el1, {0}", "isb", in(reg) value, options(nostack))
            };
        }
        Some(Interface::V2(_)) => {
            if let Some(value) = cpu_interface::gicd_sgir(intid, target) {
                gicd_write(GICD_SGIR, value);
            }
        }
        None => {}
    }
}

/// Sends physical SGI `intid` to the CPU of affinity `mpidr`, whoever runs there: only an
/// exit-less partition on GICv3 owns an interface that can (its ICC_SGI1R_EL1 writes do
/// not trap). False when this partition cannot (the `stray-sgis` self-test then says so).
#[cfg(feature = "selftests")]
pub fn send_physical_sgi(intid: u32, mpidr: u64) -> bool {
    let (Some(Interface::V3), Some(_)) = (INTERFACE.get(), PHYSICAL_MPIDRS.get()) else {
        return false;
    };
    let Some(value) = cpu_interface::sgi1r(intid, mpidr) else {
        return false;
    };
    // SAFETY: exit-less, the write reaches the physical GIC: the self-test means it to.
    unsafe { core::arch::asm!("msr icc_sgi1r_el1, {0}", "isb", in(reg) value, options(nostack)) };
    true
}

/// The physical MPIDR of this partition's vCPU 0, when hv gave them (exit-less).
#[cfg(feature = "selftests")]
pub fn physical_mpidr0() -> Option<u64> {
    PHYSICAL_MPIDRS.get().and_then(|m| m.first().copied())
}

/// A 32-bit write to the (emulated) distributor.
pub fn gicd_write(offset: usize, value: u32) {
    if let Some(base) = GICD.get() {
        // SAFETY: the GICD frame is mapped as device memory; hv emulates every access.
        unsafe { reg(*base, offset).write_volatile(value) };
    }
}

/// A 32-bit read of the (emulated) distributor.
pub fn gicd_read(offset: usize) -> u32 {
    match GICD.get() {
        // SAFETY: as for [`gicd_write`].
        Some(base) => unsafe { reg(*base, offset).read_volatile() },
        None => 0,
    }
}

/// A 32-bit read of vCPU `vcpu`'s GICv3 redistributor frame at `offset` (RD_base; SGI_base
/// at 64 KiB); 0 on GICv2.
pub fn gicr_read(vcpu: usize, offset: usize) -> u32 {
    match GICR.get() {
        // SAFETY: the redistributor region is mapped as device memory (emulated by hv,
        // every access traps); `vcpu` picks one 128 KiB frame of it.
        Some(base) => unsafe { reg(*base + vcpu * GICR_FRAME, offset).read_volatile() },
        None => 0,
    }
}

/// A 32-bit write to vCPU `vcpu`'s GICv3 redistributor frame (see [`gicr_read`]).
pub fn gicr_write(vcpu: usize, offset: usize, value: u32) {
    if let Some(base) = GICR.get() {
        // SAFETY: as for [`gicr_read`].
        unsafe { reg(*base + vcpu * GICR_FRAME, offset).write_volatile(value) };
    }
}

/// One GICv3 redistributor frame: RD_base and SGI_base.
const GICR_FRAME: usize = 0x2_0000;
const GICR_SGI_BASE: usize = 0x1_0000;

/// Banked word 0 (SGIs and PPIs) of the one-bit-per-line register at distributor offset
/// `bank` (0x100 ISENABLER ... 0x380 ICACTIVER) for this vCPU: its redistributor's copy on
/// GICv3, the banked GICD register on GICv2.
pub fn banked_read(vcpu: usize, bank: usize) -> u32 {
    if is_v3() {
        gicr_read(vcpu, GICR_SGI_BASE + bank)
    } else {
        gicd_read(bank)
    }
}

/// Writes banked word 0 of `bank` for this vCPU (see [`banked_read`]).
pub fn banked_write(vcpu: usize, bank: usize, value: u32) {
    if is_v3() {
        gicr_write(vcpu, GICR_SGI_BASE + bank, value)
    } else {
        gicd_write(bank, value)
    }
}

/// Distributor registers of a partition's SPIs (Arm IHI 0069 12.9, IHI 0048B 4.3): the
/// set-enable, clear-enable and set-pending bitmaps, the priority and (GICv2) target
/// bytes, the two-bit configuration fields, and (GICv3) the 64-bit routers.
const GICD_CTLR: usize = 0x000;
const GICD_ISENABLER: usize = 0x100;
const GICD_ICENABLER: usize = 0x180;
const GICD_ISPENDR: usize = 0x200;
const GICD_IPRIORITYR: usize = 0x400;
const GICD_ITARGETSR: usize = 0x800;
const GICD_ICFGR: usize = 0xc00;
const GICD_IROUTER: usize = 0x6000;
/// GICD_CTLR: GICv3 ARE_NS with both groups on (IHI 0069 12.9.4); GICv2 enable (4.3.1).
const GICD_CTLR_V3_ON: u32 = (1 << 4) | 0b11;
const GICD_CTLR_V2_ON: u32 = 1;

/// The word of a one-bit-per-line register that holds `intid`, and its bit.
fn bit_of(base: usize, intid: u32) -> (usize, u32) {
    (base + (intid as usize / 32) * 4, 1 << (intid % 32))
}

/// Writes `byte` as line `intid`'s byte of a byte-per-line register (read-modify-write of
/// its word: hv emulates word accesses).
fn set_byte_of(base: usize, intid: u32, byte: u8) {
    let (offset, lane) = (base + (intid as usize / 4) * 4, (intid % 4) * 8);
    let word = gicd_read(offset);
    gicd_write(offset, (word & !(0xff << lane)) | (u32::from(byte) << lane));
}

/// Enables (or masks) line `intid` in the distributor.
pub fn set_spi_enabled(intid: u32, on: bool) {
    let (offset, bit) = bit_of(if on { GICD_ISENABLER } else { GICD_ICENABLER }, intid);
    gicd_write(offset, bit);
}

/// Whether line `intid` reads as enabled in the distributor.
pub fn spi_enabled(intid: u32) -> bool {
    let (offset, bit) = bit_of(GICD_ISENABLER, intid);
    gicd_read(offset) & bit != 0
}

/// Makes line `intid` pending, as if its device had signalled it.
pub fn pend_spi(intid: u32) {
    let (offset, bit) = bit_of(GICD_ISPENDR, intid);
    gicd_write(offset, bit);
}

/// Sets SPI `intid` up to reach vCPU `vcpu` at `priority`: distributor on, priority byte,
/// routing (GICv3 IROUTER Aff0 = vCPU index, GICv2 target bit), and edge- (`edge`) or
/// level-sensitive. Enabling the line is left to its handler's registration.
pub fn set_up_spi(intid: u32, vcpu: usize, priority: u8, edge: bool) {
    gicd_write(
        GICD_CTLR,
        if is_v3() {
            GICD_CTLR_V3_ON
        } else {
            GICD_CTLR_V2_ON
        },
    );
    set_byte_of(GICD_IPRIORITYR, intid, priority);
    if is_v3() {
        // Virtual affinity: hv's distributor model maps vCPU indexes to CPUs.
        gicd_write(GICD_IROUTER + 8 * intid as usize, vcpu as u32);
    } else {
        set_byte_of(GICD_ITARGETSR, intid, 1 << vcpu);
    }
    // Two bits per line; bit 1 of the field set = edge-triggered.
    let (offset, field) = (GICD_ICFGR + (intid as usize / 16) * 4, (intid % 16) * 2 + 1);
    let config = gicd_read(offset);
    gicd_write(
        offset,
        if edge {
            config | 1 << field
        } else {
            config & !(1 << field)
        },
    );
}

/// The distributor frame guest-rt maps (as device memory) to talk to its emulation.
pub fn distributor_frame(info: &GicInfo) -> platform::config::Region {
    let size = match info.version {
        GicVersion::V2 => 0x1000,
        GicVersion::V3 => 0x1_0000,
    };
    platform::config::Region::new(info.gicd.base, size)
}

/// The frame guest-rt must map as device memory (GICv2 only).
pub fn mmio_frame(info: &GicInfo) -> Option<platform::config::Region> {
    match info.version {
        GicVersion::V2 => info.gicc,
        GicVersion::V3 => None,
    }
}

fn reg(base: usize, offset: usize) -> *mut u32 {
    (base + offset) as *mut u32
}

/// Enables this vCPU's interface: every priority unmasked, both groups on, and EOImode =
/// 1 (an EOI drops priority only; its deactivation ends the interrupt).
pub fn init_cpu() {
    match INTERFACE.get() {
        Some(Interface::V3) => {
            // SAFETY: these registers configure only this vCPU's (virtual) CPU interface;
            // interrupts are still masked here, so none is in flight while EOImode changes.
            unsafe {
                core::arch::asm!(
                    "mrs {t}, icc_sre_el1",
                    "orr {t}, {t}, #1",
                    "msr icc_sre_el1, {t}",
                    "isb",
                    "mrs {t}, icc_ctlr_el1",
                    "orr {t}, {t}, {eoimode}",
                    "msr icc_ctlr_el1, {t}",
                    "msr icc_pmr_el1, {pmr}",
                    "msr icc_igrpen1_el1, {one}",
                    "isb",
                    t = out(reg) _,
                    eoimode = in(reg) ICC_CTLR_EOIMODE,
                    pmr = in(reg) 0xffu64,
                    one = in(reg) 1u64,
                    options(nostack)
                );
            }
        }
        Some(Interface::V2(base)) => {
            // SAFETY: the GICC frame is mapped as device memory and banked per vCPU.
            unsafe {
                reg(*base, GICC_PMR).write_volatile(0xff);
                reg(*base, GICC_CTLR).write_volatile(GICC_CTLR_ENABLE | GICC_CTLR_EOIMODE);
            }
        }
        None => {}
    }
}

/// An acknowledged interrupt ([`cpu_interface::Ack`]): its INTID, and the value its EOI
/// and deactivation write back.
pub type Acked = cpu_interface::Ack;

/// Acknowledges the pending interrupt, if any.
pub fn acknowledge() -> Option<Acked> {
    match INTERFACE.get()? {
        Interface::V3 => {
            let iar: u64;
            // SAFETY: acknowledging hands the interrupt to this handler, which ends it.
            unsafe { core::arch::asm!("mrs {0}, icc_iar1_el1", out(reg) iar, options(nostack)) };
            cpu_interface::ack_v3(iar)
        }
        Interface::V2(base) => {
            // SAFETY: as above, through the mapped GICC frame.
            cpu_interface::ack_v2(unsafe { reg(*base, GICC_IAR).read_volatile() })
        }
    }
}

/// Ends an acknowledged interrupt handled whole: drops its priority, then deactivates it.
pub fn end(acked: Acked) {
    match INTERFACE.get() {
        Some(Interface::V3) => {
            // SAFETY: ends the interrupt this vCPU acknowledged (EOI before DIR, as
            // EOImode = 1 requires).
            unsafe {
                core::arch::asm!(
                    "msr icc_eoir1_el1, {0}",
                    "isb",
                    "msr icc_dir_el1, {0}",
                    "isb",
                    in(reg) u64::from(acked.value),
                    options(nostack)
                )
            };
        }
        Some(Interface::V2(base)) => {
            // SAFETY: as above, through the mapped GICC frame (`init` checked it reaches
            // GICC_DIR); device writes to one frame stay in order.
            unsafe {
                reg(*base, GICC_EOIR).write_volatile(acked.value);
                reg(*base, GICC_DIR).write_volatile(acked.value);
            }
        }
        None => {}
    }
}

/// Drops the running priority of an acknowledged interrupt (EOI with EOImode = 1): other
/// interrupts can be taken, but this one stays active until [`deactivate_spi`]d.
pub fn drop_priority(acked: Acked) {
    match INTERFACE.get() {
        Some(Interface::V3) => {
            // SAFETY: ends the priority of the interrupt this vCPU acknowledged.
            unsafe {
                core::arch::asm!("msr icc_eoir1_el1, {0}", "isb", in(reg) u64::from(acked.value), options(nostack))
            };
        }
        // SAFETY: as above, through the mapped GICC frame.
        Some(Interface::V2(base)) => unsafe { reg(*base, GICC_EOIR).write_volatile(acked.value) },
        None => {}
    }
}

/// Deactivates threaded line `intid` (an SPI, so no sender field), acknowledged on this
/// vCPU and left active by its top half after the priority drop: it can be signalled
/// again (an edge that came meanwhile is delivered now).
pub fn deactivate_spi(intid: u32) {
    match INTERFACE.get() {
        Some(Interface::V3) => {
            // SAFETY: deactivates an interrupt of this vCPU's (virtual) interface only.
            unsafe {
                core::arch::asm!("msr icc_dir_el1, {0}", "isb", in(reg) u64::from(intid), options(nostack))
            };
        }
        // SAFETY: as above; `init` checked the mapped frame reaches GICC_DIR.
        Some(Interface::V2(base)) => unsafe { reg(*base, GICC_DIR).write_volatile(intid) },
        None => {}
    }
}
