//! The interrupt top half: acknowledge, dispatch (on [`source::classify`]'s answer), end. Runs with interrupts masked and
//! does only bounded work (the timer's is to disarm it and flag the sleeper). Every
//! interrupt's priority is dropped here; all but a threaded line's are deactivated here
//! too (the CPU interface runs with EOImode = 1, see [`gic`]). On a vCPU that runs
//! threads, the timer and the reschedule SGI end in one kernel entry after all interrupts
//! are ended, which may switch to another thread: the kernel is preemptible from the
//! interrupt return path. A threaded line's top half only notes the wake-up; it is done
//! in that same one kernel entry ([`irq_threads::in_kernel_entry`]), so an interrupt takes
//! the kernel lock once.

use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::interrupts::source::{self, Source};

use super::devices::Ending;
use super::{gic, irq_threads, threads, timer, trace, vcpu_index, MAX_VCPUS};

/// Interrupts that nobody here expects, per vCPU.
static UNEXPECTED: [AtomicU64; MAX_VCPUS] = [const { AtomicU64::new(0) }; MAX_VCPUS];
/// SGIs received, per vCPU.
static SGIS: [AtomicU64; MAX_VCPUS] = [const { AtomicU64::new(0) }; MAX_VCPUS];

/// Which SGI numbers this vCPU has received (bit n: SGI n).
static SGI_IDS: [AtomicU64; MAX_VCPUS] = [const { AtomicU64::new(0) }; MAX_VCPUS];

/// SGIs vCPU `vcpu` received (read from another vCPU by the self-tests).
pub fn sgis_of(vcpu: usize) -> u64 {
    SGIS[vcpu].load(Ordering::Relaxed)
}

pub fn sgi_ids() -> u64 {
    SGI_IDS[vcpu_index()].load(Ordering::Relaxed)
}

/// SGIs this vCPU received (cross-vCPU wake-ups).
pub fn sgis() -> u64 {
    SGIS[vcpu_index()].load(Ordering::Relaxed)
}

pub extern "C" fn handle() {
    trace::interrupt_entered();
    // Whether the kernel must look at this vCPU (timer expiry or a reschedule request).
    let mut kernel_entry = false;
    let scheduler_here = threads::active_here();
    let mut resched = false;
    while let Some(acked) = gic::acknowledge() {
        let intid = acked.intid;
        let mut ending = Ending::Deactivate;
        match source::classify(intid, timer::intid(), threads::RESCHED_SGI) {
            Source::Timer if scheduler_here => {
                // Level-triggered: disarm before ending it; the kernel programs the next
                // deadline.
                timer::disarm();
                kernel_entry = true;
            }
            Source::Timer => timer::on_interrupt(),
            Source::Resched => {
                resched = true;
                kernel_entry |= scheduler_here;
            }
            Source::Sgi(n) => {
                SGIS[vcpu_index()].fetch_add(1, Ordering::Relaxed);
                SGI_IDS[vcpu_index()].fetch_or(1 << n, Ordering::Relaxed);
            }
            Source::Line(n) => match super::devices::handler(n) {
                Some(handler) => {
                    ending = handler(n);
                    // A threaded line's top half noted a wake-up for the kernel entry
                    // below (on any vCPU: the woken thread may run elsewhere).
                    kernel_entry |= scheduler_here || irq_threads::deferred_here();
                }
                None => {
                    UNEXPECTED[vcpu_index()].fetch_add(1, Ordering::Relaxed);
                }
            },
        }
        match ending {
            Ending::Deactivate => gic::end(acked),
            Ending::LeaveActive => gic::drop_priority(acked),
        }
    }
    // Threaded lines whose handlers returned on another vCPU (which sent this SGI) while
    // their interrupts were active here are deactivated in the kernel entry.
    kernel_entry |= resched && irq_threads::owed_here();
    // Every interrupt's priority is dropped before the kernel may switch away from the
    // interrupted context: a switched-out handler must not hold the CPU interface's
    // running priority.
    if kernel_entry {
        threads::on_interrupt(irq_threads::in_kernel_entry);
    }
    // The exception return opens interrupts again (in whichever context returns here).
    trace::unmasking();
}

pub fn unexpected() -> u64 {
    UNEXPECTED[vcpu_index()].load(Ordering::Relaxed)
}
