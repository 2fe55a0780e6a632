//! Decoding of ESR_ELx syndrome values into words a person can act on.
//!
//! Portable (host-tested). Field layouts from the Arm ARM (DDI 0487), section D24.2.40
//! "ESR_EL2": EC in bits [31:26], IL bit 25, ISS in [24:0]; for data aborts ISV (24),
//! SAS (23:22), SSE (21), SRT (20:16), SF (15), WnR (6), DFSC (5:0).

use core::fmt;

/// A raw ESR value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Esr(pub u64);

/// Decoded data-abort syndrome (ISS when EC is a data abort).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataAbort {
    /// ISV: the access size/register fields below are valid.
    pub valid: bool,
    /// Access size in bytes (1, 2, 4, 8).
    pub size: u8,
    pub sign_extend: bool,
    /// Register transferred (31 = xzr).
    pub register: u8,
    pub sixty_four: bool,
    pub write: bool,
    /// Data fault status code.
    pub dfsc: u8,
}

impl Esr {
    #[inline]
    pub fn ec(self) -> u8 {
        ((self.0 >> 26) & 0x3f) as u8
    }

    #[inline]
    pub fn iss(self) -> u32 {
        (self.0 & 0x1ff_ffff) as u32
    }

    /// The exception class by name.
    pub fn class(self) -> &'static str {
        match self.ec() {
            0x00 => "unknown reason",
            0x01 => "trapped WFI/WFE",
            0x07 => "trapped FP/SIMD access",
            0x0e => "illegal execution state",
            0x11 => "SVC (AArch32)",
            0x12 => "HVC (AArch32)",
            0x13 => "SMC (AArch32)",
            0x15 => "SVC",
            0x16 => "HVC",
            0x17 => "SMC",
            0x18 => "trapped system register access",
            0x20 => "instruction abort from a lower EL",
            0x21 => "instruction abort at the same EL",
            0x22 => "PC alignment fault",
            0x24 => "data abort from a lower EL",
            0x25 => "data abort at the same EL",
            0x26 => "SP alignment fault",
            0x2c => "trapped floating-point exception",
            0x2f => "SError",
            0x30 | 0x31 => "breakpoint",
            0x32 | 0x33 => "software step",
            0x34 | 0x35 => "watchpoint",
            0x3c => "BRK instruction",
            _ => "reserved exception class",
        }
    }

    #[inline]
    pub fn data_abort(self) -> Option<DataAbort> {
        if !matches!(self.ec(), 0x24 | 0x25) {
            return None;
        }
        let iss = self.iss();
        Some(DataAbort {
            valid: iss & (1 << 24) != 0,
            size: 1 << ((iss >> 22) & 0b11),
            sign_extend: iss & (1 << 21) != 0,
            register: ((iss >> 16) & 0x1f) as u8,
            sixty_four: iss & (1 << 15) != 0,
            write: iss & (1 << 6) != 0,
            dfsc: (iss & 0x3f) as u8,
        })
    }
}

impl Esr {
    /// The instruction fault status code (IFSC, ISS [5:0]) when EC is an instruction abort.
    #[inline]
    pub fn instruction_abort(self) -> Option<u8> {
        matches!(self.ec(), 0x20 | 0x21).then_some((self.iss() & 0x3f) as u8)
    }
}

impl DataAbort {
    /// The register value a load of `value` leaves: the accessed bytes only, sign-extended
    /// when the syndrome says so (SSE: LDRSB, LDRSH, LDRSW), and for a W register (SF
    /// clear) the upper 32 bits zero, as every write of a W register leaves them.
    #[inline]
    pub fn loaded(self, value: u64) -> u64 {
        // Bits above the access: 56 for a byte, 0 for a doubleword.
        let unused = 64 - 8 * u32::from(self.size.clamp(1, 8));
        let value = if self.sign_extend {
            (((value << unused) as i64) >> unused) as u64
        } else {
            (value << unused) >> unused
        };
        if self.sixty_four {
            value
        } else {
            value & 0xffff_ffff
        }
    }
}

/// Names a data/instruction fault status code.
pub fn fault_status(fsc: u8) -> &'static str {
    match fsc {
        0x00..=0x03 => "address size fault",
        0x04..=0x07 => "translation fault",
        0x08..=0x0b => "access flag fault",
        0x0c..=0x0f => "permission fault",
        0x10 => "synchronous external abort",
        0x21 => "alignment fault",
        0x30 => "TLB conflict abort",
        _ => "other fault",
    }
}

impl fmt::Display for Esr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (EC {:#04x})", self.class(), self.ec())?;
        if let Some(da) = self.data_abort() {
            write!(
                f,
                ", {} level {}, {}",
                fault_status(da.dfsc),
                da.dfsc & 0b11,
                if da.write { "write" } else { "read" }
            )?;
            if da.valid {
                write!(f, " of {} bytes via x{}", da.size, da.register)?;
            }
        }
        if let Some(ifsc) = self.instruction_abort() {
            write!(
                f,
                ", {} level {}, instruction fetch",
                fault_status(ifsc),
                ifsc & 0b11
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_an_instruction_abort_and_its_fault() {
        // A stage-2 permission fault at level 3 on a fetch from EL1 (EC 0x20, IFSC 0x0f).
        let esr = Esr((0x20 << 26) | (1 << 25) | 0x0f);
        assert_eq!(esr.instruction_abort(), Some(0x0f));
        assert_eq!(esr.data_abort(), None);
        assert_eq!(
            alloc::format!("{esr}"),
            "instruction abort from a lower EL (EC 0x20), permission fault level 3, \
             instruction fetch"
        );
        assert_eq!(Esr(0x24 << 26).instruction_abort(), None);
    }

    #[test]
    fn decodes_a_data_abort_store() {
        // str w1, [x0] faulting at EL2 on a level-3 translation fault:
        // EC 0x25, IL, ISV, SAS = 2 (4 bytes), SRT = 1, WnR, DFSC = 0b000111.
        let esr =
            Esr((0x25 << 26) | (1 << 25) | (1 << 24) | (2 << 22) | (1 << 16) | (1 << 6) | 0b111);
        let da = esr.data_abort().expect("is a data abort");
        assert_eq!(
            da,
            DataAbort {
                valid: true,
                size: 4,
                sign_extend: false,
                register: 1,
                sixty_four: false,
                write: true,
                dfsc: 0b111,
            }
        );
        assert_eq!(
            std::format!("{esr}"),
            "data abort at the same EL (EC 0x25), translation fault level 3, write of 4 bytes via x1"
        );
    }

    #[test]
    fn decodes_a_64_bit_load_from_a_lower_el() {
        let esr = Esr((0x24 << 26) | (1 << 24) | (3 << 22) | (7 << 16) | (1 << 15) | 0b1101);
        let da = esr.data_abort().unwrap();
        assert_eq!(
            (da.size, da.register, da.sixty_four, da.write),
            (8, 7, true, false)
        );
        assert_eq!(fault_status(da.dfsc), "permission fault");
    }

    #[test]
    fn other_classes_have_no_data_abort_fields() {
        let hvc = Esr((0x16 << 26) | (1 << 25) | 0x1234);
        assert_eq!(hvc.class(), "HVC");
        assert_eq!(hvc.iss(), 0x1234);
        assert!(hvc.data_abort().is_none());
        assert_eq!(Esr(0x3f << 26).class(), "reserved exception class");
    }

    mod random {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any syndrome decodes and prints: a data abort exactly for EC 0x24/0x25 with
            /// fields in range, an instruction abort exactly for EC 0x20/0x21.
            #[test]
            fn every_syndrome_decodes(raw in any::<u64>(), value in any::<u64>()) {
                let esr = Esr(raw);
                let text = alloc::format!("{esr}");
                prop_assert!(text.contains(esr.class()));
                let ec = (raw >> 26) & 0x3f;
                prop_assert_eq!(esr.data_abort().is_some(), ec == 0x24 || ec == 0x25);
                prop_assert_eq!(esr.instruction_abort().is_some(), ec == 0x20 || ec == 0x21);
                if let Some(ifsc) = esr.instruction_abort() {
                    prop_assert!(ifsc < 64 && text.contains("instruction fetch"));
                }
                if let Some(da) = esr.data_abort() {
                    prop_assert!([1, 2, 4, 8].contains(&da.size));
                    prop_assert!(da.register < 32 && da.dfsc < 64);
                    let loaded = da.loaded(value);
                    let bits = 8 * u32::from(da.size);
                    if !da.sixty_four {
                        prop_assert_eq!(loaded >> 32, 0);
                    }
                    if !da.sign_extend && bits < 64 {
                        prop_assert_eq!(loaded >> bits, 0);
                    }
                    if bits < 64 {
                        prop_assert_eq!(loaded & ((1 << bits) - 1), value & ((1 << bits) - 1));
                    }
                }
            }
        }
    }
}
