//! guest-rt's boot arguments: the `rt.*` words of the partition's `/chosen/bootargs`
//! (hv passes the RT partition exactly the machine's words that start with `rt.`).
//!
//! Owns the grammar, the ranges and the defaults, and the public table of them
//! ([`PARAMS`], for a `--help` to list). Every `rt.*` word is either understood or
//! refused by name with its reason ([`Refusal`]); a value that cannot be honoured is
//! refused, never clamped or replaced by a default. Words without the `rt.` prefix belong
//! to someone else (a bare loader's own) and are left alone. Deciding what a refusal does
//! on target (run nothing, say why) is the runtime's; this module never prints.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// One boot argument, as a `--help` lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param {
    /// The word up to `=`.
    pub name: &'static str,
    /// What values are accepted.
    pub range: &'static str,
    /// What applies when the word is absent.
    pub default: &'static str,
    /// One line: what it does.
    pub meaning: &'static str,
}

/// `rt.heartbeat-ms`: the accepted range (1 ms to a day).
pub const HEARTBEAT_MS: (u64, u64) = (1, 86_400_000);
/// `rt.latency.interval-us`: the accepted range (10 us to 1 s): below 10 us a period is
/// shorter than one wake-up path; above 1 s nobody is probing latency.
pub const LATENCY_INTERVAL_US: (u64, u64) = (10, 1_000_000);
/// `rt.heartbeat-ms` when absent.
pub const DEFAULT_HEARTBEAT_MS: u64 = 10_000;
/// `rt.latency.interval-us` when absent.
pub const DEFAULT_LATENCY_INTERVAL_US: u64 = 1_000;

/// Every boot argument guest-rt understands.
pub const PARAMS: &[Param] = &[
    Param {
        name: "rt.app",
        range: "the name of an app built into the image (`latency`, ...)",
        default: "none",
        meaning: "the application to run on every RT vCPU",
    },
    Param {
        name: "rt.selftest",
        range: "hypercalls | escape@0xADDR | exec-channel | stray-sgis | system-off | \
                system-reset | gic | spi | spi-cross | kernel (images built with the \
                `selftests` feature)",
        default: "none",
        meaning: "a boot self-test the QEMU integration tests ask for",
    },
    Param {
        name: "rt.heartbeat-ms",
        range: "1..=86400000",
        default: "10000",
        meaning: "period of the heartbeat line each vCPU prints",
    },
    Param {
        name: "rt.latency.interval-us",
        range: "10..=1000000",
        default: "1000",
        meaning: "the latency probe's period",
    },
    Param {
        name: "rt.latency.periods",
        range: "0..=18446744073709551615",
        default: "0 (run for ever)",
        meaning: "stop the latency probe after this many periods, then report ready",
    },
];

/// A boot self-test (`rt.selftest=NAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfTest {
    /// A sweep of bad and good hypercalls.
    Hypercalls,
    /// vCPU 1 reads this address, outside the partition.
    Escape(u64),
    /// vCPU 1 jumps into the channel (mapped executable in its own stage 1): hv's stage 2
    /// must stop it with an instruction abort.
    ExecChannel,
    /// vCPU 0 sends every SGI number to the CPUs outside the partition (exit-less on
    /// GICv3 only): hv must ignore and count them.
    StraySgis,
    /// The partition powers itself off through PSCI.
    SystemOff,
    /// Reset once (first boot only), through PSCI SYSTEM_RESET.
    SystemReset,
    /// SGIs to the other vCPU, and attempts on interrupt lines the partition does not own.
    Gic,
    /// A passed-through device's SPI (the PL031 RTC on QEMU virt) reaches the partition.
    Spi,
    /// As [`SelfTest::Spi`], the line routed to vCPU 0 but its handler thread kept on vCPU
    /// 1, three times: each deactivation crosses vCPUs (owed to the acknowledging one).
    SpiCross,
    /// The kernel's scenarios on real threads.
    Kernel,
}

/// The self-tests named by a single word, and their names.
const NAMED_SELFTESTS: &[(&str, SelfTest)] = &[
    ("hypercalls", SelfTest::Hypercalls),
    ("exec-channel", SelfTest::ExecChannel),
    ("stray-sgis", SelfTest::StraySgis),
    ("system-off", SelfTest::SystemOff),
    ("system-reset", SelfTest::SystemReset),
    ("gic", SelfTest::Gic),
    ("spi", SelfTest::Spi),
    ("spi-cross", SelfTest::SpiCross),
    ("kernel", SelfTest::Kernel),
];

/// What this image can run, which `rt.app` and `rt.selftest` are checked against.
#[derive(Clone, Copy, Debug)]
pub struct Catalog<'c> {
    /// Names of the apps built in.
    pub apps: &'c [&'c str],
    /// The self-tests are built in (the `selftests` cargo feature).
    pub selftests: bool,
}

/// The boot arguments, all understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootArgs {
    /// Index into [`Catalog::apps`] of `rt.app`.
    pub app: Option<usize>,
    pub selftest: Option<SelfTest>,
    pub heartbeat_ms: u64,
    pub latency_interval_us: u64,
    /// 0: run for ever.
    pub latency_periods: u64,
}

impl Default for BootArgs {
    fn default() -> Self {
        BootArgs {
            app: None,
            selftest: None,
            heartbeat_ms: DEFAULT_HEARTBEAT_MS,
            latency_interval_us: DEFAULT_LATENCY_INTERVAL_US,
            latency_periods: 0,
        }
    }
}

/// Why a word is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// An `rt.` word no parameter of [`PARAMS`] has.
    UnknownParameter,
    /// `rt.NAME` with no `=VALUE`.
    MissingValue,
    /// Not a decimal number.
    NotANumber,
    /// A number outside the parameter's range.
    OutOfRange { min: u64, max: u64 },
    /// `rt.app` names no app of this image; the ones it has.
    UnknownApp(Vec<String>),
    /// `rt.selftest` names no self-test.
    UnknownSelfTest,
    /// `rt.selftest=escape@...` whose address is not `0x` and hex digits.
    BadAddress,
    /// `rt.selftest` in an image built without the `selftests` feature.
    SelfTestsNotBuilt,
    /// The parameter was given before in the same line.
    Repeated,
    /// An app and a self-test together (each takes the vCPUs over).
    AppWithSelfTest,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownParameter => write!(f, "unknown parameter"),
            Self::MissingValue => write!(f, "no value (expected NAME=VALUE)"),
            Self::NotANumber => write!(f, "not a decimal number"),
            Self::OutOfRange { min, max } => write!(f, "out of range {min}..={max}"),
            Self::UnknownApp(known) if known.is_empty() => {
                write!(f, "unknown app (this image has none)")
            }
            Self::UnknownApp(known) => write!(f, "unknown app (known: {})", known.join(", ")),
            Self::UnknownSelfTest => write!(f, "unknown self-test"),
            Self::BadAddress => write!(f, "malformed address (expected escape@0xHEX)"),
            Self::SelfTestsNotBuilt => write!(
                f,
                "self-tests are not built into this image (cargo feature `selftests`)"
            ),
            Self::Repeated => write!(f, "given more than once"),
            Self::AppWithSelfTest => write!(f, "an app and a self-test cannot run together"),
        }
    }
}

/// A refused word and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub word: String,
    pub reason: Reason,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rt: boot argument `{}`: {}", self.word, self.reason)
    }
}

fn number(value: &str, (min, max): (u64, u64)) -> Result<u64, Reason> {
    // `parse` alone would take a leading `+`; only digits are a number here.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reason::NotANumber);
    }
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        // All digits but no u64: too large for any range here.
        _ => Err(Reason::OutOfRange { min, max }),
    }
}

fn selftest(value: &str) -> Result<SelfTest, Reason> {
    if let Some(&(_, test)) = NAMED_SELFTESTS.iter().find(|(name, _)| *name == value) {
        return Ok(test);
    }
    let Some(addr) = value.strip_prefix("escape@") else {
        return Err(Reason::UnknownSelfTest);
    };
    addr.strip_prefix("0x")
        .filter(|hex| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .map(SelfTest::Escape)
        .ok_or(Reason::BadAddress)
}

/// Parses `line` against what this image has: every `rt.*` word understood, or every
/// refused one with its reason (in line order).
pub fn parse(line: &str, catalog: &Catalog) -> Result<BootArgs, Vec<Refusal>> {
    let mut args = BootArgs::default();
    let mut refused = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut app_word = None;
    for word in line.split_ascii_whitespace() {
        if !word.starts_with("rt.") {
            continue;
        }
        let (name, value) = match word.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (word, None),
        };
        let refuse = |reason| Refusal {
            word: word.to_string(),
            reason,
        };
        if !PARAMS.iter().any(|p| p.name == name) {
            refused.push(refuse(Reason::UnknownParameter));
            continue;
        }
        if seen.contains(&name) {
            refused.push(refuse(Reason::Repeated));
            continue;
        }
        seen.push(name);
        let Some(value) = value else {
            refused.push(refuse(Reason::MissingValue));
            continue;
        };
        let outcome = match name {
            "rt.app" => match catalog.apps.iter().position(|&a| a == value) {
                Some(i) => {
                    args.app = Some(i);
                    app_word = Some(word);
                    Ok(())
                }
                None => Err(Reason::UnknownApp(
                    catalog.apps.iter().map(|a| a.to_string()).collect(),
                )),
            },
            "rt.selftest" if !catalog.selftests => Err(Reason::SelfTestsNotBuilt),
            "rt.selftest" => selftest(value).map(|t| args.selftest = Some(t)),
            "rt.heartbeat-ms" => number(value, HEARTBEAT_MS).map(|n| args.heartbeat_ms = n),
            "rt.latency.interval-us" => {
                number(value, LATENCY_INTERVAL_US).map(|n| args.latency_interval_us = n)
            }
            "rt.latency.periods" => number(value, (0, u64::MAX)).map(|n| args.latency_periods = n),
            _ => unreachable!("every name of PARAMS has a case"),
        };
        if let Err(reason) = outcome {
            refused.push(refuse(reason));
        }
    }
    if let (Some(word), Some(_)) = (app_word, args.selftest) {
        refused.push(Refusal {
            word: word.to_string(),
            reason: Reason::AppWithSelfTest,
        });
    }
    if refused.is_empty() {
        Ok(args)
    } else {
        Err(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    const APPS: &[&str] = &["latency", "kernel-bench"];
    const FULL: Catalog = Catalog {
        apps: APPS,
        selftests: true,
    };
    const PRODUCT: Catalog = Catalog {
        apps: &["latency"],
        selftests: false,
    };

    fn refusals(line: &str, catalog: &Catalog) -> Vec<(String, Reason)> {
        parse(line, catalog)
            .expect_err("refused")
            .into_iter()
            .map(|r| (r.word, r.reason))
            .collect()
    }

    #[test]
    fn nothing_given_is_the_defaults() {
        assert_eq!(parse("", &FULL), Ok(BootArgs::default()));
        assert_eq!(
            parse("console=ttyAMA0 quiet", &FULL),
            Ok(BootArgs::default())
        );
    }

    #[test]
    fn what_the_tests_and_the_bench_pass_is_understood() {
        let args = parse(
            "rt.app=latency rt.latency.interval-us=1000 rt.heartbeat-ms=1000000 \
             rt.latency.periods=1000",
            &FULL,
        )
        .unwrap();
        assert_eq!(
            args,
            BootArgs {
                app: Some(0),
                selftest: None,
                heartbeat_ms: 1_000_000,
                latency_interval_us: 1_000,
                latency_periods: 1_000,
            }
        );
        assert_eq!(parse("rt.app=kernel-bench", &FULL).unwrap().app, Some(1));
        for (word, test) in [
            ("hypercalls", SelfTest::Hypercalls),
            ("exec-channel", SelfTest::ExecChannel),
            ("stray-sgis", SelfTest::StraySgis),
            ("system-off", SelfTest::SystemOff),
            ("system-reset", SelfTest::SystemReset),
            ("gic", SelfTest::Gic),
            ("spi", SelfTest::Spi),
            ("spi-cross", SelfTest::SpiCross),
            ("kernel", SelfTest::Kernel),
        ] {
            let line = format!("rt.selftest={word} rt.heartbeat-ms=20");
            let args = parse(&line, &FULL).unwrap();
            assert_eq!((args.selftest, args.heartbeat_ms), (Some(test), 20));
        }
        assert_eq!(
            parse("rt.selftest=escape@0x48000000", &FULL)
                .unwrap()
                .selftest,
            Some(SelfTest::Escape(0x4800_0000))
        );
    }

    #[test]
    fn out_of_range_values_are_refused_not_bent() {
        let range = |(min, max)| Reason::OutOfRange { min, max };
        for (word, reason) in [
            ("rt.latency.interval-us=0", range(LATENCY_INTERVAL_US)),
            ("rt.latency.interval-us=9", range(LATENCY_INTERVAL_US)),
            (
                // Overflowed into a 384 ns period before.
                "rt.latency.interval-us=18446744073709552",
                range(LATENCY_INTERVAL_US),
            ),
            ("rt.latency.interval-us=-5", Reason::NotANumber),
            ("rt.latency.interval-us=+5", Reason::NotANumber),
            ("rt.heartbeat-ms=0", range(HEARTBEAT_MS)),
            (
                "rt.heartbeat-ms=99999999999999999999999",
                range(HEARTBEAT_MS),
            ),
            ("rt.heartbeat-ms=ten", Reason::NotANumber),
            ("rt.heartbeat-ms=", Reason::NotANumber),
            (
                "rt.latency.periods=18446744073709551616",
                range((0, u64::MAX)),
            ),
        ] {
            assert_eq!(
                refusals(word, &FULL),
                vec![(word.to_string(), reason)],
                "{word}"
            );
        }
    }

    #[test]
    fn unknown_names_and_malformed_selftests_are_refused_by_name() {
        assert_eq!(
            refusals("rt.app=nonexistent", &FULL),
            vec![(
                "rt.app=nonexistent".into(),
                Reason::UnknownApp(vec!["latency".into(), "kernel-bench".into()])
            )]
        );
        for (word, reason) in [
            ("rt.selftest=escape@", Reason::BadAddress),
            ("rt.selftest=escape@0x", Reason::BadAddress),
            ("rt.selftest=escape@1234", Reason::BadAddress),
            ("rt.selftest=escape@0xzz", Reason::BadAddress),
            ("rt.selftest=escape@0x1ffffffffffffffff", Reason::BadAddress),
            ("rt.selftest=nope", Reason::UnknownSelfTest),
            ("rt.selftst=gic", Reason::UnknownParameter),
            ("rt.", Reason::UnknownParameter),
            ("rt.app", Reason::MissingValue),
        ] {
            assert_eq!(
                refusals(word, &FULL),
                vec![(word.to_string(), reason)],
                "{word}"
            );
        }
    }

    #[test]
    fn a_product_image_refuses_selftests_and_the_bench() {
        assert_eq!(
            refusals("rt.selftest=kernel rt.app=kernel-bench", &PRODUCT),
            vec![
                ("rt.selftest=kernel".into(), Reason::SelfTestsNotBuilt),
                (
                    "rt.app=kernel-bench".into(),
                    Reason::UnknownApp(vec!["latency".into()])
                ),
            ]
        );
    }

    #[test]
    fn repeats_and_app_with_selftest_are_refused() {
        assert_eq!(
            refusals("rt.app=latency rt.app=kernel-bench", &FULL),
            vec![("rt.app=kernel-bench".into(), Reason::Repeated)]
        );
        assert_eq!(
            refusals("rt.app=latency rt.selftest=gic", &FULL),
            vec![("rt.app=latency".into(), Reason::AppWithSelfTest)]
        );
    }

    #[test]
    fn a_refusal_names_its_word() {
        let r = &parse("rt.heartbeat-ms=0", &FULL).unwrap_err()[0];
        assert_eq!(
            r.to_string(),
            "rt: boot argument `rt.heartbeat-ms=0`: out of range 1..=86400000"
        );
    }

    #[test]
    fn the_table_names_every_parameter_once() {
        for (i, p) in PARAMS.iter().enumerate() {
            assert!(p.name.starts_with("rt."), "{}", p.name);
            assert!(!PARAMS[..i].iter().any(|q| q.name == p.name));
            assert!(!p.meaning.is_empty() && !p.range.is_empty() && !p.default.is_empty());
        }
    }

    /// An `rt.` word as a user might type it: a known or made-up name, any value.
    fn word() -> impl Strategy<Value = String> {
        let names = prop::sample::select(vec![
            "rt.app",
            "rt.selftest",
            "rt.heartbeat-ms",
            "rt.latency.interval-us",
            "rt.latency.periods",
            "rt.bogus",
        ]);
        (names, "[ -~]{0,24}").prop_map(|(n, v)| format!("{n}={}", v.replace(' ', "")))
    }

    proptest! {
        /// In range, every number is taken as given.
        #[test]
        fn numbers_in_range_are_taken_exactly(
            hb in HEARTBEAT_MS.0..=HEARTBEAT_MS.1,
            us in LATENCY_INTERVAL_US.0..=LATENCY_INTERVAL_US.1,
            periods in any::<u64>(),
        ) {
            let line = format!(
                "rt.heartbeat-ms={hb} rt.latency.interval-us={us} rt.latency.periods={periods}"
            );
            let args = parse(&line, &FULL).unwrap();
            prop_assert_eq!(
                (args.heartbeat_ms, args.latency_interval_us, args.latency_periods),
                (hb, us, periods)
            );
        }

        /// Out of range, every number is refused, naming its word.
        #[test]
        fn numbers_out_of_range_are_refused(us in any::<u64>()) {
            prop_assume!(!(LATENCY_INTERVAL_US.0..=LATENCY_INTERVAL_US.1).contains(&us));
            let word = format!("rt.latency.interval-us={us}");
            let refused = parse(&word, &FULL).unwrap_err();
            prop_assert_eq!(refused.len(), 1);
            prop_assert_eq!(&refused[0].word, &word);
        }

        /// Whatever the line, either everything is understood or each refusal names one
        /// of the line's `rt.` words; the interval never leaves its range.
        #[test]
        fn any_line_is_understood_or_refused_word_by_word(
            words in prop::collection::vec(word(), 0..6),
        ) {
            let line = words.join(" ");
            match parse(&line, &FULL) {
                Ok(args) => {
                    prop_assert!(
                        (LATENCY_INTERVAL_US.0..=LATENCY_INTERVAL_US.1)
                            .contains(&args.latency_interval_us)
                    );
                    prop_assert!((HEARTBEAT_MS.0..=HEARTBEAT_MS.1).contains(&args.heartbeat_ms));
                    prop_assert!(args.app.is_none_or(|i| i < APPS.len()));
                }
                Err(refused) => {
                    prop_assert!(!refused.is_empty());
                    for r in refused {
                        prop_assert!(words.contains(&r.word), "{} not in {:?}", r.word, words);
                    }
                }
            }
        }
    }
}
