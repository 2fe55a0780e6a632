//! Stopping the machine: PSCI SYSTEM_OFF where firmware offers PSCI (QEMU virt), the
//! BCM2835-family watchdog where it does not (Pi 4 / QEMU raspi4b: a full reset with
//! PM_RSTS naming partition 63, which the Pi's firmware takes as "halt", and QEMU's
//! `-no-reboot` turns into an exit). Without either, the CPU parks.

use smccc::{Hvc, Smc};
use spin::Once;
use tock_registers::fields::FieldValue;
use tock_registers::interfaces::{ReadWriteable, Writeable};
use tock_registers::registers::ReadWrite;
use tock_registers::{register_bitfields, register_structs};

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

register_bitfields! {u32,
    /// PM_RSTS: the reset status the firmware reads after a reset. Its "hard reset
    /// address" bits (0, 2, 4, 6, 8, 10) name the partition to boot next; partition 63
    /// tells the boot firmware not to boot again (Linux's bcm2835 watchdog uses it for
    /// power-off).
    PM_RSTS [
        PARTITION_BIT0 OFFSET(0) NUMBITS(1) [],
        PARTITION_BIT1 OFFSET(2) NUMBITS(1) [],
        PARTITION_BIT2 OFFSET(4) NUMBITS(1) [],
        PARTITION_BIT3 OFFSET(6) NUMBITS(1) [],
        PARTITION_BIT4 OFFSET(8) NUMBITS(1) [],
        PARTITION_BIT5 OFFSET(10) NUMBITS(1) [],
        PASSWORD OFFSET(24) NUMBITS(8) [Pm = 0x5a],
    ],
    /// PM_RSTC: what the watchdog does when it expires.
    PM_RSTC [
        WRCFG OFFSET(4) NUMBITS(2) [FullReset = 0b10],
        PASSWORD OFFSET(24) NUMBITS(8) [Pm = 0x5a],
    ],
    /// PM_WDOG: watchdog ticks (~16 us each) left before it fires.
    PM_WDOG [
        TIME OFFSET(0) NUMBITS(20) [],
        PASSWORD OFFSET(24) NUMBITS(8) [Pm = 0x5a],
    ],
}

register_structs! {
    /// The BCM2835 power-management block's watchdog registers (offsets 0x1c RSTC, 0x20
    /// RSTS, 0x24 WDOG), as the Linux bcm2835_wdt driver documents them: every write needs
    /// the 0x5a password in the top byte.
    pub PmRegs {
        (0x00 => _reserved),
        (0x1c => rstc: ReadWrite<u32, PM_RSTC::Register>),
        (0x20 => rsts: ReadWrite<u32, PM_RSTS::Register>),
        (0x24 => wdog: ReadWrite<u32, PM_WDOG::Register>),
        (0x28 => @END),
    }
}

// SAFETY: cells any bit pattern is valid for; only the cells are accessed.
unsafe impl RegisterBlock for PmRegs {}

/// Watchdog ticks before the reset fires.
const WDOG_TICKS: u32 = 10;

/// PM_RSTS's partition bits set to 63 (all six): "halt, do not boot again".
fn halt_partition() -> FieldValue<u32, PM_RSTS::Register> {
    PM_RSTS::PARTITION_BIT0::SET
        + PM_RSTS::PARTITION_BIT1::SET
        + PM_RSTS::PARTITION_BIT2::SET
        + PM_RSTS::PARTITION_BIT3::SET
        + PM_RSTS::PARTITION_BIT4::SET
        + PM_RSTS::PARTITION_BIT5::SET
}

/// Stops the whole machine. Never returns.
pub fn system_off() -> ! {
    // Whatever is still queued for the UART goes out first.
    super::console::drain_all();
    stop()
}

/// [`system_off`] without draining the console (which needs hv's per-CPU state).
pub fn stop() -> ! {
    match METHOD.get() {
        Some(Method::Psci(PsciConduit::Smc)) => {
            let _ = smccc::psci::system_off::<Smc>();
        }
        Some(Method::Psci(PsciConduit::Hvc)) => {
            let _ = smccc::psci::system_off::<Hvc>();
        }
        Some(Method::Watchdog(pm)) => {
            let pm = pm.get();
            // Halt, not reboot: partition 63 makes the Pi's boot firmware stop after the
            // reset, so a FATAL stays on the console and the board stays down (QEMU's
            // -no-reboot exits at the reset either way). The other RSTS bits are kept.
            pm.rsts.modify(PM_RSTS::PASSWORD::Pm + halt_partition());
            pm.wdog
                .write(PM_WDOG::PASSWORD::Pm + PM_WDOG::TIME.val(WDOG_TICKS));
            pm.rstc
                .modify(PM_RSTC::PASSWORD::Pm + PM_RSTC::WRCFG::FullReset);
        }
        None => {}
    }
    cpu::park()
}
