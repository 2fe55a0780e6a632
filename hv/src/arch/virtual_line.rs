//! Raising the interrupt of a device hv emulates for a partition (the console UART, the
//! doorbell PL061): a virtual SPI with no physical line behind it, put in a list register
//! of the partition's first running vCPU.
//!
//! Owns only the delivery; each device's model decides whether its line is high. It never
//! waits: without a free list register the next tick or trap tries again.

use hv_core::running::Running;

use super::{cpu, gic};

/// The device's line `spi` is high: injects it if the partition's distributor and that
/// line are enabled, here or by kicking the CPU of its first running vCPU.
pub fn raise(partition: &Running, spi: u32) {
    {
        let vgic = partition.vgic.lock();
        if !vgic.distributor_enabled() || !vgic.line_enabled(spi, 0) {
            return;
        }
    }
    let Some(gic) = gic::get() else {
        return;
    };
    let Some(target) = partition.state.lock().first_running_cpu() else {
        return;
    };
    if cpu::index() == target as usize {
        gic.inject_virtual(spi);
    } else {
        // A kick hv requested: a bare SGI would be counted as a stray one and ignored.
        gic.kick(target as usize);
    }
}
