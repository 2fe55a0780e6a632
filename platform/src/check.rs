//! Checks a partition config against the board the DTB describes.
//!
//! `hv` refuses to boot when the DTB disagrees with the config it was built with: running
//! partitions on a board that is not what the config promises would break isolation in
//! ways nobody could see. Every disagreement is collected, so the boot error lists them all.
//! RAM is not checked here: the firmware decides how much a board has, and
//! `hv_core::board_ram` applies the board file's rules for it.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::config::{Config, CpuBoot};
use crate::dtb::{BoardInfo, CpuEnable};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    NotCompatible {
        wanted: String,
        found: Vec<String>,
    },
    CpuCount {
        config: u32,
        dtb: usize,
    },
    CpuBoot {
        cpu: usize,
        config: CpuBoot,
        dtb: CpuEnable,
    },
    NoPsci,
    NoGic,
    GicVersion {
        config: crate::config::GicVersion,
        dtb: crate::config::GicVersion,
    },
    DeviceMissing {
        device: String,
        base: u64,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotCompatible { wanted, found } => write!(
                f,
                "board is not `{wanted}` (DTB root compatible: {})",
                found.join(", ")
            ),
            Self::CpuCount { config, dtb } => {
                write!(f, "config expects {config} CPUs, the DTB lists {dtb}")
            }
            Self::CpuBoot { cpu, config, dtb } => write!(
                f,
                "CPU {cpu}: config says it starts by {config:?}, the DTB says {dtb:?}"
            ),
            Self::NoPsci => write!(f, "config starts CPUs by PSCI but the DTB has no /psci"),
            Self::NoGic => write!(f, "the DTB describes no supported GIC"),
            Self::GicVersion { config, dtb } => {
                write!(f, "config expects GIC {config:?}, the DTB has GIC {dtb:?}")
            }
            Self::DeviceMissing { device, base } => write!(
                f,
                "device `{device}` at {base:#x} is not in the DTB (or not enabled)"
            ),
        }
    }
}

/// Returns every way the DTB disagrees with `config` (empty when they agree).
pub fn check(config: &Config, board: &BoardInfo) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let spec = &config.board;
    if !board.compatible.contains(&spec.compatible) {
        out.push(Mismatch::NotCompatible {
            wanted: spec.compatible.clone(),
            found: board.compatible.clone(),
        });
    }
    if board.cpus.len() != spec.cpus as usize {
        out.push(Mismatch::CpuCount {
            config: spec.cpus,
            dtb: board.cpus.len(),
        });
    }
    for (i, cpu) in board.cpus.iter().enumerate() {
        let agrees = matches!(
            (spec.cpu_boot, &cpu.enable),
            (CpuBoot::Psci, CpuEnable::Psci) | (CpuBoot::SpinTable, CpuEnable::SpinTable { .. })
        );
        if !agrees {
            out.push(Mismatch::CpuBoot {
                cpu: i,
                config: spec.cpu_boot,
                dtb: cpu.enable.clone(),
            });
        }
    }
    if spec.cpu_boot == CpuBoot::Psci && board.psci.is_none() {
        out.push(Mismatch::NoPsci);
    }
    match &board.gic {
        None => out.push(Mismatch::NoGic),
        Some(gic) if gic.version != spec.gic => out.push(Mismatch::GicVersion {
            config: spec.gic,
            dtb: gic.version,
        }),
        Some(_) => {}
    }
    for dev in &spec.devices {
        // Only UARTs are modelled in BoardInfo so far; other devices are trusted.
        if dev.compatible == "arm,pl011"
            && !board.uarts.iter().any(|u| u.base == dev.base && u.enabled)
        {
            out.push(Mismatch::DeviceMissing {
                device: dev.name.clone(),
                base: dev.base,
            });
        }
    }
    out
}
