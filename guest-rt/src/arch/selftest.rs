//! Boot self-tests the QEMU integration tests ask for through the partition's bootargs
//! (`rt.selftest=...`, parsed by [`guest_rt::bootargs`]).
//!
//! * `hypercalls`: a sweep of bad and good HVCs and an SMC; each result is compared with
//!   what the ABI promises and printed; hv must survive all of them.
//! * `escape@ADDR`: vCPU 1 reads ADDR (outside the partition): hv must stop that vCPU and
//!   report it while vCPU 0 keeps printing.
//! * `system-off`: the partition powers itself off through PSCI.
//! * `gic`: vCPU 0 sends SGIs to vCPU 1, then tries to enable, prioritize, route and
//!   trigger lines it does not own through its distributor; all must read back as
//!   unchanged.
//! * `kernel`: the portable kernel's scenarios on real threads on every vCPU.
//! * `system-reset`: at its first boot, the partition resets itself through PSCI; hv must
//!   reload and reboot it.

use core::sync::atomic::{AtomicBool, Ordering};
use guest_rt::CpuMask;

use smccc::psci;

use super::console::print;
use super::hvc;

const NOT_SUPPORTED: i64 = abi::SMCCC_NOT_SUPPORTED;
const INVALID: i64 = abi::SMCCC_INVALID_PARAMETER;
const PSCI_INVALID_PARAMETERS: i64 = psci::error::INVALID_PARAMETERS as i64;
const PSCI_ALREADY_ON: i64 = psci::error::ALREADY_ON as i64;
const PSCI_INVALID_ADDRESS: i64 = psci::error::INVALID_ADDRESS as i64;

fn check(test: &str, name: &str, got: i64, expected: i64, passed: &mut u32, total: &mut u32) {
    *total += 1;
    let ok = got == expected;
    if ok {
        *passed += 1;
    }
    print(format_args!(
        "{test}: {name}: got {got}, expected {expected}: {}",
        if ok { "ok" } else { "MISMATCH" }
    ));
}

fn x0(x: [u64; 8]) -> i64 {
    hvc::raw(x)[0] as i64
}

/// The sweep; runs on vCPU 0 once vCPU 1 is running. `outside` is an address outside the
/// partition's RAM.
pub fn hypercall_sweep(outside: u64, vcpus: usize) {
    let (mut passed, mut total) = (0, 0);
    let mut c = |name: &str, got: i64, expected: i64| {
        check("hvc-sweep", name, got, expected, &mut passed, &mut total)
    };
    let id = |f: u32| u64::from(f);
    c(
        "unknown vendor call 0xc60000ff",
        x0([0xC600_00FF, 0, 0, 0, 0, 0, 0, 0]),
        NOT_SUPPORTED,
    );
    c(
        "unknown PSCI call 0x840000ff",
        x0([0x8400_00FF, 0, 0, 0, 0, 0, 0, 0]),
        NOT_SUPPORTED,
    );
    c(
        "function id above 32 bits",
        x0([0xFFFF_FFFF_C600_0001, 1, 0, 0, 0, 0, 0, 0]),
        NOT_SUPPORTED,
    );
    for len in [0u64, 49, u64::MAX] {
        c(
            &alloc::format!("console write of length {len}"),
            x0([id(abi::HVC_CONSOLE_WRITE), len, 0, 0, 0, 0, 0, 0]),
            INVALID,
        );
    }
    c(
        "PSCI_VERSION",
        x0([id(psci::PSCI_VERSION), 0, 0, 0, 0, 0, 0, 0]),
        0x1_0001,
    );
    c(
        "PSCI_FEATURES(CPU_SUSPEND)",
        x0([
            id(psci::PSCI_FEATURES),
            id(psci::PSCI_CPU_SUSPEND_64),
            0,
            0,
            0,
            0,
            0,
            0,
        ]),
        NOT_SUPPORTED,
    );
    c(
        "PSCI_FEATURES(CPU_ON)",
        x0([
            id(psci::PSCI_FEATURES),
            id(psci::PSCI_CPU_ON_64),
            0,
            0,
            0,
            0,
            0,
            0,
        ]),
        0,
    );
    let entry = super::entry::secondary_entry as *const () as u64;
    // MPIDR 2 is not one of ours (it is the physical number of our own first CPU, and
    // another partition's CPUs are invisible): a partition cannot start foreign CPUs.
    c(
        "CPU_ON(vCPU 2, not ours)",
        x0([id(psci::PSCI_CPU_ON_64), 2, entry, 0, 0, 0, 0, 0]),
        PSCI_INVALID_PARAMETERS,
    );
    c(
        "CPU_ON(MPIDR 0x100)",
        x0([id(psci::PSCI_CPU_ON_64), 0x100, entry, 0, 0, 0, 0, 0]),
        PSCI_INVALID_PARAMETERS,
    );
    c(
        "CPU_ON(vCPU 1, already on)",
        x0([id(psci::PSCI_CPU_ON_64), 1, entry, 1, 0, 0, 0, 0]),
        PSCI_ALREADY_ON,
    );
    c(
        "CPU_ON(vCPU 1, entry outside the partition)",
        x0([id(psci::PSCI_CPU_ON_64), 1, outside, 1, 0, 0, 0, 0]),
        PSCI_INVALID_ADDRESS,
    );
    c(
        "AFFINITY_INFO(vCPU 1)",
        x0([id(psci::PSCI_AFFINITY_INFO_64), 1, 0, 0, 0, 0, 0, 0]),
        0,
    );
    c(
        "AFFINITY_INFO(vCPU 5)",
        x0([id(psci::PSCI_AFFINITY_INFO_64), 5, 0, 0, 0, 0, 0, 0]),
        PSCI_INVALID_PARAMETERS,
    );
    c(
        "AFFINITY_INFO(level 1)",
        x0([id(psci::PSCI_AFFINITY_INFO_64), 1, 1, 0, 0, 0, 0, 0]),
        PSCI_INVALID_PARAMETERS,
    );
    let smc = {
        let r: u64;
        // SAFETY: an SMC from a guest traps to hv (HCR_EL2.TSC), which refuses it.
        unsafe {
            core::arch::asm!("smc #0", inout("x0") u64::from(psci::PSCI_VERSION) => r, options(nostack));
        }
        r as i64
    };
    c("SMC(PSCI_VERSION) refused", smc, NOT_SUPPORTED);
    let uid = hvc::raw([id(abi::HVC_CALL_UID), 0, 0, 0, 0, 0, 0, 0]);
    c(
        "CALL_UID word 0",
        uid[0] as i64,
        i64::from(abi::BULKHEAD_UID[0]),
    );
    let status = hvc::partition_status();
    c(
        "PARTITION_STATUS vCPU count",
        status.vcpus as i64,
        vcpus as i64,
    );
    print(format_args!("hvc-sweep: {passed}/{total} as expected"));
}

/// SGIs sent by the `gic` self-test.
pub const SGI_COUNT: u32 = 3;
const TEST_SGI: u32 = 3;

/// The `gic` self-test (vCPU 0, after every vCPU is up).
pub fn gic_checks(vcpus: usize) {
    use super::gic;
    use super::timer;
    // Wait until vCPU 1 can take interrupts (its CPU interface is enabled).
    while vcpus > 1 && !super::boot::interrupts_on(1) {
        timer::sleep_ns(1_000_000);
    }
    // One at a time, each once vCPU 1 took the previous: an SGI sent again while still
    // pending counts once, as on hardware.
    let give_up = timer::now_ns() + 2_000_000_000;
    for sent in 1..=u64::from(SGI_COUNT) {
        gic::send_sgi(TEST_SGI, 1);
        while super::irq::sgis_of(1) < sent && timer::now_ns() < give_up {
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
    let owned = super::devices::owned_spis();
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

/// vCPU 1's side of the `gic` self-test: stay masked (as it is outside its sleep) until
/// vCPU 0 has sent the burst, then let the interrupts in.
pub fn gic_burst_receiver() {
    let give_up = super::timer::now_ns() + 2_000_000_000;
    while !SINGLES_DONE.load(Ordering::Acquire) && super::timer::now_ns() < give_up {
        super::timer::sleep_ns(1_000_000);
    }
    RECEIVER_MASKED.store(true, Ordering::Release);
    while !BURST_SENT.load(Ordering::Acquire) && super::timer::now_ns() < give_up {
        core::hint::spin_loop();
    }
}

static RTC_FIRED: AtomicBool = AtomicBool::new(false);

/// The RTC's threaded handler: clear the device's interrupt (the line drops), flag it.
fn rtc_interrupt(_intid: u32) {
    super::pl031::clear_interrupt();
    RTC_FIRED.store(true, Ordering::Release);
}

/// Priority of the RTC's handler thread.
const RTC_HANDLER_PRIORITY: u8 = 70;

/// The `spi` self-test (a thread on vCPU 0): register the RTC's threaded handler, set its
/// line up through the emulated distributor (enable, priority, route to vCPU 0), let the
/// RTC fire one second later, and wait for the handler thread to have run.
pub fn spi_check() {
    rtc_check(None, 1);
}

/// The `spi-cross` self-test: as [`spi_check`], with the handler thread kept on vCPU 1
/// while the line is routed to vCPU 0, and three interrupts one after the other: each
/// must arrive, which needs every previous one deactivated by vCPU 0 for the handler
/// that ran on vCPU 1 (a one-shot line stays active until then).
pub fn spi_cross_check() {
    rtc_check(Some(1), 3);
}

/// Registers the RTC's threaded handler (on `handler_vcpu` only, if given), then lets the
/// RTC fire `rounds` times, one second apart, and reports what arrived.
fn rtc_check(handler_vcpu: Option<usize>, rounds: u32) {
    use super::{gic, irq_threads, pl031, threads, timer};
    let Some(intid) = pl031::find() else {
        print(format_args!(
            "spi-check: no PL031 passed through; nothing to test"
        ));
        return;
    };
    let prio = guest_rt::Priority::new(RTC_HANDLER_PRIORITY);
    let affinity = handler_vcpu.map_or(CpuMask::from_bits(u64::MAX), CpuMask::single);
    let refused = irq_threads::register_on(intid, prio, affinity, rtc_interrupt).err();
    let again = irq_threads::register(intid, prio, rtc_interrupt).err();
    let foreign = irq_threads::register(intid + 1, prio, rtc_interrupt).err();
    print(format_args!(
        "spi-check: register INTID {intid}: {refused:?}; again: {again:?}; INTID {}: {foreign:?}",
        intid + 1
    ));
    gic::set_up_spi(intid, 0, 0xa0, false);
    gic::set_spi_enabled(intid, true);
    let enabled = gic::spi_enabled(intid);
    let start = timer::now_ns();
    let mut received = 0;
    for _ in 0..rounds {
        RTC_FIRED.store(false, Ordering::Release);
        let round = timer::now_ns();
        pl031::fire_in(1);
        while !RTC_FIRED.load(Ordering::Acquire) && timer::now_ns() - round < 5_000_000_000 {
            threads::sleep_ns(10_000_000);
        }
        if RTC_FIRED.load(Ordering::Acquire) {
            received += 1;
        }
    }
    let (woken, handled) = irq_threads::counts(intid);
    let got = if received == rounds {
        "received"
    } else {
        "NOT received"
    };
    print(format_args!(
        "spi-check: INTID {intid} enabled in our distributor: {enabled}; RTC interrupt {got} \
         ({received} of {rounds}) after {} ms (handler thread woken {woken}, done {handled})",
        (timer::now_ns() - start) / 1_000_000
    ));
}
