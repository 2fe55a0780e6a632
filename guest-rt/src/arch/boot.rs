//! guest-rt's boot on each vCPU: console, DTB, boot arguments, MMU, the other vCPUs
//! through PSCI, the virtual timer, then the app (which reports ready itself) or "ready"
//! to hv, the self-test if one was asked for, and a heartbeat.
//!
//! Owns the boot sequence and the runtime services apps and self-tests share (ready,
//! heartbeat, power off); what the DTB and the boot arguments say is decided by the
//! portable [`guest_rt::dtb`] and [`guest_rt::bootargs`].

use aarch64_cpu::registers::{Readable, TPIDR_EL1};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use log::{error, info};
use platform::config::Region;
use platform::dtb::BoardInfo;
use smccc::Hvc;
use spin::Once;

use guest_rt::bootargs::{self, BootArgs};

use super::{console, gic, heap, hvc, irq, mmu, timer};
use crate::apps::{Context, APPS, NAMES};

struct Boot {
    options: BootArgs,
    vcpus: usize,
    /// An address just past the partition's RAM (for the self-tests).
    #[cfg(feature = "selftests")]
    outside: u64,
    /// The channel hv named in the DTB (the `exec-channel` self-test jumps into it).
    #[cfg(feature = "selftests")]
    channel: Option<Region>,
}

/// The channel region hv named in our DTB, if any (self-tests only).
#[cfg(feature = "selftests")]
pub fn channel_region() -> Option<Region> {
    BOOT.get().and_then(|b| b.channel)
}

static BOOT: Once<Boot> = Once::new();
/// Booted without hv (the benchmark's baseline): no hypercalls, own GIC and UART.
static BARE: AtomicBool = AtomicBool::new(false);
/// vCPUs that finished a fixed-length probe (bare: the last one powers the machine off).
static PROBES_DONE: AtomicUsize = AtomicUsize::new(0);

/// vCPUs whose GIC CPU interface is enabled (self-tests wait for their peer).
static INTERRUPTS_ON: [AtomicBool; super::MAX_VCPUS] =
    [const { AtomicBool::new(false) }; super::MAX_VCPUS];

#[cfg(feature = "selftests")]
pub fn interrupts_on(vcpu: usize) -> bool {
    INTERRUPTS_ON[vcpu].load(Ordering::Acquire)
}

pub fn is_bare() -> bool {
    BARE.load(Ordering::Acquire)
}

/// Stops the whole partition (PSCI SYSTEM_OFF through hv); hv and other partitions go on.
pub fn power_off() -> ! {
    let _ = smccc::psci::system_off::<Hvc>();
    loop {
        aarch64_cpu::asm::wfe();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    console::print(format_args!("FATAL: guest-rt panicked: {info}"));
    power_off()
}

/// The DTB hv wrote at `addr`, as bytes bounded by its header's size.
///
/// # Safety
/// `addr` must be the address hv passed in x0 at entry: readable memory of the partition's
/// own RAM holding a DTB header, followed by as many bytes as the header says, never
/// written again.
unsafe fn dtb_at(addr: usize) -> Result<&'static [u8], guest_rt::dtb::HeaderError> {
    // SAFETY: per this function's contract, the header's bytes are readable at `addr`.
    let header = unsafe { &*(addr as *const [u8; guest_rt::dtb::HEADER_LEN]) };
    let len = guest_rt::dtb::blob_len(header)?;
    // SAFETY: the header says the blob is `len` bytes from `addr` (bounded by
    // `MAX_DTB_LEN`), inside our RAM and never written again, per the contract.
    Ok(unsafe { core::slice::from_raw_parts(addr as *const u8, len) })
}

/// vCPU 0, from the entry code, MMU off, x0 = DTB.
pub extern "C" fn boot_main(dtb: usize) -> ! {
    heap::init();
    console::init();
    // SAFETY: `dtb` is x0 at entry, the DTB hv (or a bare loader) wrote into our RAM.
    let blob = unsafe { dtb_at(dtb) };
    let board = blob
        .map_err(|e| alloc::format!("{e}"))
        .and_then(|b| BoardInfo::parse(b).map_err(|e| alloc::format!("{e}")))
        .unwrap_or_else(|why| {
            // Nowhere to report yet: hv's console needs nothing from the DTB, try it.
            console::print(format_args!(
                "FATAL: guest-rt found no usable DTB at {dtb:#x} ({why})"
            ));
            power_off()
        });
    let blob = blob.unwrap_or_default();
    // Under hv the DTB is a partition's; anything else means guest-rt was booted bare.
    let bare = !board.compatible.iter().any(|c| c == "bulkhead,partition");
    if bare {
        if let Some(uart) = board.uarts.iter().find(|u| u.enabled) {
            console::use_uart(uart.base as usize);
        }
        BARE.store(true, Ordering::Release);
        info!(
            "guest-rt {} starting bare (no hypervisor) on vCPU 0 of {}",
            env!("CARGO_PKG_VERSION"),
            board.cpus.len()
        );
    } else {
        let status = hvc::partition_status();
        info!(
            "guest-rt {} starting on vCPU {} of {} (partition {}, boot {})",
            env!("CARGO_PKG_VERSION"),
            status.vcpu,
            status.vcpus,
            status.partition,
            status.boots
        );
    }
    let bootargs = board.bootargs.clone().unwrap_or_default();
    for m in &board.memory {
        info!("memory {m}");
    }
    info!("{} vCPUs, bootargs `{bootargs}`", board.cpus.len());
    let options = boot_args(&bootargs);
    super::threads::init(board.cpus.len());
    let gic_info = board.gic.clone().unwrap_or_else(|| {
        error!("the partition's DTB describes no interrupt controller");
        power_off()
    });
    if let Err(why) = gic::init(&gic_info) {
        error!("{why}");
        power_off()
    }
    if !bare {
        let physical = guest_rt::dtb::physical_mpidrs(blob);
        if !physical.is_empty() {
            info!("exit-less interrupt delivery: this partition owns its CPUs' GIC interfaces");
            gic::set_physical_mpidrs(physical);
        }
    }
    if let Some(&intid) = board.timer_irqs.get(2) {
        timer::set_intid(intid);
    }
    let mut devices = alloc::vec![gic::distributor_frame(&gic_info)];
    devices.extend(gic::mmio_frame(&gic_info));
    if !bare {
        // Passed-through devices, identity-mapped by hv.
        devices.extend(super::devices::discover(blob).iter().map(|d| d.region));
    }
    // The redistributors: guest-rt's own when bare, hv's emulated ones otherwise (the
    // `gic` self-test reads them back).
    devices.extend(gic::redistributor_frame(&gic_info));
    if bare {
        // Booted bare, guest-rt owns the GIC and its console UART.
        devices.extend(
            board
                .uarts
                .iter()
                .filter(|u| u.enabled)
                .map(|u| Region::new(u.base, u.size)),
        );
    }
    // The channel hv keeps between the partitions (not when booted bare).
    let channel = guest_rt::dtb::channel(blob).filter(|_| !bare);
    mmu::build(&board.memory, &devices, channel.as_slice());
    #[cfg(feature = "selftests")]
    let outside = board
        .memory
        .iter()
        .filter_map(|m| m.end())
        .max()
        .unwrap_or(0);
    BOOT.call_once(|| Boot {
        options,
        vcpus: board.cpus.len(),
        #[cfg(feature = "selftests")]
        outside,
        #[cfg(feature = "selftests")]
        channel,
    });
    // Nothing runs cached yet: the whole image (code, data, heap, page tables, stacks) is
    // only in memory, so stale lines can go.
    let (start, end) = super::image_range();
    mmu::invalidate(start, end);
    mmu::enable();
    if let Some(region) = channel {
        super::channel::init(region, board.cpus.len());
    }
    let entry = super::entry::secondary_entry as *const () as u64;
    for (index, cpu) in board.cpus.iter().enumerate().skip(1) {
        match smccc::psci::cpu_on::<Hvc>(cpu.mpidr, entry, index as u64) {
            Ok(()) => info!("vCPU {index} started through PSCI"),
            Err(e) => error!("PSCI CPU_ON of vCPU {index} failed: {e:?}"),
        }
    }
    vcpu_main(0)
}

/// The boot arguments, or, if any `rt.*` word is refused, each refusal on the console
/// and the partition off: guest-rt never runs with a value it cannot honour (hv and the
/// other partitions go on).
fn boot_args(line: &str) -> BootArgs {
    let catalog = bootargs::Catalog {
        apps: &NAMES,
        selftests: cfg!(feature = "selftests"),
    };
    bootargs::parse(line, &catalog).unwrap_or_else(|refused| {
        for r in &refused {
            console::print(format_args!("{r}"));
        }
        console::print(format_args!(
            "rt: {} boot argument(s) refused: starting nothing, powering the partition off",
            refused.len()
        ));
        power_off()
    })
}

/// Other vCPUs, MMU off, tables built by vCPU 0.
pub extern "C" fn secondary_main(index: usize) -> ! {
    // Only this vCPU's stack was written with caches off since vCPU 0 turned its own on.
    let (top, size) = super::stack_of(index);
    mmu::invalidate(top - size, top);
    mmu::enable();
    vcpu_main(index)
}

fn vcpu_main(index: usize) -> ! {
    let boot = BOOT
        .get()
        .expect("vCPU 0 publishes the boot facts before starting others");
    if is_bare() {
        gic::init_bare(index);
    }
    gic::init_cpu();
    INTERRUPTS_ON[index].store(true, Ordering::Release);
    info!(
        "vCPU {index} up at EL1 (TPIDR {}), MMU and caches on",
        TPIDR_EL1.get()
    );
    for tick in 1..=3 {
        timer::sleep_ns(10_000_000);
        info!(
            "virtual timer: tick {tick} on vCPU {index} at {} us ({} interrupts)",
            timer::now_ns() / 1000,
            timer::interrupts()
        );
    }
    if index == 0 && !is_bare() {
        super::doorbell::init();
    }
    let cx = Context {
        vcpu: index,
        vcpus: boot.vcpus,
        args: boot.options,
    };
    if let Some(app) = boot.options.app.map(|i| &APPS[i]) {
        if index == 0 {
            info!("app `{}`: {}", app.name, app.about);
        }
        (app.run)(&cx);
    }
    #[cfg(feature = "selftests")]
    if let Some(test) = boot.options.selftest {
        crate::selftests::before_ready(test, &cx, boot.outside);
    }
    report_ready(index, false, boot.vcpus);
    #[cfg(feature = "selftests")]
    if let Some(test) = boot.options.selftest {
        crate::selftests::after_ready(test, &cx);
    }
    heartbeat(index, boot.options.heartbeat_ms, timer::sleep_ns)
}

/// "ready" on the console and to hv (bare: the last vCPU to finish a fixed-length probe
/// powers the machine off, which is what the benchmark waits for).
/// vCPUs of this partition that reported ready (each once, after its boot checks).
static VCPUS_READY: AtomicUsize = AtomicUsize::new(0);

/// How many vCPUs reported ready so far (what a partition-wide stop waits for, so that it
/// finds every vCPU running).
#[cfg(feature = "selftests")]
pub fn vcpus_ready() -> usize {
    VCPUS_READY.load(Ordering::Acquire)
}

pub fn report_ready(index: usize, probe_done: bool, vcpus: usize) {
    info!(
        "ready: vCPU {index} ({} timer interrupts, {} unexpected)",
        timer::interrupts(),
        irq::unexpected()
    );
    if is_bare() {
        if probe_done && PROBES_DONE.fetch_add(1, Ordering::AcqRel) + 1 == vcpus {
            info!("bare: every vCPU finished its probe, powering off");
            power_off();
        }
    } else {
        hvc::ready();
    }
    VCPUS_READY.fetch_add(1, Ordering::AcqRel);
}

/// This vCPU runs threads from now on, the heartbeat being one of them (lowest priority).
#[cfg(feature = "selftests")]
pub fn enter_with_heartbeat(index: usize, heartbeat_ms: u64) -> ! {
    use super::threads;
    use guest_rt::{CpuMask, ThreadSpec};
    threads::spawn(ThreadSpec::fifo(0).on(CpuMask::single(index)), move || {
        heartbeat(index, heartbeat_ms, threads::sleep_ns)
    });
    threads::enter()
}

/// Prints a heartbeat every `ms`, sleeping with `sleep` (the boot context's timer wait, or
/// the kernel's for a thread).
pub fn heartbeat(index: usize, ms: u64, sleep: fn(u64)) -> ! {
    let mut beat = 0u64;
    loop {
        sleep(ms * 1_000_000);
        beat += 1;
        info!(
            "heartbeat {beat} on vCPU {index} ({} SGIs received, numbers {:#06x})",
            irq::sgis(),
            irq::sgi_ids()
        );
    }
}
