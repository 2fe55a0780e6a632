//! guest-rt's boot arguments: the `rt.*` words of the partition's `/chosen/bootargs`
//! (hv passes the RT partition exactly the machine's words that start with `rt.`).
//!
//! The words, their syntax and their ranges are `abi::bootargs`'s table, the one hv and
//! `cargo xtask` check too: this module adds only what depends on the image (which apps
//! and self-tests it has, and that an app and a self-test exclude each other) and turns a
//! word into [`BootArgs`]. Every `rt.*` word is either understood or refused by name with
//! its reason ([`Refusal`]); a value that cannot be honoured is refused, never clamped or
//! replaced by a default. Words without the `rt.` prefix belong
//! to someone else (a bare loader's own) and are left alone. Deciding what a refusal does
//! on target (run nothing, say why) is the runtime's; this module never prints.

use abi::bootargs::{self, Choice, ChoiceArgument, Parsed, Value, WordError};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// `rt.control.period-us` when absent (1 kHz; abi's table says the same; a test checks).
pub const DEFAULT_CONTROL_PERIOD_US: u64 = 1_000;
/// `rt.heartbeat-ms` when absent (abi's table says the same; a test checks).
pub const DEFAULT_HEARTBEAT_MS: u64 = 10_000;
/// `rt.latency.interval-us` when absent (abi's table says the same; a test checks).
pub const DEFAULT_LATENCY_INTERVAL_US: u64 = 1_000;

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
    pub control_period_us: u64,
}

impl Default for BootArgs {
    fn default() -> Self {
        BootArgs {
            app: None,
            selftest: None,
            heartbeat_ms: DEFAULT_HEARTBEAT_MS,
            latency_interval_us: DEFAULT_LATENCY_INTERVAL_US,
            latency_periods: 0,
            control_period_us: DEFAULT_CONTROL_PERIOD_US,
        }
    }
}

/// Why a word is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// An `rt.` word abi's table does not have.
    UnknownParameter,
    /// In abi's table but not read by this kernel.
    NotReadHere,
    /// Refused by abi's table for a reason of its own (its message).
    Table(String),
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
            Self::NotReadHere => write!(f, "not read by this kernel"),
            Self::Table(message) => write!(f, "{message}"),
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

/// The range abi's table gives a numeric word.
pub fn range(word: &str) -> Option<(u64, u64)> {
    match bootargs::row(word)?.value {
        Value::Number { min, max } => Some((min, max)),
        _ => None,
    }
}

/// The self-test abi's table checked, as guest-rt runs it.
fn selftest(choice: &Choice, address: Option<u64>) -> Result<SelfTest, Reason> {
    match (choice.argument, address) {
        (ChoiceArgument::HexAddress, Some(addr)) if choice.name == "escape" => {
            Ok(SelfTest::Escape(addr))
        }
        _ => NAMED_SELFTESTS
            .iter()
            .find(|(name, _)| *name == choice.name)
            .map(|&(_, test)| test)
            // In abi's table but not built into this kernel: a table this kernel predates.
            .ok_or(Reason::UnknownSelfTest),
    }
}

/// What abi's check refused, in guest-rt's terms.
fn reason(error: WordError, catalog: &Catalog) -> Reason {
    match error {
        WordError::Unknown(_) => Reason::UnknownParameter,
        WordError::MissingValue(_) => Reason::MissingValue,
        WordError::NotANumber(_) => Reason::NotANumber,
        WordError::OutOfRange { min, max, .. } => Reason::OutOfRange { min, max },
        WordError::NotAChoice { word, .. } if word.starts_with("rt.app=") => {
            Reason::UnknownApp(catalog.apps.iter().map(|a| a.to_string()).collect())
        }
        WordError::NotAChoice { word, .. } if word.starts_with("rt.selftest=escape") => {
            Reason::BadAddress
        }
        WordError::NotAChoice { .. } => Reason::UnknownSelfTest,
        // No `rt.` row is a flag or a partition list; should one become one, its message
        // still names the word.
        other => Reason::Table(other.to_string()),
    }
}

/// Parses `line` against what this image has: every `rt.*` word understood, or every
/// refused one with its reason (in line order).
pub fn parse(line: &str, catalog: &Catalog) -> Result<BootArgs, Vec<Refusal>> {
    let mut args = BootArgs::default();
    let mut refused = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut app_word = None;
    for word in line.split_ascii_whitespace() {
        if !word.starts_with(bootargs::RT_PREFIX) {
            continue;
        }
        let name = word.split_once('=').map_or(word, |(name, _)| name);
        let refuse = |reason| Refusal {
            word: word.to_string(),
            reason,
        };
        if bootargs::row(word).is_none() {
            refused.push(refuse(Reason::UnknownParameter));
            continue;
        }
        if seen.contains(&name) {
            refused.push(refuse(Reason::Repeated));
            continue;
        }
        seen.push(name);
        if name == "rt.selftest" && !catalog.selftests && word.contains('=') {
            refused.push(refuse(Reason::SelfTestsNotBuilt));
            continue;
        }
        let parsed = match bootargs::check(word) {
            Ok(Some((_, parsed))) => parsed,
            Ok(None) => continue,
            Err(error) => {
                refused.push(refuse(reason(error, catalog)));
                continue;
            }
        };
        let outcome = match (name, parsed) {
            ("rt.app", Parsed::Choice(choice, _)) => {
                match catalog.apps.iter().position(|&a| a == choice.name) {
                    Some(i) => {
                        args.app = Some(i);
                        app_word = Some(word);
                        Ok(())
                    }
                    None => Err(Reason::UnknownApp(
                        catalog.apps.iter().map(|a| a.to_string()).collect(),
                    )),
                }
            }
            ("rt.selftest", Parsed::Choice(choice, address)) => {
                selftest(choice, address).map(|t| args.selftest = Some(t))
            }
            ("rt.heartbeat-ms", Parsed::Number(n)) => {
                args.heartbeat_ms = n;
                Ok(())
            }
            ("rt.latency.interval-us", Parsed::Number(n)) => {
                args.latency_interval_us = n;
                Ok(())
            }
            ("rt.latency.periods", Parsed::Number(n)) => {
                args.latency_periods = n;
                Ok(())
            }
            ("rt.control.period-us", Parsed::Number(n)) => {
                args.control_period_us = n;
                Ok(())
            }
            // A row abi's table has and this kernel does not read: refused, not ignored.
            _ => Err(Reason::NotReadHere),
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
                control_period_us: DEFAULT_CONTROL_PERIOD_US,
            }
        );
        assert_eq!(parse("rt.app=kernel-bench", &FULL).unwrap().app, Some(1));
        assert_eq!(
            parse("rt.control.period-us=500", &FULL)
                .unwrap()
                .control_period_us,
            500
        );
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

    const HEARTBEAT_MS: (u64, u64) = (1, 86_400_000);
    const LATENCY_INTERVAL_US: (u64, u64) = (10, 1_000_000);
    const CONTROL_PERIOD_US: (u64, u64) = (100, 10_000);

    #[test]
    fn ranges_are_abis() {
        assert_eq!(range("rt.heartbeat-ms"), Some(HEARTBEAT_MS));
        assert_eq!(range("rt.latency.interval-us"), Some(LATENCY_INTERVAL_US));
        assert_eq!(range("rt.app"), None);
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
            ("rt.control.period-us=99", range(CONTROL_PERIOD_US)),
            ("rt.control.period-us=10001", range(CONTROL_PERIOD_US)),
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
    fn every_rt_row_of_abis_table_is_read_here_with_its_default() {
        for row in bootargs::BOOT_ARGS
            .iter()
            .filter(|r| r.reader == bootargs::Reader::GuestRt)
        {
            // Each row's word with a valid value parses (nothing is "not read here").
            let value = match row.value {
                Value::Number { min, .. } => min.to_string(),
                Value::OneOf(choices) => match choices[0].argument {
                    ChoiceArgument::None => choices[0].name.to_string(),
                    ChoiceArgument::HexAddress => format!("{}@0x1000", choices[0].name),
                },
                other => panic!("{}: {other:?} is not an rt. value kind", row.word),
            };
            let line = format!("{}={value}", row.word);
            let catalog = Catalog {
                apps: &[value.as_str()],
                selftests: true,
            };
            assert!(parse(&line, &catalog).is_ok(), "{line}");
        }
        let defaults = BootArgs::default();
        for (word, ours) in [
            ("rt.heartbeat-ms", defaults.heartbeat_ms),
            ("rt.latency.interval-us", defaults.latency_interval_us),
            ("rt.control.period-us", defaults.control_period_us),
        ] {
            let row = bootargs::row(word).unwrap();
            // The table's default starts with the number ("1000, 1 kHz").
            let number = row.default.split(|c: char| !c.is_ascii_digit()).next();
            assert_eq!(number, Some(ours.to_string().as_str()), "{word}");
        }
    }

    #[test]
    fn every_selftest_of_abis_table_is_built_in() {
        for choice in bootargs::RT_SELFTESTS {
            assert!(
                choice.argument == ChoiceArgument::HexAddress
                    || NAMED_SELFTESTS.iter().any(|(n, _)| *n == choice.name),
                "{}",
                choice.name
            );
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
