//! Whether hv was entered at the exception level it needs, and what to say and do if not.
//!
//! hv must be entered at EL2 (a Pi 4's firmware stub and QEMU's `-kernel` with
//! `virtualization=on` do that). Any other level is a set-up mistake hv cannot repair: at
//! EL1 something else owns EL2, at EL3 nothing below has been set up. hv reports it on the
//! console and halts. This module decides from the raw CurrentEL value; hv's entry code
//! reads the register and carries the decision out. It never touches a register.

use core::fmt;

/// How hv may stop the machine after reporting a wrong level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Halt {
    /// The DTB's PSCI SYSTEM_OFF (the firmware's service to an EL1 OS), else the
    /// board's watchdog, else park the CPU.
    PsciOrWatchdog,
    /// The watchdog, else park: at EL3 hv would be calling itself through PSCI.
    WatchdogOnly,
}

/// hv was entered at `el`, not EL2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrongLevel {
    pub el: u8,
}

impl WrongLevel {
    pub fn halt(self) -> Halt {
        if self.el == 3 {
            Halt::WatchdogOnly
        } else {
            Halt::PsciOrWatchdog
        }
    }
}

impl fmt::Display for WrongLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hv was entered at EL{}, it needs EL2: ", self.el)?;
        match self.el {
            3 => write!(
                f,
                "nothing set up the levels below (QEMU enters an ELF at EL3: boot the flat \
                 system image instead)"
            ),
            1 => write!(
                f,
                "the loader kept EL2 for itself or the machine has no virtualization \
                 (QEMU virt: add virtualization=on; a Pi 4: boot with the firmware's own \
                 stub, no armstub that drops to EL1)"
            ),
            _ => write!(f, "no loader enters a kernel there"),
        }
    }
}

/// CurrentEL.EL (bits 3:2) of the raw register value.
pub fn level(current_el: u64) -> u8 {
    ((current_el >> 2) & 0b11) as u8
}

/// `Ok` at EL2, otherwise what went wrong.
pub fn check(current_el: u64) -> Result<(), WrongLevel> {
    match level(current_el) {
        2 => Ok(()),
        el => Err(WrongLevel { el }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn el2_passes_and_only_the_el_field_counts() {
        assert_eq!(check(0b1000), Ok(()));
        // Reserved bits set around the field change nothing.
        assert_eq!(check(0xffff_fff0 | 0b1000 | 0b11), Ok(()));
    }

    #[test]
    fn el1_and_el3_are_refused_with_what_to_do_and_how_to_halt() {
        let el1 = check(0b0100).unwrap_err();
        assert_eq!(el1, WrongLevel { el: 1 });
        assert_eq!(el1.halt(), Halt::PsciOrWatchdog);
        let text = el1.to_string();
        assert!(
            text.starts_with("hv was entered at EL1, it needs EL2: "),
            "{text}"
        );
        assert!(text.contains("virtualization=on"), "{text}");

        let el3 = check(0b1100).unwrap_err();
        assert_eq!(el3.halt(), Halt::WatchdogOnly, "no PSCI call into itself");
        assert!(el3.to_string().contains("EL3"));
        assert!(el3.to_string().contains("flat system image"));

        assert_eq!(check(0).unwrap_err().el, 0);
    }
}
