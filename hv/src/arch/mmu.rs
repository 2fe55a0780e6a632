//! hv's own EL2 stage-1 translation: an identity map with caches on, built with
//! `aarch64-paging`.
//!
//! RAM is Normal write-back (hv's own RAM executable, all other RAM execute-never);
//! device frames are Device-nGnRE, execute-never; the inter-partition channel is Normal
//! non-cacheable, execute-never, as both partitions see it. The boot CPU builds the tables once;
//! secondaries load the same root. Nothing here maps guest stage-2.

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{Writeable, MAIR_EL2, SCTLR_EL2, TCR_EL2, TTBR0_EL2};
use aarch64_paging::descriptor::El23Attributes as Attr;
use aarch64_paging::idmap::IdMap;
use aarch64_paging::paging::{El2, MemoryRegion};
use alloc::boxed::Box;
use platform::config::Region;

/// MAIR index 0: Device-nGnRE; index 1: Normal inner/outer write-back, read/write-allocate;
/// index 2: Normal non-cacheable.
const DEVICE: Attr = Attr::ATTRIBUTE_INDEX_0;
const NORMAL: Attr = Attr::ATTRIBUTE_INDEX_1.union(Attr::INNER_SHAREABLE);
const NON_CACHEABLE: Attr = Attr::ATTRIBUTE_INDEX_2.union(Attr::INNER_SHAREABLE);
/// Every mapping: valid, accessed (no access-flag faults), AP[1] which is RES1 at EL2.
const BASE: Attr = Attr::VALID.union(Attr::ACCESSED).union(Attr::USER_RES1);

/// TCR_EL2 RES1 bits 31 and 23 (non-VHE layout, Arm ARM D24.2.182), not declared by
/// aarch64-cpu.
const TCR_EL2_RES1: u64 = (1 << 31) | (1 << 23);
/// SCTLR_EL2 RES1 bits for the non-VHE layout (Arm ARM D24.2.176): 4, 5, 11, 16, 18, 22,
/// 23, 28, 29.
const SCTLR_EL2_RES1: u64 = 0x30c5_0830;

/// 39-bit address space (T0SZ = 25, starting at level 1): covers every board's devices.
const T0SZ: u64 = 25;
const ROOT_LEVEL: usize = 1;

static ROOT: AtomicU64 = AtomicU64::new(0);

pub enum Kind {
    /// hv's own RAM (code lives here).
    HvRam,
    Ram,
    Device,
    /// Memory a partition reads with caches off (the channel): hv's writes must not sit
    /// in a cache line the partition never sees.
    Shared,
}

pub struct Builder {
    map: IdMap<El2>,
}

impl Builder {
    pub fn new() -> Self {
        Self {
            map: IdMap::new(ROOT_LEVEL, El2),
        }
    }

    pub fn map(&mut self, region: Region, kind: Kind) -> Result<(), aarch64_paging::MapError> {
        let start = (region.base & !0xfff) as usize;
        let end = (region.base + region.size).next_multiple_of(0x1000) as usize;
        let attrs = match kind {
            Kind::HvRam => BASE | NORMAL,
            Kind::Ram => BASE | NORMAL | Attr::XN,
            Kind::Device => BASE | DEVICE | Attr::XN,
            Kind::Shared => BASE | NON_CACHEABLE | Attr::XN,
        };
        self.map.map_range(&MemoryRegion::new(start, end), attrs)
    }

    /// Publishes the tables for every CPU; they live for the rest of the boot.
    pub fn finish(mut self) {
        ROOT.store(self.map.root_address().0 as u64, Ordering::Release);
        self.map.mark_active();
        Box::leak(Box::new(self.map));
    }
}

/// Turns this CPU's MMU and caches on with the published tables.
///
/// # Safety
/// The tables must identity-map everything this CPU touches from now on (code, stack,
/// data, devices), which `boot` ensures by mapping hv's whole RAM.
pub unsafe fn enable() {
    let root = ROOT.load(Ordering::Acquire);
    assert!(root != 0, "MMU tables not built");
    MAIR_EL2.write(
        MAIR_EL2::Attr0_Device::nonGathering_nonReordering_EarlyWriteAck
            + MAIR_EL2::Attr1_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL2::Attr1_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL2::Attr2_Normal_Outer::NonCacheable
            + MAIR_EL2::Attr2_Normal_Inner::NonCacheable,
    );
    let tcr = TCR_EL2::PS::Bits_40
        + TCR_EL2::TG0::KiB_4
        + TCR_EL2::SH0::Inner
        + TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::T0SZ.val(T0SZ);
    TCR_EL2.set(tcr.value | TCR_EL2_RES1);
    TTBR0_EL2.set(root);
    barrier::isb(barrier::SY);
    // SAFETY: TLB invalidation of EL2 entries only discards stale translations.
    unsafe { core::arch::asm!("tlbi alle2", "dsb nsh", "isb", options(nostack)) };
    let sctlr = SCTLR_EL2::M::Enable + SCTLR_EL2::C::Cacheable + SCTLR_EL2::I::Cacheable;
    SCTLR_EL2.set(sctlr.value | SCTLR_EL2_RES1);
    barrier::isb(barrier::SY);
}
