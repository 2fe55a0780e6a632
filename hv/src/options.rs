//! hv's boot options, read from the DTB's `/chosen/bootargs` (QEMU `-append`, the Pi's
//! `cmdline.txt`). Unknown words are ignored: they may be meant for someone else.

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootOptions {
    /// `bulkhead.smoke`: power off once every CPU and partition reported ready.
    pub smoke: bool,
}

impl BootOptions {
    pub fn parse(bootargs: &str) -> Self {
        let mut options = Self::default();
        for word in bootargs.split_ascii_whitespace() {
            if word == "bulkhead.smoke" {
                options.smoke = true;
            }
        }
        options
    }
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
}
