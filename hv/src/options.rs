//! hv's boot options, read from the DTB's `/chosen/bootargs` (QEMU `-append`, the Pi's
//! `cmdline.txt`). Unknown words are ignored: they may be meant for someone else.

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootOptions {
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

impl BootOptions {
    pub fn parse(bootargs: &str) -> Self {
        let mut options = Self::default();
        for word in bootargs.split_ascii_whitespace() {
            match word {
                "bulkhead.smoke" => options.smoke = true,
                "bulkhead.selftest=el2-fault" => options.selftest = Some(SelfTest::El2Fault),
                _ => {}
            }
        }
        options
    }
}

/// The words of `bootargs` meant for partition `name` (`NAME.word`), joined by spaces:
/// they become that partition's `/chosen/bootargs`.
pub fn for_partition(bootargs: &str, name: &str) -> alloc::string::String {
    let prefix = alloc::format!("{name}.");
    let words: alloc::vec::Vec<&str> = bootargs
        .split_ascii_whitespace()
        .filter(|w| w.starts_with(&prefix))
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke_flag_is_a_whole_word() {
        assert!(BootOptions::parse("console=ttyAMA0 bulkhead.smoke").smoke);
        assert!(!BootOptions::parse("bulkhead.smokey").smoke);
        assert!(!BootOptions::parse("").smoke);
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
            BootOptions::parse("bulkhead.selftest=el2-fault").selftest,
            Some(SelfTest::El2Fault)
        );
        assert_eq!(BootOptions::parse("bulkhead.selftest=other").selftest, None);
    }
}
