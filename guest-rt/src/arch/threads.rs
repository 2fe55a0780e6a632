//! Runs the portable [`Kernel`] on this partition's vCPUs: real threads with their own
//! stacks, preempted from the interrupt return path.
//!
//! Owns the one kernel lock (a fair ticket spinlock taken with interrupts masked: the "run
//! queue" raw section), each thread's saved context and stack, each vCPU's idle context, and the
//! translation of the kernel's answers into hardware actions: [`KernelEvent::Ipi`] becomes
//! the reschedule SGI, [`Kernel::schedule`] a context switch, [`Kernel::next_deadline`] the
//! one-shot virtual timer. It decides nothing the kernel decides.
//!
//! Lock handoff: a switch happens with the kernel lock held and interrupts masked, and the
//! incoming context releases the lock (every context resumes inside a [`Locked`] scope, or
//! in [`thread_start`] which releases it by hand). So no CPU can pick a thread whose
//! registers are still being saved.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use core::panic::Location;

use guest_rt::sync::ticket_lock::TicketLock;
use guest_rt::{
    CpuId, Kernel, KernelConfig, KernelEvent, ThreadId, ThreadSpec, WaitOutcome, WaitStatus,
};

use super::context::{self, Stack};
use super::irqmask::{self, IrqMasked};
use super::{gic, timer, trace, vcpu_index, MAX_VCPUS};

/// The SGI that asks a vCPU to reschedule (the other SGI numbers are the self-tests').
pub const RESCHED_SGI: u32 = 15;

/// What a thread runs.
type Body = Box<dyn FnOnce() + Send>;

struct ThreadCtx {
    /// Saved stack pointer while switched out.
    sp: u64,
    /// None once freed (the thread exited and is off every CPU).
    stack: Option<Stack>,
}

struct Rt {
    kernel: Kernel,
    /// Indexed by [`ThreadId`]. A switch stores into an entry while the lock is held, so
    /// the vector cannot grow under it.
    threads: Vec<ThreadCtx>,
    idle_sp: [u64; MAX_VCPUS],
    /// The context each vCPU actually runs (None: its idle context).
    running: [Option<ThreadId>; MAX_VCPUS],
    /// vCPUs that entered the scheduler.
    active: [bool; MAX_VCPUS],
    /// Threads that exited and whose stacks are not freed yet: [`reap`] looks at these only,
    /// so a switch costs nothing when no thread exited.
    exited: Vec<ThreadId>,
    switches: u64,
}

struct KernelCell(UnsafeCell<Option<Rt>>);
// SAFETY: the contents are only reached through `Locked`, which holds `LOCK`.
unsafe impl Sync for KernelCell {}

/// The kernel lock: fair (FIFO), so a vCPU waits for at most one hold per other vCPU.
static LOCK: TicketLock = TicketLock::new();
static RT: KernelCell = KernelCell(UnsafeCell::new(None));
/// Set once the kernel exists (before that, no vCPU runs threads).
static READY: AtomicBool = AtomicBool::new(false);
/// Per vCPU: it runs the scheduler (its timer and reschedule SGI belong to the kernel).
static ACTIVE: [AtomicBool; MAX_VCPUS] = [const { AtomicBool::new(false) }; MAX_VCPUS];

/// The kernel lock held, interrupts masked. Dropping it releases the lock, then restores
/// the interrupt mask this context had.
struct Locked {
    _masked: IrqMasked,
}

impl Locked {
    /// A kernel entry: the lock, this vCPU, and the kernel's clock brought up to now.
    #[track_caller]
    fn enter() -> (Locked, CpuId) {
        let mut lk = Locked::acquire();
        let now = timer::now_ns();
        lk.rt().kernel.advance_time(now);
        (lk, vcpu_index())
    }

    /// Takes the lock with interrupts masked; the caller (through `#[track_caller]`
    /// callers) is the site the tracer names for this hold.
    #[track_caller]
    fn acquire() -> Locked {
        let masked = IrqMasked::new();
        let (waited, holds_before) = if LOCK.try_lock() {
            (0, 0)
        } else {
            let since = timer::now_ticks();
            let waited = LOCK.lock();
            (timer::now_ticks() - since, u64::from(waited.holds_before))
        };
        trace::lock_taken(Location::caller(), waited, holds_before);
        Locked { _masked: masked }
    }

    /// The state behind the lock. Borrows are kept short: a switch lets other contexts
    /// change it before this one resumes.
    fn rt(&mut self) -> &mut Rt {
        // SAFETY: LOCK is held by this context; `init` ran before READY was set.
        unsafe { (*RT.0.get()).as_mut().expect("kernel initialised") }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        release();
    }
}

/// Ends the hold of whichever context holds the lock on this vCPU.
fn release() {
    trace::lock_releasing();
    LOCK.unlock();
}

/// Creates the kernel for `cpus` vCPUs (vCPU 0, once, before any other call here).
pub fn init(cpus: usize) {
    let rt = Rt {
        kernel: Kernel::new(KernelConfig::new(cpus.min(MAX_VCPUS))),
        threads: Vec::new(),
        idle_sp: [0; MAX_VCPUS],
        running: [None; MAX_VCPUS],
        active: [false; MAX_VCPUS],
        // Room for one exiting thread per vCPU and as many not reaped yet: exits never
        // allocate in practice.
        exited: Vec::with_capacity(2 * MAX_VCPUS),
        switches: 0,
    };
    let _masked = IrqMasked::new();
    LOCK.lock();
    // SAFETY: LOCK is held; nobody reads RT before READY.
    unsafe { *RT.0.get() = Some(rt) };
    LOCK.unlock();
    READY.store(true, Ordering::Release);
}

/// Whether this vCPU runs threads (its timer and reschedule SGI are the kernel's).
pub fn active_here() -> bool {
    ACTIVE[vcpu_index()].load(Ordering::Acquire)
}

/// Sends the SGIs the kernel asked for.
fn deliver_events(lk: &mut Locked) {
    for KernelEvent::Ipi { to, .. } in lk.rt().kernel.take_events() {
        gic::send_sgi(RESCHED_SGI, to);
    }
}

/// Programs this vCPU's one-shot timer for the kernel's next deadline (off when none);
/// the timer is left alone when that did not change.
fn program_timer(deadline: Option<u64>) {
    timer::program(deadline);
}

/// After a kernel entry on `cpu`: IPIs out, then, if this vCPU must reschedule (or `force`),
/// the switch to whatever [`Kernel::schedule`] picks, then the timer. Returns when the
/// calling context runs again, possibly on another vCPU (callers re-read theirs).
fn reschedule(lk: &mut Locked, cpu: CpuId, force: bool) {
    deliver_events(lk);
    let rt = lk.rt();
    if !rt.active[cpu] || !(force || rt.kernel.need_resched(cpu)) {
        if rt.active[cpu] {
            program_timer(rt.kernel.next_deadline(cpu));
        }
        return;
    }
    let next = rt.kernel.schedule(cpu);
    let deadline = rt.kernel.next_deadline(cpu);
    let prev = rt.running[cpu];
    deliver_events(lk);
    program_timer(deadline);
    if next == prev {
        return;
    }
    let rt = lk.rt();
    rt.running[cpu] = next;
    rt.switches += 1;
    let save: *mut u64 = match prev {
        Some(t) => &mut rt.threads[t.0 as usize].sp,
        None => &mut rt.idle_sp[cpu],
    };
    let load = match next {
        Some(t) => {
            let ctx = &rt.threads[t.0 as usize];
            // A saved stack pointer outside its stack means the thread overflowed it.
            assert!(
                ctx.stack.as_ref().is_some_and(|s| s.contains(ctx.sp)),
                "thread {} overflowed its stack",
                t.0
            );
            ctx.sp
        }
        None => rt.idle_sp[cpu],
    };
    // SAFETY: interrupts are masked and the kernel lock is held: the incoming context was
    // switched out completely (its switch finished under this lock) and no other vCPU can
    // pick the outgoing one until the incoming context drops the lock.
    unsafe { context::switch(save, load) };
    reap(lk);
}

/// Frees the stacks of exited threads that no vCPU is on any more (an exiting thread
/// is still on its vCPU until the switch away from it completes).
fn reap(lk: &mut Locked) {
    let rt = lk.rt();
    if rt.exited.is_empty() {
        return;
    }
    let Rt {
        exited,
        threads,
        running,
        ..
    } = rt;
    exited.retain(|&tid| {
        let gone = !running.contains(&Some(tid));
        if gone {
            threads[tid.0 as usize].stack = None;
        }
        !gone
    });
}

/// Turns this vCPU into a scheduler CPU: from here on it runs threads, and idles in WFI
/// with interrupts open when none is runnable. Never returns.
pub fn enter() -> ! {
    let cpu = vcpu_index();
    {
        let mut lk = Locked::acquire();
        lk.rt().active[cpu] = true;
        ACTIVE[cpu].store(true, Ordering::Release);
        let now = timer::now_ns();
        lk.rt().kernel.advance_time(now);
        reschedule(&mut lk, cpu, true);
    }
    // The idle context: whatever wakes a thread reaches this vCPU as an interrupt (timer or
    // reschedule SGI), whose handler switches to it.
    irqmask::unmask();
    loop {
        aarch64_cpu::asm::wfi();
    }
}

/// Runs `op` on the kernel as the current context of this vCPU, then acts on what it asked
/// for (IPIs, a switch if a woken thread should run here, the timer).
#[track_caller]
pub fn with<R>(op: impl FnOnce(&mut Kernel, CpuId) -> R) -> R {
    let (mut lk, cpu) = Locked::enter();
    let result = op(&mut lk.rt().kernel, cpu);
    reschedule(&mut lk, cpu, false);
    result
}

/// Runs an operation that may block the calling thread; returns how the wait ended.
#[track_caller]
pub fn wait(op: impl FnOnce(&mut Kernel, CpuId) -> WaitStatus) -> WaitOutcome {
    let (mut lk, cpu) = Locked::enter();
    let me = lk.rt().kernel.current(cpu).expect("wait() from a thread");
    match op(&mut lk.rt().kernel, cpu) {
        WaitStatus::Ready(outcome) => {
            reschedule(&mut lk, cpu, false);
            outcome
        }
        WaitStatus::Blocked => {
            reschedule(&mut lk, cpu, false);
            lk.rt()
                .kernel
                .take_outcome(me)
                .expect("a woken thread has an outcome")
        }
    }
}

/// Sleeps the calling thread until absolute virtual-counter time `until_ns`.
pub fn sleep_until_ns(until_ns: u64) {
    wait(|k, cpu| k.sleep_until(cpu, until_ns));
}

pub fn sleep_ns(ns: u64) {
    sleep_until_ns(timer::now_ns() + ns);
}

/// The calling thread's id.
#[cfg(feature = "selftests")]
pub fn current() -> ThreadId {
    with(|k, cpu| k.current(cpu).expect("current() from a thread"))
}

/// Creates a thread running `body`; it exits when `body` returns.
#[track_caller]
pub fn spawn(spec: ThreadSpec, body: impl FnOnce() + Send + 'static) -> ThreadId {
    let body: Box<Body> = Box::new(Box::new(body));
    let arg = Box::into_raw(body) as u64;
    let (stack, sp) = Stack::new(arg);
    let (mut lk, cpu) = Locked::enter();
    let tid = lk
        .rt()
        .kernel
        .spawn(cpu, spec)
        .expect("thread affinity names an existing vCPU");
    let rt = lk.rt();
    debug_assert_eq!(tid.0 as usize, rt.threads.len());
    rt.threads.push(ThreadCtx {
        sp,
        stack: Some(stack),
    });
    reschedule(&mut lk, cpu, false);
    tid
}

/// First Rust code of every thread (from `guest_rt_thread_entry`), entered by a switch made
/// under the kernel lock: release it, open interrupts, run the body, exit.
pub extern "C" fn thread_start(arg: u64) -> ! {
    release();
    irqmask::unmask();
    // SAFETY: `spawn` leaked exactly this box for exactly this thread.
    let body = unsafe { Box::from_raw(arg as *mut Body) };
    body();
    let mut lk = Locked::acquire();
    let cpu = vcpu_index();
    let rt = lk.rt();
    let me = rt
        .kernel
        .current(cpu)
        .expect("an exiting thread is current");
    if rt.kernel.exit(cpu).is_err() {
        drop(lk);
        super::console::print(format_args!(
            "FATAL: a thread returned holding rt-mutexes; powering the partition off"
        ));
        super::boot::power_off();
    }
    lk.rt().exited.push(me);
    reschedule(&mut lk, cpu, false);
    unreachable!("an exited thread is never switched back in")
}

/// A kernel entry from an interrupt top half (interrupts masked, the interrupt not yet
/// ended): runs `op` and sends its IPIs but never switches; the handler asks for the
/// reschedule check on its way out ([`on_interrupt`]).
// No top half of this crate needs it since threaded lines defer their wake-ups to the
// interrupt's one kernel entry; kept for a top half that must act on the kernel at once.
#[allow(dead_code)]
#[track_caller]
pub fn from_interrupt<R>(op: impl FnOnce(&mut Kernel, CpuId) -> R) -> R {
    let (mut lk, cpu) = Locked::enter();
    let result = op(&mut lk.rt().kernel, cpu);
    deliver_events(&mut lk);
    result
}

/// The interrupt path's one kernel entry (timer expiry, reschedule SGI, threaded lines'
/// wake-ups on this vCPU), after every acknowledged interrupt was ended: `deferred` (the
/// top halves' kernel work), expire timers, then reschedule, switching away from the
/// interrupted context if a more urgent thread is runnable here.
#[track_caller]
pub fn on_interrupt(deferred: impl FnOnce(&mut Kernel, CpuId)) {
    let mut lk = Locked::acquire();
    trace::interrupt_locked();
    let cpu = vcpu_index();
    let now = timer::now_ns();
    let k = &mut lk.rt().kernel;
    k.advance_time(now);
    deferred(k, cpu);
    k.expire(cpu);
    reschedule(&mut lk, cpu, false);
}

/// Context switches so far (all vCPUs).
#[cfg(feature = "selftests")]
pub fn switches() -> u64 {
    let mut lk = Locked::acquire();
    lk.rt().switches
}
