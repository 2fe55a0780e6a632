//! hv's own EL2 stage-1 translation: an identity map with caches on, built with
//! `aarch64-paging`.
//!
//! RAM is Normal write-back (hv's own RAM executable, all other RAM execute-never);
//! device frames are Device-nGnRE, execute-never; the inter-partition channel is Normal
//! non-cacheable, execute-never, as both partitions see it. The boot CPU builds the tables once;
//! secondaries load the same root, from a block cleaned to the point of coherency, before
//! their first store. Nothing here maps guest stage-2.

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::{MAIR_EL2, SCTLR_EL2, TCR_EL2};
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

/// What a secondary CPU programs to turn its MMU on, before it touches any other memory:
/// MAIR_EL2, TCR_EL2, TTBR0_EL2, SCTLR_EL2, in that order (read by [`secondary_mmu_on`]).
///
/// Why it exists: a real Pi 4's secondaries come out of the firmware's spin table with
/// MMU and caches off, while the boot CPU already has its caches on. Anything they read
/// with caches off comes from memory, and what the boot CPU wrote may still sit in its
/// cache; anything they write with caches off (a stack) can later be shadowed by a stale
/// line in the shared L2. So a secondary reads only this block, which the boot CPU cleans
/// to the point of coherency after writing it ([`publish_for_secondaries`]), and turns its
/// MMU and caches on before its first store, stack included. QEMU models no caches and
/// cannot show the difference.
static SECONDARY_MMU: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

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
        let root = self.map.root_address().0 as u64;
        ROOT.store(root, Ordering::Release);
        self.map.mark_active();
        Box::leak(Box::new(self.map));
        publish_for_secondaries(root);
    }
}

/// The register values that turn the MMU on with the tables at `root`.
fn registers(root: u64) -> [u64; 4] {
    let mair = MAIR_EL2::Attr0_Device::nonGathering_nonReordering_EarlyWriteAck
        + MAIR_EL2::Attr1_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc
        + MAIR_EL2::Attr1_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc
        + MAIR_EL2::Attr2_Normal_Outer::NonCacheable
        + MAIR_EL2::Attr2_Normal_Inner::NonCacheable;
    let tcr = TCR_EL2::PS::Bits_40
        + TCR_EL2::TG0::KiB_4
        + TCR_EL2::SH0::Inner
        + TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::T0SZ.val(T0SZ);
    let sctlr = SCTLR_EL2::M::Enable + SCTLR_EL2::C::Cacheable + SCTLR_EL2::I::Cacheable;
    [
        mair.value,
        tcr.value | TCR_EL2_RES1,
        root,
        sctlr.value | SCTLR_EL2_RES1,
    ]
}

/// Writes [`SECONDARY_MMU`] and cleans it to the point of coherency, so a CPU reading it
/// with caches off sees these values (before any secondary is started).
fn publish_for_secondaries(root: u64) {
    for (slot, value) in SECONDARY_MMU.iter().zip(registers(root)) {
        slot.store(value, Ordering::Relaxed);
    }
    // Explicit maintenance, not a hope: the block may sit dirty in this CPU's cache.
    super::cache::clean_to_poc(
        SECONDARY_MMU.as_ptr() as u64,
        core::mem::size_of_val(&SECONDARY_MMU) as u64,
    );
}

/// Loads the four values at `x0` (MAIR_EL2, TCR_EL2, TTBR0_EL2, SCTLR_EL2) and turns
/// the MMU and caches on with them, from registers only: the values are loaded first,
/// then translation goes off (if it was on: the boot CPU's early map), the registers are
/// written, the TLB is cleared and translation comes back on, so no data access ever
/// sees a half-switched map and no two translations of one address meet in the TLB.
/// Clobbers x1-x5, uses no stack. Parks the CPU if the TTBR0 value is 0 (never
/// published).
///
/// # Safety
/// At EL2. Both the current map (if any) and the new one identity-map this code. Any
/// cache line dirty from before stays valid (caches are not switched off).
#[unsafe(naked)]
pub unsafe extern "C" fn switch_map(values: *const u64) {
    core::arch::naked_asm!(
        "ldp    x2, x3, [x0]",
        "ldp    x4, x5, [x0, #16]",
        "cbz    x4, 9f",
        "mrs    x1, sctlr_el2",
        "bic    x1, x1, #1",
        "msr    sctlr_el2, x1",
        "isb",
        "msr    mair_el2, x2",
        "msr    tcr_el2, x3",
        "msr    ttbr0_el2, x4",
        "isb",
        "tlbi   alle2",
        "dsb    nsh",
        "isb",
        "msr    sctlr_el2, x5",
        "isb",
        "ret",
        "9:",
        "wfe",
        "b      9b",
    )
}

/// A secondary CPU's first step: its MMU and caches on with the published tables, before
/// it stores anything (see [`SECONDARY_MMU`]). Keeps x19; clobbers x0-x5.
///
/// # Safety
/// From the secondary entry code only, at EL2 with the MMU off, after the boot CPU
/// published the tables.
#[unsafe(naked)]
pub unsafe extern "C" fn secondary_mmu_on() {
    core::arch::naked_asm!(
        "adrp   x0, {block}",
        "add    x0, x0, :lo12:{block}",
        "b      {switch}",
        block = sym SECONDARY_MMU,
        switch = sym switch_map,
    )
}

/// 1 GiB blocks of the boot CPU's early map: a level-1 table of the 39-bit space.
const EARLY_ENTRIES: usize = 512;
const GIB: u64 = 1 << 30;

#[repr(C, align(4096))]
struct EarlyTable([u64; EARLY_ENTRIES]);

static mut EARLY_TABLE: EarlyTable = EarlyTable([0; EARLY_ENTRIES]);

/// The boot CPU's map from its first Rust instruction until [`enable`]: every GiB that
/// holds one of `normal` (hv's image, its payloads, the DTB) as Normal write-back memory,
/// every other GiB as Device-nGnRE, execute-never.
///
/// Why: with the MMU off every data access is Device memory, where a Cortex-A72 on a
/// Pi 4 gives load/store-exclusive no guarantee: the first lock or atomic (the heap, the
/// console) could spin for ever before hv printed a line. QEMU does not model that.
///
/// # Safety
/// Boot CPU only, once, at EL2 with the MMU off, before anything else touches
/// `EARLY_TABLE`; the addresses in `normal` are RAM (so its GiB may be cached).
pub unsafe fn enable_early(normal: &[u64]) {
    let table = core::ptr::addr_of_mut!(EARLY_TABLE).cast::<u64>();
    for index in 0..EARLY_ENTRIES {
        let base = index as u64 * GIB;
        // A level-1 block: VALID without TABLE_OR_PAGE.
        let attrs = if normal.iter().any(|&a| a / GIB == index as u64) {
            BASE | NORMAL
        } else {
            BASE | DEVICE | Attr::XN
        };
        // SAFETY: `index` < EARLY_ENTRIES, inside the static table, which nothing else
        // uses yet (the caller's contract); plain stores, as no atomic works yet.
        unsafe { table.add(index).write_volatile(base | attrs.bits() as u64) };
    }
    let values = registers(table as u64);
    // SAFETY: the table identity-maps hv's image (in `normal`), so the code goes on.
    unsafe { switch_map(values.as_ptr()) };
}

/// Moves the boot CPU from its early map to the published tables (secondaries use
/// [`secondary_mmu_on`] before they touch memory).
///
/// # Safety
/// The tables must identity-map everything this CPU touches from now on (code, stack,
/// data, devices), which `boot` ensures by mapping hv's whole RAM, with the attributes
/// the early map gave hv's RAM.
pub unsafe fn enable() {
    let root = ROOT.load(Ordering::Acquire);
    assert!(root != 0, "MMU tables not built");
    let values = registers(root);
    // SAFETY: both maps identity-map this code; the caller vouches for the rest.
    unsafe { switch_map(values.as_ptr()) };
}

/// The boot CPU's early map ([`enable_early`]), called by the entry code before any
/// other Rust: hv's image, its payloads as far as the table's header claims, and the
/// DTB at `dtb` are Normal memory.
pub extern "C" fn boot_cpu_early_map(dtb: usize) {
    let image = super::image::hv_region();
    let table = super::image::payload_table_addr();
    // SAFETY: the loader copied the whole system image, so the table's fixed-size header
    // (right after hv's memory) is readable; a missing table is reported later, by boot.
    let header =
        unsafe { core::slice::from_raw_parts(table as *const u8, platform::image::HEADER_SIZE) };
    let end = platform::image::claimed_size(header)
        .map(|size| table.saturating_add(size.min(1 << 30)))
        .unwrap_or(table);
    let mut normal = [image.base, table, end, image.base];
    // Only a plausible DTB pointer (as `boot` will check it): never a GiB of devices.
    if dtb != 0 && dtb.is_multiple_of(8) {
        normal[3] = dtb as u64;
    }
    // SAFETY: the boot CPU at EL2 with the MMU off, before any other Rust code; all of
    // `normal` lies in RAM the loader filled.
    unsafe { enable_early(&normal) };
}
