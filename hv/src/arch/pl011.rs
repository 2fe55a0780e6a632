//! PL011 UART driver: the console `hv` logs to, and reads typed bytes from (polled).
//!
//! Register layout from the PrimeCell UART (PL011) TRM, ARM DDI 0183: DR 0x00, FR 0x18,
//! IBRD 0x24, FBRD 0x28, LCR_H 0x2c, CR 0x30, IMSC 0x38, ICR 0x44.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_bitfields! {u32,
    FR [
        TXFF OFFSET(5) NUMBITS(1) [],
        RXFE OFFSET(4) NUMBITS(1) [],
        BUSY OFFSET(3) NUMBITS(1) [],
    ],
    LCR_H [
        WLEN OFFSET(5) NUMBITS(2) [EightBit = 0b11],
        FEN OFFSET(4) NUMBITS(1) [],
    ],
    CR [
        RXE OFFSET(9) NUMBITS(1) [],
        TXE OFFSET(8) NUMBITS(1) [],
        UARTEN OFFSET(0) NUMBITS(1) [],
    ],
}

#[repr(C)]
pub struct Registers {
    dr: ReadWrite<u32>,
    _rsr: u32,
    _reserved0: [u32; 4],
    fr: ReadOnly<u32, FR::Register>,
    _reserved1: u32,
    _ilpr: u32,
    ibrd: ReadWrite<u32>,
    fbrd: ReadWrite<u32>,
    lcr_h: ReadWrite<u32, LCR_H::Register>,
    cr: ReadWrite<u32, CR::Register>,
    _ifls: u32,
    imsc: ReadWrite<u32>,
    _ris: u32,
    _mis: u32,
    icr: WriteOnly<u32>,
}

const _: () = assert!(core::mem::offset_of!(Registers, fr) == 0x18);
const _: () = assert!(core::mem::offset_of!(Registers, cr) == 0x30);
const _: () = assert!(core::mem::offset_of!(Registers, icr) == 0x44);

pub struct Pl011 {
    base: usize,
}

impl Pl011 {
    /// # Safety
    /// `base` must be the address of a PL011 that nothing else drives, mapped as device
    /// memory (or the MMU off).
    pub const unsafe fn new(base: usize) -> Self {
        Self { base }
    }

    fn regs(&self) -> &Registers {
        // SAFETY: `new`'s caller guarantees `base` points at PL011 registers for 'static.
        unsafe { &*(self.base as *const Registers) }
    }

    /// 115200 8N1 with FIFOs, interrupts masked. Baud divisors assume the 48 MHz UART clock
    /// the Pi 4 firmware sets up (QEMU ignores them).
    pub fn init(&self) {
        self.flush();
        self.regs().cr.set(0);
        self.regs().imsc.set(0);
        self.regs().icr.set(0x7ff);
        self.regs().ibrd.set(26);
        self.regs().fbrd.set(3);
        self.regs()
            .lcr_h
            .write(LCR_H::WLEN::EightBit + LCR_H::FEN::SET);
        self.regs()
            .cr
            .write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    /// Queues `byte` if the transmit FIFO has room; never waits.
    pub fn try_putc(&self, byte: u8) -> bool {
        if self.regs().fr.is_set(FR::TXFF) {
            return false;
        }
        self.regs().dr.set(u32::from(byte));
        true
    }

    /// A received byte, if one waits; never waits. Bytes with a framing, parity, break or
    /// overrun error (DR bits 11:8) are dropped: line noise must not reach a shell.
    pub fn try_getc(&self) -> Option<u8> {
        while !self.regs().fr.is_set(FR::RXFE) {
            let dr = self.regs().dr.get();
            if dr & 0xf00 == 0 {
                return Some(dr as u8);
            }
        }
        None
    }

    pub fn putc(&self, byte: u8) {
        while self.regs().fr.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        self.regs().dr.set(u32::from(byte));
    }

    pub fn flush(&self) {
        while self.regs().fr.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
    }
}
