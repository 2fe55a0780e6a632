//! Every boot argument Bulkhead reads (QEMU `-append`, the Pi's `cmdline.txt`): its word,
//! the values it takes, its default, what it means and who reads it. This table is the one
//! source of truth: hv checks its own words against it, `cargo xtask` checks `--append`
//! against it and prints it in its help, and guest-rt's parser checks its words with it.
//!
//! This module owns the table and the check of one word's syntax and range. It never
//! decides what a word does (its reader does) and never allocates: everything is `const`
//! data and borrowed slices, usable from no_std code.
//!
//! Words are split on ASCII whitespace. A word `NAME.rest` belongs to the partition named
//! `NAME` in the board file: hv hands it over (to Linux without the `NAME.` prefix). Words
//! starting `bulkhead.` are hv's own; words with neither prefix (QEMU's, the Pi firmware's)
//! are nobody's and left alone.

use core::fmt;

/// Prefix of hv's own words.
pub const HV_PREFIX: &str = "bulkhead.";
/// Prefix of guest-rt's words: the RT partition's name in the shipped board files.
pub const RT_PREFIX: &str = "rt.";
/// Prefix of the Linux partition's words (its name in the shipped board files): hv passes
/// them to Linux's command line without it (`linux.quiet` becomes `quiet`).
pub const LINUX_PREFIX: &str = "linux.";

/// Who acts on a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    Hv,
    GuestRt,
    /// Passed to Linux's command line without its prefix; Linux checks it.
    Linux,
}

impl Reader {
    pub const fn name(self) -> &'static str {
        match self {
            Reader::Hv => "hv",
            Reader::GuestRt => "guest-rt",
            Reader::Linux => "Linux",
        }
    }
}

/// What may follow a choice's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChoiceArgument {
    None,
    /// `NAME@0xHEX`: a 64-bit address in hexadecimal.
    HexAddress,
}

/// One value of a word that takes a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    pub name: &'static str,
    pub argument: ChoiceArgument,
    pub meaning: &'static str,
}

/// What follows a word's `=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// The word alone, without `=`.
    Flag,
    /// One of these.
    OneOf(&'static [Choice]),
    /// A decimal number in `min..=max`.
    Number { min: u64, max: u64 },
    /// Partition names of the board, separated by commas, at least one, none empty (the
    /// reader checks that the board has them).
    PartitionNames,
    /// Anything: the word is passed on for its reader to check.
    Passed,
}

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootArg {
    /// The word up to its `=` (or the whole word for a flag); for [`Reader::Linux`] the
    /// prefix that every such word starts with.
    pub word: &'static str,
    pub value: Value,
    /// What holds when the word is absent.
    pub default: &'static str,
    pub meaning: &'static str,
    pub reader: Reader,
}

/// `rt.app=`: what guest-rt runs besides its heartbeat.
pub const RT_APPS: &[Choice] = &[
    Choice {
        name: "latency",
        argument: ChoiceArgument::None,
        meaning: "latency probe on every RT vCPU: sleeps to absolute deadlines, prints min/avg/max/p99 wake-up latency",
    },
    Choice {
        name: "control",
        argument: ChoiceArgument::None,
        meaning: "1 kHz PID loop on a simulated DC motor per RT vCPU (sensing, actuation, watchdog threads); rtctl steers it",
    },
    Choice {
        name: "kernel-bench",
        argument: ChoiceArgument::None,
        meaning: "measures the kernel's paths (lock/unlock, switch, PI boost, wake-ups) for `cargo xtask bench`",
    },
];

/// `rt.selftest=`: the failure and conformance paths the QEMU tests ask guest-rt for.
pub const RT_SELFTESTS: &[Choice] = &[
    Choice {
        name: "hypercalls",
        argument: ChoiceArgument::None,
        meaning: "bad and good HVCs and an SMC, each result compared with the ABI",
    },
    Choice {
        name: "gic",
        argument: ChoiceArgument::None,
        meaning:
            "SGIs between the vCPUs, then writes to interrupt lines the partition does not own",
    },
    Choice {
        name: "exec-channel",
        argument: ChoiceArgument::None,
        meaning: "vCPU 1 jumps into the channel: hv's stage 2 stops it (execute-never)",
    },
    Choice {
        name: "stray-sgis",
        argument: ChoiceArgument::None,
        meaning: "exit-less on GICv3: physical SGIs to the CPUs outside the partition, which hv ignores and counts",
    },
    Choice {
        name: "spi",
        argument: ChoiceArgument::None,
        meaning: "the passed-through RTC's SPI reaches its threaded handler",
    },
    Choice {
        name: "spi-cross",
        argument: ChoiceArgument::None,
        meaning: "as spi, the line routed to vCPU 0 and its handler kept on vCPU 1",
    },
    Choice {
        name: "kernel",
        argument: ChoiceArgument::None,
        meaning: "the kernel's scenarios (inheritance, RCU, ...) on real threads",
    },
    Choice {
        name: "escape",
        argument: ChoiceArgument::HexAddress,
        meaning: "vCPU 1 reads ADDR outside the partition: hv must stop that vCPU only",
    },
    Choice {
        name: "system-off",
        argument: ChoiceArgument::None,
        meaning: "the partition powers itself off through PSCI",
    },
    Choice {
        name: "system-reset",
        argument: ChoiceArgument::None,
        meaning: "at its first boot the partition resets itself; hv reloads and reboots it",
    },
];

/// `bulkhead.selftest=`: failure paths inside hv.
pub const HV_SELFTESTS: &[Choice] = &[Choice {
    name: "el2-fault",
    argument: ChoiceArgument::None,
    meaning: "hv reads an unmapped address: its EL2 vectors must report it and stop",
}];

/// Every boot argument, hv's first, then guest-rt's, then the Linux prefix.
pub const BOOT_ARGS: &[BootArg] = &[
    BootArg {
        word: "bulkhead.smoke",
        value: Value::Flag,
        default: "off",
        meaning: "power off once every CPU and started partition reported ready",
        reader: Reader::Hv,
    },
    BootArg {
        word: "bulkhead.only",
        value: Value::PartitionNames,
        default: "every partition",
        meaning: "start only these partitions; the others' CPUs stay in hv",
        reader: Reader::Hv,
    },
    BootArg {
        word: "bulkhead.selftest",
        value: Value::OneOf(HV_SELFTESTS),
        default: "none",
        meaning: "exercise a failure path inside hv on purpose",
        reader: Reader::Hv,
    },
    BootArg {
        word: "rt.app",
        value: Value::OneOf(RT_APPS),
        default: "none, heartbeat only",
        meaning: "what guest-rt runs on its vCPUs",
        reader: Reader::GuestRt,
    },
    BootArg {
        word: "rt.selftest",
        value: Value::OneOf(RT_SELFTESTS),
        default: "none",
        meaning: "a guest-rt self-test at boot",
        reader: Reader::GuestRt,
    },
    BootArg {
        word: "rt.heartbeat-ms",
        value: Value::Number {
            min: 1,
            max: 86_400_000,
        },
        default: "10000",
        meaning: "period of each vCPU's heartbeat line, in ms",
        reader: Reader::GuestRt,
    },
    BootArg {
        word: "rt.latency.interval-us",
        value: Value::Number {
            min: 10,
            max: 1_000_000,
        },
        default: "1000",
        meaning: "the latency probe's period, in us",
        reader: Reader::GuestRt,
    },
    BootArg {
        word: "rt.latency.periods",
        value: Value::Number {
            min: 0,
            max: u64::MAX,
        },
        default: "0, for ever",
        meaning: "the latency probe stops after this many periods",
        reader: Reader::GuestRt,
    },
    BootArg {
        word: "rt.control.period-us",
        value: Value::Number {
            min: 100,
            max: 10_000,
        },
        default: "1000, 1 kHz",
        meaning: "the control loop's period, in us",
        reader: Reader::GuestRt,
    },
    BootArg {
        word: LINUX_PREFIX,
        value: Value::Passed,
        default: "hv's words only: console=ttyAMA0 bulkhead.control=ADDR",
        meaning: "WORD goes on Linux's command line, after hv's words",
        reader: Reader::Linux,
    },
];

/// A word's value, checked against its row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    Flag,
    /// The choice, and its address for [`ChoiceArgument::HexAddress`].
    Choice(&'static Choice, Option<u64>),
    Number(u64),
    /// Non-empty names separated by commas, none of them empty.
    PartitionNames(&'a str),
    /// The word as written, for its reader.
    Passed(&'a str),
}

/// Why a word of Bulkhead's cannot be honoured. Displayed with the word, so each message
/// names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WordError<'a> {
    /// A `bulkhead.` or `rt.` word the table does not have.
    Unknown(&'a str),
    /// A flag written with `=`.
    UnexpectedValue(&'a str),
    /// A word that needs `=VALUE` written without it.
    MissingValue(&'a str),
    NotAChoice {
        word: &'a str,
        choices: &'static [Choice],
    },
    NotANumber(&'a str),
    OutOfRange {
        word: &'a str,
        min: u64,
        max: u64,
    },
    /// `bulkhead.only=` with no name, or an empty name between commas.
    EmptyName(&'a str),
}

impl fmt::Display for WordError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WordError::Unknown(w) => write!(f, "`{w}`: unknown boot argument"),
            WordError::UnexpectedValue(w) => write!(f, "`{w}`: this word takes no value"),
            WordError::MissingValue(w) => write!(f, "`{w}`: this word needs `=VALUE`"),
            WordError::NotAChoice { word, choices } => {
                write!(f, "`{word}`: not one of ")?;
                write_choices(f, choices)
            }
            WordError::NotANumber(w) => write!(f, "`{w}`: not a decimal number"),
            WordError::OutOfRange { word, min, max } => {
                write!(f, "`{word}`: out of range {min}..={max}")
            }
            WordError::EmptyName(w) => write!(f, "`{w}`: an empty partition name"),
        }
    }
}

/// `a|b|escape@0xADDR`.
fn write_choices(f: &mut fmt::Formatter<'_>, choices: &[Choice]) -> fmt::Result {
    for (i, c) in choices.iter().enumerate() {
        if i > 0 {
            f.write_str("|")?;
        }
        f.write_str(c.name)?;
        if c.argument == ChoiceArgument::HexAddress {
            f.write_str("@0xADDR")?;
        }
    }
    Ok(())
}

impl fmt::Display for Value {
    /// The values a word takes, for help texts: `(flag)`, `a|b`, `10..=1000`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Flag => f.write_str("(flag)"),
            Value::OneOf(choices) => write_choices(f, choices),
            Value::Number { min, max } => write!(f, "{min}..={max}"),
            Value::PartitionNames => f.write_str("NAME[,NAME...]"),
            Value::Passed => f.write_str("any word"),
        }
    }
}

/// The row for `word` (by its part before `=`, or by prefix for Linux's), if the table
/// has one.
pub fn row(word: &str) -> Option<&'static BootArg> {
    let key = word.split_once('=').map_or(word, |(key, _)| key);
    BOOT_ARGS.iter().find(|arg| match arg.reader {
        Reader::Linux => word.starts_with(arg.word),
        _ => arg.word == key,
    })
}

/// Checks one word. `Ok(None)`: not Bulkhead's (no `bulkhead.`, `rt.` or `linux.` prefix);
/// `Ok(Some(..))`: its row and checked value.
pub fn check(word: &str) -> Result<Option<(&'static BootArg, Parsed<'_>)>, WordError<'_>> {
    let ours = [HV_PREFIX, RT_PREFIX, LINUX_PREFIX]
        .iter()
        .any(|p| word.starts_with(p));
    if !ours {
        return Ok(None);
    }
    let arg = row(word).ok_or(WordError::Unknown(word))?;
    let value = word.split_once('=').map(|(_, value)| value);
    let parsed = match (arg.value, value) {
        (Value::Passed, _) => Parsed::Passed(word),
        (Value::Flag, None) => Parsed::Flag,
        (Value::Flag, Some(_)) => return Err(WordError::UnexpectedValue(word)),
        (_, None) => return Err(WordError::MissingValue(word)),
        (Value::OneOf(choices), Some(value)) => {
            choose(choices, value).ok_or(WordError::NotAChoice { word, choices })?
        }
        (Value::Number { min, max }, Some(value)) => {
            // All digits but beyond u64 is a number out of range, not "not a number".
            let n = number(value).ok_or(WordError::NotANumber(word))?;
            match n {
                Some(n) if (min..=max).contains(&n) => Parsed::Number(n),
                _ => return Err(WordError::OutOfRange { word, min, max }),
            }
        }
        (Value::PartitionNames, Some(value)) => {
            if value.split(',').any(str::is_empty) {
                return Err(WordError::EmptyName(word));
            }
            Parsed::PartitionNames(value)
        }
    };
    Ok(Some((arg, parsed)))
}

/// Plain decimal digits only: no sign, no `+`, no leading or trailing junk. `Some(None)`:
/// digits, but more than a u64 holds.
fn number(text: &str) -> Option<Option<u64>> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().ok())
}

fn choose(choices: &'static [Choice], value: &str) -> Option<Parsed<'static>> {
    choices.iter().find_map(|c| match c.argument {
        ChoiceArgument::None => (c.name == value).then_some(Parsed::Choice(c, None)),
        ChoiceArgument::HexAddress => {
            let hex = value.strip_prefix(c.name)?.strip_prefix("@0x")?;
            let valid = !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
            let address = u64::from_str_radix(hex, 16).ok().filter(|_| valid)?;
            Some(Parsed::Choice(c, Some(address)))
        }
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn every_row_has_a_known_prefix_a_meaning_and_a_default() {
        for arg in BOOT_ARGS {
            let prefix = match arg.reader {
                Reader::Hv => HV_PREFIX,
                Reader::GuestRt => RT_PREFIX,
                Reader::Linux => LINUX_PREFIX,
            };
            assert!(arg.word.starts_with(prefix), "{}", arg.word);
            assert!(!arg.meaning.is_empty() && !arg.default.is_empty());
            assert!(!arg.word.contains('='));
        }
        for (i, a) in BOOT_ARGS.iter().enumerate() {
            assert!(
                BOOT_ARGS[..i].iter().all(|b| b.word != a.word),
                "{}",
                a.word
            );
        }
    }

    #[test]
    fn numeric_defaults_lie_in_their_range() {
        for arg in BOOT_ARGS {
            if let Value::Number { min, max } = arg.value {
                let digits: &str = arg.default.split(',').next().unwrap_or("");
                let n: u64 = digits.parse().expect("a numeric default");
                assert!((min..=max).contains(&n), "{}", arg.word);
            }
        }
    }

    #[test]
    fn words_of_others_are_not_ours() {
        assert_eq!(check("console=ttyAMA0"), Ok(None));
        assert_eq!(check("bulkheadx"), Ok(None));
        assert_eq!(check("rtos.x"), Ok(None));
    }

    #[test]
    fn flags_and_choices() {
        assert!(matches!(
            check("bulkhead.smoke"),
            Ok(Some((_, Parsed::Flag)))
        ));
        assert_eq!(
            check("bulkhead.smoke=1"),
            Err(WordError::UnexpectedValue("bulkhead.smoke=1"))
        );
        assert_eq!(
            check("bulkhead.smokey"),
            Err(WordError::Unknown("bulkhead.smokey"))
        );
        assert!(matches!(
            check("rt.app=kernel-bench"),
            Ok(Some((_, Parsed::Choice(c, None)))) if c.name == "kernel-bench"
        ));
        assert!(matches!(
            check("rt.app=other"),
            Err(WordError::NotAChoice { .. })
        ));
        assert!(matches!(check("rt.app"), Err(WordError::MissingValue(_))));
        assert!(matches!(
            check("rt.selftest=escape@0x40080000"),
            Ok(Some((_, Parsed::Choice(c, Some(0x4008_0000))))) if c.name == "escape"
        ));
        for bad in [
            "rt.selftest=escape@",
            "rt.selftest=escape@0x",
            "rt.selftest=escape@0xzz",
            "rt.selftest=escape@0x+1",
            "rt.selftest=escape@0x10000000000000000",
            "rt.selftest=escape",
        ] {
            assert!(
                matches!(check(bad), Err(WordError::NotAChoice { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn numbers_are_plain_decimal_and_in_range() {
        assert!(matches!(
            check("rt.latency.interval-us=10"),
            Ok(Some((_, Parsed::Number(10))))
        ));
        assert!(matches!(
            check("rt.latency.periods=0"),
            Ok(Some((_, Parsed::Number(0))))
        ));
        for bad in ["-1", "+5", "", "1e3", " 5", "0x10"] {
            let word = std::format!("rt.heartbeat-ms={bad}");
            assert!(
                matches!(check(word.as_str()), Err(WordError::NotANumber(_))),
                "{word:?}"
            );
        }
        assert_eq!(
            check("rt.latency.interval-us=18446744073709552"),
            Err(WordError::OutOfRange {
                word: "rt.latency.interval-us=18446744073709552",
                min: 10,
                max: 1_000_000
            })
        );
        for too_large in [
            "rt.heartbeat-ms=0",
            "rt.heartbeat-ms=99999999999999999999999",
        ] {
            assert!(
                matches!(check(too_large), Err(WordError::OutOfRange { .. })),
                "{too_large}"
            );
        }
    }

    #[test]
    fn partition_lists_have_no_empty_name() {
        assert!(matches!(
            check("bulkhead.only=rt,linux"),
            Ok(Some((_, Parsed::PartitionNames("rt,linux"))))
        ));
        for bad in ["bulkhead.only=", "bulkhead.only=,,,", "bulkhead.only=rt,"] {
            assert_eq!(check(bad), Err(WordError::EmptyName(bad)));
        }
        assert_eq!(
            check("bulkhead.only"),
            Err(WordError::MissingValue("bulkhead.only"))
        );
    }

    #[test]
    fn linux_words_pass() {
        assert!(matches!(
            check("linux.quiet"),
            Ok(Some((arg, Parsed::Passed("linux.quiet")))) if arg.reader == Reader::Linux
        ));
    }

    #[test]
    fn messages_name_the_word() {
        let message = check("rt.app=x").unwrap_err().to_string();
        assert_eq!(
            message,
            "`rt.app=x`: not one of latency|control|kernel-bench"
        );
        let message = check("rt.selftest=x").unwrap_err().to_string();
        assert!(message.contains("escape@0xADDR"), "{message}");
    }
}
