//! Stopping the machine: PSCI SYSTEM_OFF where firmware offers PSCI (QEMU virt), the
//! BCM2835-family watchdog where it does not (Pi 4 / QEMU raspi4b: a full reset, which
//! QEMU's `-no-reboot` turns into an exit). Without either, the CPU parks.

use smccc::{Hvc, Smc};
use spin::Once;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::ReadWrite;

use platform::dtb::PsciConduit;

use super::cpu;
use super::device_regs::{DeviceRegs, RegisterBlock};

#[derive(Clone, Copy)]
pub enum Method {
    Psci(PsciConduit),
    /// The BCM2835 power-management block (made by [`Method::watchdog`]).
    Watchdog(DeviceRegs<PmRegs>),
}

impl Method {
    /// The BCM2835 watchdog at `base`.
    ///
    /// # Safety
    /// As [`DeviceRegs::new`]: `base` is the board's power-management block, mapped as
    /// device memory for the rest of hv's life (or the MMU off) and used by hv alone.
    pub unsafe fn watchdog(base: usize) -> Self {
        // SAFETY: forwarded from the caller.
        Self::Watchdog(unsafe { DeviceRegs::new(base) })
    }
}

static METHOD: Once<Method> = Once::new();

pub fn set_method(method: Method) {
    METHOD.call_once(|| method);
}

/// PM block registers (offsets 0x1c RSTC, 0x24 WDOG), as the Linux bcm2835_wdt driver
/// documents them: writes need the 0x5a password in the top byte.
#[repr(C)]
pub struct PmRegs {
    _reserved: [u32; 7],
    rstc: ReadWrite<u32>,
    _rsts: u32,
    wdog: ReadWrite<u32>,
}

// SAFETY: cells and plain words any bit pattern is valid for; only the cells are accessed.
unsafe impl RegisterBlock for PmRegs {}

const PM_PASSWORD: u32 = 0x5a00_0000;
const RSTC_WRCFG_MASK: u32 = 0x30;
const RSTC_WRCFG_FULL_RESET: u32 = 0x20;
/// Watchdog ticks (~16 us each) before the reset fires.
const WDOG_TICKS: u32 = 10;

/// Stops the whole machine. Never returns.
pub fn system_off() -> ! {
    // Whatever is still queued for the UART goes out first.
    super::console::drain_all();
    match METHOD.get() {
        Some(Method::Psci(PsciConduit::Smc)) => {
            let _ = smccc::psci::system_off::<Smc>();
        }
        Some(Method::Psci(PsciConduit::Hvc)) => {
            let _ = smccc::psci::system_off::<Hvc>();
        }
        Some(Method::Watchdog(pm)) => {
            let pm = pm.get();
            pm.wdog.set(PM_PASSWORD | WDOG_TICKS);
            let rstc = pm.rstc.get() & !RSTC_WRCFG_MASK;
            pm.rstc.set(PM_PASSWORD | rstc | RSTC_WRCFG_FULL_RESET);
        }
        None => {}
    }
    cpu::park()
}
