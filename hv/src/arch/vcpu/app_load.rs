//! `rtctl load NAME` carried out: Linux's control-page request, decided by
//! [`hv_core::app_load`], stops the RT partition (a kick to each of its running CPUs) so
//! that its ordinary restart reloads it with the chosen app's DTB. Runs on the Linux CPU
//! that trapped; it takes only the RT partition's state lock, as any restart does, and
//! never waits for the RT side to stop.

use log::{info, warn};
use spin::Mutex;

use abi::bootargs::RT_APPS;
use hv_core::app_load::{LoadDesk, RtPartition};
use hv_core::partition::StopReason;
use hv_core::running::Running;

use super::{kick_all, partitions, restart_stopped};

/// The request's words and outcome (one Linux partition asks).
static DESK: Mutex<LoadDesk> = Mutex::new(LoadDesk::new());

/// The RT partition: the started one without a console (there is at most one).
fn rt_partition() -> Option<&'static Running> {
    partitions().iter().find(|p| !p.is_linux())
}

pub(super) fn set_name_word(which: usize, value: u64) {
    DESK.lock().set_name_word(which, value);
}

/// Linux asked for the load its name words say.
pub(super) fn request() {
    let rt = rt_partition();
    let mut desk = DESK.lock();
    let Some(rt) = rt else {
        if let Err(why) = desk.request(None) {
            warn!("rtctl load: refused: {}", why.reason());
        }
        return;
    };
    let (restart, running) = {
        let mut state = rt.state.lock();
        let view = RtPartition {
            allowed: rt.dtbs.is_loadable(),
            // Ready: every vCPU it started runs (none is still pending, which would
            // never take the stop).
            running: state.stopped().is_none() && state.all_ready(),
            boots: state.boots(),
        };
        match desk.request(Some(view)) {
            Err(why) => {
                warn!(
                    "rtctl load: refused for partition `{}`: {}",
                    rt.name,
                    why.reason()
                );
                return;
            }
            Ok(app) => {
                rt.dtbs.choose(app);
                state.stop(StopReason::Load);
                super::super::channel::publish_run(&state);
                info!(
                    "rtctl load: partition `{}` restarts with app `{}` (boot {})",
                    rt.name,
                    RT_APPS[app].name,
                    state.boots() + 1
                );
            }
        }
        (state.take_restart(), state.running_cpus())
    };
    drop(desk);
    kick_all(&running);
    if restart {
        // No vCPU of it ran (all of them had stopped on their own): nobody else will.
        restart_stopped(rt);
    }
}

/// The status word a read of the load register gives.
pub(super) fn status() -> u64 {
    let (boots, ready) = rt_partition().map_or((0, false), |rt| {
        let state = rt.state.lock();
        (
            state.boots(),
            state.stopped().is_none() && state.all_ready(),
        )
    });
    DESK.lock().status(boots, ready).word()
}
