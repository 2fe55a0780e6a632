//! A Linux partition's doorbell controller as hv keeps it: the PL061 it emulates at
//! [`abi::DOORBELL_GPIO_IPA`] (the register model is [`crate::vgpio`]) and the SPI it
//! raises (virtual: no physical line behind it). The arch side (hv's `arch::doorbell`)
//! wires it to the GIC.

use platform::config::Region;
use spin::Mutex;

use crate::vgpio::{self, VirtualPl061};

pub struct EmulatedGpio {
    spi: u32,
    model: Mutex<VirtualPl061>,
}

impl EmulatedGpio {
    pub fn new(spi: u32) -> Self {
        Self {
            spi,
            model: Mutex::new(VirtualPl061::new()),
        }
    }

    /// The trapped register frame.
    #[inline]
    pub fn frame(&self) -> Region {
        Region::new(abi::DOORBELL_GPIO_IPA, vgpio::FRAME_SIZE)
    }

    /// The SPI the emulated PL061 raises.
    #[inline]
    pub fn spi(&self) -> u32 {
        self.spi
    }

    /// The register model, behind its lock (taken on Linux's CPUs only).
    #[inline]
    pub fn model(&self) -> &Mutex<VirtualPl061> {
        &self.model
    }

    /// Back to the reset state (the partition is being rebooted).
    pub fn reset(&self) {
        *self.model.lock() = VirtualPl061::new();
    }
}
