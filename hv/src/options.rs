//! hv's boot options, read from the DTB's `/chosen/bootargs` (QEMU `-append`, the Pi's
//! `cmdline.txt`). Unknown words are ignored: they may be meant for someone else.

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootOptions {
    /// `bulkhead.only=NAME[,NAME..]`: start only these partitions (the others' CPUs stay
    /// in hv). For focused tests and for bringing a board up one partition at a time.
    pub only: Option<alloc::vec::Vec<alloc::string::String>>,
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
                _ => {
                    if let Some(names) = word.strip_prefix("bulkhead.only=") {
                        options.only = Some(names.split(',').map(Into::into).collect());
                    }
                }
            }
        }
        options
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
pub fn for_partition(bootargs: &str, name: &str) -> alloc::string::String {
    let prefix = alloc::format!("{name}.");
    let words: alloc::vec::Vec<&str> = bootargs
        .split_ascii_whitespace()
        .filter(|w| w.starts_with(&prefix))
        .collect();
    words.join(" ")
}

/// The kernel command line of a Linux partition: its console (the PL011 hv emulates), where
/// hv's control page is (for the init script's ready doorbell), then the words meant for it
/// (`NAME.word`) without their prefix, so `linux.quiet` reaches Linux as `quiet`.
pub fn for_linux(bootargs: &str, name: &str, control: u64) -> alloc::string::String {
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
        let all = BootOptions::parse("bulkhead.smoke");
        assert!(all.starts("linux") && all.starts("rt"));
        let rt = BootOptions::parse("bulkhead.only=rt");
        assert!(rt.starts("rt") && !rt.starts("linux"));
        let both = BootOptions::parse("bulkhead.only=rt,linux");
        assert!(both.starts("rt") && both.starts("linux") && !both.starts("rtos"));
    }
}
