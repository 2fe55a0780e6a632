//! The channel region (or hv's control page) mapped through `/dev/mem`, and the
//! Linux-side writer lock.
//!
//! All of rtctl's unsafe code is here: one `mmap`, one slice over it, one `munmap`,
//! `flock`, `fstat`, and the test hook's `raise(SIGSTOP)`.
//!
//! A writer that finds the lock held (another `rtctl set`, perhaps stopped with SIGSTOP
//! in the middle of its publish) says which PID holds it, read from `/proc/locks`, and
//! whether that process is stopped; then it waits (the holder's publish completes first,
//! and this one starts from it, so no change is lost) or, with `--no-wait`, refuses. It
//! never breaks the lock: a stopped writer has already chosen its slot, and a second
//! writer could choose the same one. The RT side never sees any of this: it only ever
//! reads `current`, which a half-written slot does not change. Debian's kernel has `CONFIG_IO_STRICT_DEVMEM=y`, but the channel is a `no-map`
//! reserved region (not System RAM in use, not a claimed device), so `/dev/mem` maps it;
//! the kernel gives such a mapping Device attributes, which is why the channel crate uses
//! single loads and stores only.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
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
    /// A held lock is reported with its holder, then waited for or refused (`wait`).
    pub fn writer_lock(&self, wait: Wait) -> Result<WriterLock<'_>, String> {
        if self.flock(libc::LOCK_EX | libc::LOCK_NB)? {
            return Ok(WriterLock(self));
        }
        let holder = self.holder();
        if wait == Wait::No {
            return Err(format!(
                "the writer lock on {DEV_MEM} is held by {holder}: nothing published \
                 (without --no-wait, set waits for it)"
            ));
        }
        eprintln!("rtctl: waiting for the writer lock on {DEV_MEM}, held by {holder}");
        if self.flock(libc::LOCK_EX)? {
            Ok(WriterLock(self))
        } else {
            Err(format!("locking {DEV_MEM}: still held by {holder}"))
        }
    }

    /// One `flock`: true if taken, false if a non-blocking try found it held.
    fn flock(&self, op: libc::c_int) -> Result<bool, String> {
        loop {
            // SAFETY: flock on a descriptor we own; no memory is passed.
            let r = unsafe { libc::flock(self.file.as_raw_fd(), op) };
            if r == 0 {
                return Ok(true);
            }
            let e = std::io::Error::last_os_error();
            match e.kind() {
                ErrorKind::WouldBlock => return Ok(false),
                ErrorKind::Interrupted => continue,
                _ => return Err(format!("locking {DEV_MEM}: {e}")),
            }
        }
    }

    /// Who holds the writer lock, as a phrase: "PID N (stopped)", or why it is unknown.
    fn holder(&self) -> String {
        // SAFETY: fstat on a descriptor we own into a zeroed stat we own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above: `st` is a valid, writable stat buffer.
        if unsafe { libc::fstat(self.file.as_raw_fd(), &mut st) } != 0 {
            return "another process".into();
        }
        let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
        let Some(pid) = lock_holder(&locks, st.st_dev, st.st_ino) else {
            return "another process (not found in /proc/locks)".into();
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        match process_state(&stat) {
            Some('T') | Some('t') => format!("PID {pid} (stopped)"),
            Some(state) => format!("PID {pid} (state {state})"),
            None => format!("PID {pid}"),
        }
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

/// Whether a writer waits for a held lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    Yes,
    No,
}

/// The PID holding an FLOCK write lock on the file (`dev`, `inode`), from the text of
/// `/proc/locks` (lines like `1: FLOCK  ADVISORY  WRITE 123 00:05:6 0 EOF`; waiters are
/// marked `->` and skipped).
pub fn lock_holder(locks: &str, dev: u64, inode: u64) -> Option<u32> {
    // Linux's encoding of a dev_t: major in bits 8-19 and 32-43, minor in 0-7 and 20-31.
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let wanted = format!("{major:02x}:{minor:02x}:{inode}");
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, "FLOCK", _, "WRITE", pid, file, ..] if *file == wanted => pid.parse().ok(),
            _ => None,
        }
    })
}

/// The state letter of a `/proc/PID/stat` line (after the parenthesised name).
pub fn process_state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The test hook of `rtctl set --pause-after-slot`: stops this process (SIGSTOP) until
/// someone sends it SIGCONT.
pub fn stop_self() {
    // SAFETY: raising a signal at ourselves passes no memory; SIGSTOP cannot be caught.
    unsafe {
        libc::raise(libc::SIGSTOP);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_found_by_device_and_inode_and_waiters_are_skipped() {
        let locks = "1: FLOCK  ADVISORY  WRITE 301 00:05:7 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 305 00:05:7 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 99 00:05:7 0 EOF\n\
                     3: FLOCK  ADVISORY  WRITE 412 fd:01:7 0 EOF\n";
        assert_eq!(lock_holder(locks, 5, 7), Some(301));
        assert_eq!(lock_holder(locks, 0xfd01, 7), Some(412));
        assert_eq!(lock_holder(locks, 5, 8), None);
        assert_eq!(lock_holder("", 5, 7), None);
    }

    #[test]
    fn the_state_follows_the_name_even_with_parentheses_in_it() {
        assert_eq!(process_state("301 (rtctl) T 1 301 1 0"), Some('T'));
        assert_eq!(process_state("7 (a) b) S 1"), Some('S'));
        assert_eq!(process_state("garbage"), None);
    }
}
