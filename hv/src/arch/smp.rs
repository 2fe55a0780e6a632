//! Bringing secondary CPUs online: PSCI `CPU_ON` through `smccc`, or the spin table.
//!
//! Each started CPU reports in through [`mark_online`]; the boot CPU waits for it with a
//! timeout, so a CPU that never arrives is a named error, not a hang.

use core::sync::atomic::{AtomicBool, Ordering};

use platform::dtb::{BoardInfo, CpuEnable, PsciConduit};
use smccc::{Hvc, Smc};

use super::cpu;
use hv_core::layout::MAX_CPUS;

static ONLINE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// How long the boot CPU waits for a secondary to report in.
const ONLINE_TIMEOUT_MS: u64 = 5000;

pub fn mark_online(index: usize) {
    ONLINE[index].store(true, Ordering::Release);
    cpu::send_event();
}

pub fn is_online(index: usize) -> bool {
    ONLINE[index].load(Ordering::Acquire)
}

pub enum SmpError {
    /// MPIDR layouts other than "Aff0 = logical index" are not supported yet.
    Topology {
        cpu: usize,
        mpidr: u64,
    },
    PsciRefused {
        cpu: usize,
        error: smccc::psci::Error,
    },
    NoPsci,
    Unsupported {
        cpu: usize,
        method: alloc::string::String,
    },
    Timeout {
        cpu: usize,
    },
}

impl core::fmt::Display for SmpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Topology { cpu, mpidr } => write!(
                f,
                "CPU {cpu} has MPIDR {mpidr:#x}; hv needs Aff0 = logical index < {MAX_CPUS}"
            ),
            Self::PsciRefused { cpu, error } => {
                write!(f, "PSCI CPU_ON for CPU {cpu} failed: {error:?}")
            }
            Self::NoPsci => write!(f, "CPUs start by PSCI but the DTB has no /psci node"),
            Self::Unsupported { cpu, method } => {
                write!(f, "CPU {cpu} has unsupported enable-method `{method}`")
            }
            Self::Timeout { cpu } => write!(
                f,
                "CPU {cpu} did not report in within {ONLINE_TIMEOUT_MS} ms"
            ),
        }
    }
}

/// Checks that every CPU's MPIDR is its logical index in Aff0 (what the entry code uses to
/// pick a stack) and that hv has a stack for it.
pub fn check_topology(board: &BoardInfo) -> Result<(), SmpError> {
    for (i, c) in board.cpus.iter().enumerate() {
        if i >= MAX_CPUS || c.mpidr != i as u64 {
            return Err(SmpError::Topology {
                cpu: i,
                mpidr: c.mpidr,
            });
        }
    }
    Ok(())
}

/// Starts CPU `index` at the secondary entry point and waits until it is online.
pub fn start(board: &BoardInfo, index: usize) -> Result<(), SmpError> {
    let entry = super::entry::secondary_entry as *const () as u64;
    let target = &board.cpus[index];
    match &target.enable {
        CpuEnable::Psci => {
            let result = match board.psci {
                Some(PsciConduit::Smc) => {
                    smccc::psci::cpu_on::<Smc>(target.mpidr, entry, index as u64)
                }
                Some(PsciConduit::Hvc) => {
                    smccc::psci::cpu_on::<Hvc>(target.mpidr, entry, index as u64)
                }
                None => return Err(SmpError::NoPsci),
            };
            result.map_err(|error| SmpError::PsciRefused { cpu: index, error })?;
        }
        CpuEnable::SpinTable { release_addr } => {
            let slot = *release_addr as *mut u64;
            // SAFETY: the release address is the firmware's spin-table slot for this CPU
            // (from the DTB), inside hv's identity-mapped RAM. The waiting CPU runs with
            // caches off, so the write is cleaned to the point of coherency before `sev`.
            unsafe {
                slot.write_volatile(entry);
                core::arch::asm!("dc civac, {0}", "dsb sy", in(reg) slot, options(nostack));
            }
            cpu::send_event();
        }
        CpuEnable::Other(method) => {
            return Err(SmpError::Unsupported {
                cpu: index,
                method: method.clone(),
            })
        }
    }
    let deadline = cpu::ticks() + cpu::tick_hz() * ONLINE_TIMEOUT_MS / 1000;
    while !is_online(index) {
        if cpu::ticks() > deadline {
            return Err(SmpError::Timeout { cpu: index });
        }
        core::hint::spin_loop();
    }
    Ok(())
}
