//! The `hypercalls` self-test: a sweep of bad and good HVCs and an SMC from vCPU 0 once
//! vCPU 1 runs; each result is compared with what the ABI promises and printed, and hv
//! must survive all of them.

use smccc::psci;

use super::check;
use crate::arch::console::print;
use crate::arch::hvc;

const NOT_SUPPORTED: i64 = abi::SMCCC_NOT_SUPPORTED;
const INVALID: i64 = abi::SMCCC_INVALID_PARAMETER;
const PSCI_INVALID_PARAMETERS: i64 = psci::error::INVALID_PARAMETERS as i64;
const PSCI_ALREADY_ON: i64 = psci::error::ALREADY_ON as i64;
const PSCI_INVALID_ADDRESS: i64 = psci::error::INVALID_ADDRESS as i64;

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
    let entry = crate::arch::entry::secondary_entry as *const () as u64;
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
