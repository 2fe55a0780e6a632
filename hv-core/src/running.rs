//! A started partition: everything hv keeps for it while it runs. Built once at boot (the
//! partition table never changes shape); each part with mutable state sits behind its
//! own lock. Plain data: the arch side loads it into memory and enters its vCPUs.

use alloc::vec::Vec;

use platform::config::Region;
use spin::Mutex;

use crate::app_load::AppDtbs;
use crate::emulated_console::EmulatedConsole;
use crate::emulated_gpio::EmulatedGpio;
use crate::guest_image::Placement;
use crate::partition::PartitionState;
use crate::vgic::VgicDistributor;

/// A started partition: its stage-2 root, VMID, run-time state, and what it boots from.
pub struct Running {
    /// The partition's name, fixed for its life: trap paths print it without taking the
    /// state lock or copying it (no allocation after boot).
    pub name: &'static str,
    pub state: Mutex<PartitionState>,
    pub stage2_root: u64,
    pub vmid: u16,
    /// The kernel Image payload, where it goes, and the partition's DTBs (the one its
    /// next start copies: the boot one, or the app `rtctl load` chose).
    pub image: &'static [u8],
    pub placement: Placement,
    pub dtbs: AppDtbs,
    /// The partition's emulated GIC distributor, and the (unmapped) frame it answers for.
    pub vgic: Mutex<VgicDistributor>,
    /// The distributor as the partition first sees it, restored at each reboot.
    pub vgic_at_boot: VgicDistributor,
    pub gicd: Region,
    /// GICv3: the partition's redistributor frames (unmapped; emulated by its `vgic`).
    pub gicr: Option<Region>,
    /// Exit-less interrupt delivery ([`platform::config::Partition::exitless_irqs`]).
    pub exitless: bool,
    /// Linux: the initramfs payload and where it is copied.
    pub initrd: Option<(&'static [u8], u64)>,
    /// Linux: the PL011 hv emulates as its console.
    pub console: Option<EmulatedConsole>,
    /// Linux: hv's control page (unmapped; every access traps).
    pub control: Option<Region>,
    /// A cache-coloured partition's RAM runs (IPA -> PA, `hv_core::cache_colour`); empty
    /// when its RAM is identity-mapped. The loader copies through them.
    pub ram_runs: Vec<crate::cache_colour::Run>,
    /// Linux, on a board with doorbells: the PL061 whose line the RT partition rings.
    pub doorbell_gpio: Option<EmulatedGpio>,
}

impl Running {
    #[inline]
    pub fn is_linux(&self) -> bool {
        self.console.is_some()
    }
}
