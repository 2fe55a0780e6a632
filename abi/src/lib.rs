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

/// Offsets in the control page of `rtctl load NAME`'s request: the app's name as two
/// 64-bit words at [`CONTROL_LOAD_NAME`] and 8 after it (its bytes little endian,
/// NUL-padded, at most [`LOAD_NAME_MAX`]), then [`CONTROL_LOAD_MAGIC`] written at
/// [`CONTROL_LOAD`]. hv restarts the RT partition with that app (the board file must
/// allow it: `load_from_linux`); Linux keeps running. A read of [`CONTROL_LOAD`] gives the
/// last request's [`LoadStatus`] word.
pub const CONTROL_LOAD_NAME: u64 = 0x20;
pub const CONTROL_LOAD: u64 = 0x30;
/// "LOAD": any other value written to [`CONTROL_LOAD`] is refused.
pub const CONTROL_LOAD_MAGIC: u32 = 0x4c4f_4144;
/// Longest app name a request carries.
pub const LOAD_NAME_MAX: usize = 16;

/// Where the last `rtctl load` request stands, as the status word at [`CONTROL_LOAD`]
/// says: bits 7:0 the state, bits 15:8 the app's index in [`bootargs::RT_APPS`], bits
/// 63:32 the RT partition's boot count the request waits for (restarting) or reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadStatus {
    /// No request since hv started.
    None,
    /// Accepted: the RT partition is stopping and will boot for the `boot`th time with
    /// app `app`.
    Restarting {
        boot: u32,
        app: u8,
    },
    /// The RT partition booted with the app and every vCPU of it reported ready.
    Done {
        boot: u32,
        app: u8,
    },
    /// The RT partition booted with the app, then stopped for good (the app refused its
    /// boot arguments or faulted; hv's console says why). Another load can restart it.
    Failed {
        boot: u32,
        app: u8,
    },
    Refused(LoadRefusal),
}

/// Why hv refused a load request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadRefusal {
    /// The board file does not set `load_from_linux` for the RT partition.
    NotAllowed,
    /// The name is not one of guest-rt's apps ([`bootargs::RT_APPS`]).
    UnknownApp,
    /// The RT partition is restarting already (a reset, a fault restart, another load).
    Busy,
    /// The board has no RT partition, or it was not started (`bulkhead.only`).
    NoRtPartition,
}

impl LoadRefusal {
    const ALL: [LoadRefusal; 4] = [
        Self::NotAllowed,
        Self::UnknownApp,
        Self::Busy,
        Self::NoRtPartition,
    ];

    fn code(self) -> u64 {
        0x10 + self as u64
    }

    /// Why, for hv's log and for `rtctl`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotAllowed => {
                "the board file does not allow it (set load_from_linux = true on the RT partition)"
            }
            Self::UnknownApp => "not one of guest-rt's apps",
            Self::Busy => {
                "the RT partition is restarting already (a reset, a fault restart or another load)"
            }
            Self::NoRtPartition => "no RT partition was started on this board",
        }
    }
}

impl LoadStatus {
    /// The word a read of [`CONTROL_LOAD`] gives.
    pub fn word(self) -> u64 {
        match self {
            Self::None => 0,
            Self::Restarting { boot, app } => 1 | u64::from(app) << 8 | u64::from(boot) << 32,
            Self::Done { boot, app } => 2 | u64::from(app) << 8 | u64::from(boot) << 32,
            Self::Failed { boot, app } => 3 | u64::from(app) << 8 | u64::from(boot) << 32,
            Self::Refused(why) => why.code(),
        }
    }

    /// The status a word says, if it is one (`None` for a word hv never writes).
    pub fn from_word(word: u64) -> Option<Self> {
        let boot = (word >> 32) as u32;
        let app = (word >> 8) as u8;
        if word & 0xffff_0000 != 0 {
            return None;
        }
        match word & 0xff {
            0 if word == 0 => Some(Self::None),
            1 => Some(Self::Restarting { boot, app }),
            2 => Some(Self::Done { boot, app }),
            3 => Some(Self::Failed { boot, app }),
            code if word >> 8 == 0 => LoadRefusal::ALL
                .into_iter()
                .find(|r| r.code() == code)
                .map(Self::Refused),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_load_status_survives_its_word() {
        let statuses = [
            LoadStatus::None,
            LoadStatus::Restarting { boot: 2, app: 1 },
            LoadStatus::Done {
                boot: u32::MAX,
                app: 0,
            },
            LoadStatus::Failed { boot: 3, app: 2 },
        ]
        .into_iter()
        .chain(LoadRefusal::ALL.map(LoadStatus::Refused));
        for status in statuses {
            assert_eq!(LoadStatus::from_word(status.word()), Some(status));
        }
        for junk in [4, 0xf, 0x14, 1 << 40 | 0x10, 0x1_0001, u64::MAX] {
            assert_eq!(LoadStatus::from_word(junk), None, "{junk:#x}");
        }
    }
}
