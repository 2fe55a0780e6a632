//! A Linux partition's console as hv keeps it: the PL011 it emulates at the board UART's
//! address (the register model is [`crate::vuart`]) and the SPI it raises. The arch side
//! (hv's `arch::vconsole`) wires it to the physical UART and the GIC.

use platform::config::Region;
use spin::Mutex;

use crate::guest_dtb::EmulatedUart;
use crate::vuart::{self, VirtualPl011};

pub struct EmulatedConsole {
    uart: EmulatedUart,
    model: Mutex<VirtualPl011>,
}

impl EmulatedConsole {
    pub fn new(uart: EmulatedUart) -> Self {
        Self {
            uart,
            model: Mutex::new(VirtualPl011::new()),
        }
    }

    /// The trapped register frame.
    #[inline]
    pub fn frame(&self) -> Region {
        Region::new(self.uart.base, vuart::FRAME_SIZE)
    }

    /// The SPI the emulated UART raises (no physical line behind it).
    #[inline]
    pub fn spi(&self) -> u32 {
        self.uart.spi
    }

    /// The register model, behind its lock.
    #[inline]
    pub fn model(&self) -> &Mutex<VirtualPl011> {
        &self.model
    }

    /// Back to the reset state (the partition is being rebooted).
    pub fn reset(&self) {
        *self.model.lock() = VirtualPl011::new();
    }
}
