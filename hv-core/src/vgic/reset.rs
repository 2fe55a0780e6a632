//! The physical setup that matches a fresh distributor model: what hv applies to the
//! partition's lines at boot and at every partition reset.

use platform::config::GicVersion;

use super::{CpuSet, Effect, Irq, VgicDistributor};

impl VgicDistributor {
    /// The physical setup matching the initial virtual state, for partition (re)start:
    /// each owned SPI disabled, not pending, inactive, priority 0, level, delivered to
    /// vCPU 0's CPU; also each vCPU's banked lines that reach its CPU (PPIs, and on GICv2
    /// SGIs too when they are physical; otherwise SGIs are virtual) except hv's, disabled, inactive,
    /// priority 0 and (PPIs) not pending. Banked effects name the vCPU's CPU.
    pub fn reset_effects(&self, mut apply: impl FnMut(Effect)) {
        let mut apply = |effect: Effect| {
            if Self::reaches_hardware(self.emulated_spis, &effect) {
                apply(effect);
            }
        };
        let cpu0 = self.cpus[0];
        for intid in (32..self.lines).filter(|&i| self.owns_spi(i)) {
            let irq = Irq { intid, cpu: None };
            apply(Effect::Disable(irq));
            apply(Effect::ClearPending(irq));
            apply(Effect::ClearActive(irq));
            apply(Effect::SetPriority { irq, priority: 0 });
            apply(Effect::SetConfig { irq, edge: false });
            match self.version {
                GicVersion::V2 => {
                    let mut cpus = CpuSet::empty();
                    cpus.insert(cpu0);
                    apply(Effect::Target { intid, cpus });
                }
                GicVersion::V3 => apply(Effect::Route { intid, cpu: cpu0 }),
            }
        }
        // Virtual SGIs have no physical state to reset (the physical ones are hv's).
        let first_banked = match self.version {
            GicVersion::V2 if self.physical_sgis => 0,
            _ => 16,
        };
        for &cpu in &self.cpus {
            for intid in (first_banked..32).filter(|i| self.hv_private & (1 << i) == 0) {
                let irq = Irq {
                    intid,
                    cpu: Some(cpu),
                };
                apply(Effect::Disable(irq));
                if intid >= 16 {
                    apply(Effect::ClearPending(irq));
                }
                apply(Effect::ClearActive(irq));
                apply(Effect::SetPriority { irq, priority: 0 });
            }
        }
    }
}
