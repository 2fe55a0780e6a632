//! The doorbells from Linux's side, without a kernel module: ringing the RT partition is a
//! store of the magic to hv's control page (mapped through `/dev/mem`; the store traps to
//! hv), and the RT partition's rings arrive as edges on line 0 of the PL061 hv emulates
//! (Debian's built-in `gpio-pl061` and the GPIO character device): `wait` requests that
//! line with rising-edge detection and sleeps in `poll()` until an edge comes. hv's
//! counters (read from the control page) say which ring an edge stands for, so an edge
//! left pending from before the wait is recognised as old and skipped.

use std::time::Duration;

use channel::Word;
use core::sync::atomic::Ordering;

/// Words of the control page (offsets from [`abi`], in 8-byte words).
const DOORBELL: usize = (abi::CONTROL_DOORBELL / 8) as usize;
const RAISED: usize = (abi::CONTROL_DOORBELL_RAISED / 8) as usize;
const RT_RINGS: usize = (abi::CONTROL_RT_RINGS / 8) as usize;

/// hv's doorbell counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub rings: u64,
    pub raised: u64,
    pub rt_rings: u64,
}

/// Reads the counters (each load traps to hv, which answers it).
pub fn counts(page: &[Word]) -> Counts {
    let load = |i: usize| page.get(i).map_or(0, |w| w.load(Ordering::Relaxed));
    Counts {
        rings: load(DOORBELL),
        raised: load(RAISED),
        rt_rings: load(RT_RINGS),
    }
}

/// One ring of the RT partition's doorbell (a plain store: hv emulates it).
pub fn ring(page: &[Word]) {
    if let Some(w) = page.get(DOORBELL) {
        w.store(u64::from(abi::CONTROL_DOORBELL_MAGIC), Ordering::Relaxed);
    }
}

/// What `wait` saw.
pub struct Waited {
    /// The RT partition's ring count once it passed `after`.
    pub rt_rings: u64,
    /// Edge events read on the way (old ones included).
    pub edges: u64,
}

/// Waits until the RT partition rang more than `after` times, sleeping in `poll()` on
/// the doorbell line's edges. Re-checks the counter every second too, so an edge Linux
/// never saw (the line requested after it came) cannot leave it waiting for ever.
pub fn wait(page: &[Word], after: u64) -> Result<Waited, String> {
    let line = gpiocdev::find_named_line(abi::DOORBELL_GPIO_LINE).ok_or_else(|| {
        format!(
            "no GPIO line named `{}` (no doorbell PL061 in this Linux's device tree?)",
            abi::DOORBELL_GPIO_LINE
        )
    })?;
    let request = gpiocdev::Request::builder()
        .on_chip(&line.chip)
        .with_consumer("rtctl")
        .with_line(line.info.offset)
        .as_input()
        .with_edge_detection(gpiocdev::line::EdgeDetection::RisingEdge)
        .request()
        .map_err(|e| format!("requesting GPIO line `{}`: {e}", abi::DOORBELL_GPIO_LINE))?;
    let mut edges = 0;
    loop {
        let rt_rings = counts(page).rt_rings;
        if rt_rings > after {
            return Ok(Waited { rt_rings, edges });
        }
        let ready = request
            .wait_edge_event(Duration::from_secs(1))
            .map_err(|e| format!("waiting for an edge: {e}"))?;
        if ready {
            request
                .read_edge_event()
                .map_err(|e| format!("reading an edge event: {e}"))?;
            edges += 1;
        }
    }
}

/// The virtual counter in ns (CNTVCT_EL0, which hv gives both partitions unchanged, so
/// the RT side's times compare with these), or 0 off aarch64.
pub fn now_ns() -> u64 {
    #[cfg(target_arch = "aarch64")]
    {
        let (ticks, freq): (u64, u64);
        // SAFETY: reads two system registers Linux lets EL0 read (its vDSO does too); no
        // memory is touched.
        unsafe {
            core::arch::asm!("isb", "mrs {t}, cntvct_el0", "mrs {f}, cntfrq_el0",
                t = out(reg) ticks, f = out(reg) freq, options(nostack));
        }
        (u128::from(ticks) * 1_000_000_000 / u128::from(freq.max(1))) as u64
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        0
    }
}
