//! The channel region (or hv's control page) mapped through `/dev/mem`, and the
//! Linux-side writer lock.
//!
//! All of rtctl's unsafe code is here: one `mmap`, one slice over it, one `munmap`, and
//! `flock`. Debian's kernel has `CONFIG_IO_STRICT_DEVMEM=y`, but the channel is a `no-map`
//! reserved region (not System RAM in use, not a claimed device), so `/dev/mem` maps it;
//! the kernel gives such a mapping Device attributes, which is why the channel crate uses
//! single loads and stores only.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use channel::Word;

use crate::devtree::Span;

pub const DEV_MEM: &str = "/dev/mem";

/// A shared mapping of the channel's physical span, unmapped on drop.
pub struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
    file: File,
}

impl Mapping {
    pub fn open(span: Span) -> Result<Self, String> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_SYNC)
            .open(DEV_MEM)
            .map_err(|e| format!("{DEV_MEM}: {e}"))?;
        let len = usize::try_from(span.size).map_err(|_| "span too large".to_string())?;
        let offset = libc::off_t::try_from(span.base)
            .map_err(|_| format!("base {:#x} out of range", span.base))?;
        if len == 0 || !len.is_multiple_of(4096) || !span.base.is_multiple_of(4096) {
            return Err(format!(
                "span {:#x}+{:#x} is not whole pages",
                span.base, span.size
            ));
        }
        // SAFETY: a new shared mapping chosen by the kernel (address NULL), of a file we
        // own the descriptor of; it aliases no Rust object. Failure is checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(format!(
                "mapping {DEV_MEM} at {:#x} ({} KiB): {}",
                span.base,
                span.size / 1024,
                std::io::Error::last_os_error()
            ));
        }
        Ok(Self { ptr, len, file })
    }

    /// The region as words.
    pub fn words(&self) -> &[Word] {
        // SAFETY: `ptr` is a live mapping of `len` bytes (page aligned, so aligned for
        // AtomicU64, which has u64's size) until `self` drops, and the borrow cannot
        // outlive `self`. The other partition writes it concurrently, which atomics allow;
        // nothing here ever makes a non-atomic reference to it.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<Word>(), self.len / 8) }
    }

    /// Takes the Linux-side writer lock (an exclusive `flock` on `/dev/mem`, held until
    /// the guard drops): `rtctl set`s queue behind each other, never behind the RT side.
    pub fn writer_lock(&self) -> Result<WriterLock<'_>, String> {
        // SAFETY: flock on a descriptor we own; no memory is passed.
        let r = unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_EX) };
        if r != 0 {
            return Err(format!(
                "locking {DEV_MEM}: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(WriterLock(self))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `open`; no borrow of it outlives
        // `self` (words() borrows self).
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

/// Proof that this process holds the writer lock.
pub struct WriterLock<'a>(&'a Mapping);

impl Drop for WriterLock<'_> {
    fn drop(&mut self) {
        // SAFETY: flock on a descriptor we own; no memory is passed.
        unsafe {
            libc::flock(self.0.file.as_raw_fd(), libc::LOCK_UN);
        }
    }
}
