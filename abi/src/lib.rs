//! The binary interfaces between Bulkhead's parts, in one crate so that `hv` (server),
//! `guest-rt` (client) and the Linux-side tools can never disagree: Bulkhead's hypercalls
//! in the SMCCC vendor-specific hypervisor service range, the SMCCC return codes, and
//! hv's control page, and the table of boot arguments ([`bootargs`]). No code that touches
//! hardware lives here.
//!
//! Function IDs follow the SMC Calling Convention (Arm DEN 0028): bit 31 fast call,
//! bit 30 SMC64, bits 29:24 owning entity (6 = vendor specific hypervisor service),
//! bits 15:0 function number.
#![no_std]
#![forbid(unsafe_code)]

pub mod bootargs;

/// SMCCC return codes (DEN 0028, "Return codes").
pub const SMCCC_SUCCESS: i64 = 0;
pub const SMCCC_NOT_SUPPORTED: i64 = -1;
pub const SMCCC_NOT_REQUIRED: i64 = -2;
pub const SMCCC_INVALID_PARAMETER: i64 = -3;

/// SMCCC_VERSION and SMCCC_ARCH_FEATURES (Arm architecture service).
pub const SMCCC_VERSION: u32 = 0x8000_0000;
pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
/// SMCCC v1.1, as returned by SMCCC_VERSION.
pub const SMCCC_VERSION_1_1: i64 = 0x1_0001;

const VENDOR_HYP_FAST64: u32 = 0xC600_0000;
const VENDOR_HYP_FAST32: u32 = 0x8600_0000;

/// Writes bytes to the partition's console: x1 = length (1..=48), x2..x7 = the bytes,
/// little endian, 8 per register. Returns the length written or INVALID_PARAMETER.
pub const HVC_CONSOLE_WRITE: u32 = VENDOR_HYP_FAST64 | 0x0001;
/// Returns x0 = SUCCESS, x1 = partition index, x2 = vCPU count, x3 = calling vCPU index,
/// x4 = how many times the partition was booted (1, then +1 per SYSTEM_RESET).
pub const HVC_PARTITION_STATUS: u32 = VENDOR_HYP_FAST64 | 0x0002;
/// The calling vCPU reports that it finished booting (what `--smoke` waits for).
pub const HVC_READY: u32 = VENDOR_HYP_FAST64 | 0x0003;
/// Standard "Call UID" query of the vendor hypervisor service (DEN 0028): x0..x3 = UUID.
pub const HVC_CALL_UID: u32 = VENDOR_HYP_FAST32 | 0xff01;
/// Standard "Revision" query: x0 = major, x1 = minor.
pub const HVC_REVISION: u32 = VENDOR_HYP_FAST32 | 0xff03;

/// Bulkhead's UUID, returned by [`HVC_CALL_UID`] as four 32-bit words.
pub const BULKHEAD_UID: [u32; 4] = [0x6275_6c6b, 0x6865_6164, 0x2d68_7600, 0x0000_0001];
pub const REVISION: (u32, u32) = (0, 1);

/// Most bytes one [`HVC_CONSOLE_WRITE`] carries.
pub const CONSOLE_WRITE_MAX: usize = 48;

/// hv's control page in a Linux partition's address space (an IPA no partition's RAM or
/// device uses; 39-bit IPA space). Unmodified Linux cannot make Bulkhead's hypercalls from
/// user space, so its tools talk to hv by writing this page through `/dev/mem` (busybox
/// `devmem`); every access traps to hv. Also named in the partition's DTB
/// (`/hypervisor/bulkhead,control`) and on its command line (`bulkhead.control=`).
pub const CONTROL_PAGE_IPA: u64 = 0x7f_0000_0000;
pub const CONTROL_PAGE_SIZE: u64 = 0x1000;
/// Offset in the control page: write [`CONTROL_READY_MAGIC`] (32-bit) when the partition
/// finished booting (its init script does, once its shell is about to start).
pub const CONTROL_READY: u64 = 0x0;
/// "REDY": any other value written to [`CONTROL_READY`] is refused (an external abort).
pub const CONTROL_READY_MAGIC: u32 = 0x5245_4459;

/// The RT partition rings Linux's doorbell (the emulated PL061's input line rises, at
/// most once per pending doorbell: rings before Linux acknowledged the last one
/// coalesce). No arguments; x0 = SUCCESS, or NOT_SUPPORTED when the board has no
/// doorbells or the caller is not the RT partition. Never waits for Linux.
pub const HVC_DOORBELL_RING: u32 = VENDOR_HYP_FAST64 | 0x0004;

/// Offset in the control page: writing [`CONTROL_DOORBELL_MAGIC`] (32-bit) rings the RT
/// partition's doorbell; a read gives how many rings hv took from Linux so far.
pub const CONTROL_DOORBELL: u64 = 0x8;
/// "RING": any other value written to [`CONTROL_DOORBELL`] is refused.
pub const CONTROL_DOORBELL_MAGIC: u32 = 0x5249_4e47;
/// Read-only: how many times hv raised the RT partition's doorbell line (rings coalesce
/// while it is pending and wait out the board's minimum interval, so this is at most the
/// ring count).
pub const CONTROL_DOORBELL_RAISED: u64 = 0x10;
/// Read-only: how many times the RT partition rang Linux ([`HVC_DOORBELL_RING`]).
pub const CONTROL_RT_RINGS: u64 = 0x18;

/// The PL061 GPIO controller hv emulates for Linux (next to the control page): its input
/// line 0, named [`DOORBELL_GPIO_LINE`] in the DTB, rises when the RT partition rings, so
/// Linux user space waits for a doorbell with the GPIO character device.
pub const DOORBELL_GPIO_IPA: u64 = CONTROL_PAGE_IPA + CONTROL_PAGE_SIZE;
pub const DOORBELL_GPIO_SIZE: u64 = 0x1000;
/// `gpio-line-names` of the doorbell line (line 0 of the emulated PL061).
pub const DOORBELL_GPIO_LINE: &str = "bulkhead-doorbell";
