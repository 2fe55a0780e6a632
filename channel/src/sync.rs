//! The atomics the protocol is built from: `core`'s, or loom's under `cfg(loom)` so the
//! same code is model-checked. Only this module chooses between them.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicU64};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU64};

pub(crate) use core::sync::atomic::Ordering;
