//! A block of device registers at a fixed physical address, vouched for once.
//!
//! [`DeviceRegs::new`] is where an address from the DTB becomes a register block: its
//! caller promises the block is mapped as device memory for the rest of hv's life and
//! driven by hv alone. Afterwards [`DeviceRegs::get`] is safe and costs nothing (the
//! pointer, no check): the hot paths (GIC acknowledge, list registers) use it. `T` is a
//! [`RegisterBlock`]: volatile cells that any bit pattern is valid for.

use core::marker::PhantomData;

/// A type made only of volatile register cells (tock-registers `ReadOnly`, `ReadWrite`,
/// `WriteOnly`, arrays and `register_structs!` of them).
///
/// # Safety
/// Every bit pattern of the type's memory is valid, and it is only accessed through its
/// cells' volatile reads and writes.
pub unsafe trait RegisterBlock {}

/// A register block of type `T` at a device address (see the module docs).
pub struct DeviceRegs<T: RegisterBlock> {
    base: usize,
    _block: PhantomData<fn() -> T>,
}

impl<T: RegisterBlock> Clone for DeviceRegs<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: RegisterBlock> Copy for DeviceRegs<T> {}

// SAFETY: the block is device memory reached only through volatile cell accesses; the
// driver owning a `DeviceRegs` serialises what needs serialising (banked registers are
// per CPU, set/clear registers are atomic in hardware).
unsafe impl<T: RegisterBlock> Send for DeviceRegs<T> {}
// SAFETY: as for `Send`.
unsafe impl<T: RegisterBlock> Sync for DeviceRegs<T> {}

impl<T: RegisterBlock> DeviceRegs<T> {
    /// # Safety
    /// `base` is the address of registers laid out as `T` (`size_of::<T>()` bytes),
    /// mapped as device memory by hv's tables (or with the MMU off, identity) for the rest
    /// of hv's life, and no partition maps them.
    pub const unsafe fn new(base: usize) -> Self {
        Self {
            base,
            _block: PhantomData,
        }
    }

    #[inline]
    pub fn get(&self) -> &'static T {
        // SAFETY: `new`'s caller vouched for the block at `base` for 'static, and `T` is a
        // register block (any bit pattern valid, volatile access only).
        unsafe { &*(self.base as *const T) }
    }
}
