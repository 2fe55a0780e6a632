//! The doorbells between the partitions, wired to the GIC.
//!
//! Linux -> RT: a store of the doorbell magic to hv's control page ([`ring_from_linux`],
//! on a Linux CPU) asks the rate limit ([`LinuxToRt`]); when it allows, hv makes the RT
//! partition's doorbell SPI pending in the physical distributor. That line is the RT
//! partition's like any device line (its distributor model owns it), so both delivery
//! modes take it unchanged: trap-and-inject forwards it as an owned SPI, exit-less lets
//! the RT CPU take it straight from its CPU interface. A pending line made pending again
//! stays one interrupt until the RT vCPU acknowledges it: rings coalesce in the GIC. A
//! held ring is raised by the next ring or Linux's console tick after the interval.
//!
//! RT -> Linux: the RT partition's hypercall ([`ring_from_rt`]) only counts, sets a flag
//! and kicks Linux's CPUs (SGI): it takes no lock any Linux CPU takes, so the RT side
//! never waits for Linux. The kicked Linux CPU ([`deliver_to_linux`]) pulses line 0 of the
//! emulated PL061 and raises its virtual SPI, as the console UART's.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use spin::{Mutex, Once};

use hv_core::control_page::DoorbellCounts;
use hv_core::doorbell::LinuxToRt;
use hv_core::emulated_gpio::EmulatedGpio;
use hv_core::esr::DataAbort;
use hv_core::mmio_access::{AccessWidth, Refusal};
use hv_core::running::Running;
use hv_core::vgic::{Effect, Irq};
use hv_core::vgpio::{Pulse, DOORBELL_LINE};
use platform::config::DoorbellSpec;

use super::exception::Frame;
use super::{cpu, gic};

struct Setup {
    to_rt: u32,
    linux_cpus: Vec<u32>,
}

static SETUP: Once<Setup> = Once::new();
/// Linux's rings: taken only on Linux's CPUs (control page traps and their ticks).
static LINUX_TO_RT: Mutex<LinuxToRt> = Mutex::new(LinuxToRt::new(0));
/// Rings from the RT partition, and one not yet delivered to Linux's PL061.
static RT_RINGS: AtomicU64 = AtomicU64::new(0);
static FOR_LINUX: AtomicBool = AtomicBool::new(false);
/// Pulses that found Linux's last doorbell not yet acknowledged.
static LINUX_COALESCED: AtomicU64 = AtomicU64::new(0);

/// Sets the doorbells up from the board's `[channel.doorbells]` (before any vCPU runs).
pub fn init(spec: &DoorbellSpec, linux_cpus: &[u32]) {
    let interval = cpu::tick_hz() * u64::from(spec.min_interval_us) / 1_000_000;
    *LINUX_TO_RT.lock() = LinuxToRt::new(interval.max(1));
    SETUP.call_once(|| Setup {
        to_rt: spec.to_rt,
        linux_cpus: linux_cpus.to_vec(),
    });
    if let Some(gic) = gic::get() {
        // Group 1 on GICv3, as the RT partition's device lines.
        gic.claim_spi(spec.to_rt);
    }
}

/// The counters the control page reads, if the board has doorbells.
pub fn counts() -> Option<DoorbellCounts> {
    SETUP.get()?;
    let linux = LINUX_TO_RT.lock();
    Some(DoorbellCounts {
        rings: linux.rings(),
        raised: linux.raised(),
        rt_rings: RT_RINGS.load(Ordering::Relaxed),
    })
}

fn raise_rt(setup: &Setup) {
    if let Some(gic) = gic::get() {
        gic.apply(&Effect::SetPending(Irq {
            intid: setup.to_rt,
            cpu: None,
        }));
    }
}

/// Linux rang through the control page (on a Linux CPU).
pub fn ring_from_linux() {
    let Some(setup) = SETUP.get() else {
        return;
    };
    if LINUX_TO_RT.lock().ring(cpu::ticks()) {
        raise_rt(setup);
    }
}

/// Linux's console tick (on a Linux CPU): a held ring whose interval is over is raised,
/// and a ring from the RT side that found no Linux CPU taking it is delivered.
pub fn tick(linux: &Running) {
    let Some(setup) = SETUP.get() else {
        return;
    };
    // Another Linux CPU ticking now does the same.
    if let Some(mut state) = LINUX_TO_RT.try_lock() {
        if state.due(cpu::ticks()) {
            raise_rt(setup);
        }
    }
    deliver_to_linux(linux);
}

/// The RT partition rang (its hypercall, on an RT CPU): false if the board has no
/// doorbells. Atomics and SGIs only: nothing here waits for a Linux CPU.
pub fn ring_from_rt() -> bool {
    let Some(setup) = SETUP.get() else {
        return false;
    };
    RT_RINGS.fetch_add(1, Ordering::Relaxed);
    if !FOR_LINUX.swap(true, Ordering::AcqRel) {
        if let Some(gic) = gic::get() {
            for &cpu in &setup.linux_cpus {
                // A kick hv requested, not a bare SGI (which is counted stray and ignored).
                gic.kick(cpu as usize);
            }
        }
    }
    true
}

/// On a Linux CPU (its kick or tick): pulses the PL061's doorbell line for a ring the RT
/// side made since the last look.
pub fn deliver_to_linux(linux: &Running) {
    let Some(gpio) = &linux.doorbell_gpio else {
        return;
    };
    if !FOR_LINUX.load(Ordering::Relaxed) || !FOR_LINUX.swap(false, Ordering::AcqRel) {
        return;
    }
    if gpio.model().lock().pulse(DOORBELL_LINE) == Pulse::Coalesced {
        LINUX_COALESCED.fetch_add(1, Ordering::Relaxed);
    }
    gpio.update_irq(linux);
}

/// (rings from Linux, raises of the RT line, rings from RT, rings Linux had not taken yet).
pub fn stats() -> Option<(u64, u64, u64, u64)> {
    let c = counts()?;
    Some((
        c.rings,
        c.raised,
        c.rt_rings,
        LINUX_COALESCED.load(Ordering::Relaxed),
    ))
}

/// The emulated PL061 wired to the GIC.
pub trait GpioWiring {
    /// A guest load or store in the frame.
    fn access(
        &self,
        frame: &mut Frame,
        partition: &Running,
        offset: u64,
        da: DataAbort,
    ) -> Result<(), Refusal>;
    /// Keeps the virtual SPI pending while the model's line is high, on the partition's
    /// first running vCPU (injected here when that is this CPU's, else that CPU is kicked).
    fn update_irq(&self, partition: &Running);
}

impl GpioWiring for EmulatedGpio {
    fn access(
        &self,
        frame: &mut Frame,
        partition: &Running,
        offset: u64,
        da: DataAbort,
    ) -> Result<(), Refusal> {
        const DEVICE: &str = "the doorbell GPIO controller";
        let Some(width) = AccessWidth::from_bytes(da.size) else {
            return Err(Refusal::Device(
                "the doorbell GPIO controller: access of an unknown size",
            ));
        };
        let result = {
            let mut model = self.model().lock();
            if da.write {
                model.write(offset, width, frame.reg(da.register))
            } else {
                model
                    .read(offset, width)
                    .map(|value| frame.complete_load(da, value))
            }
        };
        self.update_irq(partition);
        result.map_err(|error| Refusal::Access {
            device: DEVICE,
            error,
        })
    }

    fn update_irq(&self, partition: &Running) {
        if self.model().lock().line_high() {
            super::virtual_line::raise(partition, self.spi());
        }
    }
}
