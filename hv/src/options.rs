//! hv's boot options, read from the DTB's `/chosen/bootargs` (QEMU `-append`, the Pi's
//! `cmdline.txt`), checked against the table in [`abi::bootargs`]. A `bulkhead.` word hv
//! cannot honour (unknown, malformed, out of range, naming no partition of the board) is an
//! error naming the word, never ignored or bent: a boot that starts something other than
//! what was asked for would pass for one that did. Other words belong to partitions or to
//! nobody and are left to them.
//!
//! This module only parses and decides; it never prints or stops the machine (the caller
//! says FATAL).

use core::fmt;

use abi::bootargs::{self, Parsed, Reader, WordError};
use alloc::string::String;
use alloc::vec::Vec;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootOptions {
    /// `bulkhead.only=NAME[,NAME..]`: start only these partitions (the others' CPUs stay
    /// in hv). For focused tests and for bringing a board up one partition at a time.
    pub only: Option<Vec<String>>,
    /// `bulkhead.smoke`: power off once every CPU and partition reported ready.
    pub smoke: bool,
    /// `bulkhead.selftest=NAME`: exercise a failure path on purpose (QEMU tests).
    pub selftest: Option<SelfTest>,
}

/// Failure paths the integration tests trigger to prove they are reported, not hung.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfTest {
    /// hv reads an unmapped address after its MMU is on: the EL2 vectors must report it.
    El2Fault,
}

/// Why hv refuses its boot arguments; each names the word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OptionsError<'a> {
    Word(WordError<'a>),
    /// A word with a value given twice (which one was meant?).
    Twice(&'a str),
    /// `bulkhead.only=` names a partition the board does not have.
    UnknownPartition {
        word: &'a str,
        name: &'a str,
        /// The board's partitions, comma separated.
        known: String,
    },
}

impl fmt::Display for OptionsError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionsError::Word(e) => write!(f, "boot argument {e}"),
            OptionsError::Twice(word) => {
                write!(f, "boot argument `{word}`: given twice")
            }
            OptionsError::UnknownPartition { word, name, known } => write!(
                f,
                "boot argument `{word}`: the board has no partition `{name}` (it has {known})"
            ),
        }
    }
}

impl BootOptions {
    /// Parses `bootargs` for a board whose partitions are `partitions`.
    pub fn parse<'a>(bootargs: &'a str, partitions: &[&str]) -> Result<Self, OptionsError<'a>> {
        let mut options = Self::default();
        let mut seen: Vec<&str> = Vec::new();
        for word in bootargs.split_ascii_whitespace() {
            if !word.starts_with(bootargs::HV_PREFIX) {
                continue;
            }
            let (arg, parsed) = match bootargs::check(word).map_err(OptionsError::Word)? {
                Some((arg, parsed)) if arg.reader == Reader::Hv => (arg, parsed),
                _ => return Err(OptionsError::Word(WordError::Unknown(word))),
            };
            if parsed != Parsed::Flag {
                if seen.contains(&arg.word) {
                    return Err(OptionsError::Twice(word));
                }
                seen.push(arg.word);
            }
            match (arg.word, parsed) {
                ("bulkhead.smoke", Parsed::Flag) => options.smoke = true,
                ("bulkhead.selftest", Parsed::Choice(c, _)) if c.name == "el2-fault" => {
                    options.selftest = Some(SelfTest::El2Fault)
                }
                ("bulkhead.only", Parsed::PartitionNames(names)) => {
                    let mut only = Vec::new();
                    for name in names.split(',') {
                        if !partitions.contains(&name) {
                            return Err(OptionsError::UnknownPartition {
                                word,
                                name,
                                known: partitions.join(", "),
                            });
                        }
                        only.push(String::from(name));
                    }
                    options.only = Some(only);
                }
                // A row of hv's in the table that this match does not act on: refuse it
                // rather than ignore it (the unit tests keep the two in step).
                _ => return Err(OptionsError::Word(WordError::Unknown(word))),
            }
        }
        Ok(options)
    }

    /// Whether partition `name` is to be started.
    pub fn starts(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    }
}

/// The words of `bootargs` meant for partition `name` (`NAME.word`), joined by spaces:
/// they become that partition's `/chosen/bootargs`.
pub fn for_partition(bootargs: &str, name: &str) -> String {
    let prefix = alloc::format!("{name}.");
    let words: Vec<&str> = bootargs
        .split_ascii_whitespace()
        .filter(|w| w.starts_with(&prefix))
        .collect();
    words.join(" ")
}

/// The kernel command line of a Linux partition: its console (the PL011 hv emulates), where
/// hv's control page is (for the init script's ready doorbell), then the words meant for it
/// (`NAME.word`) without their prefix, so `linux.quiet` reaches Linux as `quiet`.
pub fn for_linux(bootargs: &str, name: &str, control: u64) -> String {
    let prefix = alloc::format!("{name}.");
    let mut line = alloc::format!("console=ttyAMA0 bulkhead.control={control:#x}");
    for word in bootargs.split_ascii_whitespace() {
        if let Some(word) = word.strip_prefix(&prefix) {
            line.push(' ');
            line.push_str(word);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    const BOARD: [&str; 2] = ["linux", "rt"];

    fn parse(args: &str) -> Result<BootOptions, OptionsError<'_>> {
        BootOptions::parse(args, &BOARD)
    }

    fn refusal(args: &str) -> String {
        parse(args).expect_err(args).to_string()
    }

    #[test]
    fn smoke_flag_is_a_whole_word() {
        assert!(parse("console=ttyAMA0 bulkhead.smoke").unwrap().smoke);
        assert!(!parse("").unwrap().smoke);
        assert_eq!(
            refusal("bulkhead.smokey"),
            "boot argument `bulkhead.smokey`: unknown boot argument"
        );
    }

    #[test]
    fn partitions_get_only_their_own_words() {
        let args = "bulkhead.smoke rt.selftest=escape@0x40080000 linux.quiet rt.x";
        assert_eq!(
            for_partition(args, "rt"),
            "rt.selftest=escape@0x40080000 rt.x"
        );
        assert_eq!(for_partition(args, "linux"), "linux.quiet");
        assert_eq!(for_partition(args, "rtos"), "");
    }

    #[test]
    fn selftests_are_named_exactly() {
        assert_eq!(
            parse("bulkhead.selftest=el2-fault").unwrap().selftest,
            Some(SelfTest::El2Fault)
        );
        assert_eq!(
            refusal("bulkhead.selftest=other"),
            "boot argument `bulkhead.selftest=other`: not one of el2-fault"
        );
    }

    #[test]
    fn linux_gets_its_console_control_page_and_unprefixed_words() {
        let args = "bulkhead.smoke linux.quiet linux.init=/bin/sh rt.selftest=gic";
        assert_eq!(
            for_linux(args, "linux", 0x7f_0000_0000),
            "console=ttyAMA0 bulkhead.control=0x7f00000000 quiet init=/bin/sh"
        );
    }

    #[test]
    fn only_names_the_partitions_to_start() {
        let all = parse("bulkhead.smoke").unwrap();
        assert!(all.starts("linux") && all.starts("rt"));
        let rt = parse("bulkhead.only=rt").unwrap();
        assert!(rt.starts("rt") && !rt.starts("linux"));
        let both = parse("bulkhead.only=rt,linux").unwrap();
        assert!(both.starts("rt") && both.starts("linux") && !both.starts("rtos"));
    }

    #[test]
    fn only_refuses_what_would_start_nothing_or_something_else() {
        assert_eq!(
            refusal("bulkhead.smoke bulkhead.only=nonexistent"),
            "boot argument `bulkhead.only=nonexistent`: the board has no partition \
             `nonexistent` (it has linux, rt)"
        );
        assert_eq!(
            refusal("bulkhead.only="),
            "boot argument `bulkhead.only=`: an empty partition name"
        );
        assert_eq!(
            refusal("bulkhead.only=,,,"),
            "boot argument `bulkhead.only=,,,`: an empty partition name"
        );
        assert_eq!(
            refusal("bulkhead.only"),
            "boot argument `bulkhead.only`: this word needs `=VALUE`"
        );
        assert_eq!(
            refusal("bulkhead.only=rt bulkhead.only=linux"),
            "boot argument `bulkhead.only=linux`: given twice"
        );
    }

    #[test]
    fn words_of_others_are_left_alone() {
        // Guest-rt and Linux check their own words; QEMU's and the firmware's are nobody's.
        assert_eq!(
            parse("rt.app=nonsense linux.whatever console=ttyS0 8250.nr_uarts=1").unwrap(),
            BootOptions::default()
        );
    }

    #[test]
    fn every_hv_row_of_the_table_is_acted_on() {
        for arg in abi::bootargs::BOOT_ARGS {
            if arg.reader != Reader::Hv {
                continue;
            }
            let word = match arg.value {
                abi::bootargs::Value::Flag => String::from(arg.word),
                abi::bootargs::Value::PartitionNames => alloc::format!("{}=rt", arg.word),
                abi::bootargs::Value::OneOf(choices) => {
                    alloc::format!("{}={}", arg.word, choices[0].name)
                }
                other => panic!("{}: hv has no value of kind {other:?}", arg.word),
            };
            assert_ne!(parse(&word).unwrap(), BootOptions::default(), "{word}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(args in "\\PC*") {
                let _ = parse(&args);
            }

            #[test]
            fn unknown_hv_words_are_refused_by_name(rest in "[a-z0-9._=-]{0,12}") {
                let word = alloc::format!("bulkhead.{rest}");
                let known = ["bulkhead.smoke", "bulkhead.only=", "bulkhead.selftest="];
                prop_assume!(!known.iter().any(|k| word.starts_with(k)));
                let message = refusal(&word);
                prop_assert!(message.contains(&alloc::format!("`{word}`")), "{}", message);
            }

            #[test]
            fn only_starts_exactly_the_named_partitions(
                names in proptest::sample::subsequence(BOARD.to_vec(), 1..=2)
            ) {
                let args = alloc::format!("bulkhead.smoke bulkhead.only={}", names.join(","));
                let options = parse(&args).unwrap();
                for p in BOARD {
                    prop_assert_eq!(options.starts(p), names.contains(&p));
                }
            }

            #[test]
            fn only_with_an_empty_or_foreign_name_is_refused(
                names in proptest::collection::vec("(linux|rt|[a-z]{0,4})", 1..5)
            ) {
                prop_assume!(names.iter().any(|n| !BOARD.contains(&n.as_str())));
                let word = alloc::format!("bulkhead.only={}", names.join(","));
                let message = refusal(&word);
                prop_assert!(message.contains(&alloc::format!("`{word}`")), "{}", message);
            }

            #[test]
            fn other_words_change_nothing(
                others in proptest::collection::vec("[a-z][a-z0-9.=,-]{0,10}", 0..6)
            ) {
                let others: Vec<String> = others
                    .into_iter()
                    .filter(|w| !w.starts_with("bulkhead."))
                    .collect();
                let args = alloc::format!("{} bulkhead.only=rt", others.join(" "));
                let options = parse(&args).unwrap();
                prop_assert!(options.starts("rt") && !options.starts("linux"));
            }
        }
    }
}
