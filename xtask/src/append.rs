//! The boot arguments a user adds with `--append`: split into words and checked against
//! the table in [`abi::bootargs`] and the board, so a typo or an out-of-range value is
//! reported before anything is built or booted (hv and guest-rt check them again at boot).
//!
//! This module only checks; it never builds a command line or runs anything.

use abi::bootargs::{self, Parsed};
use platform::config::Config;

use crate::Error;

/// The words of `text`, each of Bulkhead's checked; others (for QEMU, the firmware) pass.
pub fn words(text: &str, config: &Config) -> Result<Vec<String>, Error> {
    let mut words = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for word in text.split_ascii_whitespace() {
        let checked = bootargs::check(word);
        // A word with a value twice: which one was meant? (hv refuses it too.)
        if let Ok(Some((arg, parsed))) = checked {
            if !matches!(parsed, Parsed::Flag | Parsed::Passed(_)) {
                if seen.contains(&arg.word) {
                    return Err(Error::new(format!("--append: `{word}`: given twice")));
                }
                seen.push(arg.word);
            }
        }
        match checked {
            Err(e) => {
                return Err(Error::new(format!(
                    "--append: {e} (see `cargo xtask help`)"
                )))
            }
            Ok(Some((_, Parsed::PartitionNames(names)))) => {
                for name in names.split(',') {
                    if !config.partitions.iter().any(|p| p.name == name) {
                        let known: Vec<&str> =
                            config.partitions.iter().map(|p| p.name.as_str()).collect();
                        return Err(Error::new(format!(
                            "--append: `{word}`: board `{}` has no partition `{name}` (it has {})",
                            config.name,
                            known.join(", ")
                        )));
                    }
                }
            }
            Ok(_) => {}
        }
        words.push(word.to_string());
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn virt() -> Config {
        crate::boards::load("virt").expect("the virt board loads")
    }

    #[test]
    fn passes_good_words_in_order() {
        let words = words(
            "  rt.app=latency linux.quiet\tconsole=ttyAMA0 bulkhead.only=rt ",
            &virt(),
        )
        .unwrap();
        assert_eq!(
            words,
            [
                "rt.app=latency",
                "linux.quiet",
                "console=ttyAMA0",
                "bulkhead.only=rt"
            ]
        );
    }

    #[test]
    fn reports_unknown_and_bad_words_by_name() {
        for (text, expected) in [
            ("bulkhead.smok", "`bulkhead.smok`: unknown boot argument"),
            (
                "rt.latency.interval-us=0",
                "`rt.latency.interval-us=0`: out of range",
            ),
            ("rt.app=bogus", "`rt.app=bogus`: not one of"),
            (
                "bulkhead.only=nonexistent",
                "`bulkhead.only=nonexistent`: board `virt` has no partition `nonexistent`",
            ),
            (
                "bulkhead.only=,,,",
                "`bulkhead.only=,,,`: an empty partition name",
            ),
        ] {
            let e = words(text, &virt()).unwrap_err().to_string();
            assert!(e.contains(expected), "{text}: {e}");
        }
    }
}
