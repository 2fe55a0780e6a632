//! The register model of the PL061 GPIO controller hv emulates for Linux (Arm PrimeCell
//! GPIO PL061 TRM, DDI 0190B, 3.3): the RT -> Linux doorbell. Its input line 0
//! ([`DOORBELL_LINE`]) pulses when the RT partition rings ([`VirtualPl061::pulse`]); the
//! edge latches in GPIORIS, whose bit only Linux's acknowledgement (a GPIOIC write, which
//! Linux's `gpio-pl061` driver makes for each edge it handles) clears. Pulses before that
//! coalesce into the one pending edge, so a ringing RT partition costs Linux at most one
//! interrupt per doorbell it has not taken yet. Debian's kernel has the driver built in
//! (`CONFIG_GPIO_PL061=y`) and the GPIO character device (`CONFIG_GPIO_CDEV=y`): user
//! space waits for the edge with `poll()` and needs no kernel module.
//!
//! Registers are 8 bits wide at word-aligned offsets (byte or word accesses: the driver
//! uses `readb`/`writeb`, the AMBA bus reads the ID words with `readl`); reserved offsets
//! read as zero and ignore writes. Portable and host-tested; it never touches hardware:
//! hv's arch side raises the virtual SPI while [`VirtualPl061::line_high`] says so.

use crate::mmio_access::{AccessError, AccessWidth};

/// Size of the register frame.
pub const FRAME_SIZE: u64 = 0x1000;
/// The line the doorbell pulses.
pub const DOORBELL_LINE: u8 = 0;

const GPIODATA_END: u64 = 0x400;
const GPIODIR: u64 = 0x400;
const GPIOIS: u64 = 0x404;
const GPIOIBE: u64 = 0x408;
const GPIOIEV: u64 = 0x40c;
const GPIOIE: u64 = 0x410;
const GPIORIS: u64 = 0x414;
const GPIOMIS: u64 = 0x418;
const GPIOIC: u64 = 0x41c;
const GPIOAFSEL: u64 = 0x420;
const PERIPH_ID: u64 = 0xfe0;
/// GPIOPeriphID0-3 (PL061, revision 0) then GPIOPCellID0-3 (TRM 3.3.13-14).
const ID: [u8; 8] = [0x61, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// What a pulse did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pulse {
    /// A new edge is latched (Linux gets an interrupt if it enabled the line's).
    Latched,
    /// The line's last edge is not acknowledged yet: this one merges into it.
    Coalesced,
    /// The line is configured level-sensitive or as an output: no edge to latch.
    Ignored,
}

/// Counts kept for hv's statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pl061Stats {
    pub pulses: u64,
    pub coalesced: u64,
}

/// The PL061's state. Input pins are low except during a pulse.
#[derive(Clone, Debug, Default)]
pub struct VirtualPl061 {
    dir: u8,
    sense: u8,
    both_edges: u8,
    event: u8,
    enabled: u8,
    /// Edges latched and not yet cleared by GPIOIC.
    latched: u8,
    afsel: u8,
    out: u8,
    stats: Pl061Stats,
}

impl VirtualPl061 {
    /// The reset state (TRM: every register 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// GPIORIS: latched edges of edge-sensitive lines; for level-sensitive inputs, the
    /// level (low) matching GPIOIEV (0 = low is active).
    fn raw_status(&self) -> u8 {
        let level_active = !self.event & !self.dir;
        (self.latched & !self.sense) | (level_active & self.sense)
    }

    /// Whether the controller's interrupt is asserted (GPIOMIS is not zero).
    pub fn line_high(&self) -> bool {
        self.raw_status() & self.enabled != 0
    }

    pub fn stats(&self) -> Pl061Stats {
        self.stats
    }

    /// Input `line` goes high and low again (the RT partition rang).
    pub fn pulse(&mut self, line: u8) -> Pulse {
        let bit = 1u8 << (line & 7);
        self.stats.pulses += 1;
        if self.sense & bit != 0 || self.dir & bit != 0 {
            return Pulse::Ignored;
        }
        // A pulse has both a rising and a falling edge: whichever GPIOIEV/GPIOIBE select.
        if self.latched & bit != 0 {
            self.stats.coalesced += 1;
            return Pulse::Coalesced;
        }
        self.latched |= bit;
        Pulse::Latched
    }

    pub fn read(&self, offset: u64, width: AccessWidth) -> Result<u64, AccessError> {
        check(offset, width)?;
        let value = match offset {
            // Address bits [9:2] mask the data bits read; input pins are low.
            o if o < GPIODATA_END => self.out & self.dir & ((o >> 2) as u8),
            GPIODIR => self.dir,
            GPIOIS => self.sense,
            GPIOIBE => self.both_edges,
            GPIOIEV => self.event,
            GPIOIE => self.enabled,
            GPIORIS => self.raw_status(),
            GPIOMIS => self.raw_status() & self.enabled,
            GPIOAFSEL => self.afsel,
            o if o >= PERIPH_ID => ID[((o - PERIPH_ID) / 4) as usize],
            _ => 0,
        };
        Ok(u64::from(value))
    }

    pub fn write(
        &mut self,
        offset: u64,
        width: AccessWidth,
        value: u64,
    ) -> Result<(), AccessError> {
        check(offset, width)?;
        let v = value as u8;
        match offset {
            o if o < GPIODATA_END => {
                let mask = (o >> 2) as u8;
                self.out = (self.out & !mask) | (v & mask);
            }
            GPIODIR => self.dir = v,
            GPIOIS => self.sense = v,
            GPIOIBE => self.both_edges = v,
            GPIOIEV => self.event = v,
            GPIOIE => self.enabled = v,
            GPIOIC => self.latched &= !v,
            GPIOAFSEL => self.afsel = v,
            // GPIORIS, GPIOMIS and the IDs are read-only; reserved offsets ignore writes.
            _ => {}
        }
        Ok(())
    }
}

fn check(offset: u64, width: AccessWidth) -> Result<(), AccessError> {
    if offset >= FRAME_SIZE {
        return Err(AccessError::OutsideFrame { offset });
    }
    if !matches!(width, AccessWidth::Byte | AccessWidth::Word) {
        return Err(AccessError::BadWidth { offset, width });
    }
    if !offset.is_multiple_of(4) {
        return Err(AccessError::Misaligned { offset, width });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use AccessWidth::{Byte, Double, Half, Word};

    /// The registers as Linux's `gpio-pl061` leaves them for a rising-edge request of
    /// line 0 (probe: GPIOIE = 0; direction_input; irq_set_type: IS and IBE clear, IEV
    /// set; unmask: GPIOIE bit set).
    fn rising_edge_line0() -> VirtualPl061 {
        let mut g = VirtualPl061::new();
        g.write(GPIOIE, Byte, 0).unwrap();
        g.write(GPIODIR, Byte, 0).unwrap();
        g.write(GPIOIS, Byte, 0).unwrap();
        g.write(GPIOIBE, Byte, 0).unwrap();
        g.write(GPIOIEV, Byte, 1).unwrap();
        g.write(GPIOIE, Byte, 1).unwrap();
        g
    }

    #[test]
    fn identifies_itself_as_a_pl061_primecell() {
        let g = VirtualPl061::new();
        let ids: Vec<u64> = (0..8)
            .map(|i| g.read(0xfe0 + 4 * i, Word).unwrap())
            .collect();
        assert_eq!(ids, [0x61, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
    }

    #[test]
    fn resets_to_zero() {
        let g = VirtualPl061::new();
        for offset in (0..0x424).step_by(4) {
            assert_eq!(g.read(offset, Byte), Ok(0), "offset {offset:#x}");
        }
        assert!(!g.line_high());
    }

    #[test]
    fn a_pulse_latches_an_edge_until_linux_acknowledges_it() {
        let mut g = rising_edge_line0();
        assert_eq!(g.pulse(DOORBELL_LINE), Pulse::Latched);
        assert!(g.line_high());
        assert_eq!(g.read(GPIORIS, Byte), Ok(1));
        assert_eq!(g.read(GPIOMIS, Byte), Ok(1));
        // The data register reads the pin, low again after the pulse.
        assert_eq!(g.read(0x3fc, Byte), Ok(0));
        // Further rings merge into the pending edge.
        assert_eq!(g.pulse(DOORBELL_LINE), Pulse::Coalesced);
        assert_eq!(g.pulse(DOORBELL_LINE), Pulse::Coalesced);
        // The driver's irq_ack: GPIOIC = the line's bit.
        g.write(GPIOIC, Byte, 1).unwrap();
        assert!(!g.line_high());
        assert_eq!(g.read(GPIORIS, Byte), Ok(0));
        assert_eq!(g.pulse(DOORBELL_LINE), Pulse::Latched);
        assert_eq!(
            g.stats(),
            Pl061Stats {
                pulses: 4,
                coalesced: 2
            }
        );
    }

    #[test]
    fn a_masked_edge_stays_raw_and_fires_when_unmasked() {
        let mut g = rising_edge_line0();
        g.write(GPIOIE, Byte, 0).unwrap();
        g.pulse(DOORBELL_LINE);
        assert_eq!(g.read(GPIORIS, Byte), Ok(1));
        assert_eq!(g.read(GPIOMIS, Byte), Ok(0));
        assert!(!g.line_high());
        g.write(GPIOIE, Byte, 1).unwrap();
        assert!(g.line_high());
    }

    #[test]
    fn level_sensitive_and_output_lines_latch_no_edge() {
        let mut g = rising_edge_line0();
        g.write(GPIOIS, Byte, 1).unwrap();
        // Level high active: the pin is low, so nothing.
        assert_eq!(g.pulse(0), Pulse::Ignored);
        assert!(!g.line_high());
        // Level low active: asserted while the pin is low, as the TRM's level detection.
        g.write(GPIOIEV, Byte, 0).unwrap();
        assert!(g.line_high());
        let mut g = rising_edge_line0();
        g.write(GPIODIR, Byte, 1).unwrap();
        assert_eq!(g.pulse(0), Pulse::Ignored);
    }

    #[test]
    fn output_data_is_masked_by_the_address_bits() {
        let mut g = VirtualPl061::new();
        g.write(GPIODIR, Byte, 0xf0).unwrap();
        // Address 0x3fc masks all eight bits; 0x200 only bit 7.
        g.write(0x3fc, Byte, 0xff).unwrap();
        assert_eq!(g.read(0x3fc, Byte), Ok(0xf0), "inputs read low");
        g.write(0x200, Byte, 0).unwrap();
        assert_eq!(g.read(0x3fc, Byte), Ok(0x70));
        assert_eq!(g.read(0x100, Byte), Ok(0x40), "only bit 6 is read at 0x100");
    }

    #[test]
    fn odd_accesses_are_refused() {
        let mut g = VirtualPl061::new();
        assert_eq!(
            g.read(0x401, Byte),
            Err(AccessError::Misaligned {
                offset: 0x401,
                width: Byte
            })
        );
        assert_eq!(
            g.read(0x400, Half),
            Err(AccessError::BadWidth {
                offset: 0x400,
                width: Half
            })
        );
        assert!(g.write(0x400, Double, 0).is_err());
        assert_eq!(
            g.read(0x1000, Word),
            Err(AccessError::OutsideFrame { offset: 0x1000 })
        );
        // Read-only and reserved registers ignore writes.
        g.write(GPIORIS, Byte, 0xff).unwrap();
        g.write(0x800, Word, 0xff).unwrap();
        g.write(0xfe0, Word, 0).unwrap();
        assert_eq!(g.read(GPIORIS, Byte), Ok(0));
        assert_eq!(g.read(0x800, Word), Ok(0));
        assert_eq!(g.read(0xfe0, Word), Ok(0x61));
    }

    proptest! {
        /// Whatever Linux writes, the model never panics, the interrupt is high exactly
        /// when GPIOMIS reads non-zero, and after any number of pulses without an
        /// acknowledgement at most one edge per line is pending.
        #[test]
        fn the_line_is_gpiomis_and_pulses_coalesce(
            writes in proptest::collection::vec((0u64..0x1000, any::<u8>(), any::<bool>()), 0..40),
            pulses in 0usize..50,
        ) {
            let mut g = VirtualPl061::new();
            for (offset, value, byte) in writes {
                let width = if byte { Byte } else { Word };
                let _ = g.write(offset & !3, width, u64::from(value));
                let _ = g.read(offset, width);
            }
            let mis = g.read(GPIOMIS, Byte).unwrap();
            prop_assert_eq!(g.line_high(), mis != 0);
            let latched: Vec<Pulse> = (0..pulses).map(|_| g.pulse(DOORBELL_LINE)).collect();
            prop_assert!(latched.iter().filter(|p| **p == Pulse::Latched).count() <= 1);
            let mis = g.read(GPIOMIS, Byte).unwrap();
            prop_assert_eq!(g.line_high(), mis != 0);
        }
    }
}
