//! SGI generation: a guest's GICv2 GICD_SGIR or GICv3 ICC_SGI1R_EL1 write becomes an
//! [`Effect::SendSgi`] naming the physical CPUs of the partition's target vCPUs. Targets
//! outside the partition are dropped and counted; hv's own SGIs are refused.

use super::{AccessError, Effect, VgicDistributor};

impl VgicDistributor {
    /// A trapped GICv3 ICC_SGI1R_EL1 write by `accessing_vcpu` (IHI 0069, ICC_SGI1R_EL1:
    /// TargetList [15:0], Aff1 [23:16], INTID [27:24], Aff2 [39:32], IRM [40], RS
    /// [47:44], Aff3 [55:48]). Virtual affinity is Aff0 = vCPU index, so Aff1-3 must be 0
    /// and the target list names vCPUs RS*16 + bit. IRM = 1 means every vCPU but the
    /// sender. Targets outside the partition are dropped (counted); `None` if none remain.
    #[inline]
    pub fn write_sgi1r(
        &mut self,
        value: u64,
        accessing_vcpu: usize,
    ) -> Result<Option<Effect>, AccessError> {
        self.check_vcpu(accessing_vcpu)?;
        let intid = ((value >> 24) & 0xf) as u32;
        let all_vcpus = self.vcpu_bits();
        let virt = if value & (1 << 40) != 0 {
            all_vcpus & !(1 << accessing_vcpu)
        } else {
            let list = value & 0xffff;
            let rs = (value >> 44) & 0xf;
            let high_aff = value & ((0xff << 16) | (0xff << 32) | (0xff << 48));
            let shift = rs * 16;
            let wanted = if high_aff != 0 || shift >= 64 {
                // A cluster that does not exist in the partition.
                if list != 0 {
                    self.stats.foreign_cpus += 1;
                }
                0
            } else {
                list << shift
            };
            if wanted & !all_vcpus != 0 {
                self.stats.foreign_cpus += 1;
            }
            wanted & all_vcpus
        };
        Ok(self.sgi_effect(intid, virt))
    }

    /// GICv2 GICD_SGIR: TargetListFilter [25:24] (0 = the list, 1 = all but self,
    /// 2 = self, 3 = reserved), CPUTargetList [23:16], SGIINTID [3:0].
    #[inline]
    pub(super) fn write_sgir(&mut self, value: u32, vcpu: usize, out: &mut impl FnMut(Effect)) {
        let intid = value & 0xf;
        let list = u64::from((value >> 16) & 0xff);
        let all = self.vcpu_bits();
        let virt = match (value >> 24) & 0b11 {
            0 => {
                if list & !all != 0 {
                    self.stats.foreign_cpus += 1;
                }
                list & all
            }
            1 => all & !(1 << vcpu),
            2 => 1 << vcpu,
            _ => {
                self.stats.reserved += 1;
                return;
            }
        };
        if let Some(effect) = self.sgi_effect(intid, virt) {
            out(effect);
        }
    }

    #[inline]
    fn sgi_effect(&mut self, intid: u32, virt: u64) -> Option<Effect> {
        if self.hv_private & (1 << intid) != 0 {
            self.stats.foreign_lines += 1;
            return None;
        }
        let cpus = self.physical(virt & self.vcpu_bits());
        (!cpus.is_empty()).then_some(Effect::SendSgi { intid, cpus })
    }
}
