//! guest-rt's EL1 stage-1 translation: an identity map of its RAM (normal, cached), its
//! device frames, and the inter-partition channel (normal non-cacheable, never executable:
//! Linux sees it uncached, and hv's stage 2 says the same), built with `aarch64-paging`.
//! vCPU 0 builds it; every vCPU loads the same root.

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{ReadWriteable, Writeable, MAIR_EL1, SCTLR_EL1, TCR_EL1, TTBR0_EL1};
use aarch64_paging::descriptor::El1Attributes as Attr;
use aarch64_paging::idmap::IdMap;
use aarch64_paging::paging::{El1And0, MemoryRegion};
use platform::config::Region;
use spin::Mutex;

/// MAIR index 1: Normal write-back; every mapping valid, accessed, inner shareable.
const RAM: Attr = Attr::VALID
    .union(Attr::ATTRIBUTE_INDEX_1)
    .union(Attr::INNER_SHAREABLE)
    .union(Attr::ACCESSED);

/// MAIR index 0: Device-nGnRE, never executable.
const DEVICE: Attr = Attr::VALID
    .union(Attr::ATTRIBUTE_INDEX_0)
    .union(Attr::ACCESSED)
    .union(Attr::UXN)
    .union(Attr::PXN);

/// MAIR index 2: Normal non-cacheable, never executable (the channel).
const SHARED: Attr = Attr::VALID
    .union(Attr::ATTRIBUTE_INDEX_2)
    .union(Attr::INNER_SHAREABLE)
    .union(Attr::ACCESSED)
    .union(Attr::UXN)
    .union(Attr::PXN);

static ROOT: AtomicU64 = AtomicU64::new(0);
/// The live tables, kept for later changes (self-tests map pages outside RAM).
static MAP: Mutex<Option<IdMap<El1And0>>> = Mutex::new(None);

/// Builds the identity map of `ram`, of device frames (the GIC's) and of the memory
/// `shared` with the other partition, and publishes it.
pub fn build(ram: &[Region], devices: &[Region], shared: &[Region]) {
    let mut map = IdMap::with_asid(0, 1, El1And0);
    for r in ram {
        let range = MemoryRegion::new(r.base as usize, (r.base + r.size) as usize);
        map.map_range(&range, RAM).expect("RAM maps");
    }
    for f in devices {
        let range = MemoryRegion::new(f.base as usize, (f.base + f.size) as usize);
        map.map_range(&range, DEVICE).expect("device frame maps");
    }
    for r in shared {
        let range = MemoryRegion::new(r.base as usize, (r.base + r.size) as usize);
        map.map_range(&range, SHARED).expect("shared memory maps");
    }
    ROOT.store(map.root_address().0 as u64, Ordering::Release);
    map.mark_active();
    // Secondaries read ROOT with their caches still off: push it to memory.
    clean_line(ROOT.as_ptr() as u64);
    *MAP.lock() = Some(map);
}

/// Maps one more page as normal memory in the live tables. Used by the escape self-test,
/// so the access reaches stage 2 (hv) instead of faulting in our own stage 1.
#[cfg(feature = "selftests")]
pub fn map_page(addr: u64) {
    let page = (addr & !0xfff) as usize;
    if let Some(map) = MAP.lock().as_mut() {
        map.map_range(&MemoryRegion::new(page, page + 0x1000), RAM)
            .expect("page maps");
    }
    // SAFETY: invalidating EL1 TLB entries only drops stale translations.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi vmalle1is",
            "dsb ish",
            "isb",
            options(nostack)
        )
    };
}

/// Remaps the page at `addr` as normal executable memory in the live tables (break, then
/// make: the page changes type). Used by the `exec-channel` self-test, so a jump into the
/// channel reaches hv's stage 2 instead of stopping at our own execute-never.
#[cfg(feature = "selftests")]
pub fn remap_executable(addr: u64) {
    let page = (addr & !0xfff) as usize;
    let range = MemoryRegion::new(page, page + 0x1000);
    if let Some(map) = MAP.lock().as_mut() {
        // The split of a live block and the type change are made with the checks off: this
        // vCPU is the only one touching that page, and it invalidates its TLB in between.
        map.mark_inactive();
        map.map_range(&range, Attr::empty()).expect("page unmaps");
        invalidate_tlb();
        map.map_range(&range, RAM).expect("page maps");
        map.mark_active();
    }
    invalidate_tlb();
}

#[cfg(feature = "selftests")]
fn invalidate_tlb() {
    // SAFETY: invalidating EL1 TLB entries only drops stale translations.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi vmalle1is",
            "dsb ish",
            "isb",
            options(nostack)
        )
    };
}

fn clean_line(addr: u64) {
    // SAFETY: cleaning a cache line to the point of coherency leaves memory's contents as
    // the program wrote them.
    unsafe { core::arch::asm!("dc civac, {0}", "dsb sy", in(reg) addr, options(nostack)) };
}

/// Discards any cache line of `[start, end)` before this vCPU turns its caches on: it
/// wrote that memory with caches off, so memory holds the truth and a line left over from
/// hv's loading (or speculation) would be stale.
pub fn invalidate(start: u64, end: u64) {
    let mut addr = start & !63;
    while addr < end {
        // SAFETY: only called on memory this vCPU wrote with caches off (no dirty line of
        // it can exist in a cache it owns), so invalidation loses nothing.
        unsafe { core::arch::asm!("dc ivac, {0}", in(reg) addr, options(nostack)) };
        addr += 64;
    }
    // SAFETY: a barrier only orders the maintenance above.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}

/// Turns the MMU and caches on for this vCPU.
pub fn enable() {
    MAIR_EL1.write(
        MAIR_EL1::Attr0_Device::nonGathering_nonReordering_EarlyWriteAck
            + MAIR_EL1::Attr1_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL1::Attr1_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL1::Attr2_Normal_Outer::NonCacheable
            + MAIR_EL1::Attr2_Normal_Inner::NonCacheable,
    );
    TCR_EL1.write(
        TCR_EL1::IPS::Bits_40
            + TCR_EL1::TG0::KiB_4
            + TCR_EL1::SH0::Inner
            + TCR_EL1::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::EPD1::DisableTTBR1Walks
            + TCR_EL1::T0SZ.val(25),
    );
    TTBR0_EL1.set(ROOT.load(Ordering::Acquire));
    barrier::isb(barrier::SY);
    // SAFETY: invalidating this vCPU's EL1 TLB entries only drops stale translations.
    unsafe { core::arch::asm!("tlbi vmalle1", "dsb nsh", "isb", options(nostack)) };
    SCTLR_EL1.modify(SCTLR_EL1::M::Enable + SCTLR_EL1::C::Cacheable + SCTLR_EL1::I::Cacheable);
    barrier::isb(barrier::SY);
}
