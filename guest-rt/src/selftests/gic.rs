//! The `gic` self-test: vCPU 0 sends SGIs to vCPU 1 one at a time, then tries to enable,
//! prioritize, route and trigger lines it does not own through its distributor (all must
//! read back as unchanged), then sends vCPU 1 a burst of more SGIs than there are list
//! registers while vCPU 1 keeps interrupts masked.

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
}
