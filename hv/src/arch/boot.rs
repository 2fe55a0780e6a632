//! hv's boot flow on the target: read the payload table and the DTB, start the console,
//! check the board against its partition config, turn the MMU on, bring every CPU online.
//!
//! Every failure here is a named, printed error followed by a clean stop of the machine
//! (`fatal!`), never a silent hang.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use log::{info, Level};
use platform::config::{Config, PartitionKind, Region};
use platform::dtb::{BoardInfo, CpuEnable, PsciConduit};
use platform::image::{self, PayloadKind, Payloads};

use crate::arch::mmu::{self, Kind};
use crate::arch::vcpu::{self, PartitionRestart};
use crate::arch::{console, cpu, gic, heap, image as hv_image, power, smp};
use crate::options::{self, BootOptions, SelfTest};
use hv_core::app_load::AppDtbs;
use hv_core::emulated_console::EmulatedConsole;
use hv_core::emulated_gpio::EmulatedGpio;
use hv_core::guest_dtb::{DoorbellNode, EmulatedUart, GuestDtb, LinuxNodes};
use hv_core::guest_image;
use hv_core::layout;
use hv_core::partition::PartitionState;
use hv_core::running::Running;
use hv_core::stage2::{PartitionMap, Stage2Tables};
use hv_core::vgic::{self, VgicDistributor};

/// The GICv2 CPU-interface frame a partition sees as its GICC (none on GICv3).
fn guest_gicc(gic: &platform::dtb::GicInfo, exitless: bool) -> Option<Region> {
    if exitless {
        gic.gicc
            .filter(|_| gic.version == platform::config::GicVersion::V2)
    } else {
        gic.gicv
    }
}

/// Size of the GICD frame a partition's emulated distributor answers for.
fn vgic_frame(version: platform::config::GicVersion) -> u64 {
    match version {
        platform::config::GicVersion::V2 => vgic::FRAME_V2,
        platform::config::GicVersion::V3 => vgic::FRAME_V3,
    }
}

/// An address inside hv's 39-bit VA space that no board maps (256 GiB).
const UNMAPPED_PROBE: usize = 0x40_0000_0000;

/// Prints a fatal error and stops the machine.
#[macro_export]
macro_rules! fatal {
    ($($arg:tt)*) => { $crate::arch::boot::fatal(format_args!($($arg)*)) };
}

pub fn fatal(args: fmt::Arguments) -> ! {
    console::line(Level::Error, format_args!("FATAL: {args}"));
    console::line(Level::Error, format_args!("stopping the machine"));
    console::drain_all();
    power::system_off()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    fatal!("hv panicked: {info}")
}

const FDT_MAGIC: u32 = 0xd00d_feed;
/// A DTB larger than this is taken as corrupt.
const MAX_DTB_SIZE: u32 = 2 << 20;
/// A payload table claiming more than this is taken as corrupt.
const MAX_PAYLOAD_BYTES: u64 = 512 << 20;

/// The DTB as a byte slice, after checking its header.
///
/// # Safety
/// `addr` is zero, misaligned, or the address of memory readable for the rest of hv's
/// life that nothing writes (the DTB pointer the firmware passes in x0 under the arm64
/// boot protocol, read before anything could reuse that memory: hv reserves it).
pub(super) unsafe fn dtb_slice(addr: usize) -> Result<&'static [u8], String> {
    if addr == 0 || !addr.is_multiple_of(8) {
        return Err(alloc::format!("no usable DTB pointer in x0 ({addr:#x})"));
    }
    // SAFETY: the caller vouches for `addr`; a DTB header is 8-byte aligned and at least
    // 8 bytes long.
    let header = unsafe { core::slice::from_raw_parts(addr as *const u8, 8) };
    let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if magic != FDT_MAGIC {
        return Err(alloc::format!(
            "x0 = {addr:#x} does not point at a DTB (magic {magic:#x})"
        ));
    }
    if size > MAX_DTB_SIZE {
        return Err(alloc::format!(
            "DTB at {addr:#x} claims {size} bytes: corrupt"
        ));
    }
    // SAFETY: the header says the blob is `size` bytes long (bounded above), and the
    // caller vouches for the memory the firmware put it in.
    Ok(unsafe { core::slice::from_raw_parts(addr as *const u8, size as usize) })
}

/// The payload table after hv's image, validated.
pub(super) fn payloads() -> Result<Payloads<'static>, String> {
    let at = hv_image::payload_table_addr();
    // SAFETY: the loader copied the whole system image file, and the table sits right
    // after hv's own memory; reading its fixed-size header stays inside the file.
    let header = unsafe { core::slice::from_raw_parts(at as *const u8, image::HEADER_SIZE) };
    let size = image::claimed_size(header).map_err(|e| e.to_string())?;
    if size > MAX_PAYLOAD_BYTES {
        return Err(alloc::format!("payload table claims {size} bytes: corrupt"));
    }
    // SAFETY: the header claims `size` bytes; `Payloads::parse` checks every offset and
    // checksum inside them before any payload is used.
    let bytes = unsafe { core::slice::from_raw_parts(at as *const u8, size as usize) };
    Payloads::parse(bytes).map_err(|e| e.to_string())
}

pub(super) fn load_config(payloads: &Payloads<'static>) -> Result<Config, String> {
    let bytes = payloads
        .get(PayloadKind::Config)
        .map_err(|e| e.to_string())?;
    let config = Config::decode(bytes).map_err(|e| alloc::format!("board config payload: {e}"))?;
    config
        .validate()
        .map_err(|e| alloc::format!("board config: {e}"))?;
    Ok(config)
}

/// The UART to report on: the config's console, else (the config being unreadable) the
/// DTB's first enabled PL011.
pub(super) fn console_base(config: Option<&Config>, board: Option<&BoardInfo>) -> Option<u64> {
    if let Some(dev) = config.and_then(|c| c.device(&c.hv.console)) {
        return Some(dev.base);
    }
    board?.uarts.iter().find(|u| u.enabled).map(|u| u.base)
}

/// Boot CPU, entered from `arch::entry` with the MMU off and x0 = DTB.
///
/// # Safety
/// Called once, by `arch::entry`, with the DTB pointer the firmware passed in x0.
pub unsafe extern "C" fn primary_main(dtb: usize) -> ! {
    heap::init_boot_arena();
    // SAFETY: `dtb` is the firmware's x0 (this function's contract), read before hv
    // could reuse any memory.
    let dtb_bytes = unsafe { dtb_slice(dtb) };
    let board = dtb_bytes
        .clone()
        .and_then(|b| BoardInfo::parse(b).map_err(|e| e.to_string()));
    let payloads = payloads();
    let config = payloads
        .as_ref()
        .map_err(Clone::clone)
        .and_then(load_config);

    let Some(uart) = console_base(config.as_ref().ok(), board.as_ref().ok()) else {
        // Nowhere to report: nothing else is safe to do.
        cpu::park();
    };
    // SAFETY: the console PL011 belongs to hv (config) and the MMU is still off.
    unsafe { console::init(uart as usize) };
    info!(
        "Bulkhead hv {} starting on CPU 0 at EL2, loaded at {:#x} (DTB at {dtb:#x})",
        env!("CARGO_PKG_VERSION"),
        hv_image::hv_region().base
    );
    let board = board.unwrap_or_else(|e| fatal!("cannot read the board's DTB: {e}"));
    set_power_method(&board);
    // First thing once a FATAL can stop the machine: nothing of hv's beyond the console
    // and the DTB reader has run yet.
    hv_image::check_own_image().unwrap_or_else(|e| fatal!("{e}"));
    let payloads = payloads.unwrap_or_else(|e| fatal!("bad system image: {e}"));
    let config = config.unwrap_or_else(|e| fatal!("bad system image: {e}"));
    let names: Vec<&str> = config.partitions.iter().map(|p| p.name.as_str()).collect();
    let options = BootOptions::parse(board.bootargs.as_deref().unwrap_or(""), &names)
        .unwrap_or_else(|e| fatal!("{e}"));

    print_board(&board, &config);
    let mismatches = platform::check::check(&config, &board);
    if !mismatches.is_empty() {
        for m in &mismatches {
            console::line(Level::Error, format_args!("board mismatch: {m}"));
        }
        fatal!(
            "the DTB does not match board config `{}` ({} mismatches)",
            config.name,
            mismatches.len()
        );
    }
    let config = take_board_ram(config, &board);
    smp::check_topology(&board).unwrap_or_else(|e| fatal!("unsupported CPU layout: {e}"));
    if cpu::mpidr() & 0xff_00ff_ffff != board.cpus[0].mpidr {
        fatal!(
            "booted on MPIDR {:#x}, expected the DTB's first CPU",
            cpu::mpidr()
        );
    }

    let dtb_region = Region::new(dtb as u64, dtb_bytes.map(|b| b.len()).unwrap_or(0) as u64);
    setup_memory(&config, &board, dtb_region, payloads.total_size() as u64);
    // SAFETY: `setup_memory` mapped hv's RAM (code, stacks, heap), all RAM and the devices hv
    // uses.
    unsafe { mmu::enable() };
    info!("MMU and caches on; heap {} KiB", heap::total_bytes() / 1024);
    if options.selftest == Some(SelfTest::El2Fault) {
        info!("selftest: reading unmapped address {UNMAPPED_PROBE:#x}");
        // SAFETY: not safe on purpose: the read faults and the EL2 vectors must report it
        // and stop the machine (requested with bulkhead.selftest=el2-fault).
        let value = unsafe { (UNMAPPED_PROBE as *const u64).read_volatile() };
        fatal!("selftest: read of an unmapped address returned {value:#x} instead of faulting");
    }

    smp::mark_online(0);
    info!("ready: cpu 0 online at EL2, MPIDR {:#x}", cpu::mpidr());
    for index in 1..board.cpus.len() {
        if let Err(e) = smp::start(&board, index) {
            fatal!("CPU {index} did not come online: {e}");
        }
    }
    info!("ready: all {} CPUs online", board.cpus.len());
    let mpidrs: Vec<u64> = board.cpus.iter().map(|c| c.mpidr).collect();
    let gic_info = board.gic.as_ref().expect("the board check requires a GIC");
    // SAFETY: the frames are the board's GIC from its DTB; `setup_memory` mapped them as
    // device memory for good, and no partition maps them (a partition sees an emulated
    // distributor and redistributors, and a CPU interface only as GICV, or as GICC on
    // the CPUs of an exit-less GICv2 partition, where hv then takes no interrupts).
    let gic =
        unsafe { gic::init(gic_info, &mpidrs) }.unwrap_or_else(|e| fatal!("unsupported GIC: {e}"));
    info!(
        "GIC {:?}: {} interrupt lines, distributor on",
        gic.version(),
        gic.lines()
    );
    gic.check_redistributors(board.cpus.len())
        .unwrap_or_else(|e| fatal!("unsupported GIC layout: {e}"));
    // Before either partition runs: neither may see a region without its header.
    super::channel::prepare(&config);
    let running = start_partitions(&config, &payloads, &board, &options);
    if let Some(spec) = config.channel.as_ref().and_then(|c| c.doorbells.as_ref()) {
        // Only a started Linux is kicked when the RT partition rings.
        let linux_cpus: Vec<u32> = running
            .iter()
            .filter(|p| p.is_linux())
            .filter_map(|p| config.partition(p.name))
            .flat_map(|p| p.cpus.iter().copied())
            .collect();
        super::doorbell::init(spec, &linux_cpus);
        info!(
            "doorbells: Linux -> RT on SPI {} (raised at most every {} us), RT -> Linux on \
             the PL061 at {:#x} (SPI {})",
            spec.to_rt,
            spec.min_interval_us,
            abi::DOORBELL_GPIO_IPA,
            spec.to_linux
        );
    }
    if running.is_empty() && options.smoke {
        info!("smoke: every CPU reported ready, powering off");
        power::system_off();
    }
    let vtimer = board.timer_irqs.get(2).copied().unwrap_or(27);
    let hyp_timer = board.timer_irqs.get(3).copied().unwrap_or(26);
    vcpu::install(running, options.smoke, vtimer, hyp_timer);
    vcpu::run(0)
}

/// The config with the RAM each partition takes from the DTB (`hv_core::board_ram`), or a
/// fatal error naming every rule the board file's fixed RAM breaks.
fn take_board_ram(mut config: Config, board: &BoardInfo) -> Config {
    match hv_core::board_ram::assign(&config, &board.memory, &board.reserved) {
        Ok(assignment) => {
            for t in &assignment.taken {
                let ram: Vec<String> = t.regions.iter().map(|r| alloc::format!("{r}")).collect();
                info!(
                    "  partition `{}` takes RAM from the DTB in {}: {}",
                    config.partitions[t.partition].name,
                    t.window,
                    if ram.is_empty() {
                        "none reported there".to_string()
                    } else {
                        ram.join(" ")
                    }
                );
            }
            assignment.apply(&mut config);
            config
        }
        Err(refusals) => {
            for r in &refusals {
                console::line(Level::Error, format_args!("board RAM: {r}"));
            }
            fatal!(
                "board config `{}` does not fit the RAM the DTB reports ({} refused)",
                config.name,
                refusals.len()
            )
        }
    }
}

/// Secondary CPUs, entered from `arch::entry` with the MMU and caches already on.
pub extern "C" fn secondary_main(index: usize) -> ! {
    info!(
        "ready: cpu {index} online at EL2, MPIDR {:#x}",
        cpu::mpidr()
    );
    smp::mark_online(index);
    vcpu::run(index)
}

/// Loads, maps and boots the partitions `options` lets start; returns them for
/// [`vcpu::install`].
fn start_partitions(
    config: &Config,
    payloads: &Payloads<'static>,
    board: &BoardInfo,
    options: &BootOptions,
) -> Vec<Running> {
    let mut running = Vec::new();
    for (index, p) in config.partitions.iter().enumerate() {
        if !options.starts(&p.name) {
            info!(
                "partition `{}`: not started (bulkhead.only); CPUs {:?} stay in hv",
                p.name, p.cpus
            );
            continue;
        }
        running.push(start_partition(index, p, config, payloads, board));
    }
    running
}

/// Size of one GICv3 redistributor (RD_base + SGI_base frames, no VLPI frames).
const GICR_FRAME: u64 = 0x2_0000;
/// Reference clock described for a Linux partition's emulated PL011 (QEMU virt's apb-pclk).
const EMULATED_UART_CLOCK_HZ: u32 = 24_000_000;

fn start_partition(
    index: usize,
    p: &platform::config::Partition,
    config: &Config,
    payloads: &Payloads<'static>,
    board: &BoardInfo,
) -> Running {
    let (coloured, ram_runs) = colour_plan(p, config);
    let p = &coloured;
    let bootargs = board.bootargs.as_deref().unwrap_or("");
    let gic = board.gic.as_ref().expect("the board check requires a GIC");
    let linux = p.kind == PartitionKind::Linux;
    let payload = |kind: PayloadKind| {
        payloads
            .get(kind)
            .unwrap_or_else(|e| fatal!("partition `{}`: {e}", p.name))
    };
    let image = payload(if linux {
        PayloadKind::LinuxImage
    } else {
        PayloadKind::GuestRt
    });
    let ram = p.ram[0];
    let placement = guest_image::place(image, ram)
        .unwrap_or_else(|e| fatal!("partition `{}`: kernel Image payload: {e}", p.name));
    let devices: Vec<&platform::config::Device> = p
        .devices
        .iter()
        .map(|name| {
            config
                .device(name)
                .expect("validated config names known devices")
        })
        .collect();
    let physical_mpidrs: Vec<u64> = p
        .cpus
        .iter()
        .map(|&c| board.cpus[c as usize].mpidr)
        .collect();
    // GICv3: the partition's redistributors, frame i for vCPU i, at the physical address of
    // its first CPU's (never mapped: hv emulates them).
    let redistributors = gic.gicr.map(|r| {
        Region::new(
            r.base + u64::from(p.cpus[0]) * GICR_FRAME,
            p.cpus.len() as u64 * GICR_FRAME,
        )
    });
    let console_uart = config
        .device(&config.hv.console)
        .expect("validated config names its console");
    let linux_nodes = linux.then(|| {
        let initramfs = payload(PayloadKind::Initramfs);
        let initrd = guest_image::place_initrd(placement, initramfs.len() as u64)
            .unwrap_or_else(|e| fatal!("partition `{}`: initramfs payload: {e}", p.name));
        let spi = *console_uart.irqs.first().unwrap_or_else(|| {
            fatal!(
                "partition `{}`: console `{}` has no interrupt to emulate",
                p.name,
                console_uart.name
            )
        });
        (
            initramfs,
            LinuxNodes {
                initrd,
                console: EmulatedUart {
                    base: console_uart.base,
                    spi,
                    clock_hz: EMULATED_UART_CLOCK_HZ,
                },
                control: Region::new(abi::CONTROL_PAGE_IPA, abi::CONTROL_PAGE_SIZE),
            },
        )
    });
    let doorbells = config.channel.as_ref().and_then(|c| c.doorbells);
    let args = if linux {
        options::for_linux(bootargs, &p.name, abi::CONTROL_PAGE_IPA)
    } else {
        options::for_partition(bootargs, &p.name)
    };
    let build_dtb = |bootargs: &str| {
        GuestDtb {
            partition: p,
            devices: &devices,
            gicc: guest_gicc(gic, p.exitless_irqs),
            physical_mpidrs: &physical_mpidrs,
            bootargs,
            gic,
            timer_irqs: &board.timer_irqs,
            redistributors,
            linux: linux_nodes.map(|(_, nodes)| nodes),
            channel: config.channel.as_ref().map(|c| c.ram),
            doorbell: doorbells.map(|d| match p.kind {
                PartitionKind::Linux => DoorbellNode::Linux { spi: d.to_linux },
                PartitionKind::Rt => DoorbellNode::Rt { spi: d.to_rt },
            }),
        }
        .generate()
        .unwrap_or_else(|e| fatal!("partition `{}`: cannot build its DTB: {e:?}", p.name))
    };
    let boot_dtb = build_dtb(&args);
    // A partition Linux may load (`rtctl load NAME`) gets one DTB per app now: after boot
    // a load only picks one (nothing is allocated or built then).
    let dtbs = if p.load_from_linux {
        let apps = abi::bootargs::RT_APPS
            .iter()
            .map(|app| build_dtb(&hv_core::app_load::args_with_app(&args, app.name)))
            .collect();
        AppDtbs::loadable(boot_dtb, apps)
    } else {
        AppDtbs::fixed(boot_dtb)
    };
    if dtbs.largest() as u64 > guest_image::DTB_ROOM {
        fatal!(
            "partition `{}`: its DTB is {} bytes, too large",
            p.name,
            dtbs.largest()
        );
    }
    // Its RAM (the only executable memory), the channel's memory (in every partition,
    // non-cacheable), its devices and, on GICv2, its GICC: the virtual interface (GICV), or
    // with exit-less delivery the physical one (banked per CPU, so it reaches only its own
    // CPU's).
    let device_regions: Vec<(&str, Region)> = devices
        .iter()
        .map(|d| (d.name.as_str(), Region::new(d.base, d.size)))
        .collect();
    let map = PartitionMap {
        ram: &p.ram,
        ram_runs: &ram_runs,
        channel: config.channel.as_ref().map(|c| c.ram),
        devices: &device_regions,
        gicc: guest_gicc(gic, p.exitless_irqs),
    };
    let tables = Stage2Tables::for_partition(&map).unwrap_or_else(|f| {
        fatal!(
            "partition `{}`: stage-2 map of {} {}: {:?}",
            p.name,
            f.what,
            f.region,
            f.error
        )
    });
    let root = tables.root();
    // The tables live as long as the partition: for ever.
    alloc::boxed::Box::leak(alloc::boxed::Box::new(tables));
    let vmid = index as u16 + 1;
    let mut state = PartitionState::new(index, p);
    state.boot(placement.load, placement.dtb);
    let physical = gic::get().expect("the GIC is up before partitions start");
    // The emulated console's SPI is the partition's in its virtual distributor, but the
    // physical line stays hv's: the model keeps its effects to itself.
    // So is the doorbell PL061's; the RT partition's doorbell line is a physical one it
    // owns like a device line (hv makes it pending).
    let console_spi = linux_nodes.map(|(_, nodes)| nodes.console.spi);
    let gpio_spi = doorbells.filter(|_| linux).map(|d| d.to_linux);
    let mut virtual_spis = p.irqs.clone();
    virtual_spis.extend(console_spi);
    virtual_spis.extend(gpio_spi);
    virtual_spis.extend(doorbells.filter(|_| !linux).map(|d| d.to_rt));
    let vgic = VgicDistributor::new(gic.version, physical.lines(), &virtual_spis, &p.cpus)
        .and_then(|v| {
            console_spi
                .into_iter()
                .chain(gpio_spi)
                .try_fold(v, |v, spi| v.with_emulated_spi(spi))
        })
        // Exit-less, the guest's SGIs are physical (sent with their own number); else
        // they are virtual and the physical SGIs of its CPUs stay hv's.
        .map(|v| {
            if p.exitless_irqs {
                v.with_physical_sgis()
            } else {
                v
            }
        })
        .unwrap_or_else(|e| fatal!("partition `{}`: its interrupt setup: {e}", p.name));
    let partition = Running {
        // Partitions live for hv's whole life: their names are leaked once, at boot.
        name: alloc::string::String::leak(p.name.clone()),
        state: spin::Mutex::new(state),
        stage2_root: root,
        vmid,
        image,
        placement,
        dtbs,
        vgic: spin::Mutex::new(vgic.clone()),
        vgic_at_boot: vgic,
        gicd: Region::new(gic.gicd.base, vgic_frame(gic.version)),
        gicr: redistributors.filter(|_| gic.version == platform::config::GicVersion::V3),
        exitless: p.exitless_irqs,
        initrd: linux_nodes.map(|(bytes, nodes)| (bytes, nodes.initrd.base)),
        console: linux_nodes.map(|(_, nodes)| EmulatedConsole::new(nodes.console)),
        control: linux_nodes.map(|(_, nodes)| nodes.control),
        ram_runs,
        doorbell_gpio: gpio_spi.map(EmulatedGpio::new),
    };
    if !linux {
        // Its CPUs' wake-up paths must not depend on Linux: a statistics copy a Linux
        // restart asks for waits for their next synchronous trap.
        for &cpu in &p.cpus {
            super::stats::STATS.copy_at_traps(cpu as usize);
        }
    }
    partition.reset_interrupts();
    for &intid in &p.irqs {
        physical.claim_spi(intid);
    }
    // SAFETY: the placement and initramfs address come from `guest_image` for this
    // partition's RAM (mapped by `setup_memory`), and no vCPU has been entered yet.
    unsafe { partition.load() };
    let what = if linux { "Linux" } else { "guest-rt" };
    info!(
        "partition `{}`: {what} at {:#x} ({} KiB), DTB at {:#x}, stage-2 root {root:#x}, VMID {vmid}, CPUs {:?}",
        p.name,
        placement.load,
        image.len() / 1024,
        placement.dtb,
        p.cpus
    );
    if let Some((bytes, nodes)) = linux_nodes {
        info!(
            "partition `{}`: initramfs at {} ({} KiB), console: emulated PL011 at {:#x} (SPI {})",
            p.name,
            nodes.initrd,
            bytes.len() / 1024,
            nodes.console.base,
            nodes.console.spi
        );
    }
    partition
}

/// A partition as its guest sees it and, if the board file colours it, the runs of its
/// pages of those colours (its `ram` becomes the contiguous IPA range they back).
fn colour_plan(
    p: &platform::config::Partition,
    config: &Config,
) -> (platform::config::Partition, Vec<hv_core::cache_colour::Run>) {
    let (false, Some(cache)) = (p.colours.is_empty(), config.board.cache) else {
        return (p.clone(), Vec::new());
    };
    let plan = hv_core::cache_colour::plan(p, cache)
        .unwrap_or_else(|e| fatal!("partition `{}`: its colours: {e}", p.name));
    let pool: Vec<String> = p.ram.iter().map(|r| alloc::format!("{r}")).collect();
    info!(
        "partition `{}`: colours {:?} of {}: RAM {} from {} runs of {}",
        p.name,
        p.colours,
        cache.colours(),
        plan.ipa,
        plan.runs.len(),
        pool.join(" ")
    );
    let mut seen = p.clone();
    seen.ram = alloc::vec![plan.ipa];
    (seen, plan.runs)
}

pub(super) fn set_power_method(board: &BoardInfo) {
    if let Some(conduit) = board.psci {
        power::set_method(power::Method::Psci(conduit));
    } else if let Some(wdt) = board.watchdog {
        // SAFETY: the watchdog is the board's (DTB), identity-mapped (the MMU is off now)
        // and mapped as device memory by `setup_memory` later; no board file lists it among
        // a partition's devices.
        power::set_method(unsafe { power::Method::watchdog(wdt.base as usize) });
    }
}

/// Builds the heap from hv's free RAM and the EL2 identity map.
fn setup_memory(config: &Config, board: &BoardInfo, dtb: Region, payload_bytes: u64) {
    let image = hv_image::hv_region();
    let hv_ram = config.hv.ram;
    let image_with_payloads = Region::new(
        image.base,
        hv_image::payload_table_addr() + payload_bytes - image.base,
    );
    if !hv_ram.contains(&image_with_payloads) {
        fatal!(
            "hv's image {image_with_payloads} lies outside hv's RAM {hv_ram} (board config `{}`)",
            config.name
        );
    }
    // Keep firmware's spin-table slots, its reservations and the DTB out of the heap.
    let mut used: Vec<Region> = alloc::vec![image_with_payloads, dtb];
    used.extend_from_slice(&board.reserved);
    for c in &board.cpus {
        if let CpuEnable::SpinTable { release_addr } = c.enable {
            used.push(Region::new(release_addr & !0xfff, 0x1000));
        }
    }
    let Some(free) = layout::largest_free(hv_ram, &used) else {
        fatal!("no free RAM left for hv's heap in {hv_ram}");
    };
    // SAFETY: `free` is inside hv's reserved RAM, which no partition owns (validated config),
    // and overlaps neither the image, the payloads, the DTB nor the spin table.
    unsafe { heap::add(free) };

    let mut map = mmu::Builder::new();
    let mut mapped = |region: Region, kind: Kind, what: &str| {
        if let Err(e) = map.map(region, kind) {
            fatal!("cannot map {what} {region} in hv's page tables: {e:?}");
        }
    };
    for ram in &board.memory {
        mapped(*ram, Kind::Ram, "RAM");
    }
    mapped(hv_ram, Kind::HvRam, "hv RAM");
    if let Some(channel) = &config.channel {
        mapped(channel.ram, Kind::Shared, "the channel");
    }
    if let Some(dev) = config.device(&config.hv.console) {
        mapped(Region::new(dev.base, dev.size), Kind::Device, "the console");
    }
    if let Some(gic) = &board.gic {
        for frame in [Some(gic.gicd), gic.gicr, gic.gicc, gic.gich, gic.gicv]
            .into_iter()
            .flatten()
        {
            mapped(frame, Kind::Device, "a GIC frame");
        }
    }
    if let Some(wdt) = board.watchdog {
        mapped(wdt, Kind::Device, "the watchdog");
    }
    map.finish();
}

fn print_board(board: &BoardInfo, config: &Config) {
    let name = if board.model.is_empty() {
        board.compatible.first().map(String::as_str).unwrap_or("?")
    } else {
        board.model.as_str()
    };
    info!("board: {name} (config `{}`)", config.name);
    for m in &board.memory {
        info!("  memory {m} ({} MiB)", m.size >> 20);
    }
    let how = match (&board.cpus[0].enable, board.psci) {
        (CpuEnable::Psci, Some(PsciConduit::Smc)) => "PSCI via SMC".to_string(),
        (CpuEnable::Psci, Some(PsciConduit::Hvc)) => "PSCI via HVC".to_string(),
        (CpuEnable::SpinTable { .. }, _) => "spin table".to_string(),
        (other, _) => alloc::format!("{other:?}"),
    };
    let mpidrs: Vec<String> = board
        .cpus
        .iter()
        .map(|c| alloc::format!("{:#x}", c.mpidr))
        .collect();
    info!(
        "  cpus   {} ({how}), MPIDR {}",
        board.cpus.len(),
        mpidrs.join(" ")
    );
    match &board.gic {
        Some(g) => {
            let frame = |r: Option<Region>| {
                r.map(|r| alloc::format!("{:#x}", r.base))
                    .unwrap_or("-".to_string())
            };
            info!(
                "  gic    {:?}: GICD {:#x} GICR {} GICC {} GICH {} GICV {}",
                g.version,
                g.gicd.base,
                frame(g.gicr),
                frame(g.gicc),
                frame(g.gich),
                frame(g.gicv)
            );
        }
        None => info!("  gic    none found"),
    }
    for u in &board.uarts {
        info!(
            "  uart   PL011 {} at {:#x}{}",
            u.path,
            u.base,
            if u.enabled { "" } else { " (disabled)" }
        );
    }
    info!(
        "  timer  {} Hz, PPIs {:?}",
        cpu::tick_hz(),
        board.timer_irqs
    );
    for p in &config.partitions {
        let ram: Vec<String> = p.ram.iter().map(|r| alloc::format!("{r}")).collect();
        info!(
            "  partition `{}` ({:?}): CPUs {:?}, RAM {}",
            p.name,
            p.kind,
            p.cpus,
            ram.join(" ")
        );
    }
    info!("  hv RAM {}", config.hv.ram);
}
