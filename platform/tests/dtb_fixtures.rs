//! The DTB board model against real device trees (QEMU virt with GICv3 and GICv2, the
//! Raspberry Pi 4), edited copies of them (NOP tokens, patched properties) and trees built
//! here from scratch. See `tests/data/README.md` for where the fixtures come from.

use platform::check::check;
use platform::config::{Config, GicVersion, Region};
use platform::dtb::{strip_nops, BoardInfo, CpuEnable, DtbError, PsciConduit};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Fixtures

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}.dtb", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn parse(name: &str) -> BoardInfo {
    BoardInfo::parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn board_config(name: &str) -> Config {
    let path = format!("{}/boards/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    Config::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// A small flattened-device-tree reader/writer (Devicetree Specification v0.4, chapter 5),
// written for these tests so edited and synthetic trees can be fed to the parser.

const MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;
const HEADER_LEN: usize = 40;

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn set_be32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Header word `i` (0 = magic, 1 = totalsize, 2 = off_dt_struct, ...).
fn header(blob: &[u8], i: usize) -> usize {
    be32(blob, 4 * i) as usize
}

fn pad4(n: usize) -> usize {
    n.next_multiple_of(4)
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Begin(String),
    Prop(String, Vec<u8>),
    End,
    Nop,
}

/// A token and where its bytes are in the structure block.
struct Located {
    at: usize,
    len: usize,
    token: Token,
}

struct Tree {
    boot_cpuid: u32,
    reserved: Vec<(u64, u64)>,
    /// Everything before `FDT_END`.
    tokens: Vec<Token>,
}

fn structure(blob: &[u8]) -> &[u8] {
    &blob[header(blob, 2)..header(blob, 2) + header(blob, 9)]
}

fn strings(blob: &[u8]) -> &[u8] {
    &blob[header(blob, 3)..header(blob, 3) + header(blob, 8)]
}

fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).expect("NUL terminated");
    String::from_utf8(bytes[..end].to_vec()).expect("UTF-8")
}

/// Walks a well-formed blob's structure block.
fn locate(blob: &[u8]) -> Vec<Located> {
    assert_eq!(be32(blob, 0), MAGIC);
    let (st, names) = (structure(blob), strings(blob));
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let (len, token) = match be32(st, at) {
            BEGIN_NODE => {
                let name = cstr(&st[at + 4..]);
                (4 + pad4(name.len() + 1), Token::Begin(name))
            }
            PROP => {
                let len = be32(st, at + 4) as usize;
                let name = cstr(&names[be32(st, at + 8) as usize..]);
                let value = st[at + 12..at + 12 + len].to_vec();
                (12 + pad4(len), Token::Prop(name, value))
            }
            END_NODE => (4, Token::End),
            NOP => (4, Token::Nop),
            END => return out,
            other => panic!("token {other:#x} at {at:#x}"),
        };
        out.push(Located { at, len, token });
        at += len;
    }
}

fn decode(blob: &[u8]) -> Tree {
    let mut reserved = Vec::new();
    let mut at = header(blob, 4);
    loop {
        let addr = u64::from_be_bytes(blob[at..at + 8].try_into().unwrap());
        let size = u64::from_be_bytes(blob[at + 8..at + 16].try_into().unwrap());
        if addr == 0 && size == 0 {
            break;
        }
        reserved.push((addr, size));
        at += 16;
    }
    Tree {
        boot_cpuid: be32(blob, 28),
        reserved,
        tokens: locate(blob).into_iter().map(|l| l.token).collect(),
    }
}

/// Lays a tree out as header, a gap, reservation map, structure block, then strings.
fn encode(tree: &Tree) -> Vec<u8> {
    let mut names: Vec<u8> = Vec::new();
    let mut st: Vec<u8> = Vec::new();
    for token in &tree.tokens {
        match token {
            Token::Begin(name) => {
                st.extend(BEGIN_NODE.to_be_bytes());
                st.extend(name.as_bytes());
                st.resize(pad4(st.len() + 1), 0);
            }
            Token::Prop(name, value) => {
                let mut needle = name.as_bytes().to_vec();
                needle.push(0);
                let offset = match names.windows(needle.len()).position(|w| w == needle) {
                    Some(at) => at,
                    None => {
                        names.extend(&needle);
                        names.len() - needle.len()
                    }
                };
                st.extend(PROP.to_be_bytes());
                st.extend((value.len() as u32).to_be_bytes());
                st.extend((offset as u32).to_be_bytes());
                st.extend(value);
                st.resize(pad4(st.len()), 0);
            }
            Token::End => st.extend(END_NODE.to_be_bytes()),
            Token::Nop => st.extend(NOP.to_be_bytes()),
        }
    }
    st.extend(END.to_be_bytes());

    let rsv_at = HEADER_LEN + 8;
    let struct_at = rsv_at + 16 * (tree.reserved.len() + 1);
    let strings_at = struct_at + st.len();
    let total = strings_at + names.len();
    let mut blob = vec![0u8; struct_at];
    for (i, v) in [
        MAGIC as usize,
        total,
        struct_at,
        strings_at,
        rsv_at,
        17,
        16,
        tree.boot_cpuid as usize,
        names.len(),
        st.len(),
    ]
    .into_iter()
    .enumerate()
    {
        set_be32(&mut blob, 4 * i, v as u32);
    }
    for (i, (addr, size)) in tree.reserved.iter().enumerate() {
        let at = rsv_at + 16 * i;
        blob[at..at + 8].copy_from_slice(&addr.to_be_bytes());
        blob[at + 8..at + 16].copy_from_slice(&size.to_be_bytes());
    }
    blob.extend(st);
    blob.extend(names);
    assert_eq!(blob.len(), total);
    blob
}

/// Index of the token that opens the node at `path` ("/" is the root).
fn find_node(tokens: &[Token], path: &str) -> Option<usize> {
    let mut stack: Vec<&str> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Begin(name) => {
                stack.push(name);
                let here = if stack.len() == 1 {
                    String::from("/")
                } else {
                    stack[1..].iter().map(|n| format!("/{n}")).collect()
                };
                if here == path {
                    return Some(i);
                }
            }
            Token::End => {
                stack.pop();
            }
            _ => {}
        }
    }
    None
}

/// Index of property `name` of the node at `path`.
fn find_prop(tokens: &[Token], path: &str, name: &str) -> Option<usize> {
    let node = find_node(tokens, path)?;
    tokens[node + 1..]
        .iter()
        .take_while(|t| matches!(t, Token::Prop(..) | Token::Nop))
        .position(|t| matches!(t, Token::Prop(n, _) if n == name))
        .map(|i| node + 1 + i)
}

fn set_prop(tree: &mut Tree, path: &str, name: &str, value: Vec<u8>) {
    let i = find_prop(&tree.tokens, path, name)
        .unwrap_or_else(|| panic!("no property {name} in {path}"));
    tree.tokens[i] = Token::Prop(name.into(), value);
}

fn cells(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

fn string(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// A node with properties and children, as tokens.
fn node(name: &str, props: &[(&str, Vec<u8>)], children: &[Vec<Token>]) -> Vec<Token> {
    let mut out = vec![Token::Begin(name.into())];
    out.extend(
        props
            .iter()
            .map(|(n, v)| Token::Prop((*n).into(), v.clone())),
    );
    out.extend(children.iter().flatten().cloned());
    out.push(Token::End);
    out
}

/// Inserts `nops(i)` NOP tokens before token `i` of a fixture (and `nops(count)` before
/// `FDT_END`), keeping its header, reservation map and strings block byte for byte and
/// fixing the header's sizes and offsets.
fn inject_nops(blob: &[u8], nops: impl Fn(usize) -> usize) -> Vec<u8> {
    let (off_struct, off_strings) = (header(blob, 2), header(blob, 3));
    assert!(
        off_struct + header(blob, 9) <= off_strings,
        "strings after structure"
    );
    let tokens = locate(blob);
    let st = structure(blob);
    let mut new_st = Vec::new();
    for (i, l) in tokens.iter().enumerate() {
        for _ in 0..nops(i) {
            new_st.extend(NOP.to_be_bytes());
        }
        new_st.extend(&st[l.at..l.at + l.len]);
    }
    for _ in 0..nops(tokens.len()) {
        new_st.extend(NOP.to_be_bytes());
    }
    new_st.extend(END.to_be_bytes());

    let mut out = blob[..off_struct].to_vec();
    out.extend(&new_st);
    let new_strings_at = out.len();
    out.extend(strings(blob));
    let total = out.len();
    set_be32(&mut out, 4, total as u32);
    set_be32(&mut out, 12, new_strings_at as u32);
    set_be32(&mut out, 36, new_st.len() as u32);
    out
}

/// The Pi 4 DTB with the RAM the firmware would fill in: `reg` of `/memory@0` set to
/// `ranges` (address-cells 2, size-cells 1 at the Pi's root).
fn pi_with_memory(ranges: &[(u64, u32)]) -> Vec<u8> {
    let mut tree = decode(&fixture("rpi4-b"));
    let reg: Vec<u32> = ranges
        .iter()
        .flat_map(|&(base, size)| [(base >> 32) as u32, base as u32, size])
        .collect();
    set_prop(&mut tree, "/memory@0", "reg", cells(&reg));
    encode(&tree)
}

// ---------------------------------------------------------------------------------------
// QEMU virt

#[test]
fn virt_gicv3() {
    let b = parse("virt-gicv3");
    assert_eq!(b.compatible, ["linux,dummy-virt"]);
    assert_eq!(b.memory, [Region::new(0x4000_0000, 1 << 30)]);
    let mpidrs: Vec<u64> = b.cpus.iter().map(|c| c.mpidr).collect();
    assert_eq!(mpidrs, [0, 1, 2, 3]);
    assert!(b.cpus.iter().all(|c| c.enable == CpuEnable::Psci));
    assert_eq!(b.psci, Some(PsciConduit::Smc));
    let gic = b.gic.as_ref().expect("GIC");
    assert_eq!(gic.version, GicVersion::V3);
    assert_eq!(gic.gicd, Region::new(0x0800_0000, 0x1_0000));
    assert_eq!(gic.gicr, Some(Region::new(0x080a_0000, 0xf6_0000)));
    assert_eq!((gic.gicc, gic.gich, gic.gicv), (None, None, None));
    assert_eq!(b.uarts.len(), 1);
    let uart = b.uart_at(0x0900_0000).expect("PL011");
    assert_eq!((uart.size, uart.enabled), (0x1000, true));
    assert_eq!(uart.path, "/pl011@9000000");
    assert_eq!(b.timer_irqs, [29, 30, 27, 26]);
    assert_eq!(b.watchdog, None);
    assert_eq!(b.bootargs, None);
}

#[test]
fn virt_gicv2() {
    let b = parse("virt-gicv2");
    assert_eq!(b.memory, [Region::new(0x4000_0000, 0x4000_0000)]);
    assert_eq!(b.cpus.len(), 4);
    assert_eq!(b.psci, Some(PsciConduit::Smc));
    let gic = b.gic.as_ref().expect("GIC");
    assert_eq!(gic.version, GicVersion::V2);
    assert_eq!(gic.gicd.base, 0x0800_0000);
    assert_eq!(gic.gicc.map(|r| r.base), Some(0x0801_0000));
    assert_eq!(gic.gich.map(|r| r.base), Some(0x0803_0000));
    assert_eq!(gic.gicv.map(|r| r.base), Some(0x0804_0000));
    assert_eq!(gic.gicr, None);
    assert!(b.uart_at(0x0900_0000).is_some_and(|u| u.enabled));
    assert_eq!(b.timer_irqs, [29, 30, 27, 26]);
}

#[test]
fn cpu_index_masks_mpidr_non_affinity_bits() {
    let b = parse("virt-gicv3");
    // MPIDR_EL1 as read on CPU 2: RES1 bit 31 set, MT/U bits clear.
    assert_eq!(b.cpu_index(0x8000_0002), Some(2));
    assert_eq!(b.cpu_index(0x4000_0003), Some(3));
    assert_eq!(b.cpu_index(0), Some(0));
    assert_eq!(b.cpu_index(0x100), None);
    assert_eq!(b.cpu_index(4), None);
}

// ---------------------------------------------------------------------------------------
// Raspberry Pi 4

#[test]
fn pi4_without_memory_is_refused() {
    // The kernel package's DTB leaves RAM for the firmware to fill in.
    assert_eq!(
        BoardInfo::parse(&fixture("rpi4-b")),
        Err(DtbError::NoMemory)
    );
    assert_eq!(
        DtbError::NoMemory.to_string(),
        "the device tree lists no RAM"
    );
}

#[test]
fn pi4_with_memory() {
    let b = BoardInfo::parse(&pi_with_memory(&[(0, 0x3c00_0000)])).expect("Pi 4 with RAM");
    assert_eq!(b.memory, [Region::new(0, 0x3c00_0000)]);
    assert!(b.compatible.iter().any(|c| c == "raspberrypi,4-model-b"));
    assert!(b.compatible.iter().any(|c| c == "brcm,bcm2711"));
    assert!(b.model.contains("Raspberry Pi 4"), "{}", b.model);

    let release: Vec<CpuEnable> = b.cpus.iter().map(|c| c.enable.clone()).collect();
    let expected: Vec<CpuEnable> = [0xd8, 0xe0, 0xe8, 0xf0]
        .map(|release_addr| CpuEnable::SpinTable { release_addr })
        .into();
    assert_eq!(release, expected);
    assert_eq!(
        b.cpus.iter().map(|c| c.mpidr).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert_eq!(b.psci, None);

    // The GIC-400 sits behind /soc's third range (0x4000_0000 -> 0xff80_0000).
    let gic = b.gic.as_ref().expect("GIC-400");
    assert_eq!(gic.version, GicVersion::V2);
    assert_eq!(gic.gicd, Region::new(0xff84_1000, 0x1000));
    assert_eq!(gic.gicc, Some(Region::new(0xff84_2000, 0x2000)));
    assert_eq!(gic.gich, Some(Region::new(0xff84_4000, 0x2000)));
    assert_eq!(gic.gicv, Some(Region::new(0xff84_6000, 0x2000)));

    // uart0 (PL011) is on; uart2..5 share its driver but are disabled.
    let uart0 = b.uart_at(0xfe20_1000).expect("uart0");
    assert!(uart0.enabled);
    assert_eq!(uart0.size, 0x200);
    assert_eq!(uart0.path, "/soc/serial@7e201000");
    for base in [0xfe20_1400, 0xfe20_1600, 0xfe20_1800, 0xfe20_1a00] {
        let uart = b
            .uart_at(base)
            .unwrap_or_else(|| panic!("uart at {base:#x}"));
        assert!(!uart.enabled, "{} is enabled", uart.path);
    }
    assert_eq!(b.uarts.iter().filter(|u| u.enabled).count(), 1);

    assert_eq!(b.watchdog, Some(Region::new(0xfe10_0000, 0x114)));
    assert_eq!(b.timer_irqs, [29, 30, 27, 26]);
}

#[test]
fn pi4_with_two_ram_ranges() {
    // A 4 GiB Pi: the firmware writes both ranges, growing the property.
    let blob = pi_with_memory(&[(0, 0x3c00_0000), (0x4000_0000, 0xbc00_0000)]);
    let b = BoardInfo::parse(&blob).expect("Pi 4 with RAM");
    assert_eq!(
        b.memory,
        [
            Region::new(0, 0x3c00_0000),
            Region::new(0x4000_0000, 0xbc00_0000)
        ]
    );
}

#[test]
fn pi4_config_agrees_with_pi4_dtb() {
    let config = board_config("rpi4");
    let board = BoardInfo::parse(&pi_with_memory(&[(0, 0x3c00_0000)])).unwrap();
    assert_eq!(check(&config, &board), []);
    // And QEMU virt is not a Pi.
    let virt = parse("virt-gicv3");
    let mismatches = check(&config, &virt);
    assert!(!mismatches.is_empty());
}

#[test]
fn encode_decode_is_faithful() {
    // The test's own writer reproduces what the parser sees in every fixture.
    for name in ["virt-gicv3", "virt-gicv2"] {
        let blob = fixture(name);
        assert_eq!(
            BoardInfo::parse(&encode(&decode(&blob))),
            BoardInfo::parse(&blob)
        );
    }
    let blob = fixture("rpi4-b");
    let tree = decode(&blob);
    assert_eq!(
        tree.reserved.len(),
        1,
        "the Pi DTB reserves its spin table page"
    );
    let again = decode(&encode(&tree));
    assert_eq!(again.tokens, tree.tokens);
    assert_eq!(again.reserved, tree.reserved);
}

// ---------------------------------------------------------------------------------------
// FDT_NOP tokens

#[test]
fn fixtures_have_no_nops_and_strip_is_identity() {
    for name in ["virt-gicv3", "virt-gicv2", "rpi4-b"] {
        let blob = fixture(name);
        assert!(locate(&blob).iter().all(|l| l.token != Token::Nop));
        assert_eq!(strip_nops(&blob).as_deref(), Ok(&blob[..]), "{name}");
    }
}

/// How many NOP tokens go before token `i`.
type NopsBefore = fn(usize) -> usize;

#[test]
fn nops_everywhere_parse_like_the_original() {
    let patterns: [(&str, NopsBefore); 4] = [
        ("before every token", |_| 1),
        ("three before every third token", |i| {
            if i % 3 == 0 {
                3
            } else {
                0
            }
        }),
        ("before the root and before FDT_END only", |i| {
            usize::from(i == 0) * 2
        }),
        ("varying", |i| i % 5),
    ];
    let pi = pi_with_memory(&[(0, 0x3c00_0000)]);
    let fixtures = [
        ("virt-gicv3", fixture("virt-gicv3")),
        ("virt-gicv2", fixture("virt-gicv2")),
        ("rpi4-b", fixture("rpi4-b")),
        ("rpi4-b with RAM", pi),
    ];
    for (name, blob) in &fixtures {
        let expected = BoardInfo::parse(blob);
        for (what, nops) in patterns {
            let nopped = inject_nops(blob, nops);
            assert!(nopped.len() > blob.len() || what.contains("FDT_END"));
            let count = locate(&nopped)
                .iter()
                .filter(|l| l.token == Token::Nop)
                .count();
            assert!(count > 0, "{name}: {what}: no NOP injected");
            assert_eq!(BoardInfo::parse(&nopped), expected, "{name}: NOPs {what}");
            // Stripping restores the original layout byte for byte.
            assert_eq!(strip_nops(&nopped), strip_nops(blob), "{name}: NOPs {what}");
        }
    }
}

#[test]
fn nopped_out_property_is_gone() {
    // What libfdt's fdt_nop_property does in place, as QEMU raspi4b does to DTB nodes:
    // the property's words become NOP tokens, nothing moves.
    let mut blob = pi_with_memory(&[(0, 0x3c00_0000)]);
    let tree = decode(&blob);
    let status = find_prop(&tree.tokens, "/soc/serial@7e201400", "status").expect("status");
    let l = &locate(&blob)[status];
    let at = header(&blob, 2) + l.at;
    for word in 0..l.len / 4 {
        set_be32(&mut blob, at + 4 * word, NOP);
    }
    let b = BoardInfo::parse(&blob).expect("parses with NOPs in place");
    assert!(b.uart_at(0xfe20_1400).is_some_and(|u| u.enabled));
    assert!(b.uart_at(0xfe20_1600).is_some_and(|u| !u.enabled));
    assert!(b.uart_at(0xfe20_1000).is_some_and(|u| u.enabled));
}

#[test]
fn strip_nops_keeps_header_fields() {
    let blob = fixture("rpi4-b");
    let mut nopped = inject_nops(&blob, |_| 1);
    set_be32(&mut nopped, 28, 3); // boot_cpuid_phys
    let clean = strip_nops(&nopped).unwrap();
    assert_eq!(be32(&clean, 28), 3);
    assert_eq!(be32(&clean, 20), 17);
    assert_eq!(decode(&clean).reserved, decode(&blob).reserved);
    assert_eq!(header(&clean, 1), clean.len());
}

// ---------------------------------------------------------------------------------------
// Trees built from scratch

/// A minimal board: one PSCI CPU, RAM, a two-level bus in front of a PL011, a timer.
fn synthetic(extra_root_props: &[(&str, Vec<u8>)], extra: &[Vec<Token>]) -> Tree {
    let mut root_props = vec![
        ("#address-cells", cells(&[2])),
        ("#size-cells", cells(&[2])),
        ("compatible", string("test,board")),
        ("model", string("Test Board")),
    ];
    root_props.extend(extra_root_props.iter().cloned());
    let mut children = vec![
        node(
            "chosen",
            &[("bootargs", string("console=ttyAMA0 quiet"))],
            &[],
        ),
        node(
            "memory@80000000",
            &[
                ("device_type", string("memory")),
                ("reg", cells(&[0, 0x8000_0000, 0, 0x1000_0000])),
            ],
            &[],
        ),
        node(
            "cpus",
            &[
                ("#address-cells", cells(&[1])),
                ("#size-cells", cells(&[0])),
            ],
            &[node(
                "cpu@100",
                &[
                    ("device_type", string("cpu")),
                    ("reg", cells(&[0x100])),
                    ("enable-method", string("psci")),
                ],
                &[],
            )],
        ),
        node(
            "psci",
            &[
                ("compatible", string("arm,psci-1.0\0arm,psci-0.2")),
                ("method", string("hvc")),
            ],
            &[],
        ),
        node(
            "soc",
            &[
                ("compatible", string("simple-bus")),
                ("#address-cells", cells(&[1])),
                ("#size-cells", cells(&[1])),
                ("ranges", cells(&[0x7e00_0000, 0, 0xfe00_0000, 0x0180_0000])),
            ],
            &[node(
                "bus@7e200000",
                &[
                    ("#address-cells", cells(&[1])),
                    ("#size-cells", cells(&[1])),
                    ("ranges", cells(&[0, 0x7e20_0000, 0x1_0000])),
                ],
                &[node(
                    "serial@1000",
                    &[
                        ("compatible", string("arm,pl011\0arm,primecell")),
                        ("reg", cells(&[0x1000, 0x100])),
                        ("status", string("okay")),
                    ],
                    &[],
                )],
            )],
        ),
        node(
            "timer",
            &[
                ("compatible", string("arm,armv8-timer")),
                (
                    "interrupts",
                    cells(&[1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4]),
                ),
            ],
            &[],
        ),
    ];
    children.extend(extra.iter().cloned());
    Tree {
        boot_cpuid: 0,
        reserved: vec![(0x8000_0000, 0x1000)],
        tokens: node("", &root_props, &children),
    }
}

#[test]
fn synthetic_board() {
    let b = BoardInfo::parse(&encode(&synthetic(&[], &[]))).expect("synthetic board");
    assert_eq!(b.model, "Test Board");
    assert_eq!(b.compatible, ["test,board"]);
    assert_eq!(b.bootargs.as_deref(), Some("console=ttyAMA0 quiet"));
    assert_eq!(b.memory, [Region::new(0x8000_0000, 0x1000_0000)]);
    assert_eq!(b.cpus.len(), 1);
    assert_eq!(b.cpus[0].mpidr, 0x100);
    assert_eq!(b.cpu_index(0x8000_0100), Some(0));
    assert_eq!(b.psci, Some(PsciConduit::Hvc));
    assert_eq!(b.gic, None);
    // 0x1000 -> 0x7e20_1000 (bus) -> 0xfe20_1000 (soc).
    let uart = b.uart_at(0xfe20_1000).expect("translated twice");
    assert_eq!(uart.path, "/soc/bus@7e200000/serial@1000");
    assert_eq!((uart.size, uart.enabled), (0x100, true));
    assert_eq!(b.timer_irqs, [29, 30, 27, 26]);
}

#[test]
fn missing_cpus_or_memory() {
    let mut tree = synthetic(&[], &[]);
    let cpu = find_node(&tree.tokens, "/cpus/cpu@100").unwrap();
    tree.tokens[cpu + 1] = Token::Prop("device_type".into(), string("not-a-cpu"));
    assert_eq!(BoardInfo::parse(&encode(&tree)), Err(DtbError::NoCpus));

    let mut tree = synthetic(&[], &[]);
    set_prop(
        &mut tree,
        "/memory@80000000",
        "reg",
        cells(&[0, 0x8000_0000, 0, 0]),
    );
    assert_eq!(BoardInfo::parse(&encode(&tree)), Err(DtbError::NoMemory));
}

#[test]
fn identity_and_missing_ranges() {
    // `ranges;` maps child addresses one to one; so does (leniently) no `ranges` at all.
    for ranges in [Some(Vec::new()), None] {
        let mut tree = synthetic(&[], &[]);
        let soc = find_prop(&tree.tokens, "/soc", "ranges").unwrap();
        match &ranges {
            Some(v) => tree.tokens[soc] = Token::Prop("ranges".into(), v.clone()),
            None => {
                tree.tokens.remove(soc);
            }
        }
        let b = BoardInfo::parse(&encode(&tree)).unwrap();
        assert!(
            b.uart_at(0x7e20_1000).is_some(),
            "ranges {ranges:?}: {:?}",
            b.uarts
        );
    }
}

#[test]
fn address_outside_every_range_is_left_alone() {
    let mut tree = synthetic(&[], &[]);
    set_prop(
        &mut tree,
        "/soc/bus@7e200000/serial@1000",
        "reg",
        cells(&[0x2_0000, 0x100]),
    );
    let b = BoardInfo::parse(&encode(&tree)).unwrap();
    // Not covered by the inner bus (size 0x1_0000); 0x2_0000 is also outside /soc.
    assert_eq!(b.uarts[0].base, 0x2_0000);
}

#[test]
fn spin_table_cpu_without_release_addr() {
    let mut tree = synthetic(&[], &[]);
    set_prop(
        &mut tree,
        "/cpus/cpu@100",
        "enable-method",
        string("spin-table"),
    );
    let b = BoardInfo::parse(&encode(&tree)).unwrap();
    assert!(matches!(&b.cpus[0].enable, CpuEnable::Other(why) if why.contains("cpu-release-addr")));

    set_prop(
        &mut tree,
        "/cpus/cpu@100",
        "enable-method",
        string("brcm,bcm2836-smp"),
    );
    let b = BoardInfo::parse(&encode(&tree)).unwrap();
    assert_eq!(
        b.cpus[0].enable,
        CpuEnable::Other("brcm,bcm2836-smp".into())
    );
}

#[test]
fn disabled_uart_and_psci_without_method() {
    let mut tree = synthetic(&[], &[]);
    set_prop(
        &mut tree,
        "/soc/bus@7e200000/serial@1000",
        "status",
        string("disabled"),
    );
    set_prop(&mut tree, "/psci", "method", string("smccc"));
    let b = BoardInfo::parse(&encode(&tree)).unwrap();
    assert!(!b.uarts[0].enabled);
    assert_eq!(b.psci, None);
}

#[test]
fn zero_address_and_size_cells_terminate() {
    // Regression: `#address-cells = <0>` with `#size-cells = <0>` made the `reg` and
    // `ranges` readers loop forever without consuming a byte.
    let mut tree = synthetic(&[], &[]);
    set_prop(&mut tree, "/cpus", "#address-cells", cells(&[0]));
    assert_eq!(BoardInfo::parse(&encode(&tree)), Err(DtbError::NoCpus));

    let mut tree = synthetic(&[], &[]);
    set_prop(&mut tree, "/soc", "#address-cells", cells(&[0]));
    set_prop(&mut tree, "/soc", "#size-cells", cells(&[0]));
    // soc's children now have no address; parsing still finishes.
    let b = BoardInfo::parse(&encode(&tree)).expect("still a board");
    assert_eq!(b.memory.len(), 1);
}

#[test]
fn huge_interrupt_numbers_and_addresses_do_not_overflow() {
    // Regression: `number + 32` and `addr - child + parent` overflowed (a panic in debug
    // builds) on hostile values.
    let mut tree = synthetic(&[], &[]);
    set_prop(
        &mut tree,
        "/timer",
        "interrupts",
        cells(&[1, u32::MAX, 4, 0, u32::MAX - 1, 4]),
    );
    set_prop(
        &mut tree,
        "/soc",
        "ranges",
        cells(&[0x7e00_0000, 0xffff_ffff, 0xffff_ff00, 0x0180_0000]),
    );
    let b = BoardInfo::parse(&encode(&tree)).expect("parses");
    assert_eq!(b.timer_irqs.len(), 2);
    assert_eq!(b.uarts.len(), 1);
}

#[test]
fn more_than_two_address_cells_are_not_read() {
    let mut tree = synthetic(&[], &[]);
    set_prop(&mut tree, "/cpus", "#address-cells", cells(&[3]));
    set_prop(&mut tree, "/cpus/cpu@100", "reg", cells(&[0, 0, 0x100]));
    assert_eq!(BoardInfo::parse(&encode(&tree)), Err(DtbError::NoCpus));
}

// ---------------------------------------------------------------------------------------
// Malformed blobs

fn assert_malformed(blob: &[u8], what: &str) {
    match BoardInfo::parse(blob) {
        Err(DtbError::Malformed(why)) => assert!(!why.is_empty(), "{what}"),
        other => panic!("{what}: expected Malformed, got {other:?}"),
    }
}

#[test]
fn garbage_is_malformed() {
    assert_malformed(&[], "empty");
    assert_malformed(&[0; 64], "zeros");
    assert_malformed(&[0xd0, 0x0d, 0xfe], "three bytes of magic");
    assert_malformed(&MAGIC.to_be_bytes(), "magic only");
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(0x9e37_79b9) >> 24) as u8)
        .collect();
    assert_malformed(&noise, "noise");
    let mut noise_with_magic = noise.clone();
    set_be32(&mut noise_with_magic, 0, MAGIC);
    assert_malformed(&noise_with_magic, "noise with magic");
    let mut wrong_magic = fixture("virt-gicv3");
    wrong_magic[3] ^= 1;
    assert_malformed(&wrong_magic, "bad magic");
}

#[test]
fn every_truncation_is_malformed() {
    for name in ["virt-gicv3", "rpi4-b"] {
        let blob = fixture(name);
        for len in 0..blob.len() {
            assert_malformed(&blob[..len], &format!("{name} cut to {len} bytes"));
        }
    }
}

#[test]
fn structural_damage_is_malformed() {
    let blob = fixture("virt-gicv3");
    let tokens = locate(&blob);
    let off_struct = header(&blob, 2);
    let edit = |at: usize, v: u32| {
        let mut b = blob.clone();
        set_be32(&mut b, at, v);
        b
    };
    // A token that does not exist.
    assert_malformed(&edit(off_struct + tokens[3].at, 7), "unknown token");
    // A property that runs past the structure block.
    let prop = tokens
        .iter()
        .find(|l| matches!(l.token, Token::Prop(..)))
        .unwrap();
    assert_malformed(&edit(off_struct + prop.at + 4, 0x10_0000), "long property");
    // A property name outside the strings block.
    assert_malformed(&edit(off_struct + prop.at + 8, 0x10_0000), "name offset");
    // Blocks outside the blob.
    assert_malformed(&edit(8, 0x10_0000), "structure offset");
    assert_malformed(&edit(12, blob.len() as u32), "strings offset");
    assert_malformed(&edit(36, 0x10_0000), "structure size");
    // No FDT_END: the structure block is cut short (sizes fixed).
    let mut short = blob.clone();
    let size = header(&blob, 9) as u32;
    set_be32(&mut short, 36, size - 4);
    assert_malformed(&short, "no FDT_END");
}

#[test]
fn badly_nested_trees_are_malformed() {
    let ok = synthetic(&[], &[]);
    assert!(BoardInfo::parse(&encode(&ok)).is_ok());

    // A property after a child node.
    let mut tree = synthetic(&[], &[]);
    let end_of_root = tree.tokens.len() - 1;
    tree.tokens
        .insert(end_of_root, Token::Prop("late".into(), cells(&[1])));
    assert_malformed(&encode(&tree), "property after child");

    // An END_NODE too many, and one missing.
    let mut tree = synthetic(&[], &[]);
    tree.tokens.push(Token::End);
    assert_malformed(&encode(&tree), "extra END_NODE");
    let mut tree = synthetic(&[], &[]);
    tree.tokens.pop();
    assert_malformed(&encode(&tree), "missing END_NODE");

    // A property before the root node.
    let mut tree = synthetic(&[], &[]);
    tree.tokens
        .insert(0, Token::Prop("early".into(), Vec::new()));
    assert_malformed(&encode(&tree), "property outside any node");

    // A second root.
    let mut tree = synthetic(&[], &[]);
    tree.tokens.extend(node("", &[], &[]));
    assert_malformed(&encode(&tree), "two roots");
}

#[test]
fn non_utf8_names_are_malformed() {
    let mut tree = synthetic(&[], &[]);
    let timer = find_node(&tree.tokens, "/timer").unwrap();
    tree.tokens[timer] = Token::Begin("ti\u{e9}mer".into());
    let mut blob = encode(&tree);
    // Turn the two-byte UTF-8 `é` into two lone continuation bytes.
    let st = header(&blob, 2);
    let at = blob[st..].windows(3).position(|w| w == b"ti\xc3").unwrap() + st + 2;
    blob[at] = 0x80;
    assert_malformed(&blob, "node name");

    let tree = synthetic(&[("na\u{e9}me", Vec::new())], &[]);
    let mut blob = encode(&tree);
    let at = blob.windows(3).rposition(|w| w == b"a\xc3\xa9").unwrap() + 1;
    blob[at] = 0xff;
    assert_malformed(&blob, "property name");
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let mut inner = node("leaf", &[], &[]);
    for i in 0..5000 {
        inner = node(&format!("n{i}"), &[], &[inner]);
    }
    let tree = synthetic(&[], &[inner]);
    assert_malformed(&encode(&tree), "5000 levels");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random byte edits and truncations of a fixture: parsing returns, it never panics,
    /// and a cut blob is always `Malformed`.
    #[test]
    fn mutated_fixtures_never_panic(
        which in 0usize..3,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut blob = match which {
            0 => fixture("virt-gicv3"),
            1 => fixture("virt-gicv2"),
            _ => pi_with_memory(&[(0, 0x3c00_0000)]),
        };
        for (at, value) in &edits {
            let at = at.index(blob.len());
            blob[at] = *value;
        }
        if let Some(cut) = cut {
            let claimed = header(&blob, 1).min(blob.len());
            let len = cut.index(claimed.max(1));
            blob.truncate(len);
            if len < claimed {
                let result = BoardInfo::parse(&blob);
                prop_assert!(matches!(result, Err(DtbError::Malformed(_))), "{:?}", result);
            }
        }
        let _ = BoardInfo::parse(&blob);
        let _ = strip_nops(&blob);
    }

    /// Edits confined to the structure and strings blocks, where the walk goes deepest.
    #[test]
    fn mutated_structure_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u32>()), 1..4),
        nops in any::<bool>(),
    ) {
        let base = fixture("virt-gicv3");
        let mut blob = if nops { inject_nops(&base, |i| i % 2) } else { base };
        let start = header(&blob, 2);
        let words = (blob.len() - start) / 4;
        for (at, value) in &edits {
            let at = start + 4 * at.index(words);
            // Small values hit token and cell-count meanings; large ones offsets and sizes.
            let value = if value % 3 == 0 { value % 16 } else { *value };
            set_be32(&mut blob, at, value);
        }
        let _ = BoardInfo::parse(&blob);
    }
}
