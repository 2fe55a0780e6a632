//! The wake, timer and switch paths allocate nothing once the kernel is warm: the arch
//! layer runs them with interrupts masked under the kernel lock, where an allocator call
//! would be unbounded work. A counting allocator checks it (one test in this binary, so no
//! other test allocates concurrently).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use guest_rt::{CpuMask, Kernel, KernelConfig, ThreadSpec};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; counting changes no result.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// One round of every hot path on two CPUs: a yield between equal-priority threads, a
/// sleep ended by the timer, a completion waking a more urgent thread on the same CPU and
/// on the other one (IPI), and an rt-mutex contended with a priority boost.
fn round(k: &mut Kernel, now: &mut u64, ids: &Ids) {
    let Ids {
        a,
        b,
        h,
        remote,
        c,
        m,
    } = *ids;
    // a runs on CPU 0; yield to b and back.
    k.yield_now(0);
    assert_eq!(k.schedule(0), Some(b));
    k.yield_now(0);
    assert_eq!(k.schedule(0), Some(a));
    // h sleeps and its timer wakes it, preempting a.
    k.set_priority(0, h, guest_rt::Priority::new(50));
    assert_eq!(k.schedule(0), Some(h));
    *now += 1_000;
    assert!(matches!(
        k.sleep_until(0, *now),
        guest_rt::WaitStatus::Blocked
    ));
    assert_eq!(k.schedule(0), Some(a));
    k.advance_time(*now);
    k.expire(0);
    assert!(k.need_resched(0));
    assert_eq!(k.schedule(0), Some(h));
    assert!(k.take_outcome(h).is_some());
    // h waits on c; a wakes it (same CPU), then wakes the remote waiter (other CPU).
    let _ = k.wait_for_completion(0, c);
    assert_eq!(k.schedule(0), Some(a));
    k.complete(0, c);
    assert_eq!(k.schedule(0), Some(h));
    assert!(k.take_outcome(h).is_some());
    let _ = k.wait_for_completion(0, c);
    assert_eq!(k.schedule(0), Some(a));
    k.complete(0, c);
    assert_eq!(k.schedule(0), Some(h));
    let _ = k.take_outcome(h);
    // The remote thread waits on CPU 1 and is woken from CPU 0.
    let _ = k.wait_for_completion(1, c);
    assert_eq!(k.schedule(1), None);
    k.complete(0, c);
    assert!(k.take_events().count() == 1, "one IPI to CPU 1");
    assert_eq!(k.schedule(1), Some(remote));
    assert!(k.take_outcome(remote).is_some());
    // Contended rt-mutex: a owns it, h blocks and boosts a, a hands it over.
    let _ = k.wait_for_completion(0, c);
    assert_eq!(k.schedule(0), Some(a));
    assert!(k.lock(0, m).unwrap().is_success());
    k.complete(0, c);
    assert_eq!(k.schedule(0), Some(h));
    let _ = k.take_outcome(h);
    assert!(matches!(
        k.lock(0, m).unwrap(),
        guest_rt::WaitStatus::Blocked
    ));
    assert_eq!(k.schedule(0), Some(a));
    k.unlock(0, m).unwrap();
    assert_eq!(k.schedule(0), Some(h));
    assert!(k.take_outcome(h).is_some());
    k.unlock(0, m).unwrap();
    // Back to the starting point: h out of the way at the bottom, a running.
    k.set_priority(0, h, guest_rt::Priority::new(1));
    assert_eq!(k.schedule(0), Some(a));
    assert_eq!(k.next_deadline(0), None);
    assert_eq!(k.take_events().count(), 0);
}

#[derive(Clone, Copy)]
struct Ids {
    a: guest_rt::ThreadId,
    b: guest_rt::ThreadId,
    h: guest_rt::ThreadId,
    remote: guest_rt::ThreadId,
    c: guest_rt::CompletionId,
    m: guest_rt::MutexId,
}

#[test]
fn hot_paths_allocate_nothing_once_warm() {
    let mut k = Kernel::new(KernelConfig::new(2));
    let cpu0 = CpuMask::single(0);
    let remote = k
        .spawn(1, ThreadSpec::fifo(60).on(CpuMask::single(1)))
        .unwrap();
    assert_eq!(k.schedule(1), Some(remote));
    let a = k.spawn(0, ThreadSpec::fifo(20).on(cpu0)).unwrap();
    let b = k.spawn(0, ThreadSpec::fifo(20).on(cpu0)).unwrap();
    let h = k.spawn(0, ThreadSpec::fifo(1).on(cpu0)).unwrap();
    assert_eq!(k.schedule(0), Some(a));
    let ids = Ids {
        a,
        b,
        h,
        remote,
        c: k.completion_create(),
        m: k.mutex_create(),
    };
    let mut now = 0;
    // Warm-up: queues and wait lists reach their working capacity.
    for _ in 0..3 {
        round(&mut k, &mut now, &ids);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..100 {
        round(&mut k, &mut now, &ids);
    }
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed) - before, 0);
    k.check_invariants().unwrap();
}
