//! The plugin's arguments (`-plugin libvcpu_insn_plugin.so,ARG,ARG,...`), parsed into what
//! to count and where to write it. Pure parsing: no QEMU, no files.
//!
//! * `out=PATH`: where the report goes (required);
//! * `vcpus=2,3`: the vCPU indexes whose marker hits are logged (default: all);
//! * `mark=NAME@0xADDR`: log `hit VCPU NAME COUNT` each time a logged vCPU is about to
//!   execute the instruction at virtual address ADDR (COUNT: instructions that vCPU
//!   executed before it);
//! * `range=NAME@0xSTART-0xEND`: count, per vCPU, the instructions executed in
//!   `[START, END)` (a spin loop, a function), reported at exit;
//! * `code=0xSTART-0xEND`: instrument only blocks that start in these ranges (default:
//!   every block); instructions elsewhere are not counted at all;
//! * `whoami=REG`: the system register that names the executing CPU (default
//!   `TPIDR_EL2`, where hv keeps its CPU index);
//! * `whoami-index=low-byte|rank`: the CPU index is the register's low byte (default), or
//!   the rank of its value among the distinct non-zero values seen (Linux keeps each CPU's
//!   per-CPU offset in TPIDR_EL1, increasing with the CPU number; QEMU does not offer
//!   MPIDR_EL1 to plugins).

use std::fmt;

/// A named code address whose executions are logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub name: String,
    pub addr: u64,
}

/// A named address range whose executed instructions are counted per vCPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    pub name: String,
    pub start: u64,
    pub end: u64,
}

impl Range {
    pub fn contains(&self, addr: u64) -> bool {
        (self.start..self.end).contains(&addr)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub out: String,
    /// `None`: every vCPU.
    pub vcpus: Option<Vec<u32>>,
    pub marks: Vec<Mark>,
    pub ranges: Vec<Range>,
    /// Blocks instrumented (empty: all).
    pub code: Vec<(u64, u64)>,
    pub whoami: String,
    pub rank: bool,
}

impl Options {
    /// Whether marker hits on `vcpu` are logged.
    pub fn logs(&self, vcpu: u32) -> bool {
        self.vcpus.as_ref().is_none_or(|v| v.contains(&vcpu))
    }

    /// Whether a block starting at `addr` is instrumented.
    pub fn instruments(&self, addr: u64) -> bool {
        self.code.is_empty() || self.code.iter().any(|&(s, e)| (s..e).contains(&addr))
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct BadArg(pub String);

impl fmt::Display for BadArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vcpu-insn-plugin: {}", self.0)
    }
}

fn hex(text: &str, arg: &str) -> Result<u64, BadArg> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| BadArg(format!("`{arg}`: addresses are hex with 0x")))?;
    u64::from_str_radix(digits, 16).map_err(|_| BadArg(format!("`{arg}`: bad address `{text}`")))
}

fn span(text: &str, arg: &str) -> Result<(u64, u64), BadArg> {
    let (start, end) = text
        .split_once('-')
        .ok_or_else(|| BadArg(format!("`{arg}`: expected 0xSTART-0xEND")))?;
    let (start, end) = (hex(start, arg)?, hex(end, arg)?);
    if end <= start {
        return Err(BadArg(format!("`{arg}`: empty range")));
    }
    Ok((start, end))
}

fn named<'a>(value: &'a str, arg: &str) -> Result<(&'a str, &'a str), BadArg> {
    match value.split_once('@') {
        Some((name, rest)) if !name.is_empty() && !name.contains(char::is_whitespace) => {
            Ok((name, rest))
        }
        _ => Err(BadArg(format!(
            "`{arg}`: expected NAME@ADDRESS, NAME without blanks"
        ))),
    }
}

pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Options, BadArg> {
    let mut options = Options {
        whoami: "TPIDR_EL2".into(),
        ..Options::default()
    };
    for arg in args {
        let (key, value) = arg
            .split_once('=')
            .ok_or_else(|| BadArg(format!("`{arg}`: expected KEY=VALUE")))?;
        match key {
            "out" => options.out = value.to_string(),
            "vcpus" => {
                let list = value
                    .split(':')
                    .flat_map(|v| v.split(' '))
                    .filter(|v| !v.is_empty())
                    .map(|v| {
                        v.parse()
                            .map_err(|_| BadArg(format!("`{arg}`: bad vCPU `{v}`")))
                    })
                    .collect::<Result<Vec<u32>, _>>()?;
                options.vcpus = Some(list);
            }
            "mark" => {
                let (name, addr) = named(value, arg)?;
                options.marks.push(Mark {
                    name: name.to_string(),
                    addr: hex(addr, arg)?,
                });
            }
            "range" => {
                let (name, text) = named(value, arg)?;
                let (start, end) = span(text, arg)?;
                options.ranges.push(Range {
                    name: name.to_string(),
                    start,
                    end,
                });
            }
            "code" => options.code.push(span(value, arg)?),
            "whoami" => options.whoami = value.to_string(),
            "whoami-index" => {
                options.rank = match value {
                    "low-byte" => false,
                    "rank" => true,
                    _ => return Err(BadArg(format!("`{arg}`: low-byte or rank"))),
                }
            }
            _ => return Err(BadArg(format!("unknown argument `{arg}`"))),
        }
    }
    if options.out.is_empty() {
        return Err(BadArg("`out=PATH` is required".into()));
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_marks_ranges_and_vcpus() {
        let o = parse([
            "out=/tmp/x",
            "vcpus=2:3",
            "mark=rt-irq@0x44080800",
            "range=spin@0x1000-0x1010",
        ])
        .unwrap();
        assert_eq!(o.out, "/tmp/x");
        assert!(o.logs(2) && o.logs(3) && !o.logs(0));
        assert_eq!(
            o.marks,
            vec![Mark {
                name: "rt-irq".into(),
                addr: 0x4408_0800
            }]
        );
        assert!(o.ranges[0].contains(0x100c) && !o.ranges[0].contains(0x1010));
        assert_eq!(o.whoami, "TPIDR_EL2");
        assert!(o.instruments(0x1234), "no code= instruments everything");
    }

    #[test]
    fn code_ranges_limit_what_is_instrumented() {
        let o = parse([
            "out=x",
            "code=0x1000-0x2000",
            "whoami=TPIDR_EL1",
            "whoami-index=rank",
        ])
        .unwrap();
        assert!(o.rank);
        assert!(parse(["out=x", "whoami-index=other"]).is_err());
        assert!(o.instruments(0x1000) && o.instruments(0x1fff));
        assert!(!o.instruments(0x2000) && !o.instruments(0xfff));
        assert_eq!(o.whoami, "TPIDR_EL1");
    }

    #[test]
    fn every_vcpu_is_logged_by_default() {
        assert!(parse(["out=x"]).unwrap().logs(7));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(parse(["mark=a@0x10"]).is_err(), "out= is required");
        assert!(parse(["out=x", "mark=a@10"]).is_err(), "hex needs 0x");
        assert!(parse(["out=x", "mark=@0x10"]).is_err(), "name needed");
        assert!(parse(["out=x", "range=a@0x20-0x10"]).is_err());
        assert!(parse(["out=x", "vcpus=a"]).is_err());
        assert!(parse(["out=x", "colour=red"]).is_err());
        assert!(parse(["out"]).is_err());
    }
}

/// CPU identities by rank: the distinct non-zero register values seen, each in a slot of
/// its own (counts stay with their value); a value's CPU index is its rank among them.
#[derive(Debug, Default)]
pub struct Ranks {
    values: Vec<u64>,
}

impl Ranks {
    /// The slot of `value`, created on first sight (`None`: no slot left or value 0, the
    /// register before the kernel set it).
    pub fn slot(&mut self, value: u64, slots: usize) -> Option<usize> {
        if value == 0 {
            return None;
        }
        if let Some(i) = self.values.iter().position(|&v| v == value) {
            return Some(i);
        }
        if self.values.len() == slots {
            return None;
        }
        self.values.push(value);
        Some(self.values.len() - 1)
    }

    /// The CPU index of the value in `slot`: how many known values are smaller.
    pub fn rank(&self, slot: usize) -> usize {
        let v = self.values[slot];
        self.values.iter().filter(|&&w| w < v).count()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod rank_tests {
    use super::Ranks;

    #[test]
    fn ranks_follow_values_not_order_of_appearance() {
        let mut r = Ranks::default();
        let cpu0 = r.slot(0x1000, 4).unwrap();
        let cpu2 = r.slot(0x3000, 4).unwrap();
        let cpu1 = r.slot(0x2000, 4).unwrap();
        assert_eq!((r.rank(cpu0), r.rank(cpu1), r.rank(cpu2)), (0, 1, 2));
        assert_eq!(r.slot(0x3000, 4), Some(cpu2));
        assert_eq!(r.slot(0, 4), None);
        r.slot(0x4000, 4).unwrap();
        assert_eq!(r.slot(0x5000, 4), None, "all slots taken");
        assert_eq!(r.len(), 4);
    }
}
