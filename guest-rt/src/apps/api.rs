//! The app API: what an RT application is written against, the way a user writes theirs.
//! An app uses this module and the portable crates (`control`, `channel`'s types), never
//! the runtime ([`crate::arch`]) or the kernel's tables directly.
//!
//! Owns nothing but thin handles: every object here is a kernel object created on first
//! use and driven through the runtime's kernel entries ([`crate::arch::threads`]); nothing
//! is reimplemented. What it offers:
//! * time and periodic releases at absolute deadlines ([`now_ns`], [`sleep_until_ns`],
//!   [`Periodic`]): deadlines never drift, a late wake-up is reported, not absorbed;
//! * threads with a priority (0 lowest .. 99 highest, FIFO) and an affinity ([`spawn`],
//!   [`run_threads`]);
//! * [`Mutex<T>`], a value behind an rt-mutex (priority inheritance), with a guard;
//! * [`Completion`] and [`Semaphore`], with timeouts;
//! * [`PerCpuLocked<T>`], one value per vCPU under its own rt-mutex (closure or guard);
//! * [`RcuCell<T>`], a value readers copy out under the read side of an rwsem while a
//!   writer publishes new versions (lock-based RCU, as PREEMPT_RT does it);
//! * threaded device-interrupt handlers ([`on_interrupt`]) for the partition's devices;
//! * the channel to Linux ([`channel`]): this vCPU's parameter versions and its
//!   telemetry block.
//!
//! Rules an app keeps: blocking calls are for threads (never from an interrupt handler's
//! top half, which apps do not write); closures marked "inside a kernel entry" run with
//! the kernel lock held and interrupts masked, so they copy or compute briefly and never
//! block. Nothing here waits for Linux.

// An API: the parts this image's apps leave unused are still its surface.
#![allow(dead_code)]

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

use guest_rt::interrupts::irq_registry::IrqError;
use guest_rt::sync::percpu_locked::{PerCpuLocked as KernelPerCpu, PerCpuSlot};
use guest_rt::sync::rcu::{RcuCell as KernelRcu, RcuGuard};
use guest_rt::{CompletionId, MutexId, SemaphoreId, WaitOutcome, WaitStatus};
pub use guest_rt::{CpuMask, LockError, Priority, ThreadId, ThreadSpec};

use crate::arch::{irq_threads, threads, timer};

// ---------------------------------------------------------------------------------------
// Time

/// The monotonic clock (the virtual counter), ns since boot.
pub fn now_ns() -> u64 {
    timer::now_ns()
}

/// Sleeps the calling thread until `deadline_ns` (absolute; at once if it passed).
pub fn sleep_until_ns(deadline_ns: u64) {
    threads::sleep_until_ns(deadline_ns);
}

/// Sleeps the calling thread for `ns`.
pub fn sleep_ns(ns: u64) {
    threads::sleep_ns(ns);
}

/// Releases at absolute deadlines one period apart: `first`, `first + period`, ... A
/// late wake-up does not move later releases.
#[derive(Clone, Copy, Debug)]
pub struct Periodic {
    next_ns: u64,
    period_ns: u64,
}

/// One release as a [`Periodic`] thread saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Release {
    /// The release's deadline (when it should have woken), ns.
    pub deadline_ns: u64,
    /// When it woke, ns.
    pub woke_ns: u64,
}

impl Release {
    /// How late the thread woke, ns.
    pub fn late_ns(&self) -> u64 {
        self.woke_ns.saturating_sub(self.deadline_ns)
    }
}

impl Periodic {
    /// Releases from `first_ns` on, every `period_ns` (at least 1 ns).
    pub fn new(first_ns: u64, period_ns: u64) -> Self {
        Self {
            next_ns: first_ns,
            period_ns: period_ns.max(1),
        }
    }

    pub fn period_ns(&self) -> u64 {
        self.period_ns
    }

    /// The deadline [`Periodic::wait`] sleeps to next.
    pub fn next_ns(&self) -> u64 {
        self.next_ns
    }

    /// Sleeps to the next release and moves on by one period.
    pub fn wait(&mut self) -> Release {
        let deadline_ns = self.next_ns;
        sleep_until_ns(deadline_ns);
        self.next_ns += self.period_ns;
        Release {
            deadline_ns,
            woke_ns: now_ns(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Threads

/// A FIFO thread at `priority` (0..=99) kept to the vCPUs of `cpus`.
pub fn thread(priority: u8, cpus: CpuMask) -> ThreadSpec {
    ThreadSpec::fifo(priority).on(cpus)
}

/// Creates a thread running `body`; it exits when `body` returns (holding no [`Mutex`]).
pub fn spawn(spec: ThreadSpec, body: impl FnOnce() + Send + 'static) -> ThreadId {
    threads::spawn(spec, body)
}

/// Turns the calling vCPU's boot context into a scheduler CPU running the threads; an
/// app's `run` ends with this.
pub fn run_threads() -> ! {
    threads::enter()
}

/// A blocking kernel call whose refusal is a programming error (a lock taken twice):
/// the message names it, no silent hang.
fn wait_or_panic(
    what: &str,
    op: impl FnOnce(&mut guest_rt::Kernel, guest_rt::CpuId) -> Result<WaitStatus, LockError>,
) -> WaitOutcome {
    let mut refused = None;
    let outcome = threads::wait(|k, cpu| match op(k, cpu) {
        Ok(status) => status,
        Err(e) => {
            refused = Some(e);
            WaitStatus::Ready(WaitOutcome::Interrupted)
        }
    });
    if let Some(e) = refused {
        panic!("{what} refused: {e:?}");
    }
    outcome
}

// ---------------------------------------------------------------------------------------
// Mutex<T>

/// A value behind a kernel rt-mutex: a thread that waits for it lends its priority to the
/// owner (priority inheritance), unlock hands it to the most urgent waiter.
pub struct Mutex<T> {
    id: MutexId,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a `MutexGuard`, which exists only while its
// thread owns the rt-mutex; the kernel grants the rt-mutex to one thread at a time.
unsafe impl<T: Send> Sync for Mutex<T> {}
// SAFETY: moving the mutex moves the value; nobody can hold a guard across the move.
unsafe impl<T: Send> Send for Mutex<T> {}

impl<T> Mutex<T> {
    /// A new, unlocked mutex (a kernel rt-mutex is created for it).
    pub fn new(value: T) -> Self {
        Self {
            id: threads::with(|k, _| k.mutex_create()),
            value: UnsafeCell::new(value),
        }
    }

    /// Takes the lock, sleeping (and boosting the owner) while another thread has it.
    /// Panics if the caller already holds it (it would wait for itself).
    pub fn lock(&self) -> MutexGuard<'_, T> {
        wait_or_panic("Mutex::lock", |k, cpu| k.lock(cpu, self.id));
        MutexGuard {
            mutex: self,
            _not_send: PhantomData,
        }
    }

    /// Takes the lock if it is free; never sleeps.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        threads::with(|k, cpu| k.try_lock(cpu, self.id)).then_some(MutexGuard {
            mutex: self,
            _not_send: PhantomData,
        })
    }
}

/// The locked value; dropping it unlocks. Not `Send`: the owner is the thread.
pub struct MutexGuard<'m, T> {
    mutex: &'m Mutex<T>,
    _not_send: PhantomData<*const ()>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard's thread owns the rt-mutex, so no other reference exists.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only access through the guard.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        let id = self.mutex.id;
        let unlocked = threads::with(|k, cpu| k.unlock(cpu, id));
        debug_assert!(unlocked.is_ok(), "a guard's thread owns its rt-mutex");
    }
}

// ---------------------------------------------------------------------------------------
// Completions and semaphores

/// "This has happened": [`Completion::complete`] wakes one waiter or banks the event.
#[derive(Clone, Copy, Debug)]
pub struct Completion(CompletionId);

impl Completion {
    pub fn new() -> Self {
        Self(threads::with(|k, _| k.completion_create()))
    }

    /// Wakes the most urgent waiter (or banks one event).
    pub fn complete(&self) {
        threads::with(|k, cpu| k.complete(cpu, self.0));
    }

    /// Wakes every waiter, present and future.
    pub fn complete_all(&self) {
        threads::with(|k, cpu| k.complete_all(cpu, self.0));
    }

    /// Sleeps until an event is there and takes it.
    pub fn wait(&self) {
        threads::wait(|k, cpu| k.wait_for_completion(cpu, self.0));
    }

    /// As [`Completion::wait`], giving up after `timeout_ns`: whether it got the event.
    pub fn wait_timeout(&self, timeout_ns: u64) -> bool {
        let outcome =
            threads::wait(|k, cpu| k.wait_for_completion_timeout(cpu, self.0, timeout_ns));
        matches!(outcome, WaitOutcome::Success { .. })
    }

    /// Takes a banked event if there is one; never sleeps.
    pub fn try_wait(&self) -> bool {
        threads::with(|k, _| k.try_wait_for_completion(self.0))
    }
}

impl Default for Completion {
    fn default() -> Self {
        Self::new()
    }
}

/// A counting semaphore (for counted resources; use [`Mutex`] for exclusion: a semaphore
/// has no owner to boost).
#[derive(Clone, Copy, Debug)]
pub struct Semaphore(SemaphoreId);

impl Semaphore {
    pub fn new(count: u32) -> Self {
        Self(threads::with(|k, _| k.semaphore_create(count)))
    }

    pub fn up(&self) {
        threads::with(|k, cpu| k.up(cpu, self.0));
    }

    pub fn down(&self) {
        threads::wait(|k, cpu| k.down(cpu, self.0));
    }

    /// Whether a unit was taken within `timeout_ns`.
    pub fn down_timeout(&self, timeout_ns: u64) -> bool {
        let outcome = threads::wait(|k, cpu| k.down_timeout(cpu, self.0, timeout_ns));
        matches!(outcome, WaitOutcome::Success { .. })
    }

    pub fn try_down(&self) -> bool {
        threads::with(|k, _| k.down_trylock(self.0))
    }
}

// ---------------------------------------------------------------------------------------
// PerCpuLocked<T>

/// One value per vCPU, each under its own rt-mutex (the kernel's
/// [`guest_rt::sync::percpu_locked`]): a thread locks the slot of the vCPU it runs on and
/// stays preemptible, even migratable, while it holds it; the values are per-CPU in the
/// statistical sense.
pub struct PerCpuLocked<T> {
    inner: KernelPerCpu<UnsafeCell<T>>,
}

// SAFETY: each value is reached only by the thread that owns its slot's rt-mutex (taken
// in `lock_local`, released by the guard's drop), so at most one thread at a time.
unsafe impl<T: Send> Sync for PerCpuLocked<T> {}
// SAFETY: moving it moves the values; no guard can be held across the move.
unsafe impl<T: Send> Send for PerCpuLocked<T> {}

impl<T> PerCpuLocked<T> {
    /// One value per vCPU of the partition, `init(vcpu)` each.
    pub fn new(mut init: impl FnMut(usize) -> T) -> Self {
        Self {
            inner: threads::with(|k, _| KernelPerCpu::new(k, |cpu| UnsafeCell::new(init(cpu)))),
        }
    }

    /// Locks the slot of the vCPU the caller runs on (may sleep for it).
    pub fn lock_local(&self) -> PerCpuGuard<'_, T> {
        let mut slot = None;
        wait_or_panic("PerCpuLocked::lock_local", |k, cpu| {
            let (taken, status) = self.inner.get_locked(k, cpu)?;
            slot = Some(taken);
            Ok(status)
        });
        PerCpuGuard {
            cell: self,
            slot: slot.expect("a granted lock names its slot"),
            _not_send: PhantomData,
        }
    }

    /// Runs `op` on this vCPU's value under its lock (preemptible: not in a kernel entry).
    pub fn with_local<R>(&self, op: impl FnOnce(&mut T) -> R) -> R {
        op(&mut self.lock_local())
    }
}

/// A locked per-CPU slot; dropping it unlocks. Not `Send`: the owner is the thread.
pub struct PerCpuGuard<'c, T> {
    cell: &'c PerCpuLocked<T>,
    slot: PerCpuSlot,
    _not_send: PhantomData<*const ()>,
}

impl<T> PerCpuGuard<'_, T> {
    /// The vCPU whose slot this is (where the thread ran when it locked it).
    pub fn vcpu(&self) -> usize {
        self.slot.0
    }
}

impl<T> Deref for PerCpuGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard's thread owns the slot's rt-mutex.
        unsafe { &*self.cell.inner.values()[self.slot.0].get() }
    }
}

impl<T> DerefMut for PerCpuGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only access through the guard.
        unsafe { &mut *self.cell.inner.values()[self.slot.0].get() }
    }
}

impl<T> Drop for PerCpuGuard<'_, T> {
    fn drop(&mut self) {
        let (inner, slot) = (&self.cell.inner, self.slot);
        let unlocked = threads::with(|k, cpu| inner.put_locked(k, cpu, slot));
        debug_assert!(unlocked.is_ok(), "a guard's thread owns its slot");
    }
}

// ---------------------------------------------------------------------------------------
// RcuCell<T>

/// A value many threads read and one publishes now and then (the kernel's lock-based
/// [`guest_rt::sync::rcu`], its read side an rwsem's: readers share it, sleep only while
/// a writer publishes, and are preemptible throughout).
pub struct RcuCell<T> {
    /// The cell's guard, kept apart so that finding it costs no kernel entry.
    guard: RcuGuard,
    inner: spin::Mutex<KernelRcu<T>>,
}

impl<T> RcuCell<T> {
    pub fn new(value: T) -> Self {
        let guard = threads::with(|k, _| RcuGuard::RwSem(k.rwsem_create()));
        Self {
            guard,
            // Only kernel entries lock it, and they exclude each other: never contended.
            inner: spin::Mutex::new(KernelRcu::new(guard, value)),
        }
    }

    /// Runs `op` on the current version, inside the read side; `op` runs inside a kernel
    /// entry (copy out what you need).
    pub fn read<R>(&self, op: impl FnOnce(&T) -> R) -> R {
        let guard = self.guard;
        wait_or_panic("RcuCell::read", |k, cpu| match guard {
            RcuGuard::RwSem(r) => Ok(k.down_read(cpu, r)),
            RcuGuard::Mutex(m) => k.lock(cpu, m),
        });
        threads::with(|k, cpu| {
            let mut cell = self.inner.lock();
            let result = {
                let (_, value) = cell.read_deref(k, cpu).expect("the read side is held");
                op(value)
            };
            cell.read_unlock(k, cpu).expect("the read side is held");
            result
        })
    }

    /// A copy of the current version.
    pub fn get(&self) -> T
    where
        T: Copy,
    {
        self.read(|v| *v)
    }

    /// Publishes `value` as the new version (waits for readers inside the read side).
    pub fn publish(&self, value: T) {
        let guard = self.guard;
        wait_or_panic("RcuCell::publish", |k, cpu| match guard {
            RcuGuard::RwSem(r) => Ok(k.down_write(cpu, r)),
            RcuGuard::Mutex(m) => k.lock(cpu, m),
        });
        threads::with(|k, cpu| {
            let mut cell = self.inner.lock();
            cell.publish(k, cpu, value).expect("the write side is held");
            cell.write_unlock(k, cpu).expect("the write side is held");
        });
    }
}

// ---------------------------------------------------------------------------------------
// Device interrupts

/// Handles SPI `intid` (one of the partition's devices') in a thread at `priority` kept to
/// `cpus`: each interrupt runs `handler` once there, and the line stays quiet until it
/// returns. Refused for a line that is not the partition's or already has a handler.
pub fn on_interrupt(
    intid: u32,
    priority: Priority,
    cpus: CpuMask,
    handler: fn(u32),
) -> Result<ThreadId, IrqError> {
    irq_threads::register_on(intid, priority, cpus, handler)
}

// ---------------------------------------------------------------------------------------
// The channel to Linux

/// This vCPU's side of the channel: parameter versions Linux publishes (`rtctl set`),
/// checked against [`::channel::schema::CONTROL`], and its telemetry block (`rtctl watch`).
/// Both are fixed numbers of loads and stores under this vCPU's locked endpoint; without a
/// channel (bare, or no region in the DTB) they do nothing.
pub mod channel {
    use ::channel::params::Refresh;
    pub use ::channel::schema::CONTROL;
    use ::channel::schema::MAX_PARAMS;
    pub use ::channel::telemetry::{ControlFigures, Publisher, Telemetry, WatchdogCode};

    use crate::arch::channel as endpoint;

    /// A parameter version this vCPU accepted: every value in range, in schema order.
    #[derive(Clone, Copy, Debug)]
    pub struct Parameters {
        pub version: u64,
        values: [i64; MAX_PARAMS],
        len: usize,
    }

    impl Parameters {
        /// The fixed-point value of parameter `name` (units of 10^-decimals).
        pub fn get(&self, name: &str) -> Option<i64> {
            let i = CONTROL.index(name)?;
            self.values[..self.len].get(i).copied()
        }
    }

    /// The published version if it is new to this vCPU and good (a refused one is counted
    /// in the reader record Linux sees, and the last good one stays).
    pub fn take_parameters() -> Option<Parameters> {
        endpoint::with_endpoint(|ch, ep| match ep.reader.refresh(ch, &CONTROL) {
            Refresh::Accepted(version) => {
                ep.telemetry.params_version = version;
                let snapshot = ep.reader.current()?;
                let mut values = [0i64; MAX_PARAMS];
                let len = snapshot.words().len().min(MAX_PARAMS);
                for (v, &w) in values.iter_mut().zip(snapshot.words()) {
                    *v = w as i64;
                }
                Some(Parameters {
                    version,
                    values,
                    len,
                })
            }
            _ => None,
        })
        .flatten()
    }

    /// Updates this vCPU's telemetry with `fill` and publishes the block; whether there
    /// is a channel. `fill` runs inside a kernel entry.
    pub fn publish_telemetry(fill: impl FnOnce(&mut Telemetry)) -> bool {
        endpoint::with_endpoint(|ch, ep| {
            fill(&mut ep.telemetry);
            ep.writer.publish(ch, &ep.telemetry);
        })
        .is_some()
    }
}
