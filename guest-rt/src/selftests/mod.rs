//! Boot self-tests the QEMU integration tests ask for through the partition's bootargs
//! (`rt.selftest=...`, parsed by [`guest_rt::bootargs`]).
//!
//! * `hypercalls`: a sweep of bad and good HVCs and an SMC; each result is compared with
//!   what the ABI promises and printed; hv must survive all of them.
//! * `escape@ADDR`: vCPU 1 reads ADDR (outside the partition): hv must stop that vCPU and
//!   report it while vCPU 0 keeps printing.
//! * `exec-channel`: vCPU 1 jumps into the channel: hv's stage 2 (execute-never) must stop
//!   it with an instruction abort while vCPU 0 keeps printing.
//! * `stray-sgis`: exit-less on GICv3, vCPU 0 sends every SGI number to each CPU outside
//!   the partition (Aff0 below its own on the same cluster: Linux's on QEMU virt), before
//!   it reports ready; hv must ignore and count them.
//! * `system-off`: the partition powers itself off through PSCI.
//! * `gic`: vCPU 0 sends SGIs to vCPU 1, then tries to enable, prioritize, route and
//!   trigger lines it does not own through its distributor; all must read back as
//!   unchanged.
//! * `kernel`: the portable kernel's scenarios on real threads on every vCPU.
//! * `system-reset`: at its first boot, the partition resets itself through PSCI; hv must
//!   reload and reboot it.
//! * `spi`, `spi-cross`: a passed-through device's interrupt reaches its threaded handler
//!   ([`rtc`]).
//!
//! Plus the kernel micro-benchmarks, an app (`rt.app=kernel-bench`, [`kernel_bench`]).
//! All of it is built only with the `selftests` cargo feature (which `cargo xtask` builds
//! with), so a product image carries none of it and refuses `rt.selftest` by name.
//!
//! Owns the dispatch of a self-test on each vCPU; [`crate::arch::boot`] calls it around
//! the vCPU's ready report.

use guest_rt::bootargs::SelfTest;
use guest_rt::{CpuMask, ThreadSpec};
use log::{error, info};
use smccc::Hvc;

use crate::apps::Context;
use crate::arch::boot::{enter_with_heartbeat, power_off};
use crate::arch::console::print;
use crate::arch::{hvc, mmu, threads, timer};

pub mod gic;
pub mod hypercalls;
pub mod kernel;
pub mod kernel_bench;
pub mod rtc;

/// Priority of self-test threads.
const SELFTEST_PRIORITY: u8 = 50;

/// Counts and prints one expected result (`ok` or `MISMATCH`), as the tests read it.
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

/// The `stray-sgis` self-test: SGIs 0-15 to each CPU of our cluster below our own vCPU 0.
fn stray_sgis() {
    use crate::arch::gic;
    let Some(own) = gic::physical_mpidr0() else {
        error!("stray-sgis: needs exit-less delivery (physical SGIs)");
        return;
    };
    let mut sent = 0;
    for aff0 in 0..(own & 0xff) {
        for intid in 0..16 {
            if gic::send_physical_sgi(intid, (own & !0xff) | aff0) {
                sent += 1;
            }
        }
    }
    print(format_args!(
        "stray-sgis: sent {sent} physical SGIs to the {} CPUs below ours",
        own & 0xff
    ));
}

/// What `test` does on this vCPU before it reports ready.
pub fn before_ready(test: SelfTest, cx: &Context, outside: u64) {
    if cx.vcpu == 0 && test == SelfTest::StraySgis {
        stray_sgis();
    }
    if cx.vcpu == 0 && test == SelfTest::Hypercalls {
        // Wait until vCPU 1 runs, so "already on" is what the sweep sees.
        while cx.vcpus > 1 && hvc::call(smccc::psci::PSCI_AFFINITY_INFO_64, &[1, 0])[0] != 0 {
            timer::sleep_ns(1_000_000);
        }
        hypercalls::hypercall_sweep(outside, cx.vcpus);
    }
}

/// Waits until every vCPU reported ready, so that a partition-wide stop finds the others
/// running (the tests expect hv to stop them, not to find them not started yet): an
/// event, polled, never a delay.
fn every_vcpu_running(cx: &Context) {
    while crate::arch::boot::vcpus_ready() < cx.vcpus {
        timer::sleep_ns(1_000_000);
    }
}

/// What `test` does on this vCPU once it reported ready (some never return).
pub fn after_ready(test: SelfTest, cx: &Context) {
    let index = cx.vcpu;
    match test {
        SelfTest::Escape(addr) if index == 1 => {
            info!("selftest: vCPU 1 reads {addr:#x}, outside the partition");
            mmu::map_page(addr);
            // SAFETY: not safe on purpose: hv must stop this vCPU at this access.
            let value = unsafe { (addr as *const u64).read_volatile() };
            error!("selftest: read {value:#x} from outside the partition: isolation is broken");
        }
        SelfTest::ExecChannel if index == 1 => {
            let Some(channel) = crate::arch::boot::channel_region() else {
                error!("selftest: exec-channel: hv named no channel");
                return;
            };
            // The last page (the channel's top is unused by the layout; what is there is
            // data either way).
            let target = channel.base + channel.size - 0x1000;
            info!("selftest: vCPU 1 jumps into the channel at {target:#x}");
            mmu::remap_executable(target);
            // SAFETY: not safe on purpose: hv's stage 2 must stop this vCPU at the fetch.
            let code: extern "C" fn() = unsafe { core::mem::transmute(target as usize) };
            code();
            error!("selftest: ran code from the channel: execute-never is broken");
        }
        SelfTest::SystemOff if index == 0 => {
            every_vcpu_running(cx);
            info!("selftest: powering the partition off");
            power_off();
        }
        SelfTest::Gic if index == 0 => gic::gic_checks(cx.vcpus),
        SelfTest::Gic if index == 1 => gic::gic_burst_receiver(),
        SelfTest::Spi | SelfTest::SpiCross => {
            if index == 0 {
                let check = if test == SelfTest::Spi {
                    rtc::spi_check
                } else {
                    rtc::spi_cross_check
                };
                threads::spawn(
                    ThreadSpec::fifo(SELFTEST_PRIORITY).on(CpuMask::single(0)),
                    check,
                );
            }
            enter_with_heartbeat(index, cx.args.heartbeat_ms);
        }
        SelfTest::Kernel => {
            if index == 0 {
                kernel::start();
            }
            threads::enter();
        }
        SelfTest::SystemReset if index == 0 && hvc::partition_status().boots == 1 => {
            every_vcpu_running(cx);
            info!("selftest: resetting the partition");
            let _ = smccc::psci::system_reset::<Hvc>();
            error!("selftest: SYSTEM_RESET returned");
        }
        _ => {}
    }
}
