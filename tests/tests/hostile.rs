//! A hostile Linux, with the RT latency probe running under deterministic time (-icount),
//! on virt (GICv3) and virt-gicv2. Linux boots with `iomem=relaxed`, so busybox `devmem`
//! maps the GIC on both versions and every write below reaches hv.
//!
//! From Linux's shell, in order:
//! * every distributor register class (enable, pending and active set/clear, priority,
//!   targets or IROUTER, config, group, SGI generation) for the RT partition's lines (its
//!   device's, its doorbell) and hv's (its console UART's, the doorbell to Linux: both
//!   Linux's virtual lines, so each write is undone in the same command), hv's private
//!   PPIs and its kick SGI 0; on GICv3 the same classes in Linux's own redistributors for
//!   hv's PPIs and SGI 0, and in the RT CPUs' redistributor frames (RD_base and SGI_base:
//!   not Linux's, so stray accesses hv reports), on GICv2 hv's GICH and physical GICC
//!   frames (stray); accesses of a width the GIC does not have (refused, with the device's
//!   reason). Then the RT partition's doorbell still rings exactly once per ring (again
//!   after the storm).
//! * three reboots in a row;
//! * stray writes to hv's, the RT partition's and unassigned memory; CPU hotplug;
//! * a storm of pseudo-random writes over the distributor and, one in eight, a frame
//!   not Linux's (GICv3: the RT CPUs' redistributors; GICv2: hv's GICH), then `rtctl
//!   status`: hv counted each refused one, exactly;
//! * a kernel panic.
//!
//! After each write and each step: hv answers its console commands, the probe's
//! telemetry moved on with no period missed. At the end its own report says missed 0 and
//! hv printed no FATAL or EL2 exception.
//!
//! The whole run goes under the vcpu-insn plugin (`tools/vcpu-insn-plugin`): from the
//! first attack to after the panic, every wake-up of each RT CPU (its own instructions,
//! hv's IRQ vector to the probe running) is compared with a run of the RT side alone just
//! before: hv's part exactly (Linux's restarts included: the statistics copy each asks
//! for happens at the RT CPU's next synchronous trap, not on its wake-up path), guest-rt's
//! part within a few instructions (see `WakeCount::check` for why).
//!
//! Not repeated here (tests/tests/linux.rs has them): reads of hv and RT memory, the
//! control page's refusal, poweroff followed by hv's console commands.
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::Duration;

use bulkhead_tests::{board, latency_probe, linux_session};
use platform::config::{Config, GicVersion};
use xtask::qemu::{self, Boot};
use xtask::rt_marks::{self, WAKE};
use xtask::session::Session;
use xtask::vcpu_insns::{self, Plan};

const COMMAND: Duration = Duration::from_secs(120);

/// QEMU virt's GIC (hw/arm/virt.c memory map, both versions): the distributor, and on
/// GICv3 the redistributors, one 128 KiB frame per CPU (RD_base, then SGI_base).
const GICD: u64 = 0x0800_0000;
const GICR: u64 = 0x080a_0000;
const GICR_FRAME: u64 = 0x2_0000;
const SGI_BASE: u64 = 0x1_0000;
/// GICv2's physical CPU interface and virtualization control interface: hv's (Linux's
/// GICC is the GICV frame, 0x0804_0000).
const GICC: u64 = 0x0801_0000;
const GICH: u64 = 0x0803_0000;

/// hv's own banked lines: the maintenance interrupt (PPI 9) and the EL2 timer (PPI 10)
/// that paces its console; its kick SGI.
const HV_PPIS: [u32; 2] = [25, 26];
const KICK_SGI: u32 = 0;

/// Linux reboots in a row.
const REBOOTS: usize = 3;
/// Writes of the storm (each a `devmem` process).
const STORM: u32 = 300;
/// The storm's seed: the same writes every run.
const STORM_SEED: u32 = 20_261_202;

/// hv answers its console commands (Ctrl-] ?) from line `from` on.
fn hv_answers(s: &mut Session) {
    let from = s.line_count();
    s.send("\x1d?").unwrap();
    s.wait_line(from, "console: Ctrl-] n = input to next partition", COMMAND)
        .unwrap_or_else(|e| panic!("hv's console did not answer: {e}"));
}

/// The number after each `"key":` in one `rtctl watch --json` line (one per RT CPU).
fn json_numbers(json: &str, key: &str) -> Vec<u64> {
    json.split(&format!("\"{key}\":"))
        .skip(1)
        .map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap_or_else(|_| panic!("{key} in {json}"))
        })
        .collect()
}

/// What the RT probe published: periods done, per RT vCPU; moving on and none missed.
struct Probe {
    periods: Vec<u64>,
}

impl Probe {
    /// Checks one `rtctl watch --json --count 1` line from `out` against the last one.
    /// A block the reader found mid-update on every one of its bounded tries (the RT
    /// writer never waits for Linux; under QEMU's round-robin an RT vCPU can be descheduled
    /// mid-update for all of them) is asked again, a few times.
    fn moved_on(&mut self, s: &mut Session, out: &[String], after: &str) {
        let mut out = out.to_vec();
        for _ in 0..5 {
            if !out.iter().any(|l| l.contains("block busy on every try")) {
                break;
            }
            out = s.shell("rtctl watch --json --count 1", COMMAND).unwrap();
        }
        let json = out
            .iter()
            .find(|l| l.contains("\"periods\":"))
            .unwrap_or_else(|| panic!("no telemetry after {after}: {out:?}"));
        let periods = json_numbers(json, "periods");
        assert_eq!(periods.len(), 2, "{json}");
        for (vcpu, (&now, &before)) in periods.iter().zip(&self.periods).enumerate() {
            assert!(
                now > before,
                "RT vCPU {vcpu} stopped probing after {after}: {before} -> {now} periods"
            );
        }
        assert_eq!(
            json_numbers(json, "missed"),
            [0, 0],
            "after {after}: {json}"
        );
        self.periods = periods;
    }

    /// Asks the telemetry now (after a step that was not a shell command of its own).
    fn check(&mut self, s: &mut Session, after: &str) {
        let out = s.shell("rtctl watch --json --count 1", COMMAND).unwrap();
        self.moved_on(s, &out, after);
    }
}

/// What hv must make of one attack.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Emulated: the write completes (dropped or kept in Linux's view).
    Taken,
    /// Not Linux's: a bus error, reported by hv as outside its sandbox at this IPA.
    Stray(u64),
    /// An emulated device refused it: a bus error, hv reports the device's reason.
    Refused(u64, &'static str),
}

struct Attack {
    what: String,
    /// Shell commands (one or more `devmem`s).
    cmd: String,
    expect: Expect,
}

fn attack(what: impl Into<String>, cmd: impl Into<String>, expect: Expect) -> Attack {
    Attack {
        what: what.into(),
        cmd: cmd.into(),
        expect,
    }
}

/// `devmem ADDR WIDTH VALUE`.
fn poke(addr: u64, width: u32, value: u64) -> String {
    format!("devmem {addr:#x} {width} {value:#x}")
}

/// Writes `value` and then puts back what was there (Linux's own lines).
fn poke_restore(addr: u64, width: u32, value: u64) -> String {
    format!("o=$(devmem {addr:#x} {width}); devmem {addr:#x} {width} {value:#x}; devmem {addr:#x} {width} $o")
}

/// Runs `a`, then checks hv's verdict, its console and the probe.
fn run_attack(s: &mut Session, probe: &mut Probe, a: &Attack) {
    let from = s.line_count();
    let out = s
        .shell(
            &format!("{}; echo rc=$?; rtctl watch --json --count 1", a.cmd),
            COMMAND,
        )
        .unwrap();
    let bus_error = out.iter().any(|l| l.contains("Bus error"));
    let hv_said = |needle: &str| {
        s.lines_from(from)
            .iter()
            .any(|l| l.starts_with("[hv cpu") && l.contains(needle))
    };
    match a.expect {
        Expect::Taken => {
            assert!(
                !bus_error && out.iter().any(|l| l.trim() == "rc=0"),
                "{}: {out:?}",
                a.what
            );
            assert!(
                !hv_said("answered with an external abort"),
                "{}: hv refused it:\n{}",
                a.what,
                s.tail(20)
            );
        }
        Expect::Stray(ipa) => {
            assert!(bus_error, "{}: {out:?}", a.what);
            let report = format!("write to IPA {ipa:#x} outside its sandbox");
            assert!(
                hv_said(&report),
                "{}: no `{report}`:\n{}",
                a.what,
                s.tail(20)
            );
        }
        Expect::Refused(ipa, why) => {
            assert!(bus_error, "{}: {out:?}", a.what);
            let report = format!("write to IPA {ipa:#x} refused by {why}");
            assert!(
                hv_said(&report),
                "{}: no `{report}`:\n{}",
                a.what,
                s.tail(20)
            );
        }
    }
    probe.moved_on(s, &out, &a.what);
    hv_answers(s);
}

/// The lines and CPUs the attacks aim at, from the board file.
struct Targets {
    v3: bool,
    /// The RT partition's SPIs (its devices', its doorbell).
    rt_spis: Vec<u32>,
    /// SPIs that are hv's physically but Linux's virtual lines (its console UART, the
    /// doorbell to Linux).
    hv_spis: Vec<u32>,
    rt_cpus: Vec<u32>,
    /// Every INTID Linux's own shell needs or owns (banked lines, its SPIs, its virtual
    /// console and doorbell): the storm leaves them alone.
    linux_intids: Vec<u32>,
}

impl Targets {
    /// Frames the storm strays into, one write in eight (first address, size): on GICv3
    /// the RT CPUs' redistributors, on GICv2 hv's own virtualization control interface
    /// (GICH, QEMU virt's 0x0803_0000: its list registers). Neither is Linux's.
    fn foreign_frames(&self) -> (u64, u64) {
        if self.v3 {
            let first = self.rt_cpus.iter().min().unwrap();
            (
                GICR + u64::from(*first) * GICR_FRAME,
                GICR_FRAME * self.rt_cpus.len() as u64,
            )
        } else {
            (GICH, 0x1000)
        }
    }

    fn of(config: &Config) -> Self {
        let rt = config.partitions.iter().find(|p| p.name == "rt").unwrap();
        let linux = config
            .partitions
            .iter()
            .find(|p| p.name == "linux")
            .unwrap();
        let doorbells = config
            .channel
            .as_ref()
            .and_then(|c| c.doorbells)
            .expect("the board names doorbells");
        let console = config
            .board
            .devices
            .iter()
            .find(|d| d.name == config.hv.console)
            .expect("hv's console is a board device");
        let mut rt_spis = rt.irqs.clone();
        rt_spis.push(doorbells.to_rt);
        let hv_spis = vec![console.irqs[0], doorbells.to_linux];
        let mut linux_intids: Vec<u32> = (0..32).collect();
        linux_intids.extend(&linux.irqs);
        linux_intids.extend(&hv_spis);
        Self {
            v3: config.board.gic == GicVersion::V3,
            rt_spis,
            hv_spis,
            rt_cpus: rt.cpus.clone(),
            linux_intids,
        }
    }
}

/// One write per distributor register class for SPI `i` (`restore`: put it back).
fn spi_classes(t: &Targets, i: u32, owner: &str, restore: bool) -> Vec<Attack> {
    let word = u64::from(i / 32) * 4;
    let bit = 1u64 << (i % 32);
    let taken = Expect::Taken;
    let mut out = Vec::new();
    // Set/clear pairs: with `restore`, each is followed by its opposite.
    for (name, set, clear) in [
        ("enable", 0x100, 0x180),
        ("pending", 0x200, 0x280),
        ("active", 0x300, 0x380),
    ] {
        let (s, c) = (GICD + set + word, GICD + clear + word);
        if restore {
            // Clear first for enable (Linux has it enabled), set first otherwise.
            let cmd = if name == "enable" {
                format!("{}; {}", poke(c, 32, bit), poke(s, 32, bit))
            } else {
                format!("{}; {}", poke(s, 32, bit), poke(c, 32, bit))
            };
            out.push(attack(
                format!("{owner} SPI {i}: {name} set/clear"),
                cmd,
                taken,
            ));
        } else {
            for (op, addr) in [("set", s), ("clear", c)] {
                out.push(attack(
                    format!("{owner} SPI {i}: {name} {op}"),
                    poke(addr, 32, bit),
                    taken,
                ));
            }
        }
    }
    let w = |addr: u64, width: u32, value: u64| {
        if restore {
            poke_restore(addr, width, value)
        } else {
            poke(addr, width, value)
        }
    };
    out.push(attack(
        format!("{owner} SPI {i}: priority"),
        w(GICD + 0x400 + u64::from(i), 8, 0xf0),
        taken,
    ));
    if t.v3 {
        // IROUTER: to Linux's vCPU 1 (Aff0 = 1), then "any CPU" (IRM).
        for value in [1u64, 1 << 31] {
            out.push(attack(
                format!("{owner} SPI {i}: IROUTER {value:#x}"),
                w(GICD + 0x6000 + 8 * u64::from(i), 64, value),
                taken,
            ));
        }
    } else {
        // ITARGETSR: every CPU interface (2-7 are not Linux's), then Linux's CPU 1.
        for value in [0xffu64, 0x02] {
            out.push(attack(
                format!("{owner} SPI {i}: ITARGETSR {value:#x}"),
                w(GICD + 0x800 + u64::from(i), 8, value),
                taken,
            ));
        }
    }
    let cfg = GICD + 0xc00 + u64::from(i / 16) * 4;
    let edge = 0b10u64 << (2 * (i % 16));
    let config_cmd = if restore {
        format!(
            "o=$(devmem {cfg:#x} 32); devmem {cfg:#x} 32 $((o ^ {edge:#x})); devmem {cfg:#x} 32 $o"
        )
    } else {
        poke(cfg, 32, edge)
    };
    out.push(attack(
        format!("{owner} SPI {i}: config"),
        config_cmd,
        taken,
    ));
    out.push(attack(
        format!("{owner} SPI {i}: group 0"),
        poke(GICD + 0x80 + word, 32, 0),
        taken,
    ));
    out
}

/// hv's banked lines in the frame at `base` (GICv2: the distributor's banked registers;
/// GICv3: one of Linux's own SGI_base frames): its PPIs are invisible to Linux (dropped),
/// its kick SGI 0 number is Linux's virtual SGI 0 as well (Linux's reschedule IPI), so
/// those writes are undone in the same command.
fn hv_banked(base: u64, frame: &str) -> Vec<Attack> {
    let ppis = HV_PPIS.iter().fold(0u64, |m, i| m | 1 << i);
    let sgi = 1u64 << KICK_SGI;
    let taken = Expect::Taken;
    let mut out = Vec::new();
    for (name, offset) in [
        ("enable set", 0x100),
        ("enable clear", 0x180),
        ("pending set", 0x200),
        ("pending clear", 0x280),
        ("active set", 0x300),
        ("active clear", 0x380),
    ] {
        out.push(attack(
            format!("{frame}: hv's PPIs {HV_PPIS:?} {name}"),
            poke(base + offset, 32, ppis),
            taken,
        ));
    }
    for ppi in HV_PPIS {
        out.push(attack(
            format!("{frame}: hv's PPI {ppi} priority"),
            poke(base + 0x400 + u64::from(ppi), 8, 0xff),
            taken,
        ));
    }
    out.push(attack(
        format!("{frame}: hv's PPIs config"),
        poke(
            base + 0xc04,
            32,
            HV_PPIS.iter().fold(0, |m, i| m | 0b10 << (2 * (i - 16))),
        ),
        taken,
    ));
    out.push(attack(
        format!("{frame}: hv's PPIs group 0"),
        poke(base + 0x80, 32, 0),
        taken,
    ));
    for (name, first, then) in [
        ("enable clear/set", 0x180, 0x100),
        ("active set/clear", 0x300, 0x380),
        ("pending set/clear", 0x200, 0x280),
    ] {
        out.push(attack(
            format!("{frame}: SGI {KICK_SGI} {name}"),
            format!(
                "{}; {}",
                poke(base + first, 32, sgi),
                poke(base + then, 32, sgi)
            ),
            taken,
        ));
    }
    out.push(attack(
        format!("{frame}: SGI {KICK_SGI} priority 0xff"),
        poke_restore(base + 0x400 + u64::from(KICK_SGI), 8, 0xff),
        taken,
    ));
    out
}

/// Every write of the register-class part, in order.
fn register_attacks(t: &Targets) -> Vec<Attack> {
    let mut out = Vec::new();
    for &i in &t.rt_spis {
        out.extend(spi_classes(t, i, "RT's", false));
    }
    for &i in &t.hv_spis {
        out.extend(spi_classes(t, i, "hv's", true));
    }
    if t.v3 {
        for vcpu in 0..2u64 {
            out.extend(hv_banked(
                GICR + vcpu * GICR_FRAME + SGI_BASE,
                &format!("Linux's redistributor {vcpu}"),
            ));
        }
        // GICD_SGIR does not exist with affinity routing: reserved, write-ignored.
        out.push(attack(
            "GICD_SGIR (reserved on GICv3)",
            poke(GICD + 0xf00, 32, 0x00fc_0000),
            Expect::Taken,
        ));
        // The RT CPUs' frames are not in Linux's redistributor region: each access is a
        // stray one. The first RT CPU gets every class, the second two (hv's report
        // budget per boot is 16, see hv_core::fault_reports).
        for (n, &cpu) in t.rt_cpus.iter().enumerate() {
            let rd = GICR + u64::from(cpu) * GICR_FRAME;
            let sgi = rd + SGI_BASE;
            let all = [
                ("GICR_CTLR", rd, 0u64),
                ("GICR_WAKER ProcessorSleep", rd + 0x14, 0b10),
                ("ICENABLER0", sgi + 0x180, 0xffff_ffff),
                ("ISPENDR0", sgi + 0x200, 0xffff_ffff),
                ("ICPENDR0", sgi + 0x280, 0xffff_ffff),
                ("ISACTIVER0", sgi + 0x300, 0xffff_ffff),
                ("ICACTIVER0", sgi + 0x380, 0xffff_ffff),
                ("IPRIORITYR6 (virtual timer)", sgi + 0x418, 0xffff_ffff),
                ("ICFGR1", sgi + 0xc04, 0xffff_ffff),
                ("IGROUPR0", sgi + 0x80, 0),
            ];
            let classes: &[_] = if n == 0 { &all } else { &all[1..3] };
            for &(name, addr, value) in classes {
                out.push(attack(
                    format!("RT CPU {cpu}'s redistributor: {name}"),
                    poke(addr, 32, value),
                    Expect::Stray(addr),
                ));
            }
        }
        let addr = GICR + 0x100 + SGI_BASE;
        out.push(attack(
            "Linux's redistributor 0: a 16-bit write",
            poke(addr, 16, 0),
            Expect::Refused(
                addr,
                "the redistributors: offset 0x10100: Half access not supported",
            ),
        ));
    } else {
        out.extend(hv_banked(GICD, "the distributor's banked registers"));
        // SGIs to CPU interfaces 2-7 (not Linux's: dropped), hv's kick SGI and another.
        for sgi in [KICK_SGI, 1] {
            out.push(attack(
                format!("GICD_SGIR: SGI {sgi} to CPUs 2-7"),
                poke(GICD + 0xf00, 32, 0x00fc_0000 | u64::from(sgi)),
                Expect::Taken,
            ));
        }
        // hv's GICH (its list registers, its virtual CPU interface control) and hv's
        // physical CPU interface (Linux's GICC is the GICV frame): not Linux's, stray.
        for (name, addr, value) in [
            ("GICH_HCR", GICH, 0u64),
            ("GICH_LR0", GICH + 0x100, 0xffff_ffff),
            ("GICC_CTLR (physical)", GICC, 0),
            ("GICC_PMR (physical)", GICC + 0x4, 0),
        ] {
            out.push(attack(name, poke(addr, 32, value), Expect::Stray(addr)));
        }
        // GICD_SPENDSGIR / CPENDSGIR: reserved in hv's model.
        for offset in [0xf10u64, 0xf20] {
            out.push(attack(
                format!("GICD {offset:#x} (SGI pending by source)"),
                poke(GICD + offset, 32, 0xffff_ffff),
                Expect::Taken,
            ));
        }
    }
    let addr = GICD + 0x104;
    out.push(attack(
        "the distributor: a 16-bit write",
        poke(addr, 16, 0xffff),
        Expect::Refused(
            addr,
            "the distributor: offset 0x104: Half access not supported",
        ),
    ));
    out
}

/// `case` arms (`N|M) VAR=MASK;;`) giving, per register word or byte group, the bits
/// that touch Linux's own lines.
fn case_arms(var: &str, masks: &std::collections::BTreeMap<u32, u64>) -> String {
    masks
        .iter()
        .filter(|(_, &m)| m != 0)
        .map(|(k, m)| format!("{k}) {var}={m:#x};;"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The storm as shell commands (each under busybox ash's 1024-byte line: the last runs
/// it): `writes` pseudo-random writes (a 31-bit LCG in ash arithmetic from `seed`, the
/// same writes every run) at random 32-bit-aligned offsets of the distributor (and one
/// in eight in [`Targets::foreign_frames`]), random values; the last prints `storm: N
/// writes, M refused`.
///
/// Left alone, so Linux's shell keeps answering: GICD_CTLR (off, Linux takes no
/// interrupt at all) and every bit or field of Linux's own lines (its SGIs, whose IPIs
/// and CPU-stop it acts on, its timer PPI, its console UART's SPI its shell reads
/// through, its device's and doorbell's SPIs): set/clear bits of those lines are
/// masked, their priority, target, config and route fields are written back as read,
/// and SGIs are sent only to CPU interfaces 2-7. Everything else is fair game, RT's and hv's lines among
/// it.
fn storm_script(t: &Targets, writes: u32, seed: u32) -> Vec<String> {
    use std::collections::BTreeMap;
    let mut words = BTreeMap::new();
    let mut bytes = BTreeMap::new();
    let mut config = BTreeMap::new();
    for &i in &t.linux_intids {
        *words.entry(i / 32).or_insert(0u64) |= 1 << (i % 32);
        *bytes.entry(i / 4).or_insert(0u64) |= 0xff << (8 * (i % 4));
        *config.entry(i / 16).or_insert(0u64) |= 0b11 << (2 * (i % 16));
    }
    let routes: Vec<String> = t
        .linux_intids
        .iter()
        .filter(|&&i| i >= 32)
        .map(u32::to_string)
        .collect();
    // Per register kind, `m` = Linux's bits in the register at offset $o: by word (set/
    // clear and group registers), by group of four lines (priority, targets), by group
    // of 16 (config), by line (IROUTER).
    let mut out = vec![
        "r() { x=$(((x * 1103515245 + 12345) % 2147483648)); }".to_string(),
        format!(
            "mw() {{ case $(((o & 0x7f) / 4)) in {} esac; }}",
            case_arms("m", &words)
        ),
        format!(
            "mb() {{ case $(((o & 0x3ff) / 4)) in {} esac; }}",
            case_arms("m", &bytes)
        ),
        format!(
            "mc() {{ case $(((o - 0xc00) / 4)) in {} esac; }}",
            case_arms("m", &config)
        ),
        format!(
            "mr() {{ case $(((o - 0x6000) / 8)) in {}) m=0xffffffff;; esac; }}",
            routes.join("|")
        ),
        // k=1: a register of fields (priority, targets, config, route), whose Linux fields
        // the write keeps as they are (a 0 would change them); 0 in a set/clear bit is a
        // no-op, so there the mask alone does.
        "mk() { m=0; k=0; \
         if [ $o -ge 128 ] && [ $o -lt 1024 ]; then mw; \
         elif [ $o -ge 1024 ] && [ $o -lt 3072 ]; then mb; k=1; \
         elif [ $o -ge 3072 ] && [ $o -lt 3328 ]; then mc; k=1; \
         elif [ $o -eq 3840 ]; then m=0x3030000; \
         elif [ $o -ge 24576 ] && [ $o -lt 32768 ]; then mr; k=1; fi; }"
            .to_string(),
    ];
    let gicd_offset = if t.v3 {
        // Half the writes among the shared registers, half among the IROUTERs.
        "r; if [ $((x % 2)) -eq 0 ]; then o=$((x % 0xffc + 4 & ~3)); else o=$((0x6000 + x % 0x2000 & ~3)); fi"
    } else {
        "r; o=$((x % 0xffc + 4 & ~3))"
    };
    let (first, size) = t.foreign_frames();
    let foreign = format!(
        "r; if [ $((x % 8)) -eq 0 ]; then r; a=$(({first:#x} + x % {size:#x} & ~3)); m=0; fi; "
    );
    out.push(format!(
        "x={seed}; n=0; bad=0; while [ $n -lt {writes} ]; do {gicd_offset}; mk; \
         a=$(({GICD:#x} + o)); {foreign}r; v=$(((x << 1 ^ x >> 15) & 0xffffffff & ~m)); \
         if [ $k -eq 1 ] && [ $((m)) -ne 0 ]; then v=$((v | ($(devmem $a 32) & m))); fi; \
         devmem $a 32 $v || bad=$((bad + 1)); n=$((n + 1)); done; echo storm: $n writes, $bad refused"
    ));
    for line in &out {
        assert!(
            line.len() < 900,
            "storm line of {} bytes: {line}",
            line.len()
        );
    }
    out
}

/// Runs the storm's commands; returns the last one's output.
fn run_storm(s: &mut Session, t: &Targets, writes: u32) -> Vec<String> {
    let mut out = Vec::new();
    for line in storm_script(t, writes, STORM_SEED) {
        out = s.shell(&line, Duration::from_secs(900)).unwrap();
    }
    out
}

/// hv's `refused` counters summed over every CPU, from `rtctl status`.
fn refused_total(s: &mut Session) -> u64 {
    let status = s.shell("rtctl status", COMMAND).unwrap();
    let cpus: Vec<&String> = status.iter().filter(|l| l.starts_with("hv cpu ")).collect();
    assert!(!cpus.is_empty(), "{status:?}");
    cpus.iter()
        .map(|l| {
            let at = l.find(" refused=").unwrap_or_else(|| panic!("{l}"));
            l[at + 9..]
                .split(' ')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{l}"))
        })
        .sum()
}

/// `rtctl ring` reaches the RT partition's doorbell handler exactly once more: its line
/// is neither disabled, held active nor left pending by Linux's writes.
fn doorbell_rings_once(s: &mut Session, taken_before: u64) -> u64 {
    let from = s.line_count();
    let rang = s.shell("rtctl ring", COMMAND).unwrap();
    assert!(
        rang.first()
            .is_some_and(|l| l.starts_with("doorbell: rang RT (at ")),
        "{rang:?}"
    );
    let taken = taken_before + 1;
    s.wait_line(
        from,
        &format!("doorbell: rung by Linux, {taken} taken"),
        COMMAND,
    )
    .unwrap_or_else(|e| panic!("the RT partition's doorbell: {e}"));
    taken
}

fn boot_hostile<'a>(config: &'a Config, image: &'a Path) -> Boot<'a> {
    let mut b = Boot::new(config, image);
    // The probe runs for the whole test; its periodic report says what it missed so far.
    latency_probe(&mut b, 0);
    b.bootargs.push("linux.iomem=relaxed".to_string());
    b
}

fn hostile_linux(name: &str) {
    let (config, image) = board(name);
    let t = Targets::of(&config);
    let wake = WakeCount::new(&config);
    let alone = wake.alone(&config, &image);
    // The whole hostile run under the plugin (it slows QEMU little: it counts only the
    // RT CPUs' instructions and marks).
    let insns = xtask::target_dir().join(format!("vcpu-insns-hostile-{name}.txt"));
    let size = || std::fs::metadata(&insns).map_or(0, |m| m.len() as usize);
    let mut b = boot_hostile(&config, &image);
    b.plugin = Some(wake.argument(&insns));
    let mut s = linux_session(&b);
    let mut probe = Probe {
        periods: vec![0, 0],
    };
    probe.check(&mut s, "Linux's boot");
    let attacks_from = size();

    // Every register class, one write a command.
    let attacks = register_attacks(&t);
    for a in &attacks {
        run_attack(&mut s, &mut probe, a);
    }
    println!("{name}: {} register writes", attacks.len());
    doorbell_rings_once(&mut s, 0);

    // Reboots in a row, the probe running throughout.
    for boot in 2..=REBOOTS + 1 {
        let from = s.line_count();
        s.send("reboot\n").unwrap();
        let restarted = s
            .wait_line(
                from,
                &format!("partition `linux` restarted (boot {boot})"),
                bulkhead_tests::LINUX_TIMEOUT,
            )
            .unwrap_or_else(|e| panic!("reboot to boot {boot}: {e}"));
        s.wait_line(
            restarted,
            xtask::initramfs::READY_PREFIX,
            bulkhead_tests::LINUX_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("boot {boot}: {e}"));
        s.wait_prompt("# ", COMMAND).unwrap();
        hv_answers(&mut s);
        probe.check(&mut s, &format!("reboot to boot {boot}"));
    }
    assert!(
        !s.lines_from(0)
            .iter()
            .any(|l| l.contains("partition `rt` restarted")),
        "the RT partition was not restarted"
    );

    // Stray writes: hv's image, the RT partition's RAM, unassigned space.
    let rt = config.partitions.iter().find(|p| p.name == "rt").unwrap();
    for (what, addr) in [
        ("hv", config.hv.ram.base + 0x8_0000),
        ("RT", rt.ram[0].base + 0x1000),
        ("unassigned", 0x0c00_0000),
    ] {
        let a = attack(
            format!("{what} memory"),
            poke(addr, 32, 0xdead_beef),
            Expect::Stray(addr),
        );
        run_attack(&mut s, &mut probe, &a);
    }

    // CPU hotplug: Linux takes its CPU 1 down (PSCI CPU_OFF to hv) and up again (CPU_ON).
    for (online, expect) in [(0, "0"), (1, "0-1")] {
        let out = s
            .shell(
                &format!(
                    "echo {online} > /sys/devices/system/cpu/cpu1/online; \
                     cat /sys/devices/system/cpu/online"
                ),
                COMMAND,
            )
            .unwrap();
        // Kernel messages may come between (Linux's own "psci: CPU1 killed").
        assert_eq!(out.last().map(String::as_str), Some(expect), "{out:?}");
        hv_answers(&mut s);
        probe.check(&mut s, &format!("CPU 1 online={online}"));
    }

    // The storm, then hv's count of what it refused.
    let refused_before = refused_total(&mut s);
    let from = s.line_count();
    let out = run_storm(&mut s, &t, STORM);
    let summary = out
        .iter()
        .find(|l| l.starts_with("storm: "))
        .unwrap_or_else(|| panic!("the storm did not finish: {out:?}"));
    assert!(
        summary.starts_with(&format!("storm: {STORM} writes, ")),
        "{summary}"
    );
    let bad: u64 = summary
        .split(", ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    println!("{name}: {summary}");
    hv_answers(&mut s);
    probe.check(&mut s, "the storm");
    let refused = refused_total(&mut s) - refused_before;
    assert_eq!(
        refused, bad,
        "hv counted {refused} refused accesses, the storm saw {bad} bus errors"
    );
    // One in eight writes strays out of Linux's frames: refused, reported (rate-limited).
    assert!(bad > 0, "{summary}");
    assert!(
        s.lines_from(from)
            .iter()
            .any(|l| l.starts_with("[hv cpu") && l.contains("outside its sandbox")),
        "hv reports the storm's stray writes:\n{}",
        s.tail(20)
    );
    // After the storm the RT partition's doorbell still rings once per ring (its count
    // was restarted by nothing: the RT partition kept running).
    doorbell_rings_once(&mut s, 1);

    // A kernel panic: Linux stops for good; hv and the RT partition do not notice.
    let from = s.line_count();
    s.send("echo c > /proc/sysrq-trigger\n").unwrap();
    s.wait_line(from, "Kernel panic", COMMAND)
        .unwrap_or_else(|e| panic!("no panic: {e}"));
    hv_answers(&mut s);
    let panicked = s.line_count();

    // The probe's own verdict so far (its report every 1000 periods is cumulative): the
    // next one after the panic covers the whole run.
    for vcpu in 0..2 {
        let marker = format!("latency vCPU {vcpu}: ");
        let at = (panicked..)
            .find_map(|from| {
                let at = s
                    .wait_line(from, &marker, COMMAND)
                    .unwrap_or_else(|e| panic!("RT vCPU {vcpu} stopped reporting: {e}"));
                s.lines_from(at)[0]
                    .contains(" periods of 1000 us: ")
                    .then_some(at)
            })
            .unwrap();
        let summary = &s.lines_from(at)[0];
        assert!(summary.ends_with("missed 0"), "vCPU {vcpu}: {summary}");
        println!("{name}: {summary}");
    }
    let all = s.lines_from(0);
    assert!(
        !all.iter()
            .any(|l| l.contains("FATAL") || l.contains("EL2 exception")),
        "hv stayed up:\n{}",
        s.tail(40)
    );
    // The RT CPUs' wake-up path, from the first attack to after the panic.
    wake.check(name, &insns, (attacks_from, size()), &alone);
}

#[test]
fn virt_hostile_linux_changes_nothing_for_hv_and_the_rt_probe() {
    hostile_linux("virt");
}

#[test]
fn virt_gicv2_hostile_linux_changes_nothing_for_hv_and_the_rt_probe() {
    hostile_linux("virt-gicv2");
}

/// The vcpu-insn plugin counting the RT CPUs' own instructions (`tools/vcpu-insn-plugin`).
struct WakeCount {
    plugin: std::path::PathBuf,
    points: rt_marks::Points,
    cpus: Vec<u32>,
}

impl WakeCount {
    fn new(config: &Config) -> Self {
        Self {
            plugin: vcpu_insns::build_plugin().unwrap_or_else(|e| panic!("{e}")),
            points: rt_marks::points(config).unwrap_or_else(|e| panic!("{e}")),
            cpus: rt_marks::rt_cpus(config),
        }
    }

    /// QEMU's `-plugin` argument, the report going to `out`.
    fn argument(&self, out: &Path) -> String {
        Plan {
            plugin: &self.plugin,
            out,
            cpus: &self.cpus,
            code: &self.points.code,
            marks: &self.points.marks,
            whoami: "TPIDR_EL2",
            rank: false,
        }
        .argument()
    }

    /// Each RT CPU's wake-up path parts with the RT side alone, with the hostile run's
    /// probe settings: the same every period (the first aside, the probe's first sleep).
    fn alone(&self, config: &Config, image: &Path) -> Vec<WakeParts> {
        let out = xtask::target_dir().join(format!("vcpu-insns-hostile-{}-alone.txt", config.name));
        let mut b = Boot::new(config, image);
        latency_probe(&mut b, 200);
        b.bootargs
            .extend([qemu::SMOKE_ARG.to_string(), qemu::only_rt(config)]);
        b.plugin = Some(self.argument(&out));
        let log = bulkhead_tests::boot(&b);
        qemu::judge_smoke(config, &log).unwrap_or_else(|e| panic!("{e}"));
        rt_marks::check_placement(&self.points, &log.lines).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&out).unwrap();
        self.cpus
            .iter()
            .map(|&cpu| {
                let parts = WakeParts::of(&text, cpu);
                let one = |paths: &[u64]| {
                    // The first period aside (the probe's first sleep: guest-rt's part
                    // is 4 instructions longer).
                    let paths = &paths[1.min(paths.len())..];
                    assert!(
                        !paths.is_empty() && paths.iter().all(|&p| p == paths[0]),
                        "CPU {cpu} alone: {paths:?}"
                    );
                    paths[0]
                };
                WakeParts {
                    hv: vec![one(&parts.hv)],
                    guest: vec![one(&parts.guest)],
                }
            })
            .collect()
    }

    /// Under the attacks, each RT CPU's wake-up path matches the RT side alone's
    /// (`alone`). hv's part (its IRQ vector to guest-rt's) exactly: instruction counts are
    /// deterministic under -icount and nothing Linux does reaches it (no trap on the RT
    /// CPU, no lock it takes, no list register of its); one instruction more would mean
    /// Linux's writes reach it. Not even Linux's restarts: the statistics copy each asks
    /// every CPU for (`hv_core::cpu_stats`) waits, on an RT CPU, for its next synchronous
    /// trap (guest-rt's console hypercalls), so no wake-up pays for it.
    /// guest-rt's part (its vector to the probe running) within
    /// [`GUEST_SLACK`]: its two vCPUs share its kernel, and where they meet moves with
    /// Linux's activity under QEMU's shared virtual clock (Linux's input arrives in wall
    /// time), so a wake-up now and then takes another branch or a lock retry there.
    /// The window is the report from byte `from` to `to`.
    fn check(&self, name: &str, out: &Path, (from, to): (usize, usize), alone: &[WakeParts]) {
        let text = std::fs::read(out).unwrap();
        // Whole lines only.
        let window = &text[from.min(text.len())..to.min(text.len())];
        let start = window.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
        let end = window
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let window = String::from_utf8_lossy(&window[start..end.max(start)]);
        for (&cpu, alone) in self.cpus.iter().zip(alone) {
            let (hv_alone, guest_alone) = (alone.hv[0], alone.guest[0]);
            let parts = WakeParts::of(&window, cpu);
            // The window is cut where the report happened to end, so its first wake-up
            // may be cut too: it is left out.
            let (hv, guest) = (
                &parts.hv[1.min(parts.hv.len())..],
                &parts.guest[1.min(parts.guest.len())..],
            );
            assert!(
                hv.len() > 1000,
                "CPU {cpu}: {} wake-ups in the window",
                hv.len()
            );
            let hv_other: Vec<(usize, u64)> = hv
                .iter()
                .enumerate()
                .filter(|&(_, &p)| p != hv_alone)
                .map(|(i, &p)| (i + 1, p))
                .collect();
            let guest_other: Vec<u64> = guest
                .iter()
                .copied()
                .filter(|&p| p != guest_alone)
                .collect();
            println!(
                "{name}: CPU {cpu}: wake-up alone: hv {hv_alone} + guest-rt {guest_alone} \
                 instructions; under attack {} wake-ups: hv's part other in (index, length) \
                 {hv_other:?}, guest-rt's other in {} of {} ({guest_other:?})",
                hv.len(),
                guest_other.len(),
                guest.len()
            );
            assert!(
                hv_other.is_empty(),
                "CPU {cpu}: hv's part of the wake-up path was {hv_alone} instructions alone, \
                 under attack also (index, length) {hv_other:?}"
            );
            assert!(
                guest_other
                    .iter()
                    .all(|&p| p.abs_diff(guest_alone) <= GUEST_SLACK),
                "CPU {cpu}: guest-rt's part of the wake-up path was {guest_alone} instructions \
                 alone, under attack also {guest_other:?}"
            );
        }
    }
}

/// Instructions guest-rt's part of a wake-up may differ by (see [`WakeCount::check`]):
/// a few of its branches or one lock retry (4 instructions a turn), not a path of its own.
const GUEST_SLACK: u64 = 16;

/// An RT CPU's wake-up paths in two parts: hv's (its IRQ vector to guest-rt's) and
/// guest-rt's (its EL1 vector to the probe running).
struct WakeParts {
    hv: Vec<u64>,
    guest: Vec<u64>,
}

impl WakeParts {
    /// As [`WAKE`] counts a wake-up (from its first start mark since the last wake-up or
    /// idle entry), split where guest-rt's vector is reached.
    fn of(text: &str, cpu: u32) -> Self {
        let report = vcpu_insns::parse(text);
        let (mut hv, mut guest) = (Vec::new(), Vec::new());
        let (mut first, mut vector): (Option<u64>, Option<u64>) = (None, None);
        for h in report.hits.iter().filter(|h| h.cpu == cpu) {
            let mark = h.mark.as_str();
            if mark == WAKE.end {
                if let (Some(first), Some(vector)) = (first, vector) {
                    hv.push(vector - first);
                    guest.push(h.count - vector);
                }
                (first, vector) = (None, None);
            } else if WAKE.resets.contains(&mark) {
                (first, vector) = (None, None);
            } else if WAKE.starts.contains(&mark) {
                first = first.or(Some(h.count));
                if rt_marks::RT_IRQ.contains(&mark) {
                    vector = vector.or(Some(h.count));
                }
            }
        }
        Self { hv, guest }
    }
}

/// The storm's writes, as a host shell computes them (a `devmem` that prints instead of
/// writing): as many as asked, the same every run, and none touching GICD_CTLR, an SGI
/// to Linux's CPUs or a bit or field of Linux's own lines.
#[test]
fn the_storm_leaves_linuxs_own_lines_alone() {
    /// What the stand-in `devmem` reads: Linux's fields must come back unchanged.
    const KEPT: u64 = 0x5a5a_5a5a;
    for name in ["virt", "virt-gicv2"] {
        let config = xtask::boards::load(name).unwrap_or_else(|e| panic!("{e}"));
        let t = Targets::of(&config);
        let script = format!(
            "devmem() {{ if [ $# -eq 3 ]; then echo W $1 $3; else echo {KEPT:#x}; fi; }}\n{}",
            storm_script(&t, STORM, STORM_SEED).join("\n")
        );
        let run = || {
            let out = std::process::Command::new("sh")
                .args(["-c", &script])
                .output()
                .expect("sh runs");
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        let text = run();
        assert_eq!(text, run(), "{name}: the storm is reproducible");
        assert!(
            text.ends_with(&format!("storm: {STORM} writes, 0 refused\n")),
            "{text}"
        );
        let linux = |i: u64| t.linux_intids.contains(&(i as u32));
        let mut in_foreign = 0;
        for line in text.lines().filter(|l| l.starts_with("W ")) {
            let mut f = line[2..].split(' ').map(|n| {
                let n = n.trim_start_matches("0x");
                u64::from_str_radix(n, if line.contains("0x") { 16 } else { 10 }).unwrap()
            });
            let (addr, value) = (f.next().unwrap(), f.next().unwrap());
            assert!(value <= u64::from(u32::MAX), "{line}");
            if addr >= GICD + 0x1_0000 {
                in_foreign += 1;
                let (first, size) = t.foreign_frames();
                assert!((first..first + size).contains(&addr), "{name}: {line}");
                continue;
            }
            let o = addr - GICD;
            assert!(o.is_multiple_of(4) && o != 0, "{name}: {line}");
            let touches = match o {
                0x80..0x400 => (0..32).any(|b| value >> b & 1 == 1 && linux(o % 0x80 / 4 * 32 + b)),
                0x400..0xc00 => (0..4).any(|b| {
                    value >> (8 * b) & 0xff != KEPT >> (8 * b) & 0xff && linux(o % 0x400 + b)
                }),
                0xc00..0xd00 => (0..16).any(|k| {
                    value >> (2 * k) & 3 != KEPT >> (2 * k) & 3 && linux((o - 0xc00) * 4 + k)
                }),
                0xf00 => value & 0x0303_0000 != 0,
                // IROUTER<n> for n < 32 is reserved (RAZ/WI).
                0x6000..0x8000 => {
                    value != KEPT && (o - 0x6000) / 8 >= 32 && linux((o - 0x6000) / 8)
                }
                _ => false,
            };
            assert!(!touches, "{name}: {line} touches Linux's own lines");
        }
        assert_eq!(
            text.lines().filter(|l| l.starts_with("W ")).count(),
            STORM as usize
        );
        assert!(in_foreign > 0, "{name}: {in_foreign}");
    }
}
