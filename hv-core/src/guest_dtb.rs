//! The device tree `hv` hands a partition: only what the partition owns.
//!
//! Its CPUs (virtual MPIDRs 0..n, started by PSCI through HVC), its RAM, the GIC as the
//! partition sees it (GICv3: its CPU interface is the virtual ICV_* registers; GICv2: the
//! GICV frame is described as its GICC), the architected timer with its PPIs, the Bulkhead
//! hypervisor node, `/chosen/bootargs`, and the devices passed through to it (a virtio-mmio
//! transport described as QEMU describes it). Written with `vm-fdt`; portable and host-tested
//! by reading the result back with the same DTB parser `hv` uses on real firmware DTBs.

use alloc::string::String;
use alloc::vec::Vec;

use platform::config::{Device, GicVersion, Partition};
use platform::dtb::GicInfo;
use vm_fdt::{Error, FdtWriter};

pub struct GuestDtb<'a> {
    pub partition: &'a Partition,
    /// The board's devices this partition owns (passed through, identity-mapped).
    pub devices: &'a [&'a Device],
    pub bootargs: &'a str,
    pub gic: &'a GicInfo,
    /// GICv2: the frame described as the partition's GICC (GICV, or the physical GICC
    /// with exit-less delivery).
    pub gicc: Option<platform::config::Region>,
    /// Physical MPIDR of each vCPU's CPU, given to exit-less partitions (their SGIs are
    /// physical).
    pub physical_mpidrs: &'a [u64],
    /// The board's architected-timer PPIs (INTIDs, DTB order).
    pub timer_irqs: &'a [u32],
    /// GICv3: the redistributor frames of the partition's own CPUs (emulated by hv).
    pub redistributors: Option<platform::config::Region>,
    /// What only a Linux partition gets: initramfs, console, control page.
    pub linux: Option<LinuxNodes>,
    /// The memory kept for the inter-partition channel (`reserved-memory`, no-map).
    pub channel: Option<platform::config::Region>,
    /// The partition's end of the doorbells, if the board has them.
    pub doorbell: Option<DoorbellNode>,
}

/// What a partition's DTB says about its doorbell ([`GuestDtb::doorbell_node`]).
#[derive(Clone, Copy, Debug)]
pub enum DoorbellNode {
    /// Linux: the PL061 hv emulates (at [`abi::DOORBELL_GPIO_IPA`]) raising SPI `spi`;
    /// its line 0, named [`abi::DOORBELL_GPIO_LINE`], rises when the RT partition rings.
    Linux { spi: u32 },
    /// RT: the SPI Linux's rings raise (`/hypervisor/doorbell`, `bulkhead,doorbell`).
    Rt { spi: u32 },
}

/// `compatible` of the RT partition's doorbell node.
pub const DOORBELL_COMPATIBLE: &str = "bulkhead,doorbell";
/// PL061 revision 0's peripheral ID (DDI 0190B, 3.3.13), as the AMBA bus matches it.
const PL061_PERIPHID: u32 = 0x0004_1061;
/// Interrupt specifier flags: rising edge (the doorbell lines are made pending, not held).
const IRQ_EDGE_RISING: u32 = 0x1;

/// The nodes hv adds for an unmodified Linux kernel.
#[derive(Clone, Copy, Debug)]
pub struct LinuxNodes {
    /// Where hv put the initramfs (`/chosen/linux,initrd-*`).
    pub initrd: platform::config::Region,
    /// The PL011 hv emulates for the partition (same address and SPI as the board's
    /// console), named in `/chosen/stdout-path`.
    pub console: EmulatedUart,
    /// hv's control page for the partition (`bulkhead,control` in the hypervisor node).
    pub control: platform::config::Region,
}

#[derive(Clone, Copy, Debug)]
pub struct EmulatedUart {
    pub base: u64,
    pub spi: u32,
    /// The UART reference clock Linux computes baud divisors from (any sane value: the
    /// emulated UART has no baud rate).
    pub clock_hz: u32,
}

/// Size of the emulated PL011's register frame.
pub const UART_FRAME: u64 = 0x1000;
/// PL011 r1p5 peripheral ID (Arm DDI 0183G, 3.3.17-20), so the AMBA bus matches its
/// driver without reading the registers.
const PL011_PERIPHID: u32 = 0x0024_1011;
const CLOCK_PHANDLE: u32 = 2;

const GIC_PHANDLE: u32 = 1;
/// Interrupt specifier flags: level-triggered, active low, as the boards' own DTBs say.
const IRQ_LEVEL_LOW: u32 = 0x8;
/// Level-triggered, active high (the emulated devices' SPIs).
const IRQ_LEVEL_HIGH: u32 = 0x4;

/// A virtio-mmio transport's `compatible` (Linux's `virtio_mmio` driver binds it).
pub const VIRTIO_MMIO: &str = "virtio,mmio";
// Interrupt specifier flags for virtio-mmio: edge-triggered, rising, as QEMU virt
// describes it (IRQ_EDGE_RISING, above).

/// A passed-through virtio-mmio transport, described as QEMU's own DTB does: its SPI
/// edge-triggered, and `dma-coherent` (QEMU's device reads and writes guest memory
/// coherently, so Linux does no cache maintenance for its rings and buffers).
fn virtio_mmio_node(fdt: &mut FdtWriter, dev: &Device) -> Result<(), Error> {
    let node = fdt.begin_node(&alloc::format!("virtio_mmio@{:x}", dev.base))?;
    fdt.property_string("compatible", VIRTIO_MMIO)?;
    fdt.property_array_u64("reg", &[dev.base, dev.size])?;
    let cells: Vec<u32> = dev
        .irqs
        .iter()
        .flat_map(|&intid| [0, intid - 32, IRQ_EDGE_RISING])
        .collect();
    fdt.property_array_u32("interrupts", &cells)?;
    fdt.property_null("dma-coherent")?;
    fdt.end_node(node)
}

impl GuestDtb<'_> {
    pub fn generate(&self) -> Result<Vec<u8>, Error> {
        let p = self.partition;
        let mut fdt = FdtWriter::new()?;
        let root = fdt.begin_node("")?;
        fdt.property_u32("#address-cells", 2)?;
        fdt.property_u32("#size-cells", 2)?;
        fdt.property_string_list(
            "compatible",
            alloc::vec![String::from("bulkhead,partition")],
        )?;
        fdt.property_string("model", &alloc::format!("Bulkhead partition {}", p.name))?;
        fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;

        let chosen = fdt.begin_node("chosen")?;
        fdt.property_string("bootargs", self.bootargs)?;
        if let Some(linux) = &self.linux {
            let start = linux.initrd.base;
            fdt.property_u64("linux,initrd-start", start)?;
            fdt.property_u64("linux,initrd-end", start + linux.initrd.size)?;
            let uart = alloc::format!("/pl011@{:x}", linux.console.base);
            fdt.property_string("stdout-path", &uart)?;
        }
        fdt.end_node(chosen)?;

        for region in &p.ram {
            let mem = fdt.begin_node(&alloc::format!("memory@{:x}", region.base))?;
            fdt.property_string("device_type", "memory")?;
            fdt.property_array_u64("reg", &[region.base, region.size])?;
            fdt.end_node(mem)?;
        }

        if let Some(channel) = self.channel {
            let reserved = fdt.begin_node("reserved-memory")?;
            fdt.property_u32("#address-cells", 2)?;
            fdt.property_u32("#size-cells", 2)?;
            fdt.property_null("ranges")?;
            let node = fdt.begin_node(&alloc::format!("bulkhead-channel@{:x}", channel.base))?;
            fdt.property_string("compatible", "bulkhead,channel")?;
            fdt.property_array_u64("reg", &[channel.base, channel.size])?;
            fdt.property_null("no-map")?;
            fdt.end_node(node)?;
            fdt.end_node(reserved)?;
        }

        let cpus = fdt.begin_node("cpus")?;
        fdt.property_u32("#address-cells", 1)?;
        fdt.property_u32("#size-cells", 0)?;
        for vcpu in 0..p.cpus.len() {
            let cpu = fdt.begin_node(&alloc::format!("cpu@{vcpu:x}"))?;
            fdt.property_string("device_type", "cpu")?;
            fdt.property_string("compatible", "arm,armv8")?;
            fdt.property_u32("reg", vcpu as u32)?;
            fdt.property_string("enable-method", "psci")?;
            if p.exitless_irqs {
                if let Some(&mpidr) = self.physical_mpidrs.get(vcpu) {
                    fdt.property_u64("bulkhead,physical-mpidr", mpidr)?;
                }
            }
            fdt.end_node(cpu)?;
        }
        fdt.end_node(cpus)?;

        let psci = fdt.begin_node("psci")?;
        fdt.property_string_list(
            "compatible",
            alloc::vec![String::from("arm,psci-1.0"), String::from("arm,psci-0.2")],
        )?;
        fdt.property_string("method", "hvc")?;
        fdt.end_node(psci)?;

        let g = self.gic;
        let gic = fdt.begin_node(&alloc::format!("interrupt-controller@{:x}", g.gicd.base))?;
        fdt.property_u32("#interrupt-cells", 3)?;
        fdt.property_null("interrupt-controller")?;
        let cpu_interface = match g.version {
            GicVersion::V3 => {
                fdt.property_string("compatible", "arm,gic-v3")?;
                self.redistributors
            }
            GicVersion::V2 => {
                fdt.property_string("compatible", "arm,cortex-a15-gic")?;
                self.gicc
            }
        };
        let mut reg = alloc::vec![g.gicd.base, g.gicd.size];
        if let Some(r) = cpu_interface {
            reg.extend([r.base, r.size]);
        }
        fdt.property_array_u64("reg", &reg)?;
        fdt.property_u32("phandle", GIC_PHANDLE)?;
        fdt.end_node(gic)?;

        let cpu_mask = match g.version {
            GicVersion::V3 => 0,
            GicVersion::V2 => ((1u32 << p.cpus.len()) - 1) << 8,
        };
        let mut cells = Vec::new();
        for &intid in self.timer_irqs {
            cells.extend([1, intid.saturating_sub(16), cpu_mask | IRQ_LEVEL_LOW]);
        }
        let timer = fdt.begin_node("timer")?;
        fdt.property_string("compatible", "arm,armv8-timer")?;
        fdt.property_array_u32("interrupts", &cells)?;
        fdt.property_null("always-on")?;
        fdt.end_node(timer)?;

        for dev in self.devices {
            if dev.compatible == VIRTIO_MMIO {
                virtio_mmio_node(&mut fdt, dev)?;
                continue;
            }
            let node = fdt.begin_node(&alloc::format!("{}@{:x}", dev.name, dev.base))?;
            fdt.property_string("compatible", &dev.compatible)?;
            fdt.property_array_u64("reg", &[dev.base, dev.size])?;
            if !dev.irqs.is_empty() {
                // SPI specifiers: <0 (INTID - 32) level-high>.
                let cells: Vec<u32> = dev
                    .irqs
                    .iter()
                    .flat_map(|&intid| [0, intid - 32, 4])
                    .collect();
                fdt.property_array_u32("interrupts", &cells)?;
            }
            fdt.end_node(node)?;
        }

        if let Some(linux) = &self.linux {
            let clock = fdt.begin_node("apb-pclk")?;
            fdt.property_string("compatible", "fixed-clock")?;
            fdt.property_u32("#clock-cells", 0)?;
            fdt.property_u32("clock-frequency", linux.console.clock_hz)?;
            fdt.property_string("clock-output-names", "clk24mhz")?;
            fdt.property_u32("phandle", CLOCK_PHANDLE)?;
            fdt.end_node(clock)?;

            let uart = linux.console;
            let node = fdt.begin_node(&alloc::format!("pl011@{:x}", uart.base))?;
            fdt.property_string_list(
                "compatible",
                alloc::vec![String::from("arm,pl011"), String::from("arm,primecell")],
            )?;
            fdt.property_array_u64("reg", &[uart.base, UART_FRAME])?;
            fdt.property_array_u32("interrupts", &[0, uart.spi - 32, 4])?;
            fdt.property_array_u32("clocks", &[CLOCK_PHANDLE, CLOCK_PHANDLE])?;
            fdt.property_string_list(
                "clock-names",
                alloc::vec![String::from("uartclk"), String::from("apb_pclk")],
            )?;
            fdt.property_u32("arm,primecell-periphid", PL011_PERIPHID)?;
            fdt.end_node(node)?;
        }

        if let Some(DoorbellNode::Linux { spi }) = self.doorbell {
            Self::doorbell_gpio_node(&mut fdt, spi)?;
        }

        let hyp = fdt.begin_node("hypervisor")?;
        fdt.property_string("compatible", "bulkhead,hypervisor")?;
        fdt.property_string("method", "hvc")?;
        if let Some(linux) = &self.linux {
            fdt.property_array_u64(
                "bulkhead,control",
                &[linux.control.base, linux.control.size],
            )?;
        }
        if let Some(DoorbellNode::Rt { spi }) = self.doorbell {
            let node = fdt.begin_node("doorbell")?;
            fdt.property_string("compatible", DOORBELL_COMPATIBLE)?;
            fdt.property_array_u32("interrupts", &[0, spi - 32, IRQ_EDGE_RISING])?;
            fdt.end_node(node)?;
        }
        fdt.end_node(hyp)?;

        fdt.end_node(root)?;
        fdt.finish()
    }

    /// Linux's doorbell: the PL061 hv emulates, a PrimeCell clocked by the `apb-pclk`
    /// node the console already uses, with its eight lines named (line 0 the doorbell).
    fn doorbell_gpio_node(fdt: &mut FdtWriter, spi: u32) -> Result<(), Error> {
        let base = abi::DOORBELL_GPIO_IPA;
        let node = fdt.begin_node(&alloc::format!("gpio@{base:x}"))?;
        fdt.property_string_list(
            "compatible",
            alloc::vec![String::from("arm,pl061"), String::from("arm,primecell")],
        )?;
        fdt.property_array_u64("reg", &[base, abi::DOORBELL_GPIO_SIZE])?;
        fdt.property_array_u32("interrupts", &[0, spi - 32, IRQ_LEVEL_HIGH])?;
        fdt.property_null("gpio-controller")?;
        fdt.property_u32("#gpio-cells", 2)?;
        fdt.property_null("interrupt-controller")?;
        fdt.property_u32("#interrupt-cells", 2)?;
        fdt.property_u32("clocks", CLOCK_PHANDLE)?;
        fdt.property_string("clock-names", "apb_pclk")?;
        fdt.property_u32("arm,primecell-periphid", PL061_PERIPHID)?;
        let mut names = alloc::vec![String::from(abi::DOORBELL_GPIO_LINE)];
        names.extend((1..8).map(|_| String::new()));
        fdt.property_string_list("gpio-line-names", names)?;
        fdt.end_node(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::config::{PartitionKind, Region};
    use platform::dtb::{BoardInfo, CpuEnable, PsciConduit};

    fn gicv2() -> GicInfo {
        GicInfo {
            version: GicVersion::V2,
            gicd: Region::new(0x0800_0000, 0x1_0000),
            gicr: None,
            gicc: Some(Region::new(0x0801_0000, 0x1_0000)),
            gich: Some(Region::new(0x0803_0000, 0x1_0000)),
            gicv: Some(Region::new(0x0804_0000, 0x1_0000)),
        }
    }

    #[test]
    fn describes_only_the_partitions_own_cpus_and_ram() {
        let rt = Partition {
            name: "rt".into(),
            kind: PartitionKind::Rt,
            cpus: alloc::vec![2, 3],
            ram: alloc::vec![Region::new(0x4200_0000, 0x600_0000)],
            devices: alloc::vec![],
            irqs: alloc::vec![],
            exitless_irqs: false,
            on_fault: Default::default(),
            restart_limit: None,
            load_from_linux: false,
            dtb_ram: alloc::vec![],
            colours: alloc::vec![],
        };
        let gic = gicv2();
        let rtc = Device {
            name: "rtc".into(),
            compatible: "arm,pl031".into(),
            base: 0x0901_0000,
            size: 0x1000,
            irqs: alloc::vec![34],
        };
        let blob = GuestDtb {
            partition: &rt,
            devices: &[&rtc],
            bootargs: "rt.selftest=none",
            gic: &gic,
            gicc: gic.gicv,
            physical_mpidrs: &[2, 3],
            timer_irqs: &[29, 30, 27, 26],
            redistributors: None,
            linux: None,
            channel: None,
            doorbell: Some(DoorbellNode::Rt { spi: 96 }),
        }
        .generate()
        .unwrap();
        let info = BoardInfo::parse(&blob).expect("generated DTB parses");
        assert_eq!(info.compatible, ["bulkhead,partition"]);
        assert_eq!(info.memory, [Region::new(0x4200_0000, 0x600_0000)]);
        assert_eq!(info.cpus.len(), 2);
        // Virtual MPIDRs: the partition's vCPUs are 0 and 1 whatever physical CPUs they use.
        assert_eq!(info.cpus[0].mpidr, 0);
        assert_eq!(info.cpus[1].mpidr, 1);
        assert!(info.cpus.iter().all(|c| c.enable == CpuEnable::Psci));
        assert_eq!(info.psci, Some(PsciConduit::Hvc));
        assert_eq!(info.bootargs.as_deref(), Some("rt.selftest=none"));
        assert!(info.uarts.is_empty(), "no device leaks in");
        let fdt = fdt::Fdt::new(&blob).unwrap();
        let doorbell = fdt
            .find_node("/hypervisor/doorbell")
            .expect("RT's doorbell");
        assert_eq!(
            doorbell.property("compatible").unwrap().as_str(),
            Some(DOORBELL_COMPATIBLE)
        );
        assert_eq!(
            doorbell.property("interrupts").unwrap().value,
            [0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 1],
            "SPI 64 = INTID 96, rising edge"
        );
        assert!(
            fdt.find_compatible(&["arm,pl061"]).is_none(),
            "no PL061 for RT"
        );
        // The partition's GICC is the GICV frame: its CPU interface is virtual.
        let seen = info.gic.expect("GIC described");
        assert_eq!(seen.version, GicVersion::V2);
        assert_eq!(seen.gicd, Region::new(0x0800_0000, 0x1_0000));
        assert_eq!(seen.gicc, Some(Region::new(0x0804_0000, 0x1_0000)));
        assert_eq!(info.timer_irqs, [29, 30, 27, 26]);
        let fdt = fdt::Fdt::new(&blob).unwrap();
        let node = fdt
            .find_compatible(&["arm,pl031"])
            .expect("passed-through device listed");
        assert_eq!(
            node.reg().unwrap().next().unwrap().starting_address as u64,
            0x0901_0000
        );
        let irq = node.property("interrupts").unwrap().value;
        assert_eq!(
            irq,
            [0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 4],
            "SPI 2 = INTID 34, level"
        );
    }

    #[test]
    fn a_linux_partition_gets_its_initrd_console_redistributors_and_control_page() {
        let linux = Partition {
            name: "linux".into(),
            kind: PartitionKind::Linux,
            cpus: alloc::vec![0, 1],
            ram: alloc::vec![Region::new(0x5000_0000, 0x6000_0000)],
            devices: alloc::vec![],
            irqs: alloc::vec![],
            exitless_irqs: false,
            on_fault: Default::default(),
            restart_limit: None,
            load_from_linux: false,
            dtb_ram: alloc::vec![],
            colours: alloc::vec![],
        };
        let gic = GicInfo {
            version: GicVersion::V3,
            gicd: Region::new(0x0800_0000, 0x1_0000),
            gicr: Some(Region::new(0x080a_0000, 0x80_0000)),
            gicc: None,
            gich: None,
            gicv: None,
        };
        let redistributors = Region::new(0x080a_0000, 2 * 0x2_0000);
        let blob = GuestDtb {
            partition: &linux,
            devices: &[],
            bootargs: "console=ttyAMA0",
            gic: &gic,
            gicc: None,
            physical_mpidrs: &[0, 1],
            timer_irqs: &[29, 30, 27, 26],
            redistributors: Some(redistributors),
            linux: Some(LinuxNodes {
                initrd: Region::new(0xa000_0000, 0x20_1000),
                console: EmulatedUart {
                    base: 0x0900_0000,
                    spi: 33,
                    clock_hz: 24_000_000,
                },
                control: Region::new(0x7f_0000_0000, 0x1000),
            }),
            channel: Some(Region::new(0xb000_0000, 0x20_0000)),
            doorbell: Some(DoorbellNode::Linux { spi: 97 }),
        }
        .generate()
        .unwrap();
        let info = BoardInfo::parse(&blob).expect("generated DTB parses");
        let seen = info.gic.expect("GIC described");
        assert_eq!(seen.gicr, Some(redistributors), "only its own two frames");
        assert_eq!(info.uarts.len(), 1);
        assert_eq!(info.uarts[0].base, 0x0900_0000);
        let fdt = fdt::Fdt::new(&blob).unwrap();
        let chosen = fdt.find_node("/chosen").unwrap();
        let be64 = |name: &str| {
            let v = chosen.property(name).unwrap().value;
            u64::from_be_bytes(v.try_into().unwrap())
        };
        assert_eq!(be64("linux,initrd-start"), 0xa000_0000);
        assert_eq!(be64("linux,initrd-end"), 0xa020_1000);
        assert_eq!(
            chosen.property("stdout-path").unwrap().as_str(),
            Some("/pl011@9000000")
        );
        let uart = fdt.find_node("/pl011@9000000").unwrap();
        assert_eq!(
            uart.property("interrupts").unwrap().value,
            [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4],
            "SPI 1 = INTID 33"
        );
        let clock = fdt.find_node("/apb-pclk").unwrap();
        assert_eq!(
            clock.property("clock-frequency").unwrap().as_usize(),
            Some(24_000_000)
        );
        let channel = fdt
            .find_compatible(&["bulkhead,channel"])
            .expect("the channel is kept in reserved-memory");
        assert!(channel.property("no-map").is_some());
        let reg = channel.reg().unwrap().next().unwrap();
        assert_eq!(
            (reg.starting_address as u64, reg.size),
            (0xb000_0000, Some(0x20_0000))
        );
        assert!(
            info.memory
                .iter()
                .all(|m| !m.overlaps(&Region::new(0xb000_0000, 0x20_0000))),
            "the channel is no part of the partition's own memory"
        );
        let hyp = fdt.find_node("/hypervisor").unwrap();
        let control = hyp.property("bulkhead,control").unwrap().value;
        assert_eq!(&control[..8], &0x7f_0000_0000u64.to_be_bytes());
        assert!(fdt.find_node("/hypervisor/doorbell").is_none());
        let gpio = fdt
            .find_node("/gpio@7f00001000")
            .expect("the doorbell's PL061");
        assert_eq!(
            gpio.compatible().unwrap().all().collect::<Vec<_>>(),
            ["arm,pl061", "arm,primecell"]
        );
        let reg = gpio.reg().unwrap().next().unwrap();
        assert_eq!(
            (reg.starting_address as u64, reg.size),
            (abi::DOORBELL_GPIO_IPA, Some(0x1000))
        );
        assert_eq!(
            gpio.property("interrupts").unwrap().value,
            [0, 0, 0, 0, 0, 0, 0, 65, 0, 0, 0, 4],
            "SPI 65 = INTID 97"
        );
        assert!(gpio.property("gpio-controller").is_some());
        let names = gpio.property("gpio-line-names").unwrap().value;
        assert!(names.starts_with(b"bulkhead-doorbell\0"));
        assert_eq!(names.iter().filter(|&&b| b == 0).count(), 8, "eight lines");
        assert_eq!(
            gpio.property("clocks").unwrap().as_usize(),
            Some(CLOCK_PHANDLE as usize)
        );
    }

    #[test]
    fn a_virtio_mmio_transport_is_described_as_qemu_does() {
        let linux = Partition {
            name: "linux".into(),
            kind: PartitionKind::Linux,
            cpus: alloc::vec![0, 1],
            ram: alloc::vec![Region::new(0x4a00_0000, 0x6000_0000)],
            devices: alloc::vec!["net0".into()],
            irqs: alloc::vec![79],
            exitless_irqs: false,
            on_fault: Default::default(),
            restart_limit: None,
            load_from_linux: false,
            dtb_ram: alloc::vec![],
            colours: alloc::vec![],
        };
        let net = Device {
            name: "net0".into(),
            compatible: VIRTIO_MMIO.into(),
            base: 0x0a00_3e00,
            size: 0x200,
            irqs: alloc::vec![79],
        };
        let gic = gicv2();
        let blob = GuestDtb {
            partition: &linux,
            devices: &[&net],
            bootargs: "",
            gic: &gic,
            gicc: gic.gicv,
            physical_mpidrs: &[0, 1],
            timer_irqs: &[29, 30, 27, 26],
            redistributors: None,
            linux: None,
            channel: None,
            doorbell: None,
        }
        .generate()
        .unwrap();
        let fdt = fdt::Fdt::new(&blob).unwrap();
        let node = fdt
            .find_node("/virtio_mmio@a003e00")
            .expect("the transport node");
        assert_eq!(
            node.property("compatible").unwrap().as_str(),
            Some("virtio,mmio")
        );
        let reg = node.reg().unwrap().next().unwrap();
        assert_eq!(
            (reg.starting_address as u64, reg.size),
            (0x0a00_3e00, Some(0x200))
        );
        assert_eq!(
            node.property("interrupts").unwrap().value,
            [0, 0, 0, 0, 0, 0, 0, 47, 0, 0, 0, 1],
            "SPI 47 = INTID 79, rising edge (QEMU's own DTB)"
        );
        assert!(node.property("dma-coherent").is_some());
    }
}
