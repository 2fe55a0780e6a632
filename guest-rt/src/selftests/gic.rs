//! The `gic` self-test: vCPU 0 sends SGIs to vCPU 1 one at a time, then tries to enable,
//! prioritize, route and trigger lines it does not own through its distributor (all must
//! read back as unchanged), then sends vCPU 1 a burst of more SGIs than there are list
//! registers while vCPU 1 keeps interrupts masked, and vCPU 1 reads them all pending. In
//! between, `gic-live`: the ID registers describe the partition's lines and CPUs, and a
//! masked virtual timer with its level high reads pending.

use core::sync::atomic::{AtomicBool, Ordering};

use super::check;
use crate::arch::console::print;

/// SGIs sent by the `gic` self-test.
pub const SGI_COUNT: u32 = 3;
const TEST_SGI: u32 = 3;

/// The `gic` self-test (vCPU 0, after every vCPU is up).
pub fn gic_checks(vcpus: usize) {
    use crate::arch::gic;
    use crate::arch::timer;
    // Wait until vCPU 1 can take interrupts (its CPU interface is enabled).
    while vcpus > 1 && !crate::arch::boot::interrupts_on(1) {
        timer::sleep_ns(1_000_000);
    }
    // One at a time, each once vCPU 1 took the previous (an event): an SGI sent again
    // while still pending counts once, as on hardware. The bound only ends a run where an
    // SGI was lost; the QEMU test then finds vCPU 1's count short.
    let give_up = timer::now_ns() + STUCK_NS;
    for sent in 1..=u64::from(SGI_COUNT) {
        gic::send_sgi(TEST_SGI, 1);
        while crate::arch::irq::sgis_of(1) < sent && timer::now_ns() < give_up {
            timer::sleep_ns(1_000_000);
        }
    }
    SINGLES_DONE.store(true, Ordering::Release);
    print(format_args!("gic-check: sent {SGI_COUNT} SGIs to vCPU 1"));
    let (mut passed, mut total) = (0, 0);
    let mut c = |name: &str, got: u32| {
        check(
            "gic-check",
            name,
            i64::from(got),
            0,
            &mut passed,
            &mut total,
        )
    };
    // SPIs 32-63 except the partition's own (its devices'): all foreign, so every write
    // below must leave them reading as zero.
    let owned = crate::arch::devices::owned_spis();
    let own_bits = owned
        .iter()
        .filter(|i| (32..64).contains(*i))
        .fold(0u32, |m, i| m | 1 << (i - 32));
    let own_lanes = |first: u32| {
        owned
            .iter()
            .filter(|i| (first..first + 4).contains(*i))
            .fold(0u32, |m, i| m | 0xff << ((i - first) * 8))
    };
    gic::gicd_write(0x104, !own_bits);
    c(
        "ISENABLER1 after enabling foreign SPIs 32-63",
        gic::gicd_read(0x104) & !own_bits,
    );
    gic::gicd_write(0x204, !own_bits);
    c(
        "ISPENDR1 after triggering foreign SPIs 32-63",
        gic::gicd_read(0x204) & !own_bits,
    );
    gic::gicd_write(0x420, !own_lanes(32));
    c(
        "IPRIORITYR8 (SPIs 32-35) after writing",
        gic::gicd_read(0x420) & !own_lanes(32),
    );
    gic::gicd_write(0x820, !own_lanes(32));
    c(
        "ITARGETSR8 (SPIs 32-35) after routing",
        gic::gicd_read(0x820) & !own_lanes(32),
    );
    if gic::is_v3() {
        gic::gicd_write(0x6000 + 8 * 33, 0xff);
        c("IROUTER33 after routing", gic::gicd_read(0x6000 + 8 * 33));
    }
    print(format_args!("gic-check: {passed}/{total} as expected"));
    live_checks(vcpus);

    // More SGIs than list registers at once: vCPU 1 keeps interrupts masked until the
    // whole burst is queued, so hv must refill its list registers as they drain.
    while !RECEIVER_MASKED.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
    for intid in BURST_FIRST..BURST_FIRST + BURST {
        gic::send_sgi(intid, 1);
    }
    BURST_SENT.store(true, Ordering::Release);
    print(format_args!(
        "gic-check: sent a burst of {BURST} distinct SGIs to vCPU 1 while it had interrupts masked"
    ));
}

/// The burst: SGIs 4..12, more than the 4 list registers QEMU's GICs have.
const BURST_FIRST: u32 = 4;
pub const BURST: u32 = 8;
static RECEIVER_MASKED: AtomicBool = AtomicBool::new(false);
static SINGLES_DONE: AtomicBool = AtomicBool::new(false);
static BURST_SENT: AtomicBool = AtomicBool::new(false);

/// How long vCPU 0 waits for one SGI to arrive before counting it lost.
const STUCK_NS: u64 = 10_000_000_000;

/// vCPU 1's side of the `gic` self-test: stay masked (as it is outside its sleep) until
/// vCPU 0 has sent the burst, then let the interrupts in. Both waits are for vCPU 0's
/// flags, which it always sets (after the singles, and once it saw us masked), never for
/// a length of time: a loaded host only makes them longer.
pub fn gic_burst_receiver() {
    while !SINGLES_DONE.load(Ordering::Acquire) {
        crate::arch::timer::sleep_ns(1_000_000);
    }
    RECEIVER_MASKED.store(true, Ordering::Release);
    while !BURST_SENT.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
    // Still masked: the burst is in the list registers (4) and hv's queue (the rest), or
    // pending at the GIC (exit-less). The partition must read every one of them pending.
    let burst = ((1u32 << BURST) - 1) << BURST_FIRST;
    let pending = crate::arch::gic::banked_read(1, ISPENDR);
    print(format_args!(
        "gic-live: vCPU 1 reads its burst pending: {:#x} of {burst:#x}: {}",
        pending & burst,
        if pending & burst == burst {
            "ok"
        } else {
            "MISMATCH"
        }
    ));
}

/// Banked word-0 offsets of the pending and active bitmaps (GICD and GICR SGI_base).
const ISENABLER: usize = 0x100;
const ICENABLER: usize = 0x180;
const ISPENDR: usize = 0x200;
const ISACTIVER: usize = 0x300;

/// What the partition reads back must be what it has: GICD_TYPER's lines and CPUs, the
/// ID registers, each redistributor's GICR_TYPER, and the true pending state of its
/// virtual timer while the guest keeps it disabled with its level high (vCPU 0, with
/// interrupts masked as they are outside a sleep).
fn live_checks(vcpus: usize) {
    use crate::arch::gic;
    use aarch64_cpu::registers::{Writeable, CNTV_CTL_EL0, CNTV_CVAL_EL0};
    let (mut passed, mut total) = (0, 0);
    let mut c = |name: &str, got: u32, expected: u32| {
        check(
            "gic-live",
            name,
            i64::from(got),
            i64::from(expected),
            &mut passed,
            &mut total,
        )
    };
    let typer = gic::gicd_read(0x004);
    let highest = crate::arch::devices::owned_spis().into_iter().max();
    c(
        "GICD_TYPER.ITLinesNumber (the word of the highest own SPI)",
        typer & 0x1f,
        highest.map_or(0, |i| i / 32),
    );
    c("GICD_IIDR", gic::gicd_read(0x008), 0x4200_043b);
    if gic::is_v3() {
        c("GICD_PIDR2.ArchRev", (gic::gicd_read(0xffe8) >> 4) & 0xf, 3);
        for frame in 0..vcpus {
            let low = gic::gicr_read(frame, 0x8);
            c(
                "GICR_TYPER.Processor_Number",
                (low >> 8) & 0xffff,
                frame as u32,
            );
            c(
                "GICR_TYPER.Last",
                (low >> 4) & 1,
                u32::from(frame + 1 == vcpus),
            );
            c(
                "GICR_TYPER.Affinity",
                gic::gicr_read(frame, 0xc),
                frame as u32,
            );
        }
    } else {
        c("GICD_TYPER.CPUNumber", (typer >> 5) & 0x7, vcpus as u32 - 1);
        c("GICD_PIDR2.ArchRev", (gic::gicd_read(0xfe8) >> 4) & 0xf, 2);
    }
    // The virtual timer, disabled at the GIC, its condition met: its level is high, so
    // it is pending though it cannot be signalled; off again, it is not.
    let timer = 1 << crate::arch::timer::intid();
    gic::banked_write(0, ICENABLER, timer);
    CNTV_CVAL_EL0.set(0);
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    c(
        "masked timer, level high: ISPENDR0",
        gic::banked_read(0, ISPENDR) & timer,
        timer,
    );
    c(
        "masked timer, level high: ISACTIVER0",
        gic::banked_read(0, ISACTIVER) & timer,
        0,
    );
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    c(
        "masked timer, level low: ISPENDR0",
        gic::banked_read(0, ISPENDR) & timer,
        0,
    );
    gic::banked_write(0, ISENABLER, timer);
    print(format_args!("gic-live: {passed}/{total} as expected"));
}
