//! The emulated PL011 UART a partition (Debian's `amba-pl011` driver) sees when it shares
//! hv's physical UART.
//!
//! The partition's stage 2 leaves the UART page unmapped, so every access traps and the
//! arch code hands it to [`VirtualPl011::read`] / [`VirtualPl011::write`]. This module owns
//! the registers the guest driver sees, a 32-entry receive FIFO that hv fills with typed
//! bytes ([`VirtualPl011::push_rx`]), the bytes the guest wrote until hv takes them
//! ([`VirtualPl011::take_tx`]), and the level of the UART's interrupt line
//! ([`VirtualPl011::line_high`]), which hv injects as a level-sensitive virtual SPI.
//!
//! It must never touch hardware, allocate, wait or panic on a guest access: bad widths and
//! offsets are [`AccessError`]s (a guest fault for the arch side).
//!
//! Output is "transmitted" the moment the guest writes DR, so the transmit FIFO is empty
//! (FR.TXFE = 1, TXFF = 0, BUSY = 0) unless hv's console is backed up: then hv marks it
//! full ([`VirtualPl011::set_tx_full`]) and the guest waits, as for a slow real UART. The interrupt rules that follow from this are
//! in [`VirtualPl011::raw_interrupts`]'s notes (and the tests drive a stand-in of Linux
//! 6.1's pl011 transmit/receive paths through them).
//!
//! Source for every offset, bit and reset value: Arm PrimeCell UART (PL011) Technical
//! Reference Manual r1p5, Arm DDI 0183G: table 3-1 (register summary) and section 3.3
//! (register descriptions: DR, RSR/ECR, FR, LCR_H, CR, IFLS, IMSC/RIS/MIS/ICR, the
//! identification registers) and the interrupt descriptions in chapter 2.

#![forbid(unsafe_code)]

use crate::mmio_access::{AccessError, AccessWidth};

/// Size of the register frame (DDI 0183G table 3-1: 0x000-0xFFC).
pub const FRAME_SIZE: u64 = 0x1000;
/// Receive FIFO depth of an r1p5 PL011 (DDI 0183G: 32 entries from r1p5 on; Linux's
/// driver derives the same from PeriphID2's revision field).
pub const RX_FIFO_DEPTH: usize = 32;
/// Guest output held until [`VirtualPl011::take_tx`]: one FIFO's worth. hv drains after
/// every trapped access, and one access writes at most one byte, so this never fills in
/// practice; if it does, further bytes are dropped and counted in [`Stats::tx_dropped`].
pub const TX_CAPACITY: usize = 32;

/// Register offsets, DDI 0183G table 3-1.
mod reg {
    pub const DR: u64 = 0x000;
    pub const RSR_ECR: u64 = 0x004;
    pub const FR: u64 = 0x018;
    pub const ILPR: u64 = 0x020;
    pub const IBRD: u64 = 0x024;
    pub const FBRD: u64 = 0x028;
    pub const LCR_H: u64 = 0x02c;
    pub const CR: u64 = 0x030;
    pub const IFLS: u64 = 0x034;
    pub const IMSC: u64 = 0x038;
    pub const RIS: u64 = 0x03c;
    pub const MIS: u64 = 0x040;
    pub const ICR: u64 = 0x044;
    pub const DMACR: u64 = 0x048;
    /// PeriphID0-3 then PCellID0-3, one byte per word.
    pub const ID_FIRST: u64 = 0xfe0;
    pub const ID_LAST: u64 = 0xffc;
}

/// Identification bytes of an r1p5 PL011, DDI 0183G UARTPeriphID0-3 and UARTPCellID0-3:
/// PeriphID = 0x0034_1011 (part 0x011, designer 0x41 Arm, revision 3), PCellID =
/// 0xB105_F00D. Linux's AMBA bus matches `amba-pl011` on these, and takes the 32-entry
/// FIFO size from the revision.
const ID_BYTES: [u8; 8] = [0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// UARTFR bits, DDI 0183G UARTFR description.
mod fr {
    pub const CTS: u32 = 1 << 0;
    pub const DSR: u32 = 1 << 1;
    pub const DCD: u32 = 1 << 2;
    pub const BUSY: u32 = 1 << 3;
    pub const RXFE: u32 = 1 << 4;
    pub const TXFF: u32 = 1 << 5;
    pub const RXFF: u32 = 1 << 6;
    pub const TXFE: u32 = 1 << 7;
}

/// UARTRSR/UARTECR overrun bit, DDI 0183G UARTRSR/UARTECR description.
const RSR_OE: u32 = 1 << 3;

/// UARTLCR_H FIFO enable, DDI 0183G UARTLCR_H description.
const LCR_H_FEN: u32 = 1 << 4;

/// UARTCR bits, DDI 0183G UARTCR description (bits 6:3 are reserved).
mod cr {
    pub const UARTEN: u32 = 1 << 0;
    pub const LBE: u32 = 1 << 7;
    pub const TXE: u32 = 1 << 8;
    pub const RXE: u32 = 1 << 9;
    pub const IMPLEMENTED: u32 = 0xff87;
}

/// Interrupt bits, identical in IMSC, RIS, MIS and ICR (DDI 0183G, their descriptions).
pub mod int {
    pub const RX: u32 = 1 << 4;
    pub const TX: u32 = 1 << 5;
    pub const RT: u32 = 1 << 6;
    pub const OE: u32 = 1 << 10;
    /// Bits 10:0; the modem (0-3) and framing/parity/break (7-9) sources never fire here.
    pub const ALL: u32 = 0x7ff;
}

/// Implemented bits of the plain storage registers (DDI 0183G, their descriptions).
const ILPR_BITS: u32 = 0xff;
const IBRD_BITS: u32 = 0xffff;
const FBRD_BITS: u32 = 0x3f;
const LCR_H_BITS: u32 = 0xff;
const IFLS_BITS: u32 = 0x3f;

/// Reset values, DDI 0183G table 3-1: CR has TXE and RXE set (UARTEN clear), IFLS selects
/// half-full for both FIFOs.
const CR_RESET: u32 = cr::TXE | cr::RXE;
const IFLS_RESET: u32 = 0x12;

/// What the model has counted since [`VirtualPl011::new`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes the guest wrote to DR (including any dropped or looped back).
    pub tx_bytes: u64,
    /// Of those, bytes lost because [`VirtualPl011::take_tx`] was not called in time.
    pub tx_dropped: u64,
    /// Typed bytes accepted by [`VirtualPl011::push_rx`].
    pub rx_bytes: u64,
    /// Typed bytes refused because the receive FIFO was full (the guest sees RSR.OE).
    pub rx_overflows: u64,
    /// Accesses to reserved offsets inside the frame (read as zero, writes ignored).
    pub reserved_accesses: u64,
}

/// One emulated PL011. See the module notes.
pub struct VirtualPl011 {
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    /// Receive status (only OE is ever set).
    rsr: u32,
    /// The interrupt sources that are events rather than FIFO levels: TXIS and OEIS.
    /// The receive sources are computed from the FIFO (see [`Self::raw_interrupts`]).
    latched: u32,
    rx: [u8; RX_FIFO_DEPTH],
    rx_head: usize,
    rx_len: usize,
    tx: [u8; TX_CAPACITY],
    tx_len: usize,
    /// Backpressure from hv: the console behind this UART cannot take more right now
    /// ([`Self::set_tx_full`]).
    tx_full: bool,
    stats: Stats,
}

impl Default for VirtualPl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl VirtualPl011 {
    /// A PL011 in its reset state: disabled (CR.UARTEN = 0), so Linux's console setup
    /// does not try to derive a baud rate from the zero divisors, and both FIFOs empty.
    pub const fn new() -> Self {
        Self {
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_RESET,
            ifls: IFLS_RESET,
            imsc: 0,
            rsr: 0,
            latched: 0,
            rx: [0; RX_FIFO_DEPTH],
            rx_head: 0,
            rx_len: 0,
            tx: [0; TX_CAPACITY],
            tx_len: 0,
            tx_full: false,
            stats: Stats {
                tx_bytes: 0,
                tx_dropped: 0,
                rx_bytes: 0,
                rx_overflows: 0,
                reserved_accesses: 0,
            },
        }
    }

    /// A guest read of `width` at `offset` into the frame. Reading DR pops the receive
    /// FIFO, so this takes `&mut self`.
    pub fn read(&mut self, offset: u64, width: AccessWidth) -> Result<u64, AccessError> {
        check_access(offset, width)?;
        let value = match offset {
            reg::DR => self.pop_rx(),
            reg::RSR_ECR => self.rsr,
            reg::FR => self.flags(),
            reg::ILPR => self.ilpr,
            reg::IBRD => self.ibrd,
            reg::FBRD => self.fbrd,
            reg::LCR_H => self.lcr_h,
            reg::CR => self.cr,
            reg::IFLS => self.ifls,
            reg::IMSC => self.imsc,
            reg::RIS => self.raw_interrupts(),
            reg::MIS => self.raw_interrupts() & self.imsc,
            // ICR is write-only; DMACR reads as zero because there is no DMA.
            reg::ICR | reg::DMACR => 0,
            reg::ID_FIRST..=reg::ID_LAST => {
                u32::from(ID_BYTES[((offset - reg::ID_FIRST) / 4) as usize])
            }
            _ => {
                self.stats.reserved_accesses += 1;
                0
            }
        };
        Ok(u64::from(value) & width.mask())
    }

    /// A guest write of `width` at `offset`. A write narrower than its register changes
    /// only the bytes it covers (Linux uses 16-bit accesses, earlycon 8-bit ones to DR).
    /// Read-only registers (FR, RIS, MIS, the IDs) and DMACR ignore writes.
    pub fn write(
        &mut self,
        offset: u64,
        width: AccessWidth,
        value: u64,
    ) -> Result<(), AccessError> {
        check_access(offset, width)?;
        let mask = width.mask() as u32;
        let value = value as u32 & mask;
        let merge = |old: u32, bits: u32| ((old & !mask) | value) & bits;
        match offset {
            reg::DR => self.transmit(value as u8),
            // Any write to ECR clears the error status (DDI 0183G UARTECR).
            reg::RSR_ECR => self.rsr = 0,
            reg::ILPR => self.ilpr = merge(self.ilpr, ILPR_BITS),
            reg::IBRD => self.ibrd = merge(self.ibrd, IBRD_BITS),
            reg::FBRD => self.fbrd = merge(self.fbrd, FBRD_BITS),
            reg::LCR_H => self.lcr_h = merge(self.lcr_h, LCR_H_BITS),
            reg::CR => self.write_cr(merge(self.cr, cr::IMPLEMENTED)),
            reg::IFLS => self.ifls = merge(self.ifls, IFLS_BITS),
            reg::IMSC => self.write_imsc(merge(self.imsc, int::ALL)),
            reg::ICR => self.latched &= !value,
            reg::FR | reg::RIS | reg::MIS | reg::DMACR => {}
            reg::ID_FIRST..=reg::ID_LAST => {}
            _ => self.stats.reserved_accesses += 1,
        }
        Ok(())
    }

    /// Queues a byte typed for this partition. Returns false, and counts it, when the
    /// receive FIFO is full: like the real UART the byte is lost and RSR.OE and the
    /// overrun interrupt are raised, so the guest can see it too.
    pub fn push_rx(&mut self, byte: u8) -> bool {
        if self.rx_len == RX_FIFO_DEPTH {
            self.stats.rx_overflows += 1;
            self.rsr |= RSR_OE;
            self.latched |= int::OE;
            return false;
        }
        self.rx[(self.rx_head + self.rx_len) % RX_FIFO_DEPTH] = byte;
        self.rx_len += 1;
        self.stats.rx_bytes += 1;
        true
    }

    /// How many more bytes [`Self::push_rx`] would accept now. hv can read no more than
    /// this from the physical UART, so a paste waits in the physical FIFO instead of
    /// overflowing this one.
    pub fn rx_room(&self) -> usize {
        RX_FIFO_DEPTH - self.rx_len
    }

    /// Takes the bytes the guest wrote since the last call, oldest first.
    pub fn take_tx(&mut self) -> TxBytes {
        let bytes = TxBytes {
            buf: self.tx,
            len: self.tx_len,
            next: 0,
        };
        self.tx_len = 0;
        bytes
    }

    /// Whether the UART's interrupt output is asserted (UARTINTR = any unmasked source).
    /// hv keeps the partition's virtual SPI pending exactly while this is true.
    pub fn line_high(&self) -> bool {
        self.raw_interrupts() & self.imsc != 0
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// RIS: which interrupt sources are active, masked or not.
    ///
    /// * RXIS: the receive FIFO holds at least the IFLS trigger level (any byte when
    ///   LCR_H.FEN = 0). RTIS: the FIFO holds anything. The real receive timeout fires
    ///   32 bit periods after the last character; here it has always already expired, so
    ///   a single typed character is delivered at once. Both are levels of the FIFO: ICR
    ///   cannot clear them while data remains (on hardware the timeout would simply fire
    ///   again), and they drop as soon as reads drain the FIFO below the trigger / to
    ///   empty. So the guest is never left with unread data and no interrupt.
    /// * TXIS is an event, as on the PL011 (raised when the FIFO level passes down
    ///   through the trigger level, not merely while it is low). Output is taken at once,
    ///   so the FIFO is empty after every DR write, at or below every trigger level:
    ///   TXIS is raised by every DR write, by the transmitter becoming enabled
    ///   (CR.UARTEN and CR.TXE both set, from not both), and by IMSC.TXIM changing from
    ///   0 to 1 (a driver that unmasks TXIM is waiting for room, and room is always
    ///   there: this guarantees it is never left waiting, even after it cleared TXIS
    ///   with ICR). It is cleared only by ICR.TXIC: the PL011's other way, a DR write
    ///   that leaves the FIFO above the trigger level, cannot happen when the FIFO
    ///   empties instantly. Linux never writes TXIC while transmitting and masks TXIM
    ///   when it has nothing left to send, so a set TXIS keeps the line high exactly
    ///   while Linux wants to transmit and never storms while TXIM is masked.
    /// * OEIS: set when [`Self::push_rx`] overflows, cleared by ICR.OEIC.
    fn raw_interrupts(&self) -> u32 {
        let mut ris = self.latched;
        if self.rx_len > 0 {
            ris |= int::RT;
        }
        if self.rx_len >= self.rx_trigger() {
            ris |= int::RX;
        }
        ris
    }

    /// FR: the transmit side is always empty and idle; the modem inputs read as asserted
    /// (a connected line, so a getty waiting for carrier proceeds); RI is clear.
    fn flags(&self) -> u32 {
        let mut flags = fr::CTS | fr::DSR | fr::DCD;
        flags |= if self.tx_full {
            fr::TXFF | fr::BUSY
        } else {
            fr::TXFE
        };
        if self.rx_len == 0 {
            flags |= fr::RXFE;
        }
        if self.rx_len == RX_FIFO_DEPTH {
            flags |= fr::RXFF;
        }
        flags
    }

    /// Receive trigger level in bytes: IFLS.RXIFLSEL (bits 5:3) selects 1/8, 1/4, 1/2,
    /// 3/4 or 7/8 of the FIFO (DDI 0183G UARTIFLS); the reserved encodings are
    /// treated as 1/2. With the FIFOs disabled the PL011 interrupts on every character.
    fn rx_trigger(&self) -> usize {
        if self.lcr_h & LCR_H_FEN == 0 {
            return 1;
        }
        let eighths = match (self.ifls >> 3) & 0b111 {
            0 => 1,
            1 => 2,
            3 => 6,
            4 => 7,
            _ => 4,
        };
        RX_FIFO_DEPTH * eighths / 8
    }

    /// DR read: the oldest received byte with no error bits (the emulated line has no
    /// framing, parity or break errors), or 0 when the FIFO is empty.
    fn pop_rx(&mut self) -> u32 {
        if self.rx_len == 0 {
            return 0;
        }
        let byte = self.rx[self.rx_head];
        self.rx_head = (self.rx_head + 1) % RX_FIFO_DEPTH;
        self.rx_len -= 1;
        u32::from(byte)
    }

    /// DR write. Output is accepted whether or not the transmitter is enabled: Linux
    /// enables it before writing, and nothing a guest prints should be lost to an order
    /// of register writes. In loopback mode (CR.LBE) the byte goes to the receive FIFO
    /// instead, as on the PL011.
    fn transmit(&mut self, byte: u8) {
        self.stats.tx_bytes += 1;
        if self.cr & cr::LBE != 0 {
            self.push_rx(byte);
        } else if self.tx_len < TX_CAPACITY {
            self.tx[self.tx_len] = byte;
            self.tx_len += 1;
        } else {
            self.stats.tx_dropped += 1;
        }
        // The byte left at once, so the FIFO dropped through the trigger level; not while
        // hv holds output back (the FIFO is "full" until it drains).
        if !self.tx_full {
            self.latched |= int::TX;
        }
    }

    /// Whether hv currently holds output back ([`Self::set_tx_full`]).
    pub fn tx_full(&self) -> bool {
        self.tx_full
    }

    /// hv's console cannot take more output right now (`true`), or can again (`false`).
    /// While full, FR shows TXFF and BUSY (a polling driver waits) and writes raise no
    /// transmit interrupt (an interrupt-driven one waits); becoming free raises TXIS, as a
    /// real FIFO draining through its trigger level does. Bytes written anyway still go out.
    pub fn set_tx_full(&mut self, full: bool) {
        if self.tx_full && !full {
            self.latched |= int::TX;
        }
        self.tx_full = full;
    }

    fn write_cr(&mut self, new: u32) {
        let enabled = |cr: u32| cr & (cr::UARTEN | cr::TXE) == cr::UARTEN | cr::TXE;
        if enabled(new) && !enabled(self.cr) {
            self.latched |= int::TX;
        }
        self.cr = new;
    }

    fn write_imsc(&mut self, new: u32) {
        if new & !self.imsc & int::TX != 0 {
            self.latched |= int::TX;
        }
        self.imsc = new;
    }
}

/// Bytes taken from the guest's output by [`VirtualPl011::take_tx`]: a copy, so hv can
/// hold it while it keeps using the UART model.
pub struct TxBytes {
    buf: [u8; TX_CAPACITY],
    len: usize,
    next: usize,
}

impl TxBytes {
    /// The bytes not yet iterated over.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.next..self.len]
    }
}

impl Iterator for TxBytes {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let byte = *self.as_slice().first()?;
        self.next += 1;
        Some(byte)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for TxBytes {}

/// Every PL011 register is one 32-bit word with its bits from bit 0, so an access must
/// start on a word; 8- and 16-bit accesses read or write the register's low bytes.
/// 64-bit accesses are refused (the PL011 sits on a 32-bit APB).
fn check_access(offset: u64, width: AccessWidth) -> Result<(), AccessError> {
    if offset >= FRAME_SIZE {
        return Err(AccessError::OutsideFrame { offset });
    }
    if width == AccessWidth::Double {
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
    use alloc::collections::VecDeque;
    use alloc::vec::Vec;
    use AccessWidth::{Byte, Double, Half, Word};

    /// Framing, parity and break interrupt bits, cleared by Linux's hwinit.
    const INT_FE_PE_BE: u32 = 0b111 << 7;

    fn rd(uart: &mut VirtualPl011, offset: u64) -> u32 {
        uart.read(offset, Word).unwrap() as u32
    }

    fn wr(uart: &mut VirtualPl011, offset: u64, value: u32) {
        uart.write(offset, Word, value.into()).unwrap();
    }

    fn enabled_with_fifos() -> VirtualPl011 {
        let mut uart = VirtualPl011::new();
        wr(&mut uart, reg::LCR_H, 0x70); // 8 bits, FIFOs on
        wr(&mut uart, reg::CR, cr::UARTEN | cr::TXE | cr::RXE);
        uart
    }

    #[test]
    fn identification_matches_an_r1p5_pl011() {
        let mut uart = VirtualPl011::new();
        let id = |uart: &mut VirtualPl011, first: u64| {
            (0..4).fold(0u32, |acc, i| {
                acc | (rd(uart, first + 4 * i) & 0xff) << (8 * i)
            })
        };
        assert_eq!(id(&mut uart, 0xfe0), 0x0034_1011);
        assert_eq!(id(&mut uart, 0xff0), 0xb105_f00d);
        // Read-only: a write changes nothing.
        wr(&mut uart, 0xfe8, 0);
        assert_eq!(rd(&mut uart, 0xfe8), 0x34);
    }

    #[test]
    fn reset_state() {
        let mut uart = VirtualPl011::new();
        let fr = rd(&mut uart, reg::FR);
        assert_eq!(fr, fr::TXFE | fr::RXFE | fr::CTS | fr::DSR | fr::DCD);
        assert_eq!(rd(&mut uart, reg::CR), cr::TXE | cr::RXE);
        assert_eq!(rd(&mut uart, reg::IFLS), 0x12);
        assert_eq!(rd(&mut uart, reg::IMSC), 0);
        assert_eq!(rd(&mut uart, reg::RIS), 0);
        assert!(!uart.line_high());
        assert_eq!(uart.stats(), Stats::default());
    }

    #[test]
    fn bad_accesses_are_errors_and_change_nothing() {
        let mut uart = enabled_with_fifos();
        assert_eq!(
            uart.write(reg::DR, Double, 0x41),
            Err(AccessError::BadWidth {
                offset: 0,
                width: Double
            })
        );
        assert_eq!(
            uart.read(reg::FR, Double),
            Err(AccessError::BadWidth {
                offset: 0x18,
                width: Double
            })
        );
        assert_eq!(
            uart.read(0x1000, Word),
            Err(AccessError::OutsideFrame { offset: 0x1000 })
        );
        assert_eq!(
            uart.write(u64::MAX, Byte, 0),
            Err(AccessError::OutsideFrame { offset: u64::MAX })
        );
        assert_eq!(
            uart.write(0x2, Half, 0x41),
            Err(AccessError::Misaligned {
                offset: 0x2,
                width: Half
            })
        );
        assert_eq!(
            uart.read(0x19, Byte),
            Err(AccessError::Misaligned {
                offset: 0x19,
                width: Byte
            })
        );
        assert_eq!(uart.take_tx().len(), 0);
        assert_eq!(uart.stats().tx_bytes, 0);
    }

    #[test]
    fn reserved_offsets_read_zero_ignore_writes_and_are_counted() {
        let mut uart = VirtualPl011::new();
        for offset in [0x008, 0x01c, 0x04c, 0x080, 0xfd0, 0xfdc] {
            wr(&mut uart, offset, 0xffff_ffff);
            assert_eq!(rd(&mut uart, offset), 0, "offset {offset:#x}");
        }
        assert_eq!(uart.stats().reserved_accesses, 12);
        assert_eq!(uart.take_tx().len(), 0);
    }

    #[test]
    fn narrow_accesses_touch_only_their_bytes() {
        let mut uart = VirtualPl011::new();
        uart.write(reg::CR, Half, 0xffff_0301).unwrap();
        assert_eq!(rd(&mut uart, reg::CR), 0x0301);
        // A byte write to CR keeps bits 15:8 (TXE, RXE).
        uart.write(reg::CR, Byte, 0x80).unwrap();
        assert_eq!(rd(&mut uart, reg::CR), 0x0380);
        assert_eq!(uart.read(reg::CR, Byte), Ok(0x80));
        assert_eq!(uart.read(reg::CR, Half), Ok(0x0380));
        // Unimplemented bits read as zero.
        wr(&mut uart, reg::IBRD, 0xdead_beef);
        assert_eq!(rd(&mut uart, reg::IBRD), 0xbeef);
        wr(&mut uart, reg::FBRD, 0xff);
        assert_eq!(rd(&mut uart, reg::FBRD), 0x3f);
        wr(&mut uart, reg::CR, 0xffff_ffff);
        assert_eq!(rd(&mut uart, reg::CR), 0xff87);
        wr(&mut uart, reg::IMSC, 0xffff_ffff);
        assert_eq!(rd(&mut uart, reg::IMSC), 0x7ff);
        wr(&mut uart, reg::DMACR, 0x7);
        assert_eq!(rd(&mut uart, reg::DMACR), 0);
    }

    #[test]
    fn dr_writes_of_every_width_transmit_the_low_byte_in_order() {
        let mut uart = enabled_with_fifos();
        uart.write(reg::DR, Byte, 0x1_68).unwrap();
        uart.write(reg::DR, Half, 0xff69).unwrap();
        uart.write(reg::DR, Word, 0x0bad_0a21).unwrap();
        let mut out = uart.take_tx();
        assert_eq!(out.as_slice(), b"hi!");
        assert_eq!(out.len(), 3);
        assert_eq!(out.next(), Some(b'h'));
        assert_eq!(out.as_slice(), b"i!");
        assert_eq!(out.collect::<Vec<_>>(), b"i!");
        assert_eq!(uart.take_tx().len(), 0, "taken bytes are gone");
        assert_eq!(rd(&mut uart, reg::FR) & (fr::TXFE | fr::TXFF), fr::TXFE);
    }

    #[test]
    fn undrained_output_beyond_capacity_is_dropped_and_counted() {
        let mut uart = enabled_with_fifos();
        for i in 0..TX_CAPACITY as u32 + 5 {
            wr(&mut uart, reg::DR, i);
        }
        let out: Vec<u8> = uart.take_tx().collect();
        assert_eq!(out, (0..TX_CAPACITY as u8).collect::<Vec<_>>());
        assert_eq!(uart.stats().tx_bytes, TX_CAPACITY as u64 + 5);
        assert_eq!(uart.stats().tx_dropped, 5);
    }

    #[test]
    fn loopback_sends_output_to_the_receive_fifo() {
        let mut uart = enabled_with_fifos();
        wr(&mut uart, reg::CR, cr::UARTEN | cr::TXE | cr::RXE | cr::LBE);
        wr(&mut uart, reg::DR, 0x5a);
        assert_eq!(uart.take_tx().len(), 0);
        assert_eq!(rd(&mut uart, reg::DR), 0x5a);
    }

    #[test]
    fn receive_fifo_flags_order_and_overflow() {
        let mut uart = enabled_with_fifos();
        for b in 0..RX_FIFO_DEPTH as u8 {
            assert_eq!(uart.rx_room(), RX_FIFO_DEPTH - usize::from(b));
            assert!(uart.push_rx(b));
            assert_eq!(rd(&mut uart, reg::FR) & fr::RXFE, 0);
        }
        assert_ne!(rd(&mut uart, reg::FR) & fr::RXFF, 0);
        assert_eq!(uart.rx_room(), 0);
        assert!(!uart.push_rx(0xee), "a full FIFO refuses the byte");
        assert!(!uart.push_rx(0xef));
        assert_eq!(uart.stats().rx_overflows, 2);
        assert_eq!(uart.stats().rx_bytes, RX_FIFO_DEPTH as u64);
        assert_eq!(rd(&mut uart, reg::RSR_ECR), RSR_OE);
        assert_ne!(rd(&mut uart, reg::RIS) & int::OE, 0);
        for b in 0..RX_FIFO_DEPTH as u32 {
            assert_eq!(rd(&mut uart, reg::DR), b, "no error bits, in order");
        }
        assert_ne!(rd(&mut uart, reg::FR) & fr::RXFE, 0);
        assert_eq!(uart.rx_room(), RX_FIFO_DEPTH);
        assert_eq!(rd(&mut uart, reg::DR), 0, "empty FIFO reads 0");
        // ECR clears the status; ICR clears the overrun interrupt.
        wr(&mut uart, reg::RSR_ECR, 0);
        assert_eq!(rd(&mut uart, reg::RSR_ECR), 0);
        wr(&mut uart, reg::ICR, int::OE);
        assert_eq!(rd(&mut uart, reg::RIS) & int::OE, 0);
    }

    #[test]
    fn receive_interrupts_follow_the_fifo_level() {
        let mut uart = enabled_with_fifos();
        let rx_sources = |uart: &mut VirtualPl011, offset| rd(uart, offset) & (int::RX | int::RT);
        wr(&mut uart, reg::IMSC, int::RX | int::RT);
        assert!(!uart.line_high());
        uart.push_rx(b'x');
        // One character: the (immediate) receive timeout, below the 1/2 trigger.
        assert_eq!(rx_sources(&mut uart, reg::RIS), int::RT);
        assert!(uart.line_high());
        // ICR cannot clear a level while data remains.
        wr(&mut uart, reg::ICR, int::RX | int::RT);
        assert!(uart.line_high());
        for _ in 1..16 {
            uart.push_rx(b'y');
        }
        assert_eq!(
            rx_sources(&mut uart, reg::RIS),
            int::RT | int::RX,
            "16 = half of 32"
        );
        assert_eq!(rx_sources(&mut uart, reg::MIS), int::RT | int::RX);
        rd(&mut uart, reg::DR);
        assert_eq!(
            rx_sources(&mut uart, reg::RIS),
            int::RT,
            "below the trigger again"
        );
        // Masked sources do not drive the line.
        wr(&mut uart, reg::IMSC, int::RX);
        assert!(!uart.line_high());
        assert_eq!(rx_sources(&mut uart, reg::MIS), 0);
        // IFLS RXIFLSEL = 0 (1/8): 4 bytes trigger RXIS.
        wr(&mut uart, reg::IFLS, 0);
        assert!(uart.line_high());
        while rd(&mut uart, reg::FR) & fr::RXFE == 0 {
            rd(&mut uart, reg::DR);
        }
        assert_eq!(rx_sources(&mut uart, reg::RIS), 0);
        // With the FIFOs off every character raises RXIS.
        wr(&mut uart, reg::LCR_H, 0x60);
        uart.push_rx(b'z');
        assert!(uart.line_high());
    }

    #[test]
    fn transmit_interrupt_is_an_event_cleared_only_by_icr() {
        let mut uart = VirtualPl011::new();
        assert_eq!(rd(&mut uart, reg::RIS) & int::TX, 0, "disabled at reset");
        // Enabling the transmitter raises TXIS (empty FIFO below the trigger level)...
        wr(&mut uart, reg::CR, cr::UARTEN | cr::TXE | cr::RXE);
        assert_eq!(rd(&mut uart, reg::RIS), int::TX);
        // ...but while TXIM is masked the line stays low, however often it is looked at.
        for _ in 0..1000 {
            assert!(!uart.line_high());
        }
        wr(&mut uart, reg::ICR, int::TX);
        assert_eq!(rd(&mut uart, reg::RIS), 0);
        // Re-writing CR with the transmitter already enabled is no new event.
        wr(&mut uart, reg::CR, cr::UARTEN | cr::TXE | cr::RXE);
        assert_eq!(rd(&mut uart, reg::RIS), 0);
        // Every DR write raises it: the byte leaves at once and the FIFO drops to empty.
        wr(&mut uart, reg::DR, b'a'.into());
        assert_eq!(rd(&mut uart, reg::RIS), int::TX);
        wr(&mut uart, reg::DR, b'b'.into());
        assert_eq!(
            rd(&mut uart, reg::RIS),
            int::TX,
            "a DR write never clears it"
        );
        wr(&mut uart, reg::ICR, int::TX);
        // Unmasking TXIM after ICR still gets the driver its interrupt.
        wr(&mut uart, reg::IMSC, int::TX);
        assert!(uart.line_high());
        // Acknowledged with ICR while TXIM stays unmasked: quiet until the next event.
        wr(&mut uart, reg::ICR, int::TX);
        assert!(!uart.line_high());
        wr(&mut uart, reg::IMSC, int::TX | int::RX);
        assert!(!uart.line_high(), "TXIM was already unmasked: no new event");
        wr(&mut uart, reg::DR, b'c'.into());
        assert!(uart.line_high());
        wr(&mut uart, reg::IMSC, 0);
        assert!(!uart.line_high());
    }

    /// How the driver stand-in's start_tx fills the FIFO before it unmasks TXIM.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum StartFill {
        /// Linux 6.1: write while FR.TXFF is clear (so here: everything queued).
        UntilFull,
        /// At most one FIFO's worth, then rely on the TX interrupt for the rest.
        OneFifo,
    }

    const LINUX_FIFO_SIZE: usize = 32;
    /// The serial core's transmit ring (one page; a circular buffer holds size - 1).
    const XMIT_SIZE: usize = 4096;
    /// Passes the interrupt handler makes before it returns with sources still active.
    const HANDLER_PASSES: usize = 257;

    /// A stand-in for the byte-moving parts of Linux 6.1's amba-pl011 driver and the
    /// serial core above it, written from their documented behaviour: 16-bit register
    /// accesses, a 4 KiB transmit ring, start_tx (fill, then unmask TXIM if bytes are
    /// left), a handler that acknowledges only non-data sources with ICR, drains the RX
    /// FIFO, writes half a FIFO per TX pass without looking at FR and masks TXIM when the
    /// ring is empty, re-reading RIS up to 257 times. As hv does, it drains the model's
    /// output after every access.
    struct LinuxStandIn {
        uart: VirtualPl011,
        fill: StartFill,
        xmit: VecDeque<u8>,
        im: u32,
        /// Bytes that came out of the UART (what hv would print).
        printed: Vec<u8>,
        /// Bytes the driver read from DR (what the tty would see).
        received: Vec<u8>,
        interrupts: usize,
        spurious: usize,
        start_tx_calls: usize,
    }

    impl LinuxStandIn {
        fn probe_and_open(fill: StartFill) -> Self {
            let mut d = Self {
                uart: VirtualPl011::new(),
                fill,
                xmit: VecDeque::new(),
                im: 0,
                printed: Vec::new(),
                received: Vec::new(),
                interrupts: 0,
                spurious: 0,
                start_tx_calls: 0,
            };
            // hwinit: clear error and receive sources, unmask only RX while probing.
            d.wr(reg::ICR, int::OE | INT_FE_PE_BE | int::RT | int::RX);
            d.im = d.rd(reg::IMSC);
            d.wr(reg::IMSC, int::RT | int::RX);
            // request_irq, FIFO levels (RX 4/8, TX 4/8), enable.
            d.wr(reg::IMSC, d.im);
            d.wr(reg::IFLS, 0x12);
            let cr = d.rd(reg::CR) & 0x0c00; // keep RTS, DTR
            d.wr(reg::CR, cr | cr::UARTEN | cr::RXE | cr::TXE);
            // enable_interrupts: clear RX sources, drain stale input, unmask RX sources.
            d.wr(reg::ICR, int::RT | int::RX);
            for _ in 0..2 * LINUX_FIFO_SIZE {
                if d.rd(reg::FR) & fr::RXFE != 0 {
                    break;
                }
                d.rd(reg::DR);
            }
            d.im = int::RT | int::RX;
            d.wr(reg::IMSC, d.im);
            // set_termios: 115200 8N1 with FIFOs, UART disabled around the change.
            let old_cr = d.rd(reg::CR);
            d.wr(reg::CR, 0);
            d.wr(reg::FBRD, 1);
            d.wr(reg::IBRD, 13);
            d.wr(reg::LCR_H, 0x70);
            d.wr(reg::CR, old_cr);
            d
        }

        fn rd(&mut self, offset: u64) -> u32 {
            self.uart.read(offset, Half).unwrap() as u32
        }

        fn wr(&mut self, offset: u64, value: u32) {
            self.uart.write(offset, Half, value.into()).unwrap();
            self.printed.extend(self.uart.take_tx());
        }

        /// A tty write: queue what fits in the ring, then start transmission.
        fn tty_write(&mut self, data: &[u8]) -> usize {
            let n = data.len().min(XMIT_SIZE - 1 - self.xmit.len());
            self.xmit.extend(&data[..n]);
            self.start_tx();
            n
        }

        fn start_tx(&mut self) {
            self.start_tx_calls += 1;
            if self.tx_chars(false) {
                self.im |= int::TX;
                self.wr(reg::IMSC, self.im);
            }
        }

        /// Returns whether TX interrupts must stay enabled (bytes left).
        fn tx_chars(&mut self, from_irq: bool) -> bool {
            let mut budget = match (from_irq, self.fill) {
                (true, _) => LINUX_FIFO_SIZE / 2,
                (false, StartFill::UntilFull) => usize::MAX,
                (false, StartFill::OneFifo) => LINUX_FIFO_SIZE,
            };
            while let Some(&byte) = self.xmit.front() {
                if budget == 0 || (!from_irq && self.rd(reg::FR) & fr::TXFF != 0) {
                    break;
                }
                self.wr(reg::DR, byte.into());
                self.xmit.pop_front();
                budget -= 1;
            }
            if self.xmit.is_empty() {
                self.im &= !int::TX;
                self.wr(reg::IMSC, self.im);
                return false;
            }
            true
        }

        fn interrupt(&mut self) {
            self.interrupts += 1;
            let mut status = self.rd(reg::RIS) & self.im;
            if status == 0 {
                self.spurious += 1;
                return;
            }
            for _ in 0..HANDLER_PASSES {
                self.wr(reg::ICR, status & !(int::TX | int::RT | int::RX));
                if status & (int::RT | int::RX) != 0 {
                    for _ in 0..256 {
                        if self.rd(reg::FR) & fr::RXFE != 0 {
                            break;
                        }
                        let ch = self.rd(reg::DR);
                        self.received.push(ch as u8);
                    }
                }
                if status & int::TX != 0 {
                    self.tx_chars(true);
                }
                status = self.rd(reg::RIS) & self.im;
                if status == 0 {
                    break;
                }
            }
        }

        /// The console-poll path (kgdb): acknowledge every unmasked source with ICR and
        /// mask TXIM in the register only; the next start_tx unmasks it again.
        fn quiesce_for_polling(&mut self) {
            let mis = self.rd(reg::MIS);
            self.wr(reg::ICR, mis);
            let imsc = self.rd(reg::IMSC);
            self.wr(reg::IMSC, imsc & !int::TX);
        }

        /// What hv does for a level-sensitive virtual SPI: keep delivering while high.
        fn service(&mut self) {
            for _ in 0..10_000 {
                if !self.uart.line_high() {
                    return;
                }
                self.interrupt();
            }
            panic!("interrupt storm");
        }
    }

    fn test_data(len: usize) -> Vec<u8> {
        let mut x = 0x1234_5678u32;
        (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (x >> 16) as u8
            })
            .collect()
    }

    /// Sends `data` through the stand-in; after every tty write hv services the line
    /// until it drops, and then the driver must have nothing left waiting for an
    /// interrupt (or it would wait forever).
    fn send(fill: StartFill, data: &[u8], typed_each_round: &[u8]) -> LinuxStandIn {
        let mut d = LinuxStandIn::probe_and_open(fill);
        let mut rest = data;
        while !rest.is_empty() {
            let n = d.tty_write(rest);
            rest = &rest[n..];
            for &b in typed_each_round {
                assert!(d.uart.push_rx(b));
            }
            d.service();
            assert!(d.xmit.is_empty(), "driver left waiting for a TX interrupt");
        }
        d
    }

    #[test]
    fn linux_6_1_transmit_loop_delivers_10k_in_order_without_interrupts() {
        let data = test_data(10 * 1024);
        let d = send(StartFill::UntilFull, &data, &[]);
        assert_eq!(d.printed, data);
        // TXFF is never set, so 6.1's start_tx sends the whole ring itself.
        assert_eq!(d.interrupts, 0);
        assert!(!d.uart.line_high());
        assert_eq!(d.im & int::TX, 0, "TXIM masked at the end");
        assert_eq!(d.uart.stats().tx_dropped, 0);
    }

    #[test]
    fn fifo_sized_start_tx_continues_on_bounded_tx_interrupts() {
        let data = test_data(10 * 1024);
        let d = send(StartFill::OneFifo, &data, &[]);
        assert_eq!(d.printed, data);
        assert_eq!(d.spurious, 0);
        // One interrupt moves up to 257 passes x 16 bytes, more than a whole ring: at
        // least one interrupt per start_tx, at most two.
        assert!(
            d.interrupts >= d.start_tx_calls,
            "{} interrupts",
            d.interrupts
        );
        assert!(
            d.interrupts <= 2 * d.start_tx_calls,
            "{} interrupts",
            d.interrupts
        );
        assert_eq!(d.start_tx_calls, 3);
        // TXIS stays set (nothing cleared it) but TXIM is masked: no storm.
        let mut uart = d.uart;
        assert_ne!(rd(&mut uart, reg::RIS) & int::TX, 0);
        assert!(!uart.line_high());
        assert_eq!(uart.stats().tx_dropped, 0);
    }

    #[test]
    fn transmission_resumes_after_a_poll_quiesce_cleared_txis() {
        let mut data = test_data(3000);
        let mut d = LinuxStandIn::probe_and_open(StartFill::OneFifo);
        assert_eq!(d.tty_write(&data), data.len());
        // kgdb takes the console mid-transfer: TXIS acknowledged, TXIM masked, bytes left.
        d.quiesce_for_polling();
        assert!(!d.uart.line_high());
        assert!(!d.xmit.is_empty());
        // The next write's start_tx must get the transfer going again.
        assert_eq!(d.tty_write(b"$ "), 2);
        d.service();
        assert!(d.xmit.is_empty(), "driver left waiting for a TX interrupt");
        data.extend(b"$ ");
        assert_eq!(d.printed, data);
    }

    #[test]
    fn typed_bytes_reach_the_driver_while_it_transmits() {
        let data = test_data(10 * 1024);
        for fill in [StartFill::UntilFull, StartFill::OneFifo] {
            let d = send(fill, &data, b"ls\r");
            assert_eq!(d.printed, data, "{fill:?}");
            assert_eq!(d.received, b"ls\rls\rls\r", "{fill:?}");
            assert!(!d.uart.line_high());
            assert_eq!(d.spurious, 0);
        }
    }

    #[test]
    fn linux_receive_path_single_keys_and_overflow() {
        let mut d = LinuxStandIn::probe_and_open(StartFill::UntilFull);
        // A single key is delivered by the immediate receive timeout.
        assert!(d.uart.push_rx(b'q'));
        assert!(d.uart.line_high());
        d.service();
        assert_eq!(d.received, b"q");
        assert_eq!(d.interrupts, 1);
        assert!(!d.uart.line_high(), "line drops once the FIFO is drained");
        // A paste of 40 bytes before the guest runs: 32 fit, 8 are refused and counted.
        let paste = test_data(40);
        let accepted = paste.iter().filter(|&&b| d.uart.push_rx(b)).count();
        assert_eq!(accepted, RX_FIFO_DEPTH);
        assert_eq!(d.uart.stats().rx_overflows, 8);
        d.service();
        assert_eq!(&d.received[1..], &paste[..RX_FIFO_DEPTH]);
        assert_eq!(d.interrupts, 2);
        assert_eq!(d.rd(reg::RSR_ECR), RSR_OE, "the guest can see the overrun");
        assert!(!d.uart.line_high(), "OEIS is not unmasked by Linux");
    }

    #[test]
    fn console_write_with_tx_interrupts_masked_never_raises_the_line() {
        let mut d = LinuxStandIn::probe_and_open(StartFill::UntilFull);
        // printk's console path: force TX on, poll TXFF per byte, wait for !BUSY, restore.
        let old_cr = d.rd(reg::CR);
        d.wr(reg::CR, old_cr | cr::UARTEN | cr::TXE);
        for &b in b"[    0.000000] Booting Linux\r\n" {
            while d.rd(reg::FR) & fr::TXFF != 0 {}
            d.wr(reg::DR, b.into());
        }
        assert_eq!(d.rd(reg::FR) & (1 << 3), 0, "never BUSY");
        d.wr(reg::CR, old_cr);
        assert_eq!(d.printed, b"[    0.000000] Booting Linux\r\n");
        assert!(!d.uart.line_high());
    }

    #[test]
    fn backpressure_holds_a_polling_and_an_interrupt_driven_driver_then_releases_them() {
        let mut uart = VirtualPl011::new();
        wr(&mut uart, reg::CR, cr::UARTEN | cr::TXE | cr::RXE);
        wr(&mut uart, reg::IMSC, int::TX);
        wr(&mut uart, reg::ICR, int::ALL);
        uart.set_tx_full(true);
        let flags = rd(&mut uart, reg::FR);
        assert_eq!(
            flags & (fr::TXFF | fr::BUSY | fr::TXFE),
            fr::TXFF | fr::BUSY
        );
        // A driver that writes anyway loses nothing, but gets no transmit interrupt.
        wr(&mut uart, reg::DR, b'x'.into());
        assert_eq!(uart.take_tx().as_slice(), b"x");
        assert!(!uart.line_high(), "no TXIS while hv holds output back");
        uart.set_tx_full(false);
        assert_eq!(rd(&mut uart, reg::FR) & (fr::TXFF | fr::TXFE), fr::TXFE);
        assert!(
            uart.line_high(),
            "draining raises TXIS for the waiting driver"
        );
        uart.set_tx_full(false);
        wr(&mut uart, reg::ICR, int::TX);
        assert!(!uart.line_high(), "staying free is no new event");
    }

    mod random {
        use super::*;
        use alloc::collections::VecDeque;
        use alloc::vec::Vec;
        use proptest::prelude::*;

        /// What a guest or hv does to the UART.
        #[derive(Clone, Debug)]
        enum Op {
            Read(u64, AccessWidth),
            Write(u64, AccessWidth, u64),
            Typed(u8),
            Drain,
            Backpressure(bool),
        }

        fn width() -> impl Strategy<Value = AccessWidth> {
            prop_oneof![
                Just(AccessWidth::Byte),
                Just(AccessWidth::Half),
                Just(AccessWidth::Word),
                Just(AccessWidth::Double),
            ]
        }

        /// Offsets mostly on the registers, some anywhere (and past the frame).
        fn offset() -> impl Strategy<Value = u64> {
            prop_oneof![
                4 => (0u64..0x13).prop_map(|i| i * 4),
                1 => 0u64..0x1100,
                1 => any::<u64>(),
            ]
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                3 => (offset(), width()).prop_map(|(o, w)| Op::Read(o, w)),
                3 => (offset(), width(), any::<u64>()).prop_map(|(o, w, v)| Op::Write(o, w, v)),
                2 => any::<u8>().prop_map(Op::Typed),
                1 => Just(Op::Drain),
                1 => any::<bool>().prop_map(Op::Backpressure),
            ]
        }

        proptest! {
            /// Whatever a guest writes and hv feeds it: accesses are refused exactly when
            /// outside the frame, 64-bit or misaligned; typed and looped-back bytes come out
            /// of DR in order, once, and FR.RXFE says when none is left; the FIFO and the
            /// output never hold more than their capacity; the interrupt line is MIS != 0.
            #[test]
            fn the_uart_behaves_like_its_model(ops in proptest::collection::vec(op(), 1..200)) {
                let mut uart = VirtualPl011::new();
                let mut rx: VecDeque<u8> = VecDeque::new();
                for op in ops {
                    match op {
                        Op::Read(offset, width) => {
                            let bad = offset >= FRAME_SIZE
                                || width == AccessWidth::Double
                                || offset % 4 != 0;
                            let got = uart.read(offset, width);
                            prop_assert_eq!(got.is_err(), bad);
                            if let Ok(value) = got {
                                prop_assert_eq!(value & !width.mask(), 0);
                                if offset == reg::DR {
                                    prop_assert_eq!(value, u64::from(rx.pop_front().unwrap_or(0)));
                                }
                            }
                        }
                        Op::Write(offset, width, value) => {
                            let bad = offset >= FRAME_SIZE
                                || width == AccessWidth::Double
                                || offset % 4 != 0;
                            let loopback = uart.read(reg::CR, AccessWidth::Word).unwrap()
                                & u64::from(cr::LBE) != 0;
                            prop_assert_eq!(uart.write(offset, width, value).is_err(), bad);
                            if !bad && offset == reg::DR && loopback && rx.len() < RX_FIFO_DEPTH {
                                rx.push_back(value as u8);
                            }
                        }
                        Op::Typed(byte) => {
                            let room = rx.len() < RX_FIFO_DEPTH;
                            prop_assert_eq!(uart.push_rx(byte), room);
                            if room {
                                rx.push_back(byte);
                            }
                        }
                        Op::Drain => {
                            let out: Vec<u8> = uart.take_tx().as_slice().to_vec();
                            prop_assert!(out.len() <= TX_CAPACITY);
                        }
                        Op::Backpressure(full) => uart.set_tx_full(full),
                    }
                    prop_assert_eq!(uart.rx_room(), RX_FIFO_DEPTH - rx.len());
                    let fr = uart.read(reg::FR, AccessWidth::Word).unwrap() as u32;
                    prop_assert_eq!(fr & fr::RXFE != 0, rx.is_empty());
                    prop_assert_eq!(fr & fr::RXFF != 0, rx.len() == RX_FIFO_DEPTH);
                    let mis = uart.read(reg::MIS, AccessWidth::Word).unwrap();
                    prop_assert_eq!(uart.line_high(), mis != 0);
                }
            }
        }
    }
}
