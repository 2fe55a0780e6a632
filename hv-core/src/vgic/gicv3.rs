//! What only the GICv3 distributor has: IROUTER, the affinity route of each SPI, turned
//! into a physical CPU of the partition (never 1-of-N on the hardware).

use super::{Effect, VgicDistributor, View, IROUTER_DEFINED, IROUTER_IRM};

impl VgicDistributor {
    #[inline]
    pub(super) fn route_or_zero(&self, intid: u32) -> u64 {
        if self.visible(View::Distributor, intid) {
            self.route[intid as usize]
        } else {
            0
        }
    }

    /// The physical CPU a (valid) virtual IROUTER value delivers to. IRM = 1 (1 of N)
    /// is honoured by always choosing the partition's first CPU: the physical IRM must
    /// never be set, or the GIC could pick a CPU of another partition.
    #[inline]
    fn route_cpu(&self, route: u64) -> u32 {
        if route & IROUTER_IRM != 0 {
            self.cpus[0]
        } else {
            self.cpus[(route & 0xff) as usize]
        }
    }

    /// GICv3 IROUTER: Aff0 = vCPU index and Aff1-3 = 0, or IRM = 1. A route naming a
    /// vCPU the partition does not have is refused: the old route stays (counted).
    #[inline]
    pub(super) fn write_route(&mut self, intid: u32, value: u64, out: &mut impl FnMut(Effect)) {
        if !self.visible(View::Distributor, intid) {
            if value != 0 {
                self.stats.foreign_lines += 1;
            }
            return;
        }
        let value = value & IROUTER_DEFINED;
        let irm = value & IROUTER_IRM != 0;
        let aff0 = value & 0xff;
        let higher = value & !(IROUTER_IRM | 0xff);
        if !irm && (higher != 0 || aff0 >= self.cpus.len() as u64) {
            self.stats.foreign_cpus += 1;
            return;
        }
        let old = self.route_cpu(self.route[intid as usize]);
        self.route[intid as usize] = value;
        let cpu = self.route_cpu(value);
        if cpu != old {
            out(Effect::Route { intid, cpu });
        }
    }
}
