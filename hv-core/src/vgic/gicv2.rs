//! What only the GICv2 distributor has: ITARGETSR, a virtual CPU-target mask per SPI,
//! turned into physical targets within the partition.

use super::{AccessWidth, Effect, VgicDistributor, View};

impl VgicDistributor {
    /// GICv2 ITARGETSR: a virtual CPU mask per SPI; bits for vCPUs the partition does
    /// not have are dropped. INTIDs 0-31 are read-only (the accessing vCPU's own bit).
    #[inline]
    pub(super) fn write_targets(
        &mut self,
        first: u32,
        width: AccessWidth,
        value: u64,
        out: &mut impl FnMut(Effect),
    ) {
        if first < 32 {
            self.stats.reserved += 1;
            return;
        }
        let valid = self.vcpu_bits() as u8;
        let (mut foreign_line, mut foreign_cpu) = (false, false);
        for i in 0..width.bytes() as u32 {
            let intid = first + i;
            let mask = (value >> (8 * i)) as u8;
            if !self.visible(View::Distributor, intid) {
                foreign_line |= mask != 0;
                continue;
            }
            foreign_cpu |= mask & !valid != 0;
            let mask = mask & valid;
            if self.targets[intid as usize] != mask {
                self.targets[intid as usize] = mask;
                let cpus = self.physical(u64::from(mask));
                out(Effect::Target { intid, cpus });
            }
        }
        if foreign_line {
            self.stats.foreign_lines += 1;
        }
        if foreign_cpu {
            self.stats.foreign_cpus += 1;
        }
    }
}
