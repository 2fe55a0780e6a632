//! Where to count in hv and guest-rt: the marks the vcpu-insn plugin logs (IRQ vectors,
//! guest-rt's idle `wfi`, the return from the probe's sleep, kernel-bench's SPI handler,
//! every spin-wait loop), found in the ELF symbols and placed where the images run, and
//! the paths between them. hv runs at its RAM base + the Image header's text_offset,
//! guest-rt at its partition's first RAM region + text_offset (hv's placement rule,
//! checked against hv's boot log by [`check_placement`]).
//!
//! Never runs QEMU; builds the binaries to read their symbols.

use std::path::Path;

use platform::config::Config;

use crate::code_points::Elf;
use crate::vcpu_insns::{Mark, PathSpec};
use crate::{image, qemu, Error};

/// hv's vector table slots (0x80 each): IRQ from a lower EL (AArch64), IRQ at EL2.
pub const LOWER_EL_IRQ: u64 = 0x480;
pub const CURRENT_EL_IRQ: u64 = 0x280;

/// The wake-up path: the first IRQ vector (hv's or the guest's) after the CPU idled, to
/// the probe thread back from its sleep.
pub const WAKE: PathSpec = PathSpec {
    starts: &["hv-irq", "hv-irq-el2", "rt-irq"],
    resets: &["rt-idle"],
    end: "wake",
};
/// The guest's own part of it: from its EL1 vector.
pub const WAKE_GUEST: PathSpec = PathSpec {
    starts: &["rt-irq"],
    resets: &["rt-idle"],
    end: "wake",
};
/// The device-interrupt path starts at the last interrupt entry before the handler: hv's
/// vectors (trap-and-inject), else the guest's (exit-less).
pub const HV_IRQ: &[&str] = &["hv-irq", "hv-irq-el2"];
pub const RT_IRQ: &[&str] = &["rt-irq"];
pub const DEVICE_END: &str = "spi-handler";
/// Marks on every spin-wait loop's hint in hv and guest-rt: one hit per turn.
pub const SPIN: &str = "spin";

/// Where to count on a board: marks and the code holding them, at run-time addresses.
pub struct Points {
    pub marks: Vec<Mark>,
    pub code: Vec<(u64, u64)>,
    pub guest_rt_at: u64,
    /// Spin mark name -> the function it is in.
    pub spin_sites: Vec<(String, String)>,
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::new(format!("{}: {e}", path.display())))
}

fn image_end(elf: &Elf) -> Result<u64, Error> {
    elf.symbol("__image_end")
}

/// hv runs at its RAM base + the Image header's text_offset, guest-rt at its partition's
/// first RAM region + text_offset (hv's placement rule, checked against its boot log).
pub fn points(config: &Config) -> Result<Points, Error> {
    let bins = image::build_binaries()?;
    let (hv_bytes, rt_bytes) = (read(&bins.hv)?, read(&bins.guest_rt)?);
    let (hv, rt) = (Elf::parse(&hv_bytes)?, Elf::parse(&rt_bytes)?);
    let hv_at = config.hv.ram.base + arm64_boot::TEXT_OFFSET;
    let partition = qemu::rt_partitions(config)
        .next()
        .ok_or_else(|| Error::new("the board has no RT partition"))?;
    let rt_at = partition
        .ram
        .first()
        .ok_or_else(|| Error::new("the RT partition has no RAM"))?
        .base
        + arm64_boot::TEXT_OFFSET;
    let hv_vectors = hv.symbol("hv_vectors")?;
    let probe = rt.function("guest_rt::apps::latency::probe")?;
    let sleep = rt.function("guest_rt::arch::threads::sleep_until_ns")?;
    let wake = *rt
        .returns_from_calls(probe, sleep.addr)?
        .first()
        .ok_or_else(|| Error::new("the probe loop calls no sleep_until_ns"))?;
    let idle = rt.first_wfi(rt.function("guest_rt::arch::threads::enter")?)?;
    let spi = rt.function("guest_rt::selftests::kernel_bench::spi_handler")?;
    let marks = vec![
        Mark::new("hv-irq", hv_at + hv_vectors + LOWER_EL_IRQ),
        Mark::new("hv-irq-el2", hv_at + hv_vectors + CURRENT_EL_IRQ),
        Mark::new(
            "rt-irq",
            rt_at + rt.symbol("guest_rt_vectors")? + CURRENT_EL_IRQ,
        ),
        Mark::new("rt-idle", rt_at + idle),
        Mark::new("wake", rt_at + wake),
        Mark::new(DEVICE_END, rt_at + spi.addr),
    ];
    let mut marks = marks;
    let mut spin_sites = Vec::new();
    for (elf, at, image) in [(&hv, hv_at, "hv"), (&rt, rt_at, "rt")] {
        for a in elf.spin_waits()? {
            let name = format!("{SPIN}-{image}-{a:x}");
            spin_sites.push((name.clone(), elf.function_at(a)));
            marks.push(Mark { name, addr: at + a });
        }
    }
    Ok(Points {
        marks,
        code: vec![
            (hv_at, hv_at + image_end(&hv)?),
            (rt_at, rt_at + image_end(&rt)?),
        ],
        guest_rt_at: rt_at,
        spin_sites,
    })
}

/// The RT partition's physical CPUs.
pub fn rt_cpus(config: &Config) -> Vec<u32> {
    qemu::rt_partitions(config)
        .flat_map(|p| p.cpus.iter().copied())
        .collect()
}

/// Whether hv's boot log says guest-rt is where the marks assume.
pub fn check_placement(points: &Points, log: &[String]) -> Result<(), Error> {
    let expected = format!("guest-rt at {:#x} ", points.guest_rt_at);
    if log.iter().any(|l| l.contains(&expected)) {
        Ok(())
    } else {
        Err(Error::new(format!(
            "hv did not place guest-rt at {:#x}: the marks would be wrong",
            points.guest_rt_at
        )))
    }
}
